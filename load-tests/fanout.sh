#!/usr/bin/env bash
# Scenario 3 (fanout): N members of one channel all connected; time for a message to reach
# every socket, and presence propagation between gateways.
#   load-tests/fanout.sh [--mode embedded|distributed] [--members N] [--messages M]
# distributed (default): starts Kafka, Cassandra, Redis and OpenSearch, then Confab (release
# build) with two gateways. embedded: one `confab serve`. Needs ulimit -n >= N + 1000.
# Appends the table to load-tests/RESULTS.md with the date, machine and command.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/confab-target}"
cargo build --release -p confab -p confab-load
export CONFAB_BIN="$CARGO_TARGET_DIR/release/confab"
if [[ " $* " != *" --mode embedded "* ]]; then
  run_dir="$(mktemp -d /tmp/confab-bench.XXXXXX)"
  trap 'scripts/services/all.sh stop "$run_dir" || true; rm -rf "$run_dir"' EXIT
  scripts/services/all.sh start "$run_dir" >/dev/null
  export CONFAB_TEST_ENV="$run_dir/env"
fi
out="$("$CARGO_TARGET_DIR/release/confab-load" fanout "$@")"
echo "$out"
{
  echo
  echo "### $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GiB, $(uname -m)"
  echo "command: \`load-tests/fanout.sh $*\`"
  echo
  echo "$out"
} >> load-tests/RESULTS.md
