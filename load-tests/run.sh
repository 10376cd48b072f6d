#!/usr/bin/env bash
# Runs one benchmark scenario of `confab-load` and appends its table to load-tests/RESULTS.md
# with the date, the machine and the command. Used by latency.sh, search.sh and fanout.sh:
#   load-tests/run.sh SCENARIO [--mode embedded|distributed] [scenario options]
# distributed (the default): starts Kafka, Cassandra, Redis, OpenSearch and MinIO on free ports
# first (their JVMs with the full JIT; CONFAB_BENCH_JIT=c1 for the test suite's C1-only start)
# and stops them afterwards; Confab is a release build either way.
set -euo pipefail
cd "$(dirname "$0")/.."
scenario="$1"
shift
script="${CONFAB_BENCH_SCRIPT:-load-tests/run.sh $scenario}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/confab-target}"
cargo build --release -p confab -p confab-load
export CONFAB_BIN="$CARGO_TARGET_DIR/release/confab"
# the real servers, unless the scenario runs embedded only (or against a peer only)
need_servers=1
if [[ " $* " == *" --mode embedded "* ]]; then need_servers=0; fi
if [[ " $* " == *" --system "* && " $* " != *distributed* ]]; then need_servers=0; fi
if [ "$need_servers" = 1 ]; then
  # The service scripts run their JVMs with the C1 compiler only (a faster start for the test
  # suite). Benchmarks run them as their docs do, with the full tiered JIT (C2), unless
  # CONFAB_BENCH_JIT=c1 asks for the test suite's setting.
  if [ "${CONFAB_BENCH_JIT:-c2}" != c1 ]; then
    export KAFKA_JIT_OPTS="" OPENSEARCH_JIT_OPTS="" CASSANDRA_JVM_OPTS="${CASSANDRA_JVM_OPTS:-} -XX:TieredStopAtLevel=4"
  fi
  run_dir="$(mktemp -d /tmp/confab-bench.XXXXXX)"
  trap 'scripts/services/all.sh stop "$run_dir" || true; rm -rf "$run_dir"' EXIT
  scripts/services/all.sh start "$run_dir" >/dev/null
  export CONFAB_TEST_ENV="$run_dir/env"
fi
# connection scenarios need many file descriptors (the servers started from here inherit it)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
out="$("$CARGO_TARGET_DIR/release/confab-load" "$scenario" "$@")"
echo "$out"
{
  echo
  echo "### $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GiB, $(uname -m)"
  echo "command: \`$script $*\`"
  echo
  echo "$out"
} >> load-tests/RESULTS.md
