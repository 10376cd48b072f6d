#!/usr/bin/env bash
# Scenario 1 (latency), real stack: starts Kafka, Cassandra, Redis, then Confab (release build)
# with two gateways, and measures send -> message:new across gateways. Appends the table to
# load-tests/RESULTS.md with the date, machine and command.
#   load-tests/latency.sh [--messages N] [--rate R]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/confab-target}"
cargo build --release -p confab -p confab-load
run_dir="$(mktemp -d /tmp/confab-bench.XXXXXX)"
trap 'scripts/services/all.sh stop "$run_dir" || true; rm -rf "$run_dir"' EXIT
scripts/services/all.sh start "$run_dir" >/dev/null
export CONFAB_TEST_ENV="$run_dir/env" CONFAB_BIN="$CARGO_TARGET_DIR/release/confab"
out="$("$CARGO_TARGET_DIR/release/confab-load" latency "$@")"
echo "$out"
{
  echo
  echo "### $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GiB, $(uname -m)"
  echo "command: \`load-tests/latency.sh $*\`"
  echo
  echo "$out"
} >> load-tests/RESULTS.md
