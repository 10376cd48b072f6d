#!/usr/bin/env bash
# Starts or stops every real server the distributed tests need, on free 127.0.0.1 ports:
# Apache Kafka 4.4 (KRaft, from Maven Central), Cassandra 5.0 (Maven Central), Redis 7 (Debian),
# OpenSearch 2.19 (Maven Central), MinIO (S3-compatible object store, go install from the Go module proxy).
# The schema registry is Confab's own (`confab registry`), started by the tests themselves.
#   all.sh start RUN_DIR   -> RUN_DIR/env holds CONFAB_KAFKA_BROKERS, CONFAB_CASSANDRA_NODES, CONFAB_REDIS_URL,
#                             CONFAB_OPENSEARCH_URL, CONFAB_S3_ENDPOINT, CONFAB_S3_ACCESS_KEY, CONFAB_S3_SECRET_KEY,
#                             CONFAB_S3_REGION
#   all.sh stop RUN_DIR
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cmd="${1:?start|stop|install}"; run="${2:-}"

case "$cmd" in
  install)
    "$here/redis.sh" install
    "$here/kafka.sh" install
    "$here/cassandra.sh" install
    "$here/opensearch.sh" install
    OPENSEARCH_SECURITY=tls "$here/opensearch.sh" install   # tests/tests/secured_servers.rs
    "$here/minio.sh" install ;;
  start)
    mkdir -p "$run"; : > "$run/env"
    # installs first (network bound), then starts in parallel (CPU bound, but each waits on I/O)
    "$here/redis.sh" install
    "$here/kafka.sh" install
    "$here/cassandra.sh" install
    "$here/opensearch.sh" install
    OPENSEARCH_SECURITY=tls "$here/opensearch.sh" install   # tests/tests/secured_servers.rs
    "$here/minio.sh" install
    "$here/redis.sh" start "$run"
    "$here/kafka.sh" start "$run" > "$run/kafka-start.out" 2>&1 & kpid=$!
    "$here/cassandra.sh" start "$run" > "$run/cassandra-start.out" 2>&1 & cpid=$!
    "$here/opensearch.sh" start "$run" > "$run/opensearch-start.out" 2>&1 & opid=$!
    "$here/minio.sh" start "$run" > "$run/minio-start.out" 2>&1 & mpid=$!
    ok=0
    wait $kpid || { echo "kafka failed to start:" >&2; cat "$run/kafka-start.out" >&2; ok=1; }
    wait $cpid || { echo "cassandra failed to start:" >&2; cat "$run/cassandra-start.out" >&2; ok=1; }
    wait $opid || { echo "opensearch failed to start:" >&2; cat "$run/opensearch-start.out" >&2; ok=1; }
    wait $mpid || { echo "minio failed to start:" >&2; cat "$run/minio-start.out" >&2; ok=1; }
    grep -h "ready" "$run/kafka-start.out" "$run/cassandra-start.out" "$run/opensearch-start.out" \
      "$run/minio-start.out" || true
    if [ $ok -ne 0 ]; then "$0" stop "$run"; exit 1; fi
    echo "services up; env in $run/env:"; cat "$run/env" ;;
  stop)
    "$here/kafka.sh" stop "$run" || true
    "$here/cassandra.sh" stop "$run" || true
    "$here/opensearch.sh" stop "$run" || true
    "$here/minio.sh" stop "$run" || true
    "$here/redis.sh" stop "$run" || true ;;
  *) echo "usage: $0 install|start RUN_DIR|stop RUN_DIR" >&2; exit 2 ;;
esac
