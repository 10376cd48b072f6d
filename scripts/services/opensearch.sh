#!/usr/bin/env bash
# Single-node OpenSearch 2.19 (no security plugin, HTTP on 127.0.0.1) for integration tests.
# Installed from Maven Central, no Docker: the published distribution zip
# `org.opensearch.distribution.integ-test-zip:opensearch` (server + transport-netty4) plus the modules
# `org.opensearch.plugin:lang-painless` and `org.opensearch.plugin:analysis-common` (snowball, stop,
# ... filters; it extends painless), laid out as modules the way the full distribution has them.
#
#   scripts/services/opensearch.sh install                resolve + unpack into the cache
#   scripts/services/opensearch.sh start RUN_DIR [PORT]   start the node, wait for a yellow/green cluster,
#                                                         append CONFAB_OPENSEARCH_URL=http://127.0.0.1:PORT
#                                                         to RUN_DIR/env
#   scripts/services/opensearch.sh stop RUN_DIR           stop it (TERM, then KILL); no error if not running
#
# Env knobs: CONFAB_CACHE (default ~/.cache/confab), OPENSEARCH_PORT (HTTP port, default random; the
#            PORT argument wins), OPENSEARCH_TRANSPORT_PORT (default random), OPENSEARCH_HEAP (default 512m),
#            OPENSEARCH_LOG_LEVEL (default INFO), OPENSEARCH_START_TIMEOUT (seconds, default 180),
#            OPENSEARCH_JVM_OPTS (extra JVM options, whitespace-separated), OPENSEARCH_FRESH=1 (wipe the
#            node's data before starting; by default data under RUN_DIR/opensearch/data is kept).
#            OPENSEARCH_JIT_OPTS (default -XX:TieredStopAtLevel=1: C1 only, faster start; set empty for C2),
#            OPENSEARCH_CDS=0 (no AppCDS archive), OPENSEARCH_STOP_TIMEOUT (seconds before KILL, default 30).
# Java: the `java` on PATH (17; 2.19 needs the security manager, so not 24+).
# start tries up to three times, on other ports, when the node exits at start (a port it was given
# was taken meanwhile); ports given by PORT/OPENSEARCH_PORT/OPENSEARCH_TRANSPORT_PORT are kept.
#
# Secured mode, OPENSEARCH_SECURITY=tls (default: empty, the plain node above; `install`, `start` and
# `stop` all honour it): the node runs the security plugin, serves HTTPS (and TLS on transport) with
# certificates of a CA the script generates, and takes HTTP basic auth against its internal user
# database; anonymous and wrong-password requests get 401. Maven Central has no security plugin for
# 2.19.6, so this node is OpenSearch 2.19.4 with opensearch-security 2.19.4.0 (a matching pair: no
# patched descriptors). There is no 2.19.4 distribution zip on Maven Central, so that node is put
# together, in $CONFAB_CACHE/opensearch-secure-2.19.4, from the same artifacts the distribution is
# built from: org.opensearch:opensearch (its runtime closure = the distribution's lib/),
# transport-netty4-client (modules/transport-netty4), lang-painless + analysis-common (as above) and
# the opensearch-security plugin zip (plugins/opensearch-security), plus one jar Maven Central lacks,
# lib/opensearch-plugin-classloader, taken from the 2.19.6 distribution zip (its one class is
# byte-identical in 2.19.0, 2.19.1 and 2.19.6).
# Under RUN_DIR/opensearch/tls/ (made once, kept across restarts): ca.pem (+ ca-key.pem), node.pem +
# node-key.pem (SAN IP:127.0.0.1, DNS:localhost; PKCS#8 key) and admin.pem + admin-key.pem (the
# plugin's admin DN). The user `confab` has a random password (RUN_DIR/opensearch/confab-password,
# kept) and is mapped to all_access. start appends to RUN_DIR/env
#   CONFAB_OPENSEARCH_URL=https://confab:PASSWORD@127.0.0.1:PORT
#   CONFAB_OPENSEARCH_CA=RUN_DIR/opensearch/tls/ca.pem
# and writes RUN_DIR/opensearch/curl.conf (curl -K curl.conf https://127.0.0.1:PORT/...).
# The secured node keeps its data in RUN_DIR/opensearch/data-tls (a 2.19.6 data dir cannot be opened
# by 2.19.4). The bcrypt hash of the password is made by the plugin's own Hasher (Java).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck disable=SC2034  # read by log() in lib.sh
LOG_PREFIX="opensearch.sh"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$here/../lib.sh"

OPENSEARCH_VERSION=2.19.6
DEP_PLUGIN_VERSION=3.8.1

CACHE_DIR="${CONFAB_CACHE:-$HOME/.cache/confab}"

SECURITY="${OPENSEARCH_SECURITY:-}"
case "$SECURITY" in
  "") OS_NAME="opensearch-$OPENSEARCH_VERSION" ;;
  tls)
    # the plain node's distribution zip, for its one jar that Maven Central lacks
    # (opensearch-plugin-classloader: one class, byte-identical in 2.19.0, 2.19.1 and 2.19.6)
    CLASSLOADER_ZIP_VERSION="$OPENSEARCH_VERSION"
    # the newest OpenSearch with a security plugin of the same version on Maven Central
    OPENSEARCH_VERSION=2.19.4
    SECURITY_PLUGIN_VERSION=2.19.4.0
    # optional deps of org.opensearch:opensearch that the distribution ships in lib/ (versions from
    # its pom)
    LOG4J_VERSION=2.21.0 JTS_VERSION=1.15.0 SPATIAL4J_VERSION=0.7
    OS_NAME="opensearch-secure-$OPENSEARCH_VERSION"
    ;;
  *) die "OPENSEARCH_SECURITY must be empty or 'tls', not '$SECURITY'" ;;
esac
OS_HOME="$CACHE_DIR/$OS_NAME"
MARKER="$OS_HOME/.installed"

is_installed() {
  [[ -f "$MARKER" ]] && [[ -f "$OS_HOME/lib/opensearch-$OPENSEARCH_VERSION.jar" ]] &&
    [[ -f "$OS_HOME/modules/analysis-common/analysis-common-$OPENSEARCH_VERSION.jar" ]] &&
    { [[ -z "$SECURITY" ]] ||
      [[ -f "$OS_HOME/plugins/opensearch-security/opensearch-security-$SECURITY_PLUGIN_VERSION.jar" ]]; }
}

dist_deps() { # the <dependency> elements of the server part, per mode
  if [[ -z "$SECURITY" ]]; then
    cat <<DIST
    <!-- server distribution: bin/, lib/, config/, modules/transport-netty4 -->
    <dependency>
      <groupId>org.opensearch.distribution.integ-test-zip</groupId>
      <artifactId>opensearch</artifactId>
      <version>${OPENSEARCH_VERSION}</version>
      <type>zip</type>
    </dependency>
DIST
  else
    cat <<SECURE
    <!-- lib/: the server, its runtime closure, and what the distribution adds to it -->
    <dependency>
      <groupId>org.opensearch</groupId>
      <artifactId>opensearch</artifactId>
      <version>${OPENSEARCH_VERSION}</version>
    </dependency>
    <dependency>
      <groupId>org.opensearch</groupId>
      <artifactId>opensearch-cli</artifactId>
      <version>${OPENSEARCH_VERSION}</version>
    </dependency>
    <!-- for lib/opensearch-plugin-classloader-*.jar (not published on its own) -->
    <dependency>
      <groupId>org.opensearch.distribution.integ-test-zip</groupId>
      <artifactId>opensearch</artifactId>
      <version>${CLASSLOADER_ZIP_VERSION}</version>
      <type>zip</type>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>${LOG4J_VERSION}</version>
    </dependency>
    <dependency>
      <groupId>org.locationtech.jts</groupId>
      <artifactId>jts-core</artifactId>
      <version>${JTS_VERSION}</version>
    </dependency>
    <dependency>
      <groupId>org.locationtech.spatial4j</groupId>
      <artifactId>spatial4j</artifactId>
      <version>${SPATIAL4J_VERSION}</version>
    </dependency>
    <!-- modules/transport-netty4 -->
    <dependency>
      <groupId>org.opensearch.plugin</groupId>
      <artifactId>transport-netty4-client</artifactId>
      <version>${OPENSEARCH_VERSION}</version>
      <exclusions>
        <exclusion><groupId>org.opensearch</groupId><artifactId>opensearch</artifactId></exclusion>
      </exclusions>
    </dependency>
    <!-- plugins/opensearch-security (the plugin zip carries its own deps) -->
    <dependency>
      <groupId>org.opensearch.plugin</groupId>
      <artifactId>opensearch-security</artifactId>
      <version>${SECURITY_PLUGIN_VERSION}</version>
      <type>zip</type>
      <exclusions>
        <exclusion><groupId>*</groupId><artifactId>*</artifactId></exclusion>
      </exclusions>
    </dependency>
SECURE
  fi
}

write_pom() {
  cat >"$1" <<POM
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>confab.local</groupId>
  <artifactId>opensearch-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
$(dist_deps)
    <dependency>
      <groupId>org.opensearch.plugin</groupId>
      <artifactId>lang-painless</artifactId>
      <version>${OPENSEARCH_VERSION}</version>
      <exclusions>
        <!-- the server and its deps are already in the distribution's lib/ -->
        <exclusion><groupId>org.opensearch</groupId><artifactId>opensearch</artifactId></exclusion>
      </exclusions>
    </dependency>
    <dependency>
      <groupId>org.opensearch.plugin</groupId>
      <artifactId>analysis-common</artifactId>
      <version>${OPENSEARCH_VERSION}</version>
      <exclusions>
        <exclusion><groupId>*</groupId><artifactId>*</artifactId></exclusion>
      </exclusions>
    </dependency>
  </dependencies>
  <build>
    <plugins>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-dependency-plugin</artifactId>
        <version>${DEP_PLUGIN_VERSION}</version>
      </plugin>
    </plugins>
  </build>
</project>
POM
}

write_module() { # DIR NAME CLASSNAME DESCRIPTION EXTENDED POLICY_GRANTS
  local dir="$1"
  mkdir -p "$dir"
  cat >"$dir/plugin-descriptor.properties" <<PROPS
# written by scripts/services/opensearch.sh (the jars come from Maven Central)
description=$4
version=${OPENSEARCH_VERSION}
name=$2
classname=$3
java.version=11
opensearch.version=${OPENSEARCH_VERSION}
custom.foldername=
extended.plugins=$5
has.native.controller=false
PROPS
  if [[ -n "$6" ]]; then
    printf 'grant {\n%s\n};\n' "$6" >"$dir/plugin-security.policy"
  fi
}

do_install() {
  is_installed && return 0
  mkdir -p "$CACHE_DIR"
  # Serialize concurrent installs.
  exec 9>"$CACHE_DIR/.$OS_NAME.lock"
  flock 9
  if is_installed; then exec 9>&-; return 0; fi
  command -v mvn >/dev/null || die "mvn not found"
  command -v unzip >/dev/null || die "unzip not found"
  local build t0
  t0=$(now)
  build=$(mktemp -d "$CACHE_DIR/.opensearch-build.XXXXXX")
  write_pom "$build/pom.xml"
  if [[ -z "$SECURITY" ]]; then
    log "resolving OpenSearch ${OPENSEARCH_VERSION} (integ-test-zip + lang-painless + analysis-common) from Maven Central ..."
  else
    log "resolving OpenSearch ${OPENSEARCH_VERSION} (server + transport-netty4 + lang-painless + analysis-common" \
        "+ opensearch-security ${SECURITY_PLUGIN_VERSION}) from Maven Central ..."
  fi
  if ! mvn -q -B -f "$build/pom.xml" \
      "org.apache.maven.plugins:maven-dependency-plugin:${DEP_PLUGIN_VERSION}:copy-dependencies" \
      -DincludeScope=runtime -DoutputDirectory="$build/dl" >"$build/mvn.log" 2>&1; then
    tail -n 50 "$build/mvn.log" >&2
    rm -rf "$build"
    exec 9>&-
    die "maven dependency resolution failed"
  fi
  local dl="$build/dl" dist="$build/dist"
  if [[ -z "$SECURITY" ]]; then
    unzip -q "$dl/opensearch-${OPENSEARCH_VERSION}.zip" -d "$build/unz"
    mv "$build/unz/opensearch-${OPENSEARCH_VERSION}" "$dist"
    rm -f "$dist"/bin/*.bat "$dist"/bin/*.exe
  else
    # No bin/ nor config/ needed: start runs the JVM itself, with its own config dir.
    mkdir -p "$dist/lib" "$dist/modules" "$dist/plugins/opensearch-security" "$dist/bin" "$dist/config" "$dist/logs"
    unzip -q "$dl/opensearch-security-${SECURITY_PLUGIN_VERSION}.zip" -d "$dist/plugins/opensearch-security"
    rm -f "$dl/opensearch-security-${SECURITY_PLUGIN_VERSION}.zip" "$dist"/plugins/opensearch-security/tools/*.bat
    unzip -q -j "$dl/opensearch-${CLASSLOADER_ZIP_VERSION}.zip" \
      "opensearch-${CLASSLOADER_ZIP_VERSION}/lib/opensearch-plugin-classloader-${CLASSLOADER_ZIP_VERSION}.jar" -d "$dist/lib"
    rm -f "$dl/opensearch-${CLASSLOADER_ZIP_VERSION}.zip"
    chmod +x "$dist"/plugins/opensearch-security/tools/*.sh
    # modules/transport-netty4, as the distribution has it
    local n="$dist/modules/transport-netty4"
    write_module "$n" transport-netty4 org.opensearch.transport.Netty4Plugin \
      "Netty 4 based transport implementation" "" \
      '  permission java.io.FilePermission "/proc/sys/net/core/somaxconn", "read";
  permission java.net.SocketPermission "*", "accept,connect";
  permission java.lang.RuntimePermission "*", "setContextClassLoader";
  permission java.lang.RuntimePermission "getClassLoader";
  permission java.util.PropertyPermission "sun.nio.ch.bugLevel", "write";'
    mv "$dl"/transport-netty4-client-*.jar "$dl"/netty-*.jar "$n"/
  fi

  # lang-painless module: the plugin, its SPI (the parent loader of the plugins that extend it) and deps.
  local m="$dist/modules/lang-painless"
  write_module "$m" lang-painless org.opensearch.painless.PainlessPlugin \
    "An easy, safe and fast scripting language for OpenSearch" "" \
    '  permission java.lang.RuntimePermission "createClassLoader";
  permission java.lang.RuntimePermission "getClassLoader";'
  mv "$dl"/lang-painless-*.jar "$dl"/opensearch-scripting-painless-spi-*.jar \
     "$dl"/antlr4-runtime-*.jar "$dl"/asm-*.jar "$m"/
  # analysis-common module: snowball, stop, stemmer, ngram, ... (extends lang-painless, as upstream).
  m="$dist/modules/analysis-common"
  write_module "$m" analysis-common org.opensearch.analysis.common.CommonAnalysisPlugin \
    'Adds "built in" analyzers to OpenSearch.' lang-painless ""
  mv "$dl"/analysis-common-*.jar "$m"/
  if [[ -n "$SECURITY" ]]; then
    # the rest is the server's runtime closure: lib/ (minus two compile-time annotation jars the
    # distribution leaves out)
    rm -f "$dl"/error_prone_annotations-*.jar "$dl"/jspecify-*.jar
    mv "$dl"/*.jar "$dist/lib/"
  fi
  local left
  left=$(find "$dl" -type f ! -name "opensearch-${OPENSEARCH_VERSION}.zip" -printf '%f\n')
  [[ -z "$left" ]] || log "note: unused artifacts: $(echo $left)"

  rm -rf "$OS_HOME"
  mv "$dist" "$OS_HOME"
  rm -rf "$build"
  echo "opensearch ${OPENSEARCH_VERSION}${SECURITY:+ + opensearch-security ${SECURITY_PLUGIN_VERSION}} installed $(date -u +%FT%TZ)" >"$MARKER"
  exec 9>&-
  log "installed into $OS_HOME in $(elapsed "$t0")s"
}

# AppCDS: the first run dumps a dynamic class-data archive into the cache when the node stops cleanly;
# later runs map it (~0.5-1 s faster start, less RSS). A stale or corrupt archive is ignored by the
# JVM (-Xshare:auto). Disable with OPENSEARCH_CDS=0.
CDS_DIR="$OS_HOME/cds"
cds_opts() { # sets CDS_OPTS (and CDS_PENDING when dumping)
  CDS_OPTS=()
  CDS_PENDING=""
  [[ "${OPENSEARCH_CDS:-1}" != 0 ]] || return 0
  local jkey
  jkey=$(readlink -f "$(command -v java)" | cksum | cut -d' ' -f1)
  local final="$CDS_DIR/node-$jkey.jsa"
  if [[ -s "$final" ]]; then
    CDS_OPTS=(-XX:SharedArchiveFile="$final" -Xlog:cds=off -Xlog:cds+dynamic=off)
  else
    mkdir -p "$CDS_DIR"
    # leftovers of nodes that were killed rather than stopped
    find "$CDS_DIR" -name '*.jsa.tmp.*' -mmin +120 -delete 2>/dev/null || true
    CDS_PENDING="$final.tmp.$$.$RANDOM"
    CDS_OPTS=(-XX:ArchiveClassesAtExit="$CDS_PENDING" -Xlog:cds=off -Xlog:cds+dynamic=off)
  fi
}
cds_commit() { # PENDING_PATH: atomically publish a freshly dumped archive
  local pending="$1"
  [[ -n "$pending" ]] || return 0
  if [[ -s "$pending" ]]; then
    mv -f "$pending" "${pending%.tmp.*}" 2>/dev/null || rm -f "$pending"
  else
    rm -f "$pending"
  fi
}

yml_get() { # key -> value from the generated opensearch.yml
  [[ -f "$CONF_DIR/opensearch.yml" ]] || return 0
  sed -n "s/^$1: *//p" "$CONF_DIR/opensearch.yml" | tail -n 1
}

setup_paths() { # RUN_DIR [create]
  [[ -n "${1:-}" ]] || die "usage: $0 {start|stop} RUN_DIR"
  [[ "${2:-}" == create ]] && mkdir -p "$1"
  if [[ -d "$1" ]]; then RUN_DIR="$(cd "$1" && pwd)"; else RUN_DIR="$1"; fi
  ODIR="$RUN_DIR/opensearch"
  PID_FILE="$ODIR/pid"
  CONF_DIR="$ODIR/config"
  DATA_DIR="$ODIR/data${SECURITY:+-$SECURITY}"
  TLS_DIR="$ODIR/tls"
  PASS_FILE="$ODIR/confab-password"
  LOGS_DIR="$ODIR/logs"
  LOG_FILE="$ODIR/opensearch.log"
  MATCH="-Dconfab.opensearch.dir=$ODIR" # the node's own argument, for pid_matches
}

# Secured mode: the DNs of the certificates below (RFC 2253 order)
NODE_DN="CN=confab-opensearch-node,O=Confab"
ADMIN_DN="CN=confab-opensearch-admin,O=Confab"

# ensure_tls: a CA, the node's certificate and an admin certificate under TLS_DIR, made once (kept
# across restarts, as clients may hold the CA). Keys are PKCS#8 PEM, as the security plugin wants.
ensure_tls() {
  local f ok=1
  for f in ca.pem ca-key.pem node.pem node-key.pem admin.pem admin-key.pem; do
    [[ -s "$TLS_DIR/$f" ]] || ok=0
  done
  (( ok )) && return 0
  command -v openssl >/dev/null || die "openssl not found"
  local t; t=$(mktemp -d "$ODIR/.tls.XXXXXX")
  (
    set -e
    cd "$t"
    umask 077
    key() { openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null; }
    key ca-key.pem
    cat >ca.ext <<EXT
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EXT
    openssl req -new -key ca-key.pem -subj "/O=Confab/CN=Confab test CA $(date -u +%FT%TZ)" -out ca.csr
    openssl x509 -req -in ca.csr -signkey ca-key.pem -days 3650 -sha256 -extfile ca.ext -out ca.pem 2>/dev/null
    cat >node.ext <<EXT
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EXT
    cat >admin.ext <<EXT
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EXT
    local name subj
    for name in node admin; do
      if [[ "$name" == node ]]; then subj="/O=Confab/CN=confab-opensearch-node"; else subj="/O=Confab/CN=confab-opensearch-admin"; fi
      key "$name-key.pem"
      openssl req -new -key "$name-key.pem" -subj "$subj" -out "$name.csr"
      openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 3650 -sha256 \
        -extfile "$name.ext" -out "$name.pem" 2>/dev/null
    done
    rm -f ./*.csr ./*.ext ./*.srl
    chmod 644 ca.pem node.pem admin.pem
  ) || true
  # (set -e does not hold in a subshell run under ||: check the result instead)
  local bad=0
  for f in ca.pem ca-key.pem node.pem node-key.pem admin.pem admin-key.pem; do
    [[ -s "$t/$f" ]] || bad=1
  done
  if (( bad )) || ! openssl verify -CAfile "$t/ca.pem" "$t/node.pem" "$t/admin.pem" >/dev/null 2>&1; then
    rm -rf "$t"; die "certificate generation failed"
  fi
  rm -rf "$TLS_DIR"
  mv "$t" "$TLS_DIR"
  chmod 755 "$TLS_DIR"
  log "generated a CA and certificates in $TLS_DIR"
}

# ensure_password: the user confab's password (kept across restarts: the security index keeps its
# hash) and the bcrypt hash of it, made by the plugin's own Hasher.
ensure_password() {
  if [[ ! -s "$PASS_FILE" ]]; then
    (umask 077; rand_secret 24 >"$PASS_FILE.tmp") && mv "$PASS_FILE.tmp" "$PASS_FILE"
    rm -f "$PASS_FILE.bcrypt"
  fi
  PASSWORD=$(cat "$PASS_FILE")
  if [[ ! -s "$PASS_FILE.bcrypt" ]]; then
    local hash
    # shellcheck disable=SC2016  # a literal $ in the regex
    hash=$(CONFAB_OS_PASSWORD="$PASSWORD" java -cp "$OS_HOME/plugins/opensearch-security/*:$OS_HOME/lib/*" \
             org.opensearch.security.tools.Hasher -env CONFAB_OS_PASSWORD 2>/dev/null | grep -E '^\$2[aby]\$' | tail -n 1) ||
      true
    [[ -n "$hash" ]] || die "could not hash the password with the security plugin's Hasher"
    (umask 077; echo "$hash" >"$PASS_FILE.bcrypt")
  fi
  PASSWORD_HASH=$(cat "$PASS_FILE.bcrypt")
  # for people: curl -K RUN_DIR/opensearch/curl.conf https://127.0.0.1:PORT/...
  (umask 077; printf 'user = "confab:%s"\ncacert = "%s"\n' "$PASSWORD" "$TLS_DIR/ca.pem" >"$ODIR/curl.conf")
}

# The security plugin's settings (appended to opensearch.yml) and its configuration, which
# allow_default_init_securityindex loads into the security index when that index does not exist yet
# (the first start on a data dir); later starts use the index, which keeps the same user and password.
security_yml() {
  # The plugin may only read files under the config dir (security manager): it gets copies of the
  # node's certificate, key and CA there; paths are relative to the config dir.
  cat <<YML
# ---- security plugin (OPENSEARCH_SECURITY=tls) ----
plugins.security.ssl.transport.pemcert_filepath: tls/node.pem
plugins.security.ssl.transport.pemkey_filepath: tls/node-key.pem
plugins.security.ssl.transport.pemtrustedcas_filepath: tls/ca.pem
plugins.security.ssl.transport.enforce_hostname_verification: false
plugins.security.ssl.http.enabled: true
plugins.security.ssl.http.pemcert_filepath: tls/node.pem
plugins.security.ssl.http.pemkey_filepath: tls/node-key.pem
plugins.security.ssl.http.pemtrustedcas_filepath: tls/ca.pem
plugins.security.allow_default_init_securityindex: true
plugins.security.allow_unsafe_democertificates: false
plugins.security.authcz.admin_dn:
  - "$ADMIN_DN"
plugins.security.nodes_dn:
  - "$NODE_DN"
plugins.security.restapi.roles_enabled: ["all_access"]
plugins.security.enable_snapshot_restore_privilege: true
plugins.security.check_snapshot_restore_write_privileges: true
# no audit log sink (audit.yml disables auditing too)
plugins.security.audit.type: noop
# only for field masking, which tests do not use (set to silence a warning)
plugins.security.compliance.salt: confab-test-salt
YML
}

write_security_config() {
  local d="$CONF_DIR/opensearch-security"
  rm -rf "$d"
  mkdir -p "$d"
  (
    umask 077
    cat >"$d/internal_users.yml" <<YML
---
_meta:
  type: "internalusers"
  config_version: 2
confab:
  hash: "$PASSWORD_HASH"
  reserved: false
  backend_roles: []
  description: "Confab test user (scripts/services/opensearch.sh)"
YML
  )
  cat >"$d/roles.yml" <<'YML'
---
_meta:
  type: "roles"
  config_version: 2
YML
  cat >"$d/roles_mapping.yml" <<'YML'
---
_meta:
  type: "rolesmapping"
  config_version: 2
all_access:
  reserved: false
  users:
    - "confab"
  description: "confab may do anything"
YML
  cat >"$d/config.yml" <<'YML'
---
_meta:
  type: "config"
  config_version: 2
config:
  dynamic:
    kibana:
      multitenancy_enabled: false
    http:
      anonymous_auth_enabled: false
      xff:
        enabled: false
    authc:
      basic_internal_auth_domain:
        description: "HTTP basic auth against the internal user database"
        http_enabled: true
        transport_enabled: true
        order: 0
        http_authenticator:
          type: basic
          challenge: true
        authentication_backend:
          type: intern
YML
  cat >"$d/action_groups.yml" <<'YML'
---
_meta:
  type: "actiongroups"
  config_version: 2
YML
  cat >"$d/tenants.yml" <<'YML'
---
_meta:
  type: "tenants"
  config_version: 2
YML
  cat >"$d/nodes_dn.yml" <<'YML'
---
_meta:
  type: "nodesdn"
  config_version: 2
YML
  local n
  for n in allowlist whitelist; do
    cat >"$d/$n.yml" <<YML
---
_meta:
  type: "$n"
  config_version: 2
config:
  enabled: false
YML
  done
  cat >"$d/audit.yml" <<'YML'
---
_meta:
  type: "audit"
  config_version: 2
config:
  enabled: false
  audit:
    enable_rest: false
    enable_transport: false
  compliance:
    enabled: false
YML
}

write_config() { # http_port transport_port
  mkdir -p "$CONF_DIR" "$DATA_DIR" "$LOGS_DIR" "$ODIR/tmp"
  cat >"$CONF_DIR/opensearch.yml" <<YML
# Generated by scripts/services/opensearch.sh -- single-node test instance, $(
  if [[ -n "$SECURITY" ]]; then echo "security plugin (OPENSEARCH_SECURITY=tls)."; else echo "no security plugin."; fi)
cluster.name: confab-test
node.name: confab-opensearch
network.host: 127.0.0.1
http.port: $1
transport.port: $2
discovery.type: single-node
path.data: $DATA_DIR
path.logs: $LOGS_DIR
bootstrap.memory_lock: false
# never block writes because the (shared) disk is fuller than the watermarks
cluster.routing.allocation.disk.threshold_enabled: false
action.auto_create_index: true
action.destructive_requires_name: false
YML
  if [[ -n "$SECURITY" ]]; then
    security_yml >>"$CONF_DIR/opensearch.yml"
    rm -rf "$CONF_DIR/tls"
    mkdir -p "$CONF_DIR/tls"
    cp -p "$TLS_DIR/node.pem" "$TLS_DIR/node-key.pem" "$TLS_DIR/ca.pem" "$CONF_DIR/tls/"
    write_security_config
    # the plugin warns about any config file others may read
    chmod -R go= "$CONF_DIR"
  else
    rm -rf "$CONF_DIR/opensearch-security" "$CONF_DIR/tls"
  fi
  local level="${OPENSEARCH_LOG_LEVEL:-INFO}"
  cat >"$CONF_DIR/log4j2.properties" <<L4J
status = error
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] [%node_name]%marker %m%n
rootLogger.level = ${level}
rootLogger.appenderRef.console.ref = console
# start waits for "started": keep the node logger at INFO whatever the root level
logger.node.name = org.opensearch.node.Node
logger.node.level = INFO
logger.deprecation.name = org.opensearch.deprecation
logger.deprecation.level = ERROR
L4J
}

have_pid() { [[ -s "$PID_FILE" ]]; }
secs_left() { echo $(( deadline - $(date +%s) )); }

# The node's "started" log line (cheap to wait for).
node_started() {
  grep -q '\[o\.o\.n\.Node *\] .*started' "$LOG_FILE" 2>/dev/null && return 0
  pid_matches "$pid" "$MATCH" || return 99
  return 1
}

# Does HTTP answer, with a usable (yellow or green) cluster?
cluster_usable() {
  health=$(curl -sf --max-time 10 "${CURL_OPTS[@]}" \
      "$SCHEME://127.0.0.1:$port/_cluster/health?wait_for_status=yellow&timeout=5s" 2>/dev/null) &&
    [[ "$health" == *'"status":"green"'* || "$health" == *'"status":"yellow"'* ]] && return 0
  pid_matches "$pid" "$MATCH" || return 99
  return 1
}

fail() {
  log "node did not become ready: $1"
  log "---- first ERROR lines of $LOG_FILE ----"
  grep -m 10 -E '\]\[(ERROR|FATAL)' "$LOG_FILE" >&2 || true
  log "---- tail of $LOG_FILE ----"
  tail -n 60 "$LOG_FILE" >&2 || true
  if [[ -n "$pid" ]]; then kill -KILL "$pid" 2>/dev/null || true; fi
  [[ -n "${CDS_PENDING:-}" ]] && rm -f "$CDS_PENDING" "$ODIR/cds-pending"
  exit 1
}

# launch ATTEMPT: pick ports, write the config, start the node.
# Ports: PORT argument / OPENSEARCH_PORT / OPENSEARCH_TRANSPORT_PORT if set; else on the first
# attempt a previous config's if still free; else fresh ones.
launch() {
  port="" tport="" pid=""
  if [[ "$1" == 1 ]]; then port=$(yml_get http.port); tport=$(yml_get transport.port); fi
  local fresh; read -r -a fresh <<<"$(pick_free_ports 3)"
  if [[ -n "$want_port" ]]; then
    port="$want_port"
  elif [[ -z "$port" ]] || ! port_is_free "$port"; then
    port="${fresh[0]}"
  fi
  if [[ -n "${OPENSEARCH_TRANSPORT_PORT:-}" ]]; then
    tport="$OPENSEARCH_TRANSPORT_PORT"
  elif [[ -z "$tport" ]] || [[ "$tport" == "$port" ]] || ! port_is_free "$tport"; then
    tport="${fresh[1]}"
    [[ "$tport" != "$port" ]] || tport="${fresh[2]}"
  fi
  [[ -z "$want_port" ]] || port_is_free "$port" || die "port $port on 127.0.0.1 is in use"

  [[ "${OPENSEARCH_FRESH:-0}" == 1 ]] && rm -rf "$DATA_DIR"
  rm -rf "$ODIR/tmp"
  write_config "$port" "$tport"

  # OpenSearch refuses to run as root ("can not run opensearch as root", checked with geteuid via JNA).
  # As root, run it in a new user namespace with no uid mapping: inside, geteuid() is 65534 (nobody),
  # while the kernel still checks file access as root, so the cache and RUN_DIR work unchanged and
  # files it writes are root's. Where user namespaces are not allowed, keep JNA's native library from
  # loading instead: the root check is then skipped (with a warning), as are the other native extras
  # (mlockall, seccomp filter), none of which a test node needs.
  local -a userns=() nojna=()
  if [[ "$(id -u)" == 0 ]]; then
    if unshare --user true 2>/dev/null; then
      userns=(unshare --user)
    else
      log "user namespaces unavailable: starting with JNA disabled"
      nojna=(-Djna.nounpack=true -Djna.boot.library.path="$ODIR/no-jna")
    fi
  fi

  # The JVM is started directly rather than through bin/opensearch, whose launcher runs three helper
  # JVMs first (version check, keystore check, jvm.options parser: ~2 s here). These are the options
  # that launcher computes for 2.19 (its built-in system options, the distribution's jvm.options
  # with a small heap, and its ergonomics: direct memory = heap/2), minus -XX:+AlwaysPreTouch, which
  # would touch the whole heap up front (RSS and start time) for nothing in tests.
  local heap="${OPENSEARCH_HEAP:-512m}" direct=""
  case "$heap" in
    *[mM]) direct="$(( ${heap%?} / 2 ))m" ;;
    *[gG]) direct="$(( ${heap%?} * 512 ))m" ;;
  esac
  local -a extra=()
  read -r -a extra <<<"${OPENSEARCH_JVM_OPTS:-}"
  # an archive dumped by an earlier attempt's node, which exited at start, is not worth keeping
  [[ -n "${CDS_PENDING:-}" ]] && rm -f "$CDS_PENDING"
  cds_opts
  # an archive is only published by `stop` after a clean (TERM) exit
  if [[ -n "$CDS_PENDING" ]]; then echo "$CDS_PENDING" >"$ODIR/cds-pending"; else rm -f "$ODIR/cds-pending"; fi
  # shellcheck disable=SC2206,SC2054  # word splitting wanted; SPI,COMPAT is one option
  local -a jvm_opts=(
    -Xshare:auto
    -Dopensearch.networkaddress.cache.ttl=60 -Dopensearch.networkaddress.cache.negative.ttl=10
    -Xss1m -Djava.awt.headless=true -Dfile.encoding=UTF-8 -Djna.nosys=true
    -XX:-OmitStackTraceInFastThrow -XX:+ShowCodeDetailsInExceptionMessages
    -Dio.netty.noUnsafe=true -Dio.netty.noKeySetOptimization=true
    -Dio.netty.recycler.maxCapacityPerThread=0 -Dio.netty.allocator.numDirectArenas=0
    -Dlog4j.shutdownHookEnabled=false -Dlog4j2.disable.jmx=true -Djava.locale.providers=SPI,COMPAT
    -Xms"$heap" -Xmx"$heap" ${direct:+-XX:MaxDirectMemorySize=$direct}
    -XX:+UseG1GC -XX:G1ReservePercent=25 -XX:InitiatingHeapOccupancyPercent=30
    ${OPENSEARCH_JIT_OPTS--XX:TieredStopAtLevel=1}
    -XX:-HeapDumpOnOutOfMemoryError -XX:+ExitOnOutOfMemoryError -XX:ErrorFile="$LOGS_DIR/hs_err_pid%p.log"
    -Djava.io.tmpdir="$ODIR/tmp"
    -Djava.security.manager=allow
    -Djava.util.concurrent.ForkJoinPool.common.threadFactory=org.opensearch.secure_sm.SecuredForkJoinWorkerThreadFactory
    "${nojna[@]}"
    "${CDS_OPTS[@]}"
    -Dconfab.opensearch.dir="$ODIR"
    "${extra[@]}"
    -Dopensearch.path.home="$OS_HOME" -Dopensearch.path.conf="$CONF_DIR"
    -Dopensearch.distribution.type=zip -Dopensearch.bundled_jdk=false
  )

  : >"$LOG_FILE"
  rm -f "$PID_FILE"
  # New session so the node survives the caller's process group; the inner shell records its own PID
  # and execs java: the PID file holds the JVM's PID.
  # shellcheck disable=SC2016
  (cd "$OS_HOME" && setsid -f "${userns[@]}" bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$PID_FILE" \
      java "${jvm_opts[@]}" -cp "$OS_HOME/lib/*" org.opensearch.bootstrap.OpenSearch \
      </dev/null >>"$LOG_FILE" 2>&1)
  deadline=$(( $(date +%s) + timeout ))
}

# ready: for start_with_retries (75: the node exited before it started, as when a port was taken).
ready() {
  wait_until "$(secs_left)" have_pid || fail "no pid file after ${timeout}s"
  pid=$(cat "$PID_FILE")
  # 1) wait (cheaply) for the node's "started" log line.
  if ! wait_until "$(secs_left)" node_started; then
    pid_matches "$pid" "$MATCH" || return 75
    fail "no 'started' after ${timeout}s"
  fi
  # 2) confirm HTTP answers and the cluster is usable.
  if ! wait_until "$(secs_left)" cluster_usable; then
    pid_matches "$pid" "$MATCH" || fail "process $pid exited"
    fail "cluster health not yellow/green within ${timeout}s: $health"
  fi
}

# env_lines PORT: what start appends to RUN_DIR/env
env_lines() {
  ENV_LINES=()
  if [[ -n "$SECURITY" ]]; then
    ENV_LINES=("CONFAB_OPENSEARCH_URL=https://confab:$PASSWORD@127.0.0.1:$1" "CONFAB_OPENSEARCH_CA=$TLS_DIR/ca.pem")
  else
    ENV_LINES=("CONFAB_OPENSEARCH_URL=http://127.0.0.1:$1")
    # a CA line left by a secured node that ran on this RUN_DIR before does not apply any more
    local envf="$RUN_DIR/env"
    if [[ -f "$envf" ]] && grep -q '^CONFAB_OPENSEARCH_CA=' "$envf"; then
      local tmp; tmp=$(mktemp "$envf.XXXXXX")
      grep -v '^CONFAB_OPENSEARCH_CA=' "$envf" >"$tmp" || true
      cat "$tmp" >"$envf"; rm -f "$tmp"
    fi
  fi
}

do_start() {
  setup_paths "${1:-}" create
  is_installed || do_install
  local t0; t0=$(now)
  command -v java >/dev/null || die "java not found"
  mkdir -p "$ODIR"

  SCHEME=http CURL_OPTS=()
  if [[ -n "$SECURITY" ]]; then
    ensure_tls
    ensure_password
    SCHEME=https CURL_OPTS=(-K "$ODIR/curl.conf")
  fi

  if [[ -f "$PID_FILE" ]] && pid_matches "$(cat "$PID_FILE")" "$MATCH"; then
    local port running=""; port=$(yml_get http.port)
    [[ -n "$(yml_get plugins.security.ssl.http.enabled)" ]] && running=tls
    [[ "$running" == "$SECURITY" ]] ||
      die "already running (pid $(cat "$PID_FILE")) with OPENSEARCH_SECURITY='$running': stop it first"
    log "already running (pid $(cat "$PID_FILE")) on 127.0.0.1:$port"
    env_lines "$port"
    set_env "$RUN_DIR/env" "${ENV_LINES[@]}"
    return 0
  fi

  local want_port="${2:-${OPENSEARCH_PORT:-}}" timeout="${OPENSEARCH_START_TIMEOUT:-180}"
  local port="" tport="" pid="" deadline=0 health="" tries=3
  if [[ -n "$want_port" && -n "${OPENSEARCH_TRANSPORT_PORT:-}" ]]; then tries=1; fi
  start_with_retries "$tries" launch ready fail "$LOG_FILE"

  env_lines "$port"
  set_env "$RUN_DIR/env" "${ENV_LINES[@]}"
  local version
  version=$(curl -sf --max-time 5 "${CURL_OPTS[@]}" "$SCHEME://127.0.0.1:$port/" |
              sed -n 's/.*"number" *: *"\([^"]*\)".*/\1/p' | head -n 1)
  echo "opensearch ${version:-$OPENSEARCH_VERSION} ready on $SCHEME://127.0.0.1:${port} (transport ${tport}) pid ${pid}" \
       "in $(elapsed "$t0")s, RSS $(rss_of "$pid")${SECURITY:+, security plugin (user confab, CA $TLS_DIR/ca.pem)}"
}

do_stop() {
  setup_paths "${1:-}"
  local pending=""
  [[ -f "$ODIR/cds-pending" ]] && pending=$(cat "$ODIR/cds-pending")
  stop_pidfile "$PID_FILE" "$MATCH" "${OPENSEARCH_STOP_TIMEOUT:-30}"
  [[ "$STOP_RESULT" != none ]] || return 0
  rm -f "$ODIR/cds-pending"
  # an archive is complete only after a clean (TERM) exit
  if [[ "$STOP_RESULT" == stopped ]]; then cds_commit "$pending"; elif [[ -n "$pending" ]]; then rm -f "$pending"; fi
}

case "${1:-}" in
  install) do_install ;;
  start) do_start "${2:-}" "${3:-}" ;;
  stop) do_stop "${2:-}" ;;
  *) echo "usage: $0 {install|start RUN_DIR [PORT]|stop RUN_DIR}" >&2; exit 2 ;;
esac
