#!/usr/bin/env bash
# Single-node Apache Cassandra 5.0 for integration tests, installed from Maven Central.
#
#   scripts/services/cassandra.sh install           resolve cassandra-all + runtime deps into the cache
#   scripts/services/cassandra.sh start RUN_DIR     start a fresh node on 127.0.0.1, wait until CQL answers,
#                                                   append CONFAB_CASSANDRA_NODES=127.0.0.1:PORT to RUN_DIR/env
#   scripts/services/cassandra.sh stop RUN_DIR      stop it (TERM, then KILL); no error if not running
#
# Environment:
#   CONFAB_CACHE        cache root (default $HOME/.cache/confab)
#   CASSANDRA_VERSION   cassandra-all version (default below)
#   CASSANDRA_PORT      CQL native port (default: a free port)
#   CASSANDRA_HEAP      heap size (default 1G)
#   CASSANDRA_START_TIMEOUT  seconds to wait for CQL (default 180)
#   CASSANDRA_JVM_OPTS  extra JVM options (whitespace-separated)
#
# Every start wipes the node's data under RUN_DIR/cassandra: each start is a fresh, empty node.
# start tries up to three times, on other ports, when the node exits at start (a port it was given
# was taken meanwhile); CASSANDRA_PORT, when set, is kept.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck disable=SC2034  # read by log() in lib.sh
LOG_PREFIX="cassandra"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$here/../lib.sh"

CASSANDRA_VERSION="${CASSANDRA_VERSION:-5.0.9}"
CACHE_ROOT="${CONFAB_CACHE:-$HOME/.cache/confab}"
HOME_DIR="$CACHE_ROOT/cassandra-$CASSANDRA_VERSION"
LIB_DIR="$HOME_DIR/lib"
MARKER="$HOME_DIR/.installed"

install() {
    if [[ -f "$MARKER" ]] && [[ "$(cat "$MARKER")" == "$CASSANDRA_VERSION" ]]; then
        return 0
    fi
    command -v mvn >/dev/null || die "mvn not found (needed to fetch cassandra-all from Maven Central)"
    log "installing cassandra-all $CASSANDRA_VERSION into $LIB_DIR"
    mkdir -p "$HOME_DIR"
    local work
    work="$(mktemp -d "$HOME_DIR/.install.XXXXXX")"
    cat >"$work/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.confab</groupId>
  <artifactId>cassandra-deps</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.cassandra</groupId>
      <artifactId>cassandra-all</artifactId>
      <version>$CASSANDRA_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
    if ! (cd "$work" && mvn -q -B -f pom.xml dependency:copy-dependencies \
            -DincludeScope=runtime -DoutputDirectory="$work/lib" >"$work/mvn.log" 2>&1); then
        tail -n 40 "$work/mvn.log" >&2
        rm -rf "$work"
        die "maven failed to resolve cassandra-all $CASSANDRA_VERSION"
    fi
    ls "$work/lib"/cassandra-all-*.jar >/dev/null 2>&1 || die "cassandra-all jar missing after resolve"
    ls "$work/lib"/jamm-*.jar >/dev/null 2>&1 || die "jamm jar missing after resolve"
    rm -rf "$LIB_DIR"
    mv "$work/lib" "$LIB_DIR"
    rm -rf "$work"
    echo "$CASSANDRA_VERSION" >"$MARKER"
    log "installed ($(ls "$LIB_DIR" | wc -l) jars)"
}

# stop RUN_DIR: stop the node of RUN_DIR (its command line names RUN_DIR/cassandra).
stop() {
    local run_dir="$1"
    if [[ -d "$run_dir" ]]; then run_dir="$(cd "$run_dir" && pwd)"; fi
    stop_pidfile "$run_dir/cassandra/pid" "-Dcassandra.storagedir=$run_dir/cassandra" 15
}

# Waits until the node answers a real CQL v4 query (STARTUP + QUERY system.local). Prints release_version.
wait_cql() {
    python3 - "$@" <<'EOF'
import os, socket, struct, sys, time

host, port, pid, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])

def frame(opcode, body, stream=0):
    return struct.pack(">BBhBi", 0x04, 0, stream, opcode, len(body)) + body

def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf

def read_frame(s):
    hdr = recv_exact(s, 9)
    _ver, _flags, _stream, opcode, length = struct.unpack(">BBhBi", hdr)
    return opcode, recv_exact(s, length)

def string(s):
    b = s.encode()
    return struct.pack(">H", len(b)) + b

def probe():
    with socket.create_connection((host, port), timeout=5) as s:
        s.settimeout(10)
        s.sendall(frame(0x01, struct.pack(">H", 1) + string("CQL_VERSION") + string("3.0.0")))
        op, body = read_frame(s)
        if op != 0x02:
            raise RuntimeError("STARTUP answered opcode %d: %r" % (op, body[:200]))
        q = "SELECT release_version FROM system.local".encode()
        s.sendall(frame(0x07, struct.pack(">i", len(q)) + q + struct.pack(">HB", 0x0001, 0), stream=1))
        op, body = read_frame(s)
        if op != 0x08:
            raise RuntimeError("QUERY answered opcode %d: %r" % (op, body[:200]))
        # Rows result: kind, flags, column count, [global table spec], column specs, row count, values.
        kind, flags, ncols = struct.unpack_from(">iii", body, 0)
        off = 12
        def rstr():
            nonlocal off
            (n,) = struct.unpack_from(">H", body, off)
            v = body[off + 2: off + 2 + n].decode()
            off += 2 + n
            return v
        if flags & 0x0001:
            rstr(); rstr()
        for _ in range(ncols):
            if not flags & 0x0001:
                rstr(); rstr()
            rstr()
            off += 2  # type id (varchar)
        (nrows,) = struct.unpack_from(">i", body, off)
        off += 4
        (n,) = struct.unpack_from(">i", body, off)
        return body[off + 4: off + 4 + n].decode() if nrows and n >= 0 else "?"

deadline = time.monotonic() + timeout
last = None
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        print("process %d exited" % pid, file=sys.stderr)
        sys.exit(2)
    try:
        print(probe())
        sys.exit(0)
    except Exception as e:  # not ready yet
        last = e
    time.sleep(0.25)
print("timed out after %.0fs; last error: %r" % (timeout, last), file=sys.stderr)
sys.exit(1)
EOF
}

# launch ATTEMPT: a fresh node: wipe its data, pick ports, write its config, start it.
launch() {
    rm -rf "$dir/data" "$dir/commitlog" "$dir/hints" "$dir/saved_caches" "$dir/cdc_raw"
    mkdir -p "$dir/data" "$dir/commitlog" "$dir/hints" "$dir/saved_caches" "$dir/cdc_raw"
    : >"$dir/system.log"

    local ports
    ports="$(pick_free_ports 3)"
    read -r native_port storage_port jmx_port <<<"$ports"
    native_port="${CASSANDRA_PORT:-$native_port}"

    cat >"$dir/cassandra.yaml" <<EOF
# Generated by scripts/services/cassandra.sh: single-node test instance.
cluster_name: confab-test
num_tokens: 1
initial_token: 0
auto_bootstrap: false
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
dynamic_snitch: false
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "127.0.0.1:$storage_port"
listen_address: 127.0.0.1
rpc_address: 127.0.0.1
storage_port: $storage_port
native_transport_port: $native_port
start_native_transport: true
native_transport_max_threads: 32

data_file_directories:
  - $dir/data
commitlog_directory: $dir/commitlog
hints_directory: $dir/hints
saved_caches_directory: $dir/saved_caches
cdc_raw_directory: $dir/cdc_raw
cdc_enabled: false

commitlog_sync: periodic
commitlog_sync_period: 10000ms
commitlog_segment_size: 32MiB
storage_compatibility_mode: NONE

authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer
role_manager: CassandraRoleManager
network_authorizer: AllowAllNetworkAuthorizer

hinted_handoff_enabled: false
concurrent_reads: 8
concurrent_writes: 8
concurrent_counter_writes: 8
concurrent_materialized_view_writes: 8
concurrent_compactors: 1
memtable_flush_writers: 1
compaction_throughput: 0MiB/s
key_cache_size: 16MiB
counter_cache_size: 4MiB
column_index_cache_size: 2MiB
# every test stack prepares its statements in a keyspace of its own, several stacks at once: with
# the default (10 MiB) the cache evicted statements between the driver's re-prepare and its retry,
# and requests failed with "prepared statement not found" late in a full suite
prepared_statements_cache_size: 128MiB
snapshot_before_compaction: false
auto_snapshot: false
incremental_backups: false
trickle_fsync: false
disk_failure_policy: stop
commit_failure_policy: stop

read_request_timeout: 10000ms
range_request_timeout: 20000ms
write_request_timeout: 10000ms
counter_write_request_timeout: 10000ms
truncate_request_timeout: 60000ms
request_timeout: 20000ms

user_defined_functions_enabled: true
materialized_views_enabled: true
sasi_indexes_enabled: true
EOF

    cat >"$dir/logback.xml" <<'EOF'
<configuration scan="false">
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>${cassandra.logdir}/system.log</file>
    <append>true</append>
    <encoder>
      <pattern>%-5level [%thread] %date{ISO8601} %logger{0} - %msg%n</pattern>
    </encoder>
  </appender>
  <root level="INFO">
    <appender-ref ref="FILE" />
  </root>
</configuration>
EOF

    local jamm
    jamm="$(ls "$LIB_DIR"/jamm-*.jar | head -n 1)"
    local heap="${CASSANDRA_HEAP:-1G}"
    local -a jvm=(
        -Xms"$heap" -Xmx"$heap" -Xss256k
        -XX:+UseG1GC -XX:+ParallelRefProcEnabled -XX:MaxTenuringThreshold=1 -XX:G1HeapRegionSize=16m
        -XX:G1RSetUpdatingPauseTimePercent=5 -XX:MaxGCPauseMillis=300 -XX:InitiatingHeapOccupancyPercent=70
        -XX:ParallelGCThreads=2 -XX:ConcGCThreads=1 -XX:CICompilerCount=2
        # C1 only: ~35% faster start on 2 cores and less CPU; plenty for tests.
        # Override with CASSANDRA_JVM_OPTS=-XX:TieredStopAtLevel=4.
        -XX:TieredStopAtLevel=1
        -XX:+UseThreadPriorities -XX:+UseTLAB -XX:+ResizeTLAB -XX:+PerfDisableSharedMem
        -XX:+ExitOnOutOfMemoryError
        -XX:StringTableSize=1000003
        -Djava.net.preferIPv4Stack=true
        -Djdk.attach.allowAttachSelf=true
        --add-exports java.base/jdk.internal.misc=ALL-UNNAMED
        --add-exports java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
        --add-exports java.rmi/sun.rmi.registry=ALL-UNNAMED
        --add-exports java.rmi/sun.rmi.server=ALL-UNNAMED
        --add-exports java.sql/java.sql=ALL-UNNAMED
        --add-exports java.base/java.lang.ref=ALL-UNNAMED
        --add-exports jdk.unsupported/sun.misc=ALL-UNNAMED
        --add-exports jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED
        --add-exports jdk.attach/sun.tools.attach=ALL-UNNAMED
        --add-opens java.base/java.lang.module=ALL-UNNAMED
        --add-opens java.base/jdk.internal.loader=ALL-UNNAMED
        --add-opens java.base/jdk.internal.ref=ALL-UNNAMED
        --add-opens java.base/jdk.internal.reflect=ALL-UNNAMED
        --add-opens java.base/jdk.internal.math=ALL-UNNAMED
        --add-opens java.base/jdk.internal.module=ALL-UNNAMED
        --add-opens java.base/jdk.internal.util.jar=ALL-UNNAMED
        --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED
        --add-opens java.base/sun.nio.ch=ALL-UNNAMED
        --add-opens java.base/java.io=ALL-UNNAMED
        --add-opens java.base/java.lang.reflect=ALL-UNNAMED
        --add-opens jdk.compiler/com.sun.tools.javac=ALL-UNNAMED
        --add-opens java.base/java.lang=ALL-UNNAMED
        --add-opens java.base/java.util=ALL-UNNAMED
        -Dio.netty.tryReflectionSetAccessible=true
        -Dio.netty.allocator.useCacheForAllThreads=true
        -Dio.netty.allocator.maxOrder=11
        -javaagent:"$jamm"
        -Dcassandra-foreground=yes
        -Dcassandra.config="file://$dir/cassandra.yaml"
        -Dcassandra.storagedir="$dir"
        -Dcassandra.logdir="$dir"
        -Dlogback.configurationFile="file://$dir/logback.xml"
        -Dcassandra.jmx.local.port="$jmx_port"
        -Dcom.sun.management.jmxremote.authenticate=false
        -Dcassandra.skip_wait_for_gossip_to_settle=0
        -Dcassandra.ring_delay_ms=0
        -Dcassandra.load_ring_state=false
        -Dcassandra.initial_token=0
        -Dcassandra.superuser_setup_delay_ms=0
        -Dcassandra.skip_schema_check=true
        -Dcassandra.migration_task_wait_in_seconds=0
        -Dcassandra.disable_max_map_count_check=true
        -Dcassandra.unsafesystem=true
        -Dcassandra.memtable_row_overhead_computation_step=100
    )
    # Extra JVM options, whitespace-separated.
    local -a extra=()
    read -r -a extra <<<"${CASSANDRA_JVM_OPTS:-}"
    jvm+=("${extra[@]}")

    rm -f "$dir/pid"
    # Cassandra calls mlockall(MCL_CURRENT) at startup; as root (CAP_IPC_LOCK) that succeeds, pins the
    # whole 1G heap (RSS ~1.5G) and costs seconds. Drop CAP_IPC_LOCK and the memlock limit so it just
    # logs a warning. setsid: own session, so the caller's terminal/job signals don't reach it.
    local -a nolock=()
    if [[ "$(id -u)" == 0 ]] && command -v setpriv >/dev/null; then
        nolock=(setpriv --inh-caps=-ipc_lock --bounding-set=-ipc_lock)
    fi
    # shellcheck disable=SC2016
    setsid "${nolock[@]}" bash -c 'ulimit -l 0 2>/dev/null || true; echo $$ >"$0"; exec "$@"' "$dir/pid" \
        java "${jvm[@]}" -cp "$LIB_DIR/*" org.apache.cassandra.service.CassandraDaemon \
        </dev/null >"$dir/stdout.log" 2>&1 &
    wait_until 5 have_pid || die "no pid file after 5 s"
    pid="$(cat "$dir/pid")"
    # Don't leave a half-started node behind if we fail or are interrupted while waiting.
    STARTING_RUN_DIR="$run_dir"
    trap 'rc=$?; trap - EXIT; if [[ $rc -ne 0 ]]; then stop "$STARTING_RUN_DIR" || true; fi; exit $rc' EXIT
    trap 'exit 130' INT TERM HUP
    log "started pid $pid (cql 127.0.0.1:$native_port, storage $storage_port, jmx $jmx_port)"
}

have_pid() { [[ -s "$dir/pid" ]]; }

# ready: for start_with_retries (75: the node exited before CQL answered, as when a port was taken).
ready() {
    local rc=0
    version="$(wait_cql 127.0.0.1 "$native_port" "$pid" "${CASSANDRA_START_TIMEOUT:-180}")" || rc=$?
    (( rc != 2 )) || return 75
    (( rc == 0 )) || fail "no CQL answer"
}

fail() {
    log "did not become ready ($1); stdout tail:"
    tail -n 30 "$dir/stdout.log" >&2 || true
    log "system.log tail:"
    tail -n 60 "$dir/system.log" >&2 || true
    exit 1 # the EXIT trap stops the node
}

start() {
    local run_dir
    run_dir="$(mkdir -p "$1" && cd "$1" && pwd)"
    install
    if [[ -f "$run_dir/cassandra/pid" ]]; then stop "$run_dir"; fi

    local dir="$run_dir/cassandra" native_port storage_port jmx_port pid version t0
    mkdir -p "$dir"
    t0="$(now)"
    start_with_retries 3 launch ready fail "$dir/system.log"
    trap - EXIT INT TERM HUP

    set_env "$run_dir/env" "CONFAB_CASSANDRA_NODES=127.0.0.1:$native_port"
    echo "cassandra: ready: Cassandra $version on 127.0.0.1:$native_port in $(elapsed "$t0")s, RSS $(rss_of "$pid")"
}

usage() {
    echo "usage: $0 install | start RUN_DIR | stop RUN_DIR" >&2
    exit 2
}

cmd="${1:-}"
case "$cmd" in
    install) install ;;
    start) [[ $# -eq 2 ]] || usage; start "$2" ;;
    stop) [[ $# -eq 2 ]] || usage; stop "$2" ;;
    *) usage ;;
esac
