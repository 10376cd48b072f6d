#!/usr/bin/env bash
# Single-node Apache Kafka (KRaft, combined broker+controller) for integration tests.
#
#   scripts/services/kafka.sh install          # fetch jars from Maven Central into the cache
#   scripts/services/kafka.sh start RUN_DIR    # start broker, append CONFAB_KAFKA_BROKERS to RUN_DIR/env
#   scripts/services/kafka.sh stop RUN_DIR     # stop broker (no error if not running)
#
# Env knobs: CONFAB_CACHE (default ~/.cache/confab), KAFKA_PORT (broker port, default random),
#            KAFKA_CONTROLLER_PORT (default random), KAFKA_HEAP (default 512m),
#            KAFKA_LOG_LEVEL (default INFO), KAFKA_START_TIMEOUT (seconds, default 120),
#            KAFKA_SECURITY (plaintext, the default, or sasl_ssl; see below),
#            KAFKA_ACL_NAMESPACE (required with sasl_ssl: the NS of the ACLs, see acl_rows).
# start tries up to three times, on other ports, when the broker exits at start (a port it was
# given was taken meanwhile); ports given by KAFKA_PORT/KAFKA_CONTROLLER_PORT are kept.
#
# KAFKA_SECURITY=sasl_ssl: the client (and inter-broker) listener is SASL_SSL with SCRAM-SHA-512
# only; the controller listener is mutual TLS. Under RUN_DIR/kafka: tls/ holds a throwaway CA
# (tls/ca.pem, for clients' ssl.ca.location) and the broker's PKCS12 keystore/truststore;
# secrets holds the random passwords of the SCRAM users admin, gateway, ingest, projector and
# registry (created when the storage is formatted); admin.properties is an admin client config
# for the Kafka CLI tools (--command-config). The StandardAuthorizer denies what no ACL allows;
# admin is a super user, the others get the ACLs of acl_rows. start also appends
# CONFAB_KAFKA_SECURITY, CONFAB_KAFKA_CA and CONFAB_KAFKA_<USER>_PASSWORD to RUN_DIR/env.
# A restart on the same RUN_DIR keeps the CA, certificates and passwords; a RUN_DIR is formatted
# for one mode, so switching modes needs a fresh RUN_DIR (or rm -rf RUN_DIR/kafka).
#
# KAFKA_NODES=3 (default 1: the single node above): three combined broker+controller nodes (ids
# 1..3, dirs RUN_DIR/kafka-1..3, a controller quorum of all three, one cluster id) with
# replication for real: default.replication.factor=3, min.insync.replicas=2, offsets and
# transaction state topics rf 3 / min ISR 2, unclean.leader.election.enable=false. Plaintext
# only (KAFKA_SECURITY=sasl_ssl is refused). KAFKA_HEAP defaults to 384m per node there;
# KAFKA_PORT/KAFKA_CONTROLLER_PORT, if set, are base ports (node N: base+N-1). start waits until
# every node lists brokers 1 2 3 and appends CONFAB_KAFKA_BROKERS=h:p1,h:p2,h:p3 and
# CONFAB_KAFKA_NODES=3 to RUN_DIR/env. For fault tests:
#   scripts/services/kafka.sh kill RUN_DIR N        # kill -9 node N, return once its port is closed
#   scripts/services/kafka.sh start-node RUN_DIR N  # start node N again (same ports and data),
#                                                   # return once it is back in the metadata
#   scripts/services/kafka.sh coordinator RUN_DIR G # the id of the node coordinating group G
# stop RUN_DIR stops all nodes (at once); start after stop reuses the data (and the ports if free).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck disable=SC2034  # read by log() in lib.sh
LOG_PREFIX="kafka.sh"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$here/../lib.sh"

KAFKA_VERSION=4.4.0
SCALA_VERSION=2.13
LOG4J_VERSION=2.25.4
DEP_PLUGIN_VERSION=3.8.1

CACHE_DIR="${CONFAB_CACHE:-$HOME/.cache/confab}"
KAFKA_HOME_DIR="$CACHE_DIR/kafka-$KAFKA_VERSION"
LIB_DIR="$KAFKA_HOME_DIR/lib"
MARKER="$KAFKA_HOME_DIR/.installed"

is_installed() {
  [[ -f "$MARKER" ]] && compgen -G "$LIB_DIR/kafka_${SCALA_VERSION}-${KAFKA_VERSION}.jar" >/dev/null
}

write_pom() {
  cat >"$1" <<POM
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0"
         xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
         xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 https://maven.apache.org/xsd/maven-4.0.0.xsd">
  <modelVersion>4.0.0</modelVersion>
  <groupId>confab.local</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_${SCALA_VERSION}</artifactId>
      <version>${KAFKA_VERSION}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId>
      <version>${KAFKA_VERSION}</version>
      <exclusions>
        <!-- only needed by connect-plugin-path; pulls in jetty/jersey -->
        <exclusion><groupId>org.apache.kafka</groupId><artifactId>connect-runtime</artifactId></exclusion>
      </exclusions>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>${LOG4J_VERSION}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>${LOG4J_VERSION}</version>
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

do_install() {
  if is_installed; then
    return 0
  fi
  mkdir -p "$KAFKA_HOME_DIR"
  # Serialize concurrent installs.
  exec 9>"$KAFKA_HOME_DIR/.lock"
  flock 9
  if is_installed; then
    exec 9>&-
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found"
  local build tmp_lib t0
  t0=$(now)
  build=$(mktemp -d "$KAFKA_HOME_DIR/.build.XXXXXX")
  tmp_lib="$build/lib"
  write_pom "$build/pom.xml"
  log "resolving kafka_${SCALA_VERSION}:${KAFKA_VERSION} + kafka-tools from Maven Central ..."
  if ! mvn -q -B -f "$build/pom.xml" \
      "org.apache.maven.plugins:maven-dependency-plugin:${DEP_PLUGIN_VERSION}:copy-dependencies" \
      -DincludeScope=runtime -DoutputDirectory="$tmp_lib" >"$build/mvn.log" 2>&1; then
    tail -n 50 "$build/mvn.log" >&2
    rm -rf "$build"
    exec 9>&-
    die "maven dependency resolution failed"
  fi
  rm -rf "$LIB_DIR" "$KAFKA_HOME_DIR/cds"
  mv "$tmp_lib" "$LIB_DIR"
  rm -rf "$build"
  echo "kafka ${KAFKA_VERSION} installed $(date -u +%FT%TZ)" >"$MARKER"
  exec 9>&-
  log "installed $(ls "$LIB_DIR" | wc -l) jars into $LIB_DIR in $(elapsed "$t0")s"
}


# AppCDS: the first run of each JVM kind dumps a dynamic class-data archive into the cache;
# later runs map it (~1-2 s faster startup on a small machine). A stale/corrupt archive is
# ignored by the JVM (-Xshare:auto). Disable with KAFKA_CDS=0.
CDS_DIR="$KAFKA_HOME_DIR/cds"
CDS_PENDING=""
cds_opts() { # NAME -> sets CDS_OPTS array (and CDS_PENDING when dumping)
  CDS_OPTS=()
  CDS_PENDING=""
  [[ "${KAFKA_CDS:-1}" != 0 ]] || return 0
  local jkey
  jkey=$(readlink -f "$(command -v java)" | cksum | cut -d' ' -f1)
  local final="$CDS_DIR/$1-$jkey.jsa"
  if [[ -s "$final" ]]; then
    CDS_OPTS=(-XX:SharedArchiveFile="$final" -Xlog:cds=off -Xlog:cds+dynamic=off)
  else
    mkdir -p "$CDS_DIR"
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

java_tool() {
  # Run a Kafka CLI class from the lib dir with a small, fast-starting JVM.
  # Optional: JAVA_TOOL_TIMEOUT=seconds bounds its run time; JAVA_TOOL_CP=jar adds a jar.
  local cls="$1"; shift
  local pre=() rc=0
  [[ -n "${JAVA_TOOL_TIMEOUT:-}" ]] && pre=(timeout "$JAVA_TOOL_TIMEOUT")
  cds_opts "tool-${cls##*.}"
  local pending="$CDS_PENDING"
  "${pre[@]}" java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC "${CDS_OPTS[@]}" \
    -Dlog4j2.configurationFile="$TOOLS_LOG4J" \
    -cp "$LIB_DIR/*${JAVA_TOOL_CP:+:$JAVA_TOOL_CP}" "$cls" "$@" || rc=$?
  if (( rc == 0 )); then cds_commit "$pending"; else rm -f "$pending"; fi
  return "$rc"
}

random_cluster_id() {
  # Kafka Uuid string form: URL-safe base64 of 16 random bytes, no padding, must not start with '-'.
  python3 - <<'PYEOF'
import base64, os
while True:
    s = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
    if not s.startswith("-"):
        print(s)
        break
PYEOF
}

prop_get() { # file key
  sed -n "s/^$2=//p" "$1" | tail -n 1
}

setup_paths() { # RUN_DIR [create]
  [[ -n "${1:-}" ]] || die "usage: $0 {start|stop} RUN_DIR"
  [[ "${2:-}" == create ]] && mkdir -p "$1"
  if [[ -d "$1" ]]; then RUN_DIR="$(cd "$1" && pwd)"; else RUN_DIR="$1"; fi
  KDIR="$RUN_DIR/kafka"
  PID_FILE="$KDIR/pid"
  CONF="$KDIR/server.properties"
  DATA_DIR="$KDIR/data"
  LOG_FILE="$KDIR/kafka.log"
  SERVER_LOG4J="$KDIR/log4j2.properties"
  TOOLS_LOG4J="$KDIR/tools-log4j2.properties"
  MATCH="-Dconfab.kafka.dir=$KDIR" # the broker's own argument, for pid_matches
  MODE_FILE="$KDIR/security" # the mode the storage was formatted for (absent: plaintext)
  TLS_DIR="$KDIR/tls"
  SECRETS="$KDIR/secrets"
  ADMIN_PROPS="$KDIR/admin.properties"
}

write_log4j() {
  local level="${KAFKA_LOG_LEVEL:-INFO}"
  cat >"$SERVER_LOG4J" <<L4J
status = warn
name = confab-kafka
appender.out.type = Console
appender.out.name = OUT
appender.out.target = SYSTEM_OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = ${level}
rootLogger.appenderRef.out.ref = OUT
# start.sh waits for "Kafka Server started": keep this logger at INFO whatever the root level
logger.raftserver.name = kafka.server.KafkaRaftServer
logger.raftserver.level = INFO
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
logger.logcleaner.name = kafka.log.LogCleaner
logger.logcleaner.level = WARN
L4J
  cat >"$TOOLS_LOG4J" <<L4J
status = error
name = confab-kafka-tools
appender.err.type = Console
appender.err.name = ERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = ERR
L4J
}

write_config() { # broker_port controller_port
  local p="$1" c="$2" lst=PLAINTEXT ctl=PLAINTEXT
  if secured; then lst=SASL_SSL ctl=SSL; fi
  cat >"$CONF" <<PROPS
# Generated by scripts/services/kafka.sh -- single-node KRaft (broker+controller) for tests.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${c}
listeners=${lst}://127.0.0.1:${p},CONTROLLER://127.0.0.1:${c}
advertised.listeners=${lst}://127.0.0.1:${p}
inter.broker.listener.name=${lst}
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:${ctl},${lst}:${lst}
log.dirs=${DATA_DIR}
num.partitions=4
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=false
delete.topic.enable=true
# consumer groups
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
group.initial.rebalance.delay.ms=0
# transactions
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
# share groups (harmless if unused)
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# keep it light on a small shared machine
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
background.threads=4
log.cleaner.threads=1
log.retention.check.interval.ms=300000
PROPS
  if secured; then
    chmod 600 "$CONF"
    write_security_config >>"$CONF"
  fi
}

# ---------------------------------------------------------------------------------------------
# Secured mode (KAFKA_SECURITY=sasl_ssl)

SCRAM_USERS=(admin gateway ingest projector registry)
BROKER_CN=confab-kafka-broker # the broker certificate's subject; User:broker on the controller listener
TLS_DAYS=2                    # remade at start when less than an hour is left

secured() { [[ "$SECURITY" == sasl_ssl ]]; }

check_security_knobs() { # sets SECURITY and, when secured, ACL_NS
  case "${KAFKA_SECURITY:-plaintext}" in
    plaintext) SECURITY=plaintext ;;
    sasl_ssl) SECURITY=sasl_ssl ;;
    *) die "KAFKA_SECURITY must be plaintext or sasl_ssl, not '${KAFKA_SECURITY}'" ;;
  esac
  secured || return 0
  ACL_NS="${KAFKA_ACL_NAMESPACE:-}"
  [[ -n "$ACL_NS" ]] || die "KAFKA_SECURITY=sasl_ssl needs KAFKA_ACL_NAMESPACE (the NS of the topics NS.commands etc. that the ACLs are for)"
  [[ "$ACL_NS" =~ ^[A-Za-z0-9._-]+$ ]] || die "KAFKA_ACL_NAMESPACE='$ACL_NS': use only A-Z a-z 0-9 . _ - (it starts topic names)"
  command -v openssl >/dev/null || die "openssl not found (needed by KAFKA_SECURITY=sasl_ssl)"
  command -v keytool >/dev/null || die "keytool not found (needed by KAFKA_SECURITY=sasl_ssl)"
}

# The mode RUN_DIR's storage was formatted for: SCRAM users exist only in a sasl_ssl one.
check_formatted_mode() {
  [[ -f "$DATA_DIR/meta.properties" ]] || return 0
  local was=plaintext
  [[ -s "$MODE_FILE" ]] && was=$(cat "$MODE_FILE")
  [[ "$was" == "$SECURITY" ]] ||
    die "$DATA_DIR was formatted for KAFKA_SECURITY=$was, not $SECURITY: stop it and remove $KDIR (or use another RUN_DIR)"
}

secret() { prop_get "$SECRETS" "$1"; } # NAME -> its password

# Random passwords: one per SCRAM user plus "store" (keystore, key and truststore), made once.
ensure_secrets() {
  local name
  if [[ ! -f "$SECRETS" ]]; then
    [[ ! -f "$DATA_DIR/meta.properties" ]] ||
      die "$SECRETS is missing but $DATA_DIR holds SCRAM users with those passwords: remove $KDIR"
    (
      umask 077
      for name in "${SCRAM_USERS[@]}" store; do echo "$name=$(openssl rand -hex 16)"; done >"$SECRETS.tmp"
    )
    mv "$SECRETS.tmp" "$SECRETS"
  fi
  for name in "${SCRAM_USERS[@]}" store; do
    [[ -n "$(secret "$name")" ]] || die "$SECRETS has no password for '$name': remove $KDIR"
  done
}

run_logged() { # LOG WHAT CMD...: run CMD with its output in LOG; on failure show LOG and die
  local lg="$1" what="$2"; shift 2
  "$@" >"$lg" 2>&1 || { cat "$lg" >&2; die "$what failed"; }
}

# Throwaway CA + broker certificate (EC P-256, SAN IP:127.0.0.1,DNS:localhost), the broker's
# PKCS12 keystore (key + chain) and truststore (the CA), and ca.pem for clients. Kept across
# restarts; remade, with the same store password, when less than an hour of validity is left.
ensure_tls() {
  if [[ -s "$TLS_DIR/ca.pem" && -s "$TLS_DIR/broker.p12" && -s "$TLS_DIR/truststore.p12" ]] &&
      openssl x509 -checkend 3600 -noout -in "$TLS_DIR/broker.pem" >/dev/null 2>&1; then
    return 0
  fi
  log "making a test CA and broker certificate in $TLS_DIR"
  local n="$TLS_DIR/new" lg="$TLS_DIR/new/openssl.log"
  mkdir -p "$TLS_DIR"
  rm -rf "$n"; mkdir "$n"
  run_logged "$lg" "CA certificate" openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -nodes -sha256 -days "$TLS_DAYS" -subj "/CN=confab-kafka-test-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$n/ca.key" -out "$n/ca.pem"
  run_logged "$lg" "broker key" openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -nodes -subj "/CN=$BROKER_CN" -keyout "$n/broker.key" -out "$n/broker.csr"
  printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth,clientAuth" >"$n/broker.ext"
  run_logged "$lg" "broker certificate" openssl x509 -req -sha256 -days "$TLS_DAYS" \
    -in "$n/broker.csr" -CA "$n/ca.pem" -CAkey "$n/ca.key" -CAcreateserial \
    -extfile "$n/broker.ext" -out "$n/broker.pem"
  # passwords via the environment, not argv
  CONFAB_STORE_PW="$(secret store)" run_logged "$lg" "broker keystore" openssl pkcs12 -export \
    -name broker -in "$n/broker.pem" -inkey "$n/broker.key" -certfile "$n/ca.pem" \
    -passout env:CONFAB_STORE_PW -out "$n/broker.p12"
  # a trusted-certificate entry Java accepts needs keytool (openssl 3.0 has no -jdktrust)
  CONFAB_STORE_PW="$(secret store)" run_logged "$lg" "truststore" keytool \
    -J-XX:+UseSerialGC -J-XX:TieredStopAtLevel=1 -importcert -noprompt -alias confab-kafka-test-ca \
    -file "$n/ca.pem" -keystore "$n/truststore.p12" -storetype PKCS12 -storepass:env CONFAB_STORE_PW
  rm -f "$n/broker.csr" "$n/broker.ext" "$n/ca.srl" "$lg"
  local f
  for f in ca.key ca.pem broker.key broker.pem broker.p12 truststore.p12; do mv -f "$n/$f" "$TLS_DIR/$f"; done
  rmdir "$n"
}

write_security_config() { # appended to server.properties
  local admin_pw store_pw
  admin_pw=$(secret admin)
  store_pw=$(secret store)
  cat <<PROPS
# ---- KAFKA_SECURITY=sasl_ssl ----
# client + inter-broker listener: SASL_SSL, SCRAM-SHA-512 only; the broker talks to itself as admin
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="${admin_pw}";
# TLS for both listeners: the broker certificate (signed by the test CA in ${TLS_DIR})
ssl.keystore.type=PKCS12
ssl.keystore.location=${TLS_DIR}/broker.p12
ssl.keystore.password=${store_pw}
ssl.key.password=${store_pw}
ssl.truststore.type=PKCS12
ssl.truststore.location=${TLS_DIR}/truststore.p12
ssl.truststore.password=${store_pw}
# controller listener: mutual TLS; the broker presents its own certificate (CN=${BROKER_CN}),
# mapped to the super user User:broker; any other certificate gets User:CN=... and no rights
listener.name.controller.ssl.client.auth=required
listener.name.controller.ssl.principal.mapping.rules=RULE:^CN=${BROKER_CN}\$/broker/,DEFAULT
# authorization: deny what no ACL allows (ACLs: acl_rows in scripts/services/kafka.sh)
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin;User:broker
allow.everyone.if.no.acl.found=false
PROPS
}

# Admin client config for the Kafka CLI tools (--command-config) and the ACL helper.
write_admin_props() {
  ( umask 077; cat >"$ADMIN_PROPS" <<PROPS
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$(secret admin)";
ssl.truststore.location=${TLS_DIR}/truststore.p12
ssl.truststore.type=PKCS12
ssl.truststore.password=$(secret store)
PROPS
  )
}

# format_scram_args: --add-scram arguments of kafka-storage format, one per SCRAM user.
format_scram_args() {
  FORMAT_ARGS=()
  local u
  for u in "${SCRAM_USERS[@]}"; do
    FORMAT_ARGS+=(--add-scram "SCRAM-SHA-512=[name=$u,password=$(secret "$u")]")
  done
}

# The role model: every ACL that the secured broker has, for namespace NS (all ALLOW, any host).
# admin (and User:broker, the broker's own certificate) are super users and need none; nothing
# else is allowed (allow.everyone.if.no.acl.found=false). Topics: NS.commands, NS.events,
# NS.replies, NS.events.dead-letter, NS._schemas; consumer groups: NS-*; ingest's
# transactional ids: NS*. Columns: principal, resource type, pattern type, resource name,
# operations (as kafka-acls names them). One JVM applies them all (run_acl_helper).
acl_rows() { # NS
  local ns="$1"
  cat <<ACLS
# gateway: sends commands, reads the replies, looks at the events topic (lag, metadata)
User:gateway    Topic           Literal   ${ns}.commands              Write,Describe
User:gateway    Topic           Literal   ${ns}.replies               Read,Describe
User:gateway    Topic           Literal   ${ns}.events                Describe
User:gateway    Group           Prefixed  ${ns}-                      Read
# ingest: consumes commands, writes events and replies in transactions
User:ingest     Topic           Literal   ${ns}.commands              Read,Describe
User:ingest     Topic           Literal   ${ns}.events                Write,Describe,Read
User:ingest     Topic           Literal   ${ns}.replies               Write,Describe
User:ingest     Group           Prefixed  ${ns}-                      Read
User:ingest     TransactionalId Prefixed  ${ns}                       Write,Describe
# projector: consumes events, parks the ones it cannot apply in the dead-letter topic
User:projector  Topic           Literal   ${ns}.events                Read,Describe
User:projector  Topic           Literal   ${ns}.events.dead-letter    Write,Describe
User:projector  Group           Prefixed  ${ns}-                      Read
# registry: keeps the schemas in its own compacted topic, which it may create
User:registry   Topic           Literal   ${ns}._schemas              Read,Write,Describe,Create,DescribeConfigs
User:registry   Group           Prefixed  ${ns}-                      Read
ACLS
}

# The ACL helper: a tiny Admin-API program that lists the topics (so it doubles as the secured
# readiness check) and then creates all rows in one request, in one JVM: a kafka-acls run per
# row would cost a JVM start each. Compiled once into the cache, keyed by its source.
ACL_HELPER=ConfabKafkaAcls
acl_helper_source() {
  cat <<'JAVA'
// Generated by scripts/services/kafka.sh: wait for an answer, then create ALLOW ACLs read from
// stdin in one request. usage: java ConfabKafkaAcls BOOTSTRAP ADMIN_CLIENT_PROPERTIES < rows
// row: PRINCIPAL RESOURCE_TYPE PATTERN_TYPE NAME OP[,OP...]  (# comments and blank lines skipped)
// exit: 0 done, 1 the broker did not answer (try again), 2 bad rows or the ACLs were refused
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.nio.file.*;
import java.util.*;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.common.acl.*;
import org.apache.kafka.common.resource.*;

public class ConfabKafkaAcls {
    static String enumName(String s) { // DescribeConfigs -> DESCRIBE_CONFIGS
        return s.replaceAll("([a-z])([A-Z])", "$1_$2").toUpperCase(Locale.ROOT);
    }

    static List<AclBinding> readRows(BufferedReader rows) throws IOException {
        List<AclBinding> acls = new ArrayList<>();
        for (String line; (line = rows.readLine()) != null; ) {
            line = line.trim();
            if (line.isEmpty() || line.startsWith("#")) continue;
            String[] f = line.split("\\s+");
            if (f.length != 5) throw new IllegalArgumentException("bad ACL row: " + line);
            ResourceType type = ResourceType.fromString(enumName(f[1]));
            PatternType pattern = PatternType.fromString(enumName(f[2]));
            if (type == ResourceType.UNKNOWN || pattern == PatternType.UNKNOWN)
                throw new IllegalArgumentException("bad resource or pattern type: " + line);
            ResourcePattern resource = new ResourcePattern(type, f[3], pattern);
            for (String op : f[4].split(",")) {
                AclOperation operation = AclOperation.fromString(enumName(op));
                if (operation == AclOperation.UNKNOWN)
                    throw new IllegalArgumentException("bad operation " + op + ": " + line);
                acls.add(new AclBinding(resource,
                    new AccessControlEntry(f[0], "*", operation, AclPermissionType.ALLOW)));
            }
        }
        return acls;
    }

    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        try (InputStream in = Files.newInputStream(Paths.get(args[1]))) { props.load(in); }
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        List<AclBinding> acls;
        try {
            acls = readRows(new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8)));
        } catch (IllegalArgumentException e) {
            System.err.println(e.getMessage());
            System.exit(2);
            return;
        }
        try (Admin admin = Admin.create(props)) {
            try {
                System.out.println(admin.listTopics().names().get().size() + " topics");
            } catch (ExecutionException e) {
                System.err.println("no answer: " + e.getCause());
                System.exit(1);
            }
            try {
                admin.createAcls(acls).all().get(60, TimeUnit.SECONDS);
            } catch (ExecutionException e) {
                System.err.println("creating the ACLs failed: " + e.getCause());
                System.exit(2);
            }
        }
        System.out.println(acls.size() + " ACLs in place");
    }
}
JAVA
}

acl_helper_jar() { # prints the helper's jar, building it if needed; fails without javac/jar
  command -v javac >/dev/null && command -v jar >/dev/null || return 1
  local src key dir build
  src=$(acl_helper_source)
  key=$(printf '%s\n%s\n' "$KAFKA_VERSION" "$src" | cksum | cut -d' ' -f1)
  dir="$KAFKA_HOME_DIR/acl-helper-$key"
  if [[ ! -s "$dir/$ACL_HELPER.jar" ]]; then
    mkdir -p "$dir"
    build=$(mktemp -d "$dir/.build.XXXXXX")
    printf '%s\n' "$src" >"$build/$ACL_HELPER.java"
    if ! javac -nowarn -J-XX:TieredStopAtLevel=1 -cp "$LIB_DIR/kafka-clients-$KAFKA_VERSION.jar" \
          -d "$build/classes" "$build/$ACL_HELPER.java" >"$build/javac.log" 2>&1 ||
       ! jar -J-XX:TieredStopAtLevel=1 cf "$build/$ACL_HELPER.jar" -C "$build/classes" . \
          >>"$build/javac.log" 2>&1; then
      cat "$build/javac.log" >&2
      rm -rf "$build"
      return 1
    fi
    mv -f "$build/$ACL_HELPER.jar" "$dir/$ACL_HELPER.jar"
    rm -rf "$build"
    # drop older helpers, and their CDS archive (it names the old jar)
    local old
    for old in "$KAFKA_HOME_DIR"/acl-helper-*; do [[ "$old" == "$dir" ]] || rm -rf "$old"; done
    rm -f "$CDS_DIR/tool-$ACL_HELPER-"*.jsa
  fi
  echo "$dir/$ACL_HELPER.jar"
}

# run_acl_helper: create the acl_rows ACLs for ACL_NS as admin, once the broker answers (with
# ACL_JAR; creating an existing ACL is a no-op, so this runs on every start). 99 (give up) when
# the broker answered but refused them, so that wait_until stops trying at once.
run_acl_helper() {
  local left rc=0; left=$(secs_left)
  (( left > 0 )) || return 99
  acl_rows "$ACL_NS" | JAVA_TOOL_TIMEOUT="$left" JAVA_TOOL_CP="$ACL_JAR" java_tool "$ACL_HELPER" \
    "127.0.0.1:$port" "$ADMIN_PROPS" || rc=$?
  (( rc != 2 )) || return 99
  return "$rc"
}

# apply_acls_per_row: the same without javac (ACL_JAR empty), one kafka-acls run per row.
apply_acls_per_row() {
  local left; left=$(secs_left); (( left > 10 )) || left=10
  local principal type pattern name ops flag op op_args
  while read -r principal type pattern name ops; do
    [[ -n "$principal" && "$principal" != \#* ]] || continue
    case "$type" in
      Topic) flag=--topic ;; Group) flag=--group ;; TransactionalId) flag=--transactional-id ;;
      *) echo "acl_rows: unknown resource type $type"; return 1 ;;
    esac
    op_args=()
    for op in ${ops//,/ }; do op_args+=(--operation "$op"); done
    JAVA_TOOL_TIMEOUT="$left" java_tool org.apache.kafka.tools.AclCommand \
      --bootstrap-server "127.0.0.1:$port" --command-config "$ADMIN_PROPS" --add \
      --allow-principal "$principal" "${op_args[@]}" "$flag" "$name" \
      --resource-pattern-type "${pattern,,}" || return 1
  done < <(acl_rows "$ACL_NS")
}

# The RUN_DIR/env lines of the secured mode, after CONFAB_KAFKA_BROKERS.
security_env() {
  SEC_ENV=("CONFAB_KAFKA_CA=$TLS_DIR/ca.pem")
  local u
  for u in "${SCRAM_USERS[@]}"; do SEC_ENV+=("CONFAB_KAFKA_${u^^}_PASSWORD=$(secret "$u")"); done
  SEC_ENV+=("CONFAB_KAFKA_SECURITY=sasl_ssl")
}

have_pid() { [[ -s "$PID_FILE" ]]; }
secs_left() { echo $(( deadline - $(date +%s) )); }

# The startup-complete log line (cheap to wait for: no extra processes competing for CPU).
broker_started() {
  grep -q 'Kafka Server started' "$LOG_FILE" 2>/dev/null && return 0
  pid_matches "$pid" "$MATCH" || return 99
  return 1
}

# Does it actually serve metadata requests? (admin client round trip; secured: as admin over
# SASL_SSL, with admin.properties as the tools' --command-config)
# With ACL_JAR that is the ACL helper, which creates the ACLs in the same JVM once it answers.
admin_answers() {
  local left rc=0; left=$(secs_left)
  (( left > 0 )) || return 99
  if [[ -n "$ACL_JAR" ]]; then
    run_acl_helper >"$KDIR/ready-check.log" 2>&1 || rc=$?
    (( rc != 0 )) || return 0
    (( rc != 99 )) || return 99
  else
    local auth=()
    if secured; then auth=(--command-config "$ADMIN_PROPS"); fi
    JAVA_TOOL_TIMEOUT="$left" java_tool org.apache.kafka.tools.TopicCommand \
      --bootstrap-server "127.0.0.1:$port" "${auth[@]}" --list >"$KDIR/ready-check.log" 2>&1 && return 0
  fi
  pid_matches "$pid" "$MATCH" || return 99
  return 1
}

fail() {
  log "broker did not become ready: $1"
  log "---- first ERROR/FATAL lines of $LOG_FILE ----"
  grep -m 10 -E '^\[[^]]*\] (ERROR|FATAL)' "$LOG_FILE" >&2 || true
  log "---- tail of $LOG_FILE ----"
  tail -n 60 "$LOG_FILE" >&2 || true
  if [[ -n "$pid" ]]; then kill -KILL "$pid" 2>/dev/null || true; fi
  exit 1
}

# launch ATTEMPT: pick ports, write the config, format the storage once, start the broker.
# Ports: KAFKA_PORT/KAFKA_CONTROLLER_PORT if set; else on the first attempt a previous config's
# ports if still free; else fresh ones.
launch() {
  port="" cport="" pid=""
  if [[ -f "$CONF" && "$1" == 1 ]]; then
    port=$(prop_get "$CONF" advertised.listeners | sed 's#.*://127.0.0.1:##')
    cport=$(prop_get "$CONF" controller.quorum.voters | sed 's#.*:##')
  fi
  local fresh; read -r -a fresh <<<"$(pick_free_ports 3)"
  if [[ -n "${KAFKA_PORT:-}" ]]; then
    port="$KAFKA_PORT"
  elif [[ -z "$port" ]] || ! port_is_free "$port"; then
    port="${fresh[0]}"
  fi
  if [[ -n "${KAFKA_CONTROLLER_PORT:-}" ]]; then
    cport="$KAFKA_CONTROLLER_PORT"
  elif [[ -z "$cport" ]] || [[ "$cport" == "$port" ]] || ! port_is_free "$cport"; then
    cport="${fresh[1]}"
    [[ "$cport" != "$port" ]] || cport="${fresh[2]}"
  fi

  write_log4j
  write_config "$port" "$cport"

  if [[ ! -f "$DATA_DIR/meta.properties" ]]; then
    local cid; cid=$(random_cluster_id)
    FORMAT_ARGS=()
    if secured; then format_scram_args; fi # the SCRAM users live in the metadata log
    mkdir -p "$DATA_DIR"
    if ! java_tool kafka.tools.StorageTool format --cluster-id "$cid" --config "$CONF" \
        "${FORMAT_ARGS[@]}" --ignore-formatted >"$KDIR/format.log" 2>&1; then
      cat "$KDIR/format.log" >&2
      die "storage format failed"
    fi
    if secured; then echo "$SECURITY" >"$MODE_FILE"; fi
  fi

  local heap="${KAFKA_HEAP:-512m}"
  # shellcheck disable=SC2206
  local jvm_opts=(-Xms"$heap" -Xmx"$heap" -XX:+UseG1GC -XX:MaxGCPauseMillis=20
    ${KAFKA_JIT_OPTS--XX:TieredStopAtLevel=1}
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
    -Dlog4j2.configurationFile="$SERVER_LOG4J" -Dkafka.logs.dir="$KDIR/logs"
    -Dconfab.kafka.dir="$KDIR" ${KAFKA_JVM_OPTS:-})
  cds_opts broker
  jvm_opts+=("${CDS_OPTS[@]}")
  # a broker archive is only published by `stop` after a clean (TERM) exit
  if [[ -n "$CDS_PENDING" ]]; then echo "$CDS_PENDING" >"$KDIR/cds-pending"; else rm -f "$KDIR/cds-pending"; fi
  : >"$LOG_FILE"
  rm -f "$PID_FILE"
  # New session so the broker survives the caller's process group; the inner shell
  # records its own PID and execs java, so the PID file holds the JVM's PID.
  # shellcheck disable=SC2016
  setsid -f bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$PID_FILE" \
    java "${jvm_opts[@]}" -cp "$LIB_DIR/*" kafka.Kafka "$CONF" \
    </dev/null >>"$LOG_FILE" 2>&1
  deadline=$(( $(date +%s) + timeout ))
}

# ready: for start_with_retries (75: the broker exited before it started, as when a port was taken).
ready() {
  wait_until "$(secs_left)" have_pid || fail "no pid file after ${timeout}s"
  pid=$(cat "$PID_FILE")
  if ! wait_until "$(secs_left)" broker_started; then
    pid_matches "$pid" "$MATCH" || return 75
    fail "no 'Kafka Server started' after ${timeout}s"
  fi
  if ! wait_until "$(secs_left)" admin_answers; then
    pid_matches "$pid" "$MATCH" || fail "process $pid exited"
    cat "$KDIR/ready-check.log" >&2
    fail "admin check failed within ${timeout}s"
  fi
}

do_start() {
  setup_paths "${1:-}" create
  is_installed || do_install
  local t0; t0=$(now)
  command -v java >/dev/null || die "java not found"
  check_security_knobs
  mkdir -p "$KDIR"
  check_formatted_mode
  local timeout="${KAFKA_START_TIMEOUT:-120}" deadline=0 pid="" port="" cport="" tries=3
  SEC_ENV=() ACL_JAR=""
  if secured; then
    ensure_secrets
    write_admin_props
    security_env
    ACL_JAR=$(acl_helper_jar) || ACL_JAR=""
    [[ -n "$ACL_JAR" ]] || log "no javac/jar for the ACL helper: one kafka-acls run per ACL row (slower)"
  fi

  if [[ -f "$PID_FILE" ]] && pid_matches "$(cat "$PID_FILE")" "$MATCH"; then
    local oldpid
    oldpid=$(cat "$PID_FILE")
    port=$(prop_get "$CONF" advertised.listeners | sed 's#.*://127.0.0.1:##')
    log "already running (pid $oldpid) on 127.0.0.1:$port"
    if secured; then # ACLs for this start's KAFKA_ACL_NAMESPACE
      deadline=$(( $(date +%s) + timeout ))
      if [[ -n "$ACL_JAR" ]]; then run_acl_helper; else apply_acls_per_row; fi \
        >"$KDIR/acls.log" 2>&1 || { cat "$KDIR/acls.log" >&2; die "creating the ACLs for $ACL_NS failed"; }
    fi
    set_env "$RUN_DIR/env" "CONFAB_KAFKA_BROKERS=127.0.0.1:$port" "CONFAB_KAFKA_DATA_DIR=$DATA_DIR" "${SEC_ENV[@]}"
    return 0
  fi

  if secured; then ensure_tls; fi # not while it runs: it keeps the keystore it started with
  if [[ -n "${KAFKA_PORT:-}" && -n "${KAFKA_CONTROLLER_PORT:-}" ]]; then tries=1; fi
  start_with_retries "$tries" launch ready fail "$LOG_FILE"
  local what=""
  if secured; then # with ACL_JAR, ready created the ACLs
    if [[ -z "$ACL_JAR" ]] && ! apply_acls_per_row >"$KDIR/acls.log" 2>&1; then
      cat "$KDIR/acls.log" >&2
      fail "creating the ACLs for $ACL_NS failed"
    fi
    what=" SASL_SSL/SCRAM-SHA-512, ACLs for $ACL_NS,"
  fi

  set_env "$RUN_DIR/env" "CONFAB_KAFKA_BROKERS=127.0.0.1:$port" "CONFAB_KAFKA_DATA_DIR=$DATA_DIR" "${SEC_ENV[@]}"
  echo "kafka ${KAFKA_VERSION} ready on 127.0.0.1:${port} (controller ${cport})${what} pid ${pid}" \
       "in $(elapsed "$t0")s, RSS $(rss_of "$pid")"
}

do_stop() {
  setup_paths "${1:-}"
  local pending=""
  [[ -f "$KDIR/cds-pending" ]] && pending=$(cat "$KDIR/cds-pending")
  stop_pidfile "$PID_FILE" "$MATCH" "${KAFKA_STOP_TIMEOUT:-30}"
  [[ "$STOP_RESULT" != none ]] || return 0
  rm -f "$KDIR/cds-pending"
  # a broker archive is complete only after a clean (TERM) exit
  if [[ "$STOP_RESULT" == stopped ]]; then cds_commit "$pending"; elif [[ -n "$pending" ]]; then rm -f "$pending"; fi
}

# ---------------------------------------------------------------------------------------------
# Replicated mode (KAFKA_NODES=3): three combined broker+controller nodes, ids 1..3, under
# RUN_DIR/kafka-1, kafka-2, kafka-3 (each: server.properties, data/, kafka.log, pid), a static
# controller quorum of all three (controller.quorum.voters), one cluster id, replication
# factor 3 with min.insync.replicas=2 everywhere. Plaintext only.

check_nodes_knob() { # sets NODES
  NODES="${KAFKA_NODES:-1}"
  case "$NODES" in
    1|3) ;;
    *) die "KAFKA_NODES must be 1 or 3, not '${NODES}'" ;;
  esac
}

multi_ids() { echo 1 2 3; }

node_paths() { # N: the paths of node N (and the log4j files java_tool/write_log4j use)
  NDIR="$RUN_DIR/kafka-$1"
  NPID="$NDIR/pid"
  NCONF="$NDIR/server.properties"
  NDATA="$NDIR/data"
  NLOG="$NDIR/kafka.log"
  NMATCH="-Dconfab.kafka.dir=$NDIR"
  SERVER_LOG4J="$NDIR/log4j2.properties"
  TOOLS_LOG4J="$NDIR/tools-log4j2.properties"
}

multi_setup() { # RUN_DIR [create]
  [[ -n "${1:-}" ]] || die "usage: $0 {start|stop|kill N|start-node N} RUN_DIR"
  [[ "${2:-}" == create ]] && mkdir -p "$1"
  if [[ -d "$1" ]]; then RUN_DIR="$(cd "$1" && pwd)"; else RUN_DIR="$1"; fi
}

is_multi_dir() { [[ -f "$RUN_DIR/kafka-1/server.properties" ]]; } # a replicated cluster lives here

node_port() { prop_get "$RUN_DIR/kafka-$1/server.properties" advertised.listeners | sed 's#.*://127.0.0.1:##'; }
node_cport() { prop_get "$RUN_DIR/kafka-$1/server.properties" listeners | sed 's#.*CONTROLLER://127.0.0.1:##'; }
node_running() { node_paths "$1"; [[ -f "$NPID" ]] && pid_matches "$(cat "$NPID")" "$NMATCH"; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The Python the broker requests below share (no single quotes in it): request(api_key,
# version, body) sends one request to 127.0.0.1:sys.argv[1] and returns its response after the
# correlation id; the script exits 1 when the broker does not answer in 3 s.
KAFKA_PY_REQUEST='
import socket, struct, sys
def request(api_key, version, body):
    cid = b"confab-kafka.sh"
    head = struct.pack(">hhih", api_key, version, 1, len(cid)) + cid
    try:
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3)
        s.settimeout(3)
        s.sendall(struct.pack(">i", len(head) + len(body)) + head + body)
        def read(n):
            b = b""
            while len(b) < n:
                c = s.recv(n - len(b))
                if not c:
                    raise EOFError
                b += c
            return b
        return read(struct.unpack(">i", read(4))[0])[4:]
    except Exception:
        sys.exit(1)
'

# meta_brokers PORT: the ids of the brokers (unfenced, as KRaft lists them) in a Metadata (v4)
# response from 127.0.0.1:PORT, sorted, space separated; fails if it does not answer in 3 s.
meta_brokers() {
  "$PY3" -c "$KAFKA_PY_REQUEST"'
r = request(3, 4, struct.pack(">ib", 0, 0))  # no topics
try:
    off = 4  # throttle time
    (n,) = struct.unpack_from(">i", r, off); off += 4
    ids = []
    for _ in range(n):
        node, hl = struct.unpack_from(">ih", r, off); off += 6 + hl + 4
        (rl,) = struct.unpack_from(">h", r, off); off += 2 + max(rl, 0)
        ids.append(node)
except Exception:
    sys.exit(1)
print(" ".join(str(i) for i in sorted(ids)))
' "$1"
}

# find_coordinator PORT GROUP: the id of the broker coordinating consumer group GROUP, from a
# FindCoordinator (v1) request to 127.0.0.1:PORT; fails if it does not answer in 3 s or errs.
find_coordinator() {
  "$PY3" -c "$KAFKA_PY_REQUEST"'
group = sys.argv[2].encode()
r = request(10, 1, struct.pack(">h", len(group)) + group + bytes(1))  # key type 0: a group
try:
    error, ml = struct.unpack_from(">hh", r, 4)  # after the throttle time
    (node,) = struct.unpack_from(">i", r, 8 + max(ml, 0))
except Exception:
    sys.exit(1)
if error != 0:
    sys.exit(1)
print(node)
' "$1" "$2"
}

# coordinator RUN_DIR GROUP: prints the id (1..3) of the node coordinating consumer group GROUP
# (for a fault test that kills exactly that node); retries while the group's coordinator is
# still being loaded.
do_coordinator() {
  multi_setup "${1:-}"
  is_multi_dir || die "no 3-node cluster in $RUN_DIR (start it with KAFKA_NODES=3 first)"
  [[ -n "${2:-}" ]] || die "usage: $0 coordinator RUN_DIR GROUP"
  local n i
  for (( i = 0; i < 100; i++ )); do
    for n in $(multi_ids); do
      node_running "$n" || continue
      find_coordinator "$(node_port "$n")" "$2" && return 0
    done
    sleep 0.1
  done
  die "no coordinator found for group $2"
}

# write_node_config N PORT CPORT VOTERS
write_node_config() {
  cat >"$NCONF" <<PROPS
# Generated by scripts/services/kafka.sh -- node $1 of a 3-node KRaft cluster (broker+controller) for tests.
process.roles=broker,controller
node.id=$1
controller.quorum.voters=$4
listeners=PLAINTEXT://127.0.0.1:$2,CONTROLLER://127.0.0.1:$3
advertised.listeners=PLAINTEXT://127.0.0.1:$2
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=${NDATA}
num.partitions=4
default.replication.factor=3
min.insync.replicas=2
unclean.leader.election.enable=false
auto.create.topics.enable=false
delete.topic.enable=true
# consumer groups
offsets.topic.replication.factor=3
offsets.topic.num.partitions=10
group.initial.rebalance.delay.ms=0
# transactions
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
transaction.state.log.num.partitions=10
# share groups (harmless if unused)
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
# keep it light on a small shared machine (three JVMs)
num.network.threads=2
num.io.threads=2
num.replica.fetchers=1
num.recovery.threads.per.data.dir=1
background.threads=2
log.cleaner.threads=1
log.retention.check.interval.ms=300000
PROPS
}

multi_cluster_id() { # the cluster id of a formatted node, else a new one
  local n f id
  for n in $(multi_ids); do
    f="$RUN_DIR/kafka-$n/data/meta.properties"
    if [[ -f "$f" ]]; then id=$(prop_get "$f" cluster.id); [[ -z "$id" ]] || { echo "$id"; return 0; }; fi
  done
  random_cluster_id
}

# launch_node N: format node N's storage if needed (with the cluster's id) and start its JVM.
launch_node() {
  node_paths "$1"
  mkdir -p "$NDIR"
  write_log4j
  if [[ ! -f "$NDATA/meta.properties" ]]; then
    local cid; cid=$(multi_cluster_id)
    mkdir -p "$NDATA"
    if ! java_tool kafka.tools.StorageTool format --cluster-id "$cid" --config "$NCONF" \
        --ignore-formatted >"$NDIR/format.log" 2>&1; then
      cat "$NDIR/format.log" >&2
      die "storage format of node $1 failed"
    fi
  fi
  local heap="${KAFKA_HEAP:-384m}"
  # shellcheck disable=SC2206
  local jvm_opts=(-Xms"$heap" -Xmx"$heap" -XX:+UseG1GC -XX:MaxGCPauseMillis=20
    ${KAFKA_JIT_OPTS--XX:TieredStopAtLevel=1}
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
    -Dlog4j2.configurationFile="$SERVER_LOG4J" -Dkafka.logs.dir="$NDIR/logs"
    -Dconfab.kafka.dir="$NDIR" ${KAFKA_JVM_OPTS:-})
  cds_opts broker
  jvm_opts+=("${CDS_OPTS[@]}")
  if [[ -n "$CDS_PENDING" ]]; then echo "$CDS_PENDING" >"$NDIR/cds-pending"; else rm -f "$NDIR/cds-pending"; fi
  : >"$NLOG"
  rm -f "$NPID"
  # shellcheck disable=SC2016
  setsid -f bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$NPID" \
    java "${jvm_opts[@]}" -cp "$LIB_DIR/*" kafka.Kafka "$NCONF" \
    </dev/null >>"$NLOG" 2>&1
}

# node_started N: 0 once node N logged "Kafka Server started"; 99 if its JVM is gone.
node_started() {
  node_paths "$1"
  grep -q 'Kafka Server started' "$NLOG" 2>/dev/null && return 0
  [[ -s "$NPID" ]] || return 1
  pid_matches "$(cat "$NPID")" "$NMATCH" || return 99
  return 1
}

# all_see_all: every node's broker port answers a metadata request listing brokers 1 2 3.
all_see_all() {
  local n
  for n in $(multi_ids); do
    [[ "$(meta_brokers "${MPORTS[$n]}")" == "1 2 3" ]] || return 1
  done
}

# node_back N: node N answers on its broker port and is listed in its own metadata and in that
# of every other running node.
node_back() {
  local n ids
  ids=$(meta_brokers "$(node_port "$1")") || { node_started "$1" >/dev/null; (( $? != 99 )) || return 99; return 1; }
  [[ " $ids " == *" $1 "* ]] || return 1
  for n in $(multi_ids); do
    if [[ "$n" == "$1" ]] || ! node_running "$n"; then continue; fi
    ids=$(meta_brokers "$(node_port "$n")") || return 1
    [[ " $ids " == *" $1 "* ]] || return 1
  done
}

multi_kill_all() { # KILL every node of this RUN_DIR that runs (after a failed start)
  local n
  for n in $(multi_ids); do
    if node_running "$n"; then kill -KILL "$(cat "$NPID")" 2>/dev/null || true; fi
    rm -f "$NPID"
    if [[ -f "$NDIR/cds-pending" ]]; then rm -f "$(cat "$NDIR/cds-pending")" "$NDIR/cds-pending"; fi
  done
}

multi_fail() {
  log "cluster did not become ready: $1"
  local n
  for n in $(multi_ids); do
    node_paths "$n"
    log "---- node $n: first ERROR/FATAL lines of $NLOG ----"
    grep -m 5 -E '^\[[^]]*\] (ERROR|FATAL)' "$NLOG" >&2 || true
    log "---- node $n: tail of $NLOG ----"
    tail -n 20 "$NLOG" >&2 || true
  done
  multi_kill_all
  exit 1
}

# multi_launch ATTEMPT: pick the six ports, write the configs, start all three nodes.
# Ports: KAFKA_PORT/KAFKA_CONTROLLER_PORT as the bases (node N: base+N-1) if set; else on the
# first attempt the previous configs' ports if all are still free; else fresh ones.
multi_launch() {
  local n reuse=0 fresh voters=""
  MPORTS=() MCPORTS=()
  if (( $1 > 1 )); then multi_kill_all; fi
  if [[ "$1" == 1 ]] && is_multi_dir; then
    reuse=1
    for n in $(multi_ids); do
      MPORTS[n]=$(node_port "$n"); MCPORTS[n]=$(node_cport "$n")
      [[ -n "${MPORTS[n]}" && -n "${MCPORTS[n]}" ]] && port_is_free "${MPORTS[n]}" &&
        port_is_free "${MCPORTS[n]}" || reuse=0
    done
  fi
  read -r -a fresh <<<"$(pick_free_ports 6)"
  for n in $(multi_ids); do
    if [[ -n "${KAFKA_PORT:-}" ]]; then MPORTS[n]=$(( KAFKA_PORT + n - 1 ))
    elif (( ! reuse )); then MPORTS[n]=${fresh[n-1]}; fi
    if [[ -n "${KAFKA_CONTROLLER_PORT:-}" ]]; then MCPORTS[n]=$(( KAFKA_CONTROLLER_PORT + n - 1 ))
    elif (( ! reuse )); then MCPORTS[n]=${fresh[n+2]}; fi
    voters+="${voters:+,}$n@127.0.0.1:${MCPORTS[n]}"
  done
  for n in $(multi_ids); do
    node_paths "$n"
    mkdir -p "$NDIR"
    write_node_config "$n" "${MPORTS[n]}" "${MCPORTS[n]}" "$voters"
  done
  for n in $(multi_ids); do launch_node "$n"; done
  deadline=$(( $(date +%s) + timeout ))
}

# multi_ready: all three logged "Kafka Server started" and each lists all three brokers.
# 75 (try again on other ports) when a node exited before it started.
multi_ready() {
  local n
  for n in $(multi_ids); do
    if ! wait_until "$(secs_left)" node_started "$n"; then
      node_started "$n"; (( $? != 99 )) || return 75
      multi_fail "node $n: no 'Kafka Server started' after ${timeout}s"
    fi
  done
  wait_until "$(secs_left)" all_see_all ||
    multi_fail "the metadata did not list brokers 1 2 3 on every node within ${timeout}s"
}

multi_env() {
  local n list=""
  for n in $(multi_ids); do list+="${list:+,}127.0.0.1:$(node_port "$n")"; done
  set_env "$RUN_DIR/env" "CONFAB_KAFKA_BROKERS=$list" "CONFAB_KAFKA_NODES=3"
  BROKERS="$list"
}

multi_rss() {
  local n out=""
  for n in $(multi_ids); do node_paths "$n"; out+="${out:+, }node $n $(rss_of "$(cat "$NPID" 2>/dev/null)")"; done
  echo "$out"
}

multi_check_knobs() {
  command -v java >/dev/null || die "java not found"
  [[ "${KAFKA_SECURITY:-plaintext}" == plaintext ]] ||
    die "KAFKA_NODES=3 supports only KAFKA_SECURITY=plaintext (not '${KAFKA_SECURITY}')"
  if [[ -f "$RUN_DIR/kafka/pid" ]] && pid_matches "$(cat "$RUN_DIR/kafka/pid")" "-Dconfab.kafka.dir=$RUN_DIR/kafka"; then
    die "the single-node broker of $RUN_DIR/kafka is running: stop it first"
  fi
}

do_start_multi() {
  multi_setup "${1:-}" create
  is_installed || do_install
  local t0; t0=$(now)
  multi_check_knobs
  local timeout="${KAFKA_START_TIMEOUT:-120}" deadline=0 n up=() down=() tries=3 BROKERS=""
  if is_multi_dir; then
    for n in $(multi_ids); do if node_running "$n"; then up+=("$n"); else down+=("$n"); fi; done
  fi
  if (( ${#up[@]} > 0 )); then
    # some nodes run: start the others on their own ports (as start-node does)
    for n in "${down[@]}"; do do_start_node "$RUN_DIR" "$n"; done
    multi_env
    log "already running (nodes ${up[*]}${down[*]:+; started ${down[*]}}) on $BROKERS"
    return 0
  fi
  if [[ -n "${KAFKA_PORT:-}" && -n "${KAFKA_CONTROLLER_PORT:-}" ]]; then tries=1; fi
  start_with_retries "$tries" multi_launch multi_ready multi_fail "$RUN_DIR/kafka-1/kafka.log"
  multi_env
  echo "kafka ${KAFKA_VERSION} 3-node cluster ready on ${BROKERS} (controllers" \
       "${MCPORTS[1]},${MCPORTS[2]},${MCPORTS[3]}) in $(elapsed "$t0")s, RSS $(multi_rss)"
}

node_arg() { # N -> checks it is 1..3 and that the cluster exists
  [[ "${1:-}" =~ ^[1-3]$ ]] || die "node must be 1, 2 or 3, not '${1:-}'"
  is_multi_dir || die "no 3-node cluster in $RUN_DIR (start it with KAFKA_NODES=3 first)"
}

# kill RUN_DIR N: kill -9 node N; returns once its broker port is closed.
do_kill_node() {
  multi_setup "${1:-}"
  node_arg "${2:-}"
  local n="$2" port pid i
  port=$(node_port "$n")
  if node_running "$n"; then
    pid=$(cat "$NPID")
    kill -KILL "$pid" 2>/dev/null || true
    for (( i = 0; i < 100; i++ )); do pid_matches "$pid" "$NMATCH" || break; sleep 0.1; done
    log "killed node $n (pid $pid)"
  else
    log "node $n not running"
  fi
  rm -f "$NPID"
  if [[ -f "$NDIR/cds-pending" ]]; then rm -f "$(cat "$NDIR/cds-pending")" "$NDIR/cds-pending"; fi
  for (( i = 0; i < 100; i++ )); do port_open "$port" || return 0; sleep 0.1; done
  die "broker port $port of node $n still open"
}

# start-node RUN_DIR N: start node N again, same ports and data; returns once it answers on its
# broker port and is back in the metadata.
do_start_node() {
  multi_setup "${1:-}"
  node_arg "${2:-}"
  is_installed || do_install
  multi_check_knobs
  local n="$2" t0 port cport timeout="${KAFKA_START_TIMEOUT:-120}" deadline
  t0=$(now)
  deadline=$(( $(date +%s) + timeout ))
  port=$(node_port "$n"); cport=$(node_cport "$n")
  if node_running "$n"; then
    log "node $n already running (pid $(cat "$NPID"))"
  else
    port_is_free "$port" || die "broker port $port of node $n is taken"
    port_is_free "$cport" || die "controller port $cport of node $n is taken"
    launch_node "$n"
    if ! wait_until "$(secs_left)" node_started "$n"; then
      log "node $n did not start; tail of $NLOG:"; tail -n 40 "$NLOG" >&2
      node_running "$n" && kill -KILL "$(cat "$NPID")" 2>/dev/null; rm -f "$NPID"
      die "node $n: no 'Kafka Server started' after ${timeout}s"
    fi
  fi
  wait_until "$(secs_left)" node_back "$n" || die "node $n is not back in the metadata after ${timeout}s"
  node_paths "$n"
  echo "kafka node $n up on 127.0.0.1:$port (controller $cport) in $(elapsed "$t0")s, RSS $(rss_of "$(cat "$NPID")")"
}

stop_node() { # N: TERM node N (KILL after KAFKA_STOP_TIMEOUT), publish its CDS archive if clean
  node_paths "$1"
  local pending=""
  [[ -f "$NDIR/cds-pending" ]] && pending=$(cat "$NDIR/cds-pending")
  LOG_PREFIX="kafka.sh node $1" stop_pidfile "$NPID" "$NMATCH" "${KAFKA_STOP_TIMEOUT:-30}"
  [[ "$STOP_RESULT" != none ]] || return 0
  rm -f "$NDIR/cds-pending"
  if [[ "$STOP_RESULT" == stopped ]]; then cds_commit "$pending"; elif [[ -n "$pending" ]]; then rm -f "$pending"; fi
}

# stop the nodes at once: one by one, the last ones would lose their quorum mid-shutdown.
do_stop_multi() {
  local n pids=()
  for n in $(multi_ids); do
    [[ -d "$RUN_DIR/kafka-$n" ]] || continue
    stop_node "$n" & pids+=($!)
  done
  for n in "${pids[@]}"; do wait "$n" || true; done
}

case "${1:-}" in
  install) do_install ;;
  start)
    check_nodes_knob
    if [[ "$NODES" == 3 ]]; then do_start_multi "${2:-}"; else do_start "${2:-}"; fi ;;
  stop)
    # the replicated cluster of RUN_DIR, if there is one; the single broker too, unless only a
    # replicated cluster was ever set up there
    if [[ -n "${2:-}" ]]; then multi_setup "$2"; fi
    if [[ -n "${2:-}" ]] && is_multi_dir; then
      do_stop_multi
      if [[ -d "$RUN_DIR/kafka" ]]; then do_stop "${2:-}"; fi
    else
      do_stop "${2:-}"
    fi ;;
  kill) do_kill_node "${2:-}" "${3:-}" ;;
  start-node) do_start_node "${2:-}" "${3:-}" ;;
  coordinator) do_coordinator "${2:-}" "${3:-}" ;;
  *) echo "usage: $0 {install|start RUN_DIR|stop RUN_DIR|kill RUN_DIR N|start-node RUN_DIR N|coordinator RUN_DIR GROUP}" >&2; exit 2 ;;
esac
