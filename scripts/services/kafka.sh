#!/usr/bin/env bash
# Single-node Apache Kafka (KRaft, combined broker+controller) for integration tests.
#
#   scripts/services/kafka.sh install          # fetch jars from Maven Central into the cache
#   scripts/services/kafka.sh start RUN_DIR    # start broker, append CONFAB_KAFKA_BROKERS to RUN_DIR/env
#   scripts/services/kafka.sh stop RUN_DIR     # stop broker (no error if not running)
#
# Env knobs: CONFAB_CACHE (default ~/.cache/confab), KAFKA_PORT (broker port, default random),
#            KAFKA_CONTROLLER_PORT (default random), KAFKA_HEAP (default 512m),
#            KAFKA_LOG_LEVEL (default INFO), KAFKA_START_TIMEOUT (seconds, default 120).
# start tries up to three times, on other ports, when the broker exits at start (a port it was
# given was taken meanwhile); ports given by KAFKA_PORT/KAFKA_CONTROLLER_PORT are kept.
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
  # Optional: JAVA_TOOL_TIMEOUT=seconds bounds its run time.
  local cls="$1"; shift
  local pre=() rc=0
  [[ -n "${JAVA_TOOL_TIMEOUT:-}" ]] && pre=(timeout "$JAVA_TOOL_TIMEOUT")
  cds_opts "tool-${cls##*.}"
  local pending="$CDS_PENDING"
  "${pre[@]}" java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC "${CDS_OPTS[@]}" \
    -Dlog4j2.configurationFile="$TOOLS_LOG4J" \
    -cp "$LIB_DIR/*" "$cls" "$@" || rc=$?
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
  local p="$1" c="$2"
  cat >"$CONF" <<PROPS
# Generated by scripts/services/kafka.sh -- single-node KRaft (broker+controller) for tests.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${c}
listeners=PLAINTEXT://127.0.0.1:${p},CONTROLLER://127.0.0.1:${c}
advertised.listeners=PLAINTEXT://127.0.0.1:${p}
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
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
}

have_pid() { [[ -s "$PID_FILE" ]]; }
secs_left() { echo $(( deadline - $(date +%s) )); }

# The startup-complete log line (cheap to wait for: no extra processes competing for CPU).
broker_started() {
  grep -q 'Kafka Server started' "$LOG_FILE" 2>/dev/null && return 0
  pid_matches "$pid" "$MATCH" || return 99
  return 1
}

# Does it actually serve metadata requests? (admin client round trip)
admin_answers() {
  local left; left=$(secs_left)
  (( left > 0 )) || return 99
  JAVA_TOOL_TIMEOUT="$left" java_tool org.apache.kafka.tools.TopicCommand \
    --bootstrap-server "127.0.0.1:$port" --list >"$KDIR/ready-check.log" 2>&1 && return 0
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
    mkdir -p "$DATA_DIR"
    if ! java_tool kafka.tools.StorageTool format --cluster-id "$cid" --config "$CONF" \
        --ignore-formatted >"$KDIR/format.log" 2>&1; then
      cat "$KDIR/format.log" >&2
      die "storage format failed"
    fi
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
  mkdir -p "$KDIR"

  if [[ -f "$PID_FILE" ]] && pid_matches "$(cat "$PID_FILE")" "$MATCH"; then
    local oldpid port
    oldpid=$(cat "$PID_FILE")
    port=$(prop_get "$CONF" advertised.listeners | sed 's#.*://127.0.0.1:##')
    log "already running (pid $oldpid) on 127.0.0.1:$port"
    set_env "$RUN_DIR/env" "CONFAB_KAFKA_BROKERS=127.0.0.1:$port"
    return 0
  fi

  local timeout="${KAFKA_START_TIMEOUT:-120}" deadline=0 pid="" port="" cport="" tries=3
  if [[ -n "${KAFKA_PORT:-}" && -n "${KAFKA_CONTROLLER_PORT:-}" ]]; then tries=1; fi
  start_with_retries "$tries" launch ready fail "$LOG_FILE"

  set_env "$RUN_DIR/env" "CONFAB_KAFKA_BROKERS=127.0.0.1:$port"
  echo "kafka ${KAFKA_VERSION} ready on 127.0.0.1:${port} (controller ${cport}) pid ${pid}" \
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

case "${1:-}" in
  install) do_install ;;
  start) do_start "${2:-}" ;;
  stop) do_stop "${2:-}" ;;
  *) echo "usage: $0 {install|start RUN_DIR|stop RUN_DIR}" >&2; exit 2 ;;
esac
