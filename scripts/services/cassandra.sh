#!/usr/bin/env bash
# Single-node Apache Cassandra 5.0 for integration tests, installed from Maven Central.
#
#   scripts/services/cassandra.sh install           resolve cassandra-all + runtime deps into the cache
#   scripts/services/cassandra.sh start RUN_DIR     start a fresh node on 127.0.0.1, wait until CQL answers,
#                                                   append CONFAB_CASSANDRA_NODES=127.0.0.1:PORT to RUN_DIR/env
#   scripts/services/cassandra.sh stop RUN_DIR      stop it, or all nodes of a cluster (TERM, then KILL); no
#                                                   error if not running
# Replicated mode (CASSANDRA_NODES=3), for fault tests:
#   scripts/services/cassandra.sh start RUN_DIR     start a fresh cluster of N nodes on 127.0.0.1..127.0.0.N (the
#                                                   same ports on each address), one after the other, wait until
#                                                   each one's system.peers lists all the others, append
#                                                   CONFAB_CASSANDRA_NODES=127.0.0.1:PORT,...,127.0.0.N:PORT and
#                                                   CONFAB_CASSANDRA_REPLICAS=N to RUN_DIR/env
#   scripts/services/cassandra.sh kill RUN_DIR I    kill -9 node I (1..N); returns once its CQL port is closed
#   scripts/services/cassandra.sh start-node RUN_DIR I
#                                                   start node I again (same address, ports and data: no wipe);
#                                                   returns when its CQL port answers
#
# Environment:
#   CONFAB_CACHE        cache root (default $HOME/.cache/confab)
#   CASSANDRA_NODES     1 (default): one node, as described above; 2..9: a cluster of that many nodes
#                       (seed 127.0.0.1, GossipingPropertyFileSnitch dc1/rack1, evenly spaced single tokens,
#                       auto_bootstrap false, hinted handoff on), data under RUN_DIR/cassandra/nodeI. Not
#                       with CASSANDRA_SECURITY=tls (its certificate names 127.0.0.1 only and system_auth
#                       would hold the logins on one node).
#   CASSANDRA_VERSION   cassandra-all version (default below)
#   CASSANDRA_PORT      CQL native port (default: a free port)
#   CASSANDRA_HEAP      heap size, of each node (default 1G)
#   CASSANDRA_START_TIMEOUT  seconds to wait for CQL (default 180)
#   CASSANDRA_JVM_OPTS  extra JVM options (whitespace-separated)
#   CASSANDRA_SECURITY  unset/empty/"none" (default): no TLS, no auth (AllowAllAuthenticator);
#                       "tls": client TLS only on the native port (certificate of a CA of the run's
#                       own) and PasswordAuthenticator + CassandraAuthorizer, with a login "confab"
#                       that is no superuser (it may create keyspaces and owns those it creates); the
#                       default superuser cassandra gets a random password. start then also appends
#                       CONFAB_CASSANDRA_USER, CONFAB_CASSANDRA_PASSWORD and CONFAB_CASSANDRA_CA (the
#                       CA, PEM) to RUN_DIR/env. The CA and the node's keystore are made once under
#                       RUN_DIR/cassandra-tls/ and kept across starts; the superuser's password is in
#                       RUN_DIR/cassandra/superuser.pass.
#
# Every start wipes the node's data under RUN_DIR/cassandra: each start is a fresh, empty node (or
# cluster); start-node alone keeps the data of the node it starts.
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

case "${CASSANDRA_SECURITY:-none}" in
    none | "") SECURED=0 ;;
    tls) SECURED=1 ;;
    *) die "CASSANDRA_SECURITY must be empty, none or tls (got '${CASSANDRA_SECURITY}')" ;;
esac
NODES="${CASSANDRA_NODES:-1}"
[[ "$NODES" =~ ^[1-9]$ ]] || die "CASSANDRA_NODES must be 1..9 (got '$NODES')"

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

# tls_material TLS_DIR: a CA of the run's own and the node's certificate (SAN IP:127.0.0.1,
# DNS:localhost) in a PKCS12 keystore, made once and kept across starts (also when the node's data is
# wiped). Writes TLS_DIR/ca.pem, TLS_DIR/node.p12 and TLS_DIR/keystore.pass.
tls_material() {
    local tls="$1"
    if [[ -s "$tls/ca.pem" && -s "$tls/node.p12" && -s "$tls/keystore.pass" ]]; then return 0; fi
    command -v openssl >/dev/null || die "openssl not found (needed for CASSANDRA_SECURITY=tls)"
    rm -rf "$tls"
    mkdir -p "$tls"
    local work
    work="$(mktemp -d "$tls/.make.XXXXXX")"
    (
        set -e
        cd "$work"
        openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -keyout ca.key -out ca.pem \
            -subj "/CN=confab-test-cassandra-ca" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
        openssl req -newkey rsa:2048 -nodes -sha256 -keyout node.key -out node.csr -subj "/CN=localhost"
        printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
            "extendedKeyUsage=serverAuth" "subjectAltName=IP:127.0.0.1,DNS:localhost" >node.ext
        openssl x509 -req -in node.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 -sha256 \
            -extfile node.ext -out node.pem
        rand_hex 16 >keystore.pass
        openssl pkcs12 -export -in node.pem -inkey node.key -certfile ca.pem -name node \
            -out node.p12 -passout "file:keystore.pass"
    ) >"$work/openssl.log" 2>&1 || { cat "$work/openssl.log" >&2; rm -rf "$work"; die "could not make the TLS material"; }
    chmod 600 "$work"/*.key "$work/keystore.pass" "$work/node.p12"
    mv "$work/ca.key" "$work/node.key" "$work/node.pem" "$work/node.p12" "$work/keystore.pass" "$tls/"
    mv "$work/ca.pem" "$tls/ca.pem" # last: its presence (with the others) marks the material complete
    rm -rf "$work"
    log "made a CA and the node's keystore in $tls"
}

# stop RUN_DIR: stop the node of RUN_DIR (its command line names RUN_DIR/cassandra), and the nodes of
# a cluster started there (RUN_DIR/cassandra/nodeI), whatever CASSANDRA_NODES says now. A cluster's
# nodes get TERM all at once and KILL 5 s later: on TERM a node waits for its messaging to peers to
# quiesce, which took 14-16 s when a peer was down or stopping (all at once or one after the other
# alike), and their data is of no use after a stop (start wipes it).
stop() {
    local run_dir="$1" piddir
    if [[ -d "$run_dir" ]]; then run_dir="$(cd "$run_dir" && pwd)"; fi
    if [[ -f "$run_dir/cassandra/pid" ]] || ! any_node_pid "$run_dir"; then
        stop_pidfile "$run_dir/cassandra/pid" "-Dcassandra.storagedir=$run_dir/cassandra" 15
    fi
    local -a waits=()
    for piddir in "$run_dir"/cassandra/node[1-9]; do
        [[ -f "$piddir/pid" ]] || continue
        LOG_PREFIX="cassandra ${piddir##*/}" stop_pidfile "$piddir/pid" "-Dcassandra.storagedir=$piddir" 5 &
        waits+=("$!")
    done
    local w rc=0
    for w in "${waits[@]}"; do wait "$w" || rc=1; done
    return "$rc"
}

# any_node_pid RUN_DIR: is there a pid file of a cluster node under RUN_DIR/cassandra?
any_node_pid() {
    local f
    for f in "$1"/cassandra/node[1-9]/pid; do [[ -f "$f" ]] && return 0; done
    return 1
}

# wait_cql HOST PORT PID TIMEOUT_S: waits until the node answers a real CQL v4 query (STARTUP + QUERY
# system.local). Prints release_version. Exits 2 when PID exits first, 1 on timeout, 3 when a setup
# statement fails. Secured mode, from the environment (secrets stay out of the command line):
#   CQL_CA                 connect with TLS, verifying the node against this CA (PEM) and HOST
#   CQL_USER, CQL_PASSWORD log in with these (SASL PLAIN, as PasswordAuthenticator asks)
#   CQL_SETUP              statements, one a line, run once over that connection when it answers
#   CQL_CHECK_USER, CQL_CHECK_PASSWORD  then wait until this login answers the query too
#   CQL_REJECT_USER, CQL_REJECT_PASSWORD  and fail (exit 3) if this login is not refused
# Cluster:
#   CQL_PEERS              then wait until the node's system.peers lists this many peers, each with its
#                          rpc_address and tokens (a peer is written there when it turns NORMAL)
wait_cql() {
    python3 - "$@" <<'EOF'
import os, socket, ssl, struct, sys, time

host, port, pid, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
ca = os.environ.get("CQL_CA") or None
user, password = os.environ.get("CQL_USER") or None, os.environ.get("CQL_PASSWORD") or ""
setup = [l.strip() for l in os.environ.get("CQL_SETUP", "").splitlines() if l.strip()]
check_user, check_password = os.environ.get("CQL_CHECK_USER") or None, os.environ.get("CQL_CHECK_PASSWORD") or ""
reject_user, reject_password = os.environ.get("CQL_REJECT_USER") or None, os.environ.get("CQL_REJECT_PASSWORD") or ""
peers = int(os.environ.get("CQL_PEERS") or "-1")

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

def error_text(op, body):
    if op == 0x00 and len(body) >= 6:  # ERROR: [int] code, [string] message
        code, n = struct.unpack_from(">iH", body, 0)
        return "error 0x%04x: %s" % (code, body[6:6 + n].decode(errors="replace"))
    return "opcode %d: %r" % (op, body[:200])

def connect(login, secret):
    """A ready connection: TCP (+ TLS) + STARTUP (+ SASL PLAIN login)."""
    s = socket.create_connection((host, port), timeout=5)
    try:
        if ca:
            ctx = ssl.create_default_context(cafile=ca)  # verifies the chain and HOST against the SAN
            s = ctx.wrap_socket(s, server_hostname=host)
        s.settimeout(10)
        s.sendall(frame(0x01, struct.pack(">H", 1) + string("CQL_VERSION") + string("3.0.0")))
        op, body = read_frame(s)
        if op == 0x03:  # AUTHENTICATE
            if login is None:
                raise RuntimeError("the node asks for a login and none was given")
            token = b"\0" + login.encode() + b"\0" + secret.encode()
            s.sendall(frame(0x0F, struct.pack(">i", len(token)) + token))
            op, body = read_frame(s)
            if op != 0x10:  # AUTH_SUCCESS
                raise RuntimeError("login as %s: %s" % (login, error_text(op, body)))
        elif op != 0x02:  # READY
            raise RuntimeError("STARTUP answered " + error_text(op, body))
        return s
    except BaseException:
        s.close()
        raise

def query(s, text):
    q = text.encode()
    s.sendall(frame(0x07, struct.pack(">i", len(q)) + q + struct.pack(">HB", 0x0001, 0), stream=1))
    op, body = read_frame(s)
    if op != 0x08:
        raise RuntimeError("QUERY answered " + error_text(op, body))
    return body

def probe(login, secret, keep=False):
    s = connect(login, secret)
    try:
        body = query(s, "SELECT release_version FROM system.local")
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
        version = body[off + 4: off + 4 + n].decode() if nrows and n >= 0 else "?"
    except BaseException:
        s.close()
        raise
    if keep:
        return version, s
    s.close()
    return version, None

def rows(body):
    """The rows of a Rows result, each a list of raw values (None for null)."""
    kind, flags, ncols = struct.unpack_from(">iii", body, 0)
    off = 12
    def skip_string():
        nonlocal off
        (n,) = struct.unpack_from(">H", body, off)
        off += 2 + n
    def skip_option():
        nonlocal off
        (t,) = struct.unpack_from(">H", body, off)
        off += 2
        if t == 0x0000:  # custom
            skip_string()
        elif t in (0x0020, 0x0022):  # list, set
            skip_option()
        elif t == 0x0021:  # map
            skip_option(); skip_option()
        elif t == 0x0030:  # udt
            skip_string(); skip_string()
            (n,) = struct.unpack_from(">H", body, off)
            off += 2
            for _ in range(n):
                skip_string(); skip_option()
        elif t == 0x0031:  # tuple
            (n,) = struct.unpack_from(">H", body, off)
            off += 2
            for _ in range(n):
                skip_option()
    if flags & 0x0002:  # has_more_pages: paging state
        (n,) = struct.unpack_from(">i", body, off)
        off += 4 + max(n, 0)
    if flags & 0x0001:
        skip_string(); skip_string()
    for _ in range(ncols):
        if not flags & 0x0001:
            skip_string(); skip_string()
        skip_string()
        skip_option()
    (nrows,) = struct.unpack_from(">i", body, off)
    off += 4
    out = []
    for _ in range(nrows):
        row = []
        for _ in range(ncols):
            (n,) = struct.unpack_from(">i", body, off)
            off += 4
            row.append(body[off:off + n] if n >= 0 else None)
            off += max(n, 0)
        out.append(row)
    return out

deadline = time.monotonic() + timeout

def wait(login, secret, keep=False):
    last = None
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            print("process %d exited" % pid, file=sys.stderr)
            sys.exit(2)
        try:
            return probe(login, secret, keep)
        except Exception as e:  # not ready yet
            last = e
        time.sleep(0.25)
    print("timed out after %.0fs; last error: %s" % (timeout, last), file=sys.stderr)
    sys.exit(1)

version, conn = wait(user, password, keep=bool(setup))
if conn is not None:
    with conn:
        for stmt in setup:
            try:
                query(conn, stmt)
            except Exception as e:
                print("setup statement failed (%s): %s" % (stmt.split(" WITH ")[0], e), file=sys.stderr)
                sys.exit(3)
if check_user is not None:
    wait(check_user, check_password)
if reject_user is not None:
    try:
        connect(reject_user, reject_password).close()
    except Exception as e:
        if "login as" not in str(e):
            print("checking that %s is refused: %s" % (reject_user, e), file=sys.stderr)
            sys.exit(3)
    else:
        print("the node still takes the login %s with its old password" % reject_user, file=sys.stderr)
        sys.exit(3)
if peers >= 0:
    last = None
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            print("process %d exited" % pid, file=sys.stderr)
            sys.exit(2)
        try:
            s = connect(user, password)
            with s:
                found = rows(query(s, "SELECT peer, rpc_address, tokens FROM system.peers"))
            ready_peers = [r for r in found if r[1] is not None and r[2] is not None]
            if len(ready_peers) >= peers:
                break
            last = "%d of %d peers ready" % (len(ready_peers), peers)
        except Exception as e:
            last = e
        if time.monotonic() >= deadline:
            print("timed out after %.0fs waiting for %d peers; last: %s" % (timeout, peers, last), file=sys.stderr)
            sys.exit(1)
        time.sleep(0.25)
print(version)
EOF
}

# wipe_node: empty the data of the node in $dir (and its logs).
wipe_node() {
    rm -rf "$dir/data" "$dir/commitlog" "$dir/hints" "$dir/saved_caches" "$dir/cdc_raw"
    mkdir -p "$dir/data" "$dir/commitlog" "$dir/hints" "$dir/saved_caches" "$dir/cdc_raw"
    : >"$dir/system.log"
    : >"$dir/stdout.log"
}

# launch ATTEMPT: a fresh node: wipe its data, pick ports, write its config, start it.
launch() {
    wipe_node

    local ports
    ports="$(pick_free_ports 3)"
    read -r native_port storage_port jmx_port <<<"$ports"
    native_port="${CASSANDRA_PORT:-$native_port}"

    local addr=127.0.0.1 token=0 node_no=0 heap="${CASSANDRA_HEAP:-1G}" jvm_opts="${CASSANDRA_JVM_OPTS:-}"
    run_node
    # Don't leave a half-started node behind if we fail or are interrupted while waiting.
    STARTING_RUN_DIR="$run_dir"
    trap 'rc=$?; trap - EXIT; if [[ $rc -ne 0 ]]; then stop "$STARTING_RUN_DIR" || true; fi; exit $rc' EXIT
    trap 'exit 130' INT TERM HUP
    log "started pid $pid (cql 127.0.0.1:$native_port, storage $storage_port, jmx $jmx_port)"
}

# run_node: write the config of the node in $dir and start it (its data as it is), in the background;
# sets pid. Reads addr, token, native_port, storage_port, jmx_port, heap, jvm_opts, node_no (0: the
# single node; I: node I of a cluster of NODES) and, when SECURED, tls_dir.
run_node() {
    local title="single-node test instance" snitch=SimpleSnitch hints=false
    if (( node_no > 0 )); then
        title="node $node_no of a $NODES-node test cluster"
        snitch=GossipingPropertyFileSnitch
        hints=true
        printf '%s\n' "dc=dc1" "rack=rack1" >"$dir/cassandra-rackdc.properties"
    fi

    local security
    if (( SECURED )); then
        security="authenticator: PasswordAuthenticator
authorizer: CassandraAuthorizer
role_manager: CassandraRoleManager
network_authorizer: AllowAllNetworkAuthorizer
# no cache of logins: with the default (2s) cassandra/cassandra, used at start, went on working for up
# to 2 s after its password was changed
credentials_validity: 0ms
# the native port takes TLS only (optional: false); no client certificates
client_encryption_options:
  enabled: true
  optional: false
  keystore: $tls_dir/node.p12
  keystore_password: $(cat "$tls_dir/keystore.pass")
  store_type: PKCS12
  require_client_auth: false"
    else
        security="authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer
role_manager: CassandraRoleManager
network_authorizer: AllowAllNetworkAuthorizer"
    fi

    cat >"$dir/cassandra.yaml" <<EOF
# Generated by scripts/services/cassandra.sh: $title.
cluster_name: confab-test
num_tokens: 1
initial_token: $token
auto_bootstrap: false
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: $snitch
dynamic_snitch: false
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "127.0.0.1:$storage_port"
listen_address: $addr
rpc_address: $addr
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

$security

hinted_handoff_enabled: $hints
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
    # unsafesystem: no flush of the system tables (faster DDL). Not for a cluster's nodes: they restart
    # with their data (start-node) after a kill -9, and a node whose schema tables were not flushed
    # comes back without the keyspaces made since its start and skips their data in the commit log
    # replay ("Skipped N mutations from unknown (probably removed) CF").
    local -a unsafe=(-Dcassandra.unsafesystem=true)
    if (( node_no > 0 )); then unsafe=(); fi
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
        -Dcassandra.initial_token="$token"
        -Dcassandra.superuser_setup_delay_ms=0
        -Dcassandra.skip_schema_check=true
        -Dcassandra.migration_task_wait_in_seconds=0
        -Dcassandra.disable_max_map_count_check=true
        "${unsafe[@]}"
        -Dcassandra.memtable_row_overhead_computation_step=100
    )
    if (( node_no > 0 )); then
        jvm+=(-Dcassandra-rackdc.properties="file://$dir/cassandra-rackdc.properties")
    fi
    # Extra JVM options, whitespace-separated.
    local -a extra=()
    read -r -a extra <<<"$jvm_opts"
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
        </dev/null >>"$dir/stdout.log" 2>&1 &
    wait_until 5 have_pid || die "no pid file after 5 s"
    pid="$(cat "$dir/pid")"
}

have_pid() { [[ -s "$dir/pid" ]]; }

# ready: for start_with_retries (75: the node exited before CQL answered, as when a port was taken).
# Secured: waits over TLS as the default superuser (cassandra/cassandra, made at start), then creates
# the login confab, gives the superuser a random password, and waits until confab answers too.
ready() {
    local rc=0 timeout="${CASSANDRA_START_TIMEOUT:-180}"
    if (( SECURED )); then
        version="$(CQL_CA="$tls_dir/ca.pem" CQL_USER=cassandra CQL_PASSWORD=cassandra \
            CQL_SETUP="CREATE ROLE confab WITH PASSWORD = '$confab_password' AND LOGIN = true AND SUPERUSER = false
GRANT CREATE ON ALL KEYSPACES TO confab
ALTER ROLE cassandra WITH PASSWORD = '$superuser_password'" \
            CQL_CHECK_USER=confab CQL_CHECK_PASSWORD="$confab_password" \
            CQL_REJECT_USER=cassandra CQL_REJECT_PASSWORD=cassandra \
            wait_cql 127.0.0.1 "$native_port" "$pid" "$timeout")" || rc=$?
    else
        version="$(CQL_CA='' CQL_USER='' CQL_SETUP='' CQL_CHECK_USER='' CQL_REJECT_USER='' \
            wait_cql 127.0.0.1 "$native_port" "$pid" "$timeout")" || rc=$?
    fi
    (( rc != 2 )) || return 75
    (( rc != 3 )) || fail "setting up the roles failed"
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
    if (( NODES > 1 && SECURED )); then die "CASSANDRA_NODES=$NODES does not combine with CASSANDRA_SECURITY=tls"; fi
    local run_dir
    run_dir="$(mkdir -p "$1" && cd "$1" && pwd)"
    install
    if [[ -f "$run_dir/cassandra/pid" ]] || any_node_pid "$run_dir"; then stop "$run_dir"; fi
    if (( NODES > 1 )); then
        start_cluster "$run_dir"
        return
    fi

    local dir="$run_dir/cassandra" native_port storage_port jmx_port pid version t0
    local tls_dir="$run_dir/cassandra-tls" confab_password="" superuser_password=""
    mkdir -p "$dir"
    t0="$(now)"
    if (( SECURED )); then
        tls_material "$tls_dir"
        confab_password="$(openssl rand -hex 16)"
        superuser_password="$(openssl rand -hex 16)"
        rm -f "$dir/superuser.pass"
    fi
    start_with_retries 3 launch ready fail "$dir/system.log"
    trap - EXIT INT TERM HUP

    if (( SECURED )); then
        (umask 077 && echo "$superuser_password" >"$dir/superuser.pass")
        set_env "$run_dir/env" "CONFAB_CASSANDRA_NODES=127.0.0.1:$native_port" \
            "CONFAB_CASSANDRA_USER=confab" "CONFAB_CASSANDRA_PASSWORD=$confab_password" \
            "CONFAB_CASSANDRA_CA=$tls_dir/ca.pem"
        echo "cassandra: ready: Cassandra $version on 127.0.0.1:$native_port (TLS, login confab) in $(elapsed "$t0")s, RSS $(rss_of "$pid")"
    else
        # a secured start of this RUN_DIR before left a login and a CA that would not fit this node
        drop_env "$run_dir/env" 'USER|PASSWORD|CA|REPLICAS'
        set_env "$run_dir/env" "CONFAB_CASSANDRA_NODES=127.0.0.1:$native_port"
        echo "cassandra: ready: Cassandra $version on 127.0.0.1:$native_port in $(elapsed "$t0")s, RSS $(rss_of "$pid")"
    fi
}

# drop_env FILE 'A|B': remove the lines CONFAB_CASSANDRA_A=... and CONFAB_CASSANDRA_B=... from FILE (left
# by an earlier start of another mode in the same RUN_DIR).
drop_env() {
    local envf="$1" pat="^CONFAB_CASSANDRA_($2)="
    if grep -qE "$pat" "$envf" 2>/dev/null; then
        local tmp
        tmp="$(mktemp "$envf.XXXXXX")"
        grep -vE "$pat" "$envf" >"$tmp" || true
        cat "$tmp" >"$envf"
        rm -f "$tmp"
    fi
}

# ---- Replicated mode (CASSANDRA_NODES > 1) ----
# The cluster's settings, kept for start-node, are in RUN_DIR/cassandra/cluster.env.

# pick_cluster_ports N: "NATIVE STORAGE JMX_1 .. JMX_N": NATIVE and STORAGE free on each of 127.0.0.1..N
# (bound on all at once; NATIVE is CASSANDRA_PORT when set), JMX_I free on 127.0.0.1 (where JMX listens).
pick_cluster_ports() {
    "$PY3" - "$1" "${CASSANDRA_PORT:-0}" <<'PYEOF'
import socket, sys
n, fixed = int(sys.argv[1]), int(sys.argv[2])
addrs = ["127.0.0.%d" % i for i in range(1, n + 1)]
held = []
def bind(addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    held.append(s)
    s.bind((addr, port))
    return s.getsockname()[1]
def shared():
    for _ in range(50):
        try:
            p = bind(addrs[0], 0)
            for a in addrs[1:]:
                bind(a, p)
            return p
        except OSError:
            continue
    sys.exit("no port free on all of " + ", ".join(addrs))
native = fixed or shared()
storage = shared()
jmx = [bind("127.0.0.1", 0) for _ in range(n)]
print(native, storage, *jmx)
PYEOF
}

# cluster_tokens N: N evenly spaced Murmur3 tokens, one a node.
cluster_tokens() {
    "$PY3" -c 'import sys; n = int(sys.argv[1]); print(*[-2**63 + i * (2**64 // n) for i in range(n)])' "$1"
}

# load_cluster: read RUN_DIR/cassandra/cluster.env (into the caller's locals nodes, native_port,
# storage_port, jmx_ports, tokens, heap, jvm_opts).
load_cluster() {
    [[ -f "$run_dir/cassandra/cluster.env" ]] || die "no cluster was started in $run_dir (start it with CASSANDRA_NODES=3)"
    # shellcheck source=/dev/null
    . "$run_dir/cassandra/cluster.env"
}

# node_env I: the node I's dir, address, token and JMX port (reads the cluster's settings).
node_env() {
    node_no="$1"
    dir="$run_dir/cassandra/node$1"
    addr="127.0.0.$1"
    token="${tokens[$1 - 1]}"
    jmx_port="${jmx_ports[$1 - 1]}"
}

node_arg() {
    if ! [[ "$1" =~ ^[1-9]$ ]] || (( $1 > nodes )); then die "node must be 1..$nodes (got '$1')"; fi
}

# cql_port_closed ADDR PORT: does nothing accept connections on ADDR:PORT?
cql_port_closed() {
    "$PY3" - "$1" "$2" <<'PYEOF'
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()
except OSError:
    sys.exit(0)
sys.exit(1)
PYEOF
}

node_gone() { ! pid_matches "$pid" "-Dcassandra.storagedir=$dir"; }

# node_ready [PEERS]: wait until the node answers CQL (and lists PEERS peers); wait_cql's status.
node_ready() {
    local rc=0
    version="$(CQL_CA='' CQL_USER='' CQL_SETUP='' CQL_CHECK_USER='' CQL_REJECT_USER='' CQL_PEERS="${1:-}" \
        wait_cql "$addr" "$native_port" "$pid" "${CASSANDRA_START_TIMEOUT:-180}")" || rc=$?
    return "$rc"
}

start_cluster() {
    local run_dir="$1"
    local t0 attempt i rc dir addr token node_no native_port storage_port jmx_port pid version
    local nodes="$NODES" heap="${CASSANDRA_HEAP:-1G}" jvm_opts="${CASSANDRA_JVM_OPTS:-}"
    local -a ports jmx_ports tokens pids
    t0="$(now)"
    mkdir -p "$run_dir/cassandra"
    read -r -a tokens <<<"$(cluster_tokens "$nodes")"
    STARTING_RUN_DIR="$run_dir"
    trap 'rc=$?; trap - EXIT; if [[ $rc -ne 0 ]]; then stop "$STARTING_RUN_DIR" || true; fi; exit $rc' EXIT
    trap 'exit 130' INT TERM HUP
    for (( attempt = 1; ; attempt++ )); do
        read -r -a ports <<<"$(pick_cluster_ports "$nodes")"
        native_port="${ports[0]}" storage_port="${ports[1]}" jmx_ports=("${ports[@]:2}")
        {
            printf 'nodes=%q\nnative_port=%q\nstorage_port=%q\nheap=%q\njvm_opts=%q\n' \
                "$nodes" "$native_port" "$storage_port" "$heap" "$jvm_opts"
            printf 'jmx_ports=(%s)\ntokens=(%s)\n' "${jmx_ports[*]}" "${tokens[*]}"
        } >"$run_dir/cassandra/cluster.env"
        rc=0
        pids=()
        # One after the other: each joins the ring (no bootstrap: the cluster is new and empty) before
        # the next one starts.
        for (( i = 1; i <= nodes; i++ )); do
            node_env "$i"
            mkdir -p "$dir"
            wipe_node
            run_node
            pids+=("$pid")
            log "node $i: started pid $pid ($addr, cql $native_port, storage $storage_port, jmx $jmx_port, token $token)"
            node_ready || rc=$?
            (( rc == 0 )) || break
            log "node $i: answers CQL after $(elapsed "$t0")s"
        done
        if (( rc == 2 && attempt < 3 )); then
            log "node $i exited at start (attempt $attempt of 3; a port taken?); trying other ports"
            tail -n 5 "$dir/system.log" >&2 || true
            stop "$run_dir"
            continue
        fi
        (( rc == 0 )) || fail "node $i: $( (( rc == 2 )) && echo "exited at start" || echo "no CQL answer")"
        break
    done
    # Every node lists all the others as peers (NORMAL, with their rpc_address).
    for (( i = 1; i <= nodes; i++ )); do
        node_env "$i"
        pid="${pids[$i - 1]}"
        node_ready "$((nodes - 1))" || fail "node $i: does not list its $((nodes - 1)) peers (status $?)"
    done
    trap - EXIT INT TERM HUP

    local list="" rss=""
    for (( i = 1; i <= nodes; i++ )); do
        list+="${list:+,}127.0.0.$i:$native_port"
        rss+="${rss:+, }$(rss_of "${pids[$i - 1]}")"
    done
    drop_env "$run_dir/env" 'USER|PASSWORD|CA'
    set_env "$run_dir/env" "CONFAB_CASSANDRA_NODES=$list" "CONFAB_CASSANDRA_REPLICAS=$nodes"
    echo "cassandra: ready: Cassandra $version, $nodes nodes on $list in $(elapsed "$t0")s, RSS $rss"
}

# kill_node RUN_DIR I: kill -9 node I; returns once its CQL port is closed.
kill_node() {
    local run_dir nodes native_port storage_port heap jvm_opts dir addr token node_no jmx_port pid t0
    local -a jmx_ports tokens
    run_dir="$(cd "$1" && pwd)" || die "no such run dir: $1"
    load_cluster
    node_arg "$2"
    node_env "$2"
    t0="$(now)"
    pid="$(cat "$dir/pid" 2>/dev/null || true)"
    pid_matches "$pid" "-Dcassandra.storagedir=$dir" || die "node $2 is not running"
    kill -KILL "$pid"
    wait_until 30 node_gone || die "node $2 (pid $pid) still there 30 s after KILL"
    wait_until 30 cql_port_closed "$addr" "$native_port" || die "node $2: $addr:$native_port still open 30 s after KILL"
    rm -f "$dir/pid"
    log "node $2 killed (pid $pid; $addr:$native_port closed after $(elapsed "$t0")s)"
}

# start_node RUN_DIR I: start node I again, with its data; returns when it answers CQL.
start_node() {
    local run_dir nodes native_port storage_port heap jvm_opts dir addr token node_no jmx_port pid t0 version
    local -a jmx_ports tokens
    (( ! SECURED )) || die "start-node does not combine with CASSANDRA_SECURITY=tls"
    run_dir="$(cd "$1" && pwd)" || die "no such run dir: $1"
    load_cluster
    node_arg "$2"
    node_env "$2"
    install
    pid="$(cat "$dir/pid" 2>/dev/null || true)"
    if pid_matches "$pid" "-Dcassandra.storagedir=$dir"; then die "node $2 is running (pid $pid)"; fi
    [[ -d "$dir/data" ]] || die "node $2 has no data dir ($dir/data): start the cluster first"
    t0="$(now)"
    run_node
    STARTING_PIDFILE="$dir/pid" STARTING_MATCH="-Dcassandra.storagedir=$dir"
    trap 'rc=$?; trap - EXIT; if [[ $rc -ne 0 ]]; then stop_pidfile "$STARTING_PIDFILE" "$STARTING_MATCH" 15 || true; fi; exit $rc' EXIT
    trap 'exit 130' INT TERM HUP
    log "node $2: started pid $pid ($addr, cql $native_port) with its data"
    local rc=0
    node_ready || rc=$?
    (( rc == 0 )) || fail "node $2: $( (( rc == 2 )) && echo "exited at start" || echo "no CQL answer")"
    trap - EXIT INT TERM HUP
    echo "cassandra: node $2 ready on $addr:$native_port in $(elapsed "$t0")s, RSS $(rss_of "$pid")"
}

usage() {
    echo "usage: $0 install | start RUN_DIR | stop RUN_DIR | kill RUN_DIR NODE | start-node RUN_DIR NODE" >&2
    exit 2
}

cmd="${1:-}"
case "$cmd" in
    install) install ;;
    start) [[ $# -eq 2 ]] || usage; start "$2" ;;
    stop) [[ $# -eq 2 ]] || usage; stop "$2" ;;
    kill) [[ $# -eq 3 ]] || usage; kill_node "$2" "$3" ;;
    start-node) [[ $# -eq 3 ]] || usage; start_node "$2" "$3" ;;
    *) usage ;;
esac
