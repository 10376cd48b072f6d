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
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck disable=SC2034  # read by log() in lib.sh
LOG_PREFIX="opensearch.sh"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$here/../lib.sh"

OPENSEARCH_VERSION=2.19.6
DEP_PLUGIN_VERSION=3.8.1

CACHE_DIR="${CONFAB_CACHE:-$HOME/.cache/confab}"
OS_HOME="$CACHE_DIR/opensearch-$OPENSEARCH_VERSION"
MARKER="$OS_HOME/.installed"

is_installed() {
  [[ -f "$MARKER" ]] && [[ -f "$OS_HOME/lib/opensearch-$OPENSEARCH_VERSION.jar" ]] &&
    [[ -f "$OS_HOME/modules/analysis-common/analysis-common-$OPENSEARCH_VERSION.jar" ]]
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
    <!-- server distribution: bin/, lib/, config/, modules/transport-netty4 -->
    <dependency>
      <groupId>org.opensearch.distribution.integ-test-zip</groupId>
      <artifactId>opensearch</artifactId>
      <version>${OPENSEARCH_VERSION}</version>
      <type>zip</type>
    </dependency>
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
  exec 9>"$CACHE_DIR/.opensearch-$OPENSEARCH_VERSION.lock"
  flock 9
  if is_installed; then exec 9>&-; return 0; fi
  command -v mvn >/dev/null || die "mvn not found"
  command -v unzip >/dev/null || die "unzip not found"
  local build t0
  t0=$(now)
  build=$(mktemp -d "$CACHE_DIR/.opensearch-build.XXXXXX")
  write_pom "$build/pom.xml"
  log "resolving OpenSearch ${OPENSEARCH_VERSION} (integ-test-zip + lang-painless + analysis-common) from Maven Central ..."
  if ! mvn -q -B -f "$build/pom.xml" \
      "org.apache.maven.plugins:maven-dependency-plugin:${DEP_PLUGIN_VERSION}:copy-dependencies" \
      -DincludeScope=runtime -DoutputDirectory="$build/dl" >"$build/mvn.log" 2>&1; then
    tail -n 50 "$build/mvn.log" >&2
    rm -rf "$build"
    exec 9>&-
    die "maven dependency resolution failed"
  fi
  local dl="$build/dl" dist="$build/dist"
  unzip -q "$dl/opensearch-${OPENSEARCH_VERSION}.zip" -d "$build/unz"
  mv "$build/unz/opensearch-${OPENSEARCH_VERSION}" "$dist"
  rm -f "$dist"/bin/*.bat "$dist"/bin/*.exe

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
  local left
  left=$(find "$dl" -type f ! -name "opensearch-${OPENSEARCH_VERSION}.zip" -printf '%f\n')
  [[ -z "$left" ]] || log "note: unused artifacts: $(echo $left)"

  rm -rf "$OS_HOME"
  mv "$dist" "$OS_HOME"
  rm -rf "$build"
  echo "opensearch ${OPENSEARCH_VERSION} installed $(date -u +%FT%TZ)" >"$MARKER"
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
  DATA_DIR="$ODIR/data"
  LOGS_DIR="$ODIR/logs"
  LOG_FILE="$ODIR/opensearch.log"
  MATCH="-Dconfab.opensearch.dir=$ODIR" # the node's own argument, for pid_matches
}

write_config() { # http_port transport_port
  mkdir -p "$CONF_DIR" "$DATA_DIR" "$LOGS_DIR" "$ODIR/tmp"
  cat >"$CONF_DIR/opensearch.yml" <<YML
# Generated by scripts/services/opensearch.sh -- single-node test instance, no security plugin.
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
  health=$(curl -sf --max-time 10 \
      "http://127.0.0.1:$port/_cluster/health?wait_for_status=yellow&timeout=5s" 2>/dev/null) &&
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

do_start() {
  setup_paths "${1:-}" create
  is_installed || do_install
  local t0; t0=$(now)
  command -v java >/dev/null || die "java not found"
  mkdir -p "$ODIR"

  if [[ -f "$PID_FILE" ]] && pid_matches "$(cat "$PID_FILE")" "$MATCH"; then
    local port; port=$(yml_get http.port)
    log "already running (pid $(cat "$PID_FILE")) on 127.0.0.1:$port"
    set_env "$RUN_DIR/env" "CONFAB_OPENSEARCH_URL=http://127.0.0.1:$port"
    return 0
  fi

  local want_port="${2:-${OPENSEARCH_PORT:-}}" timeout="${OPENSEARCH_START_TIMEOUT:-180}"
  local port="" tport="" pid="" deadline=0 health="" tries=3
  if [[ -n "$want_port" && -n "${OPENSEARCH_TRANSPORT_PORT:-}" ]]; then tries=1; fi
  start_with_retries "$tries" launch ready fail "$LOG_FILE"

  set_env "$RUN_DIR/env" "CONFAB_OPENSEARCH_URL=http://127.0.0.1:$port"
  local version
  version=$(curl -sf --max-time 5 "http://127.0.0.1:$port/" | sed -n 's/.*"number" *: *"\([^"]*\)".*/\1/p' | head -n 1)
  echo "opensearch ${version:-$OPENSEARCH_VERSION} ready on http://127.0.0.1:${port} (transport ${tport}) pid ${pid}" \
       "in $(elapsed "$t0")s, RSS $(rss_of "$pid")"
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
