#!/usr/bin/env bash
# What crypto-shredding costs (issue 18): a load scenario (default: latency, scenario 1: send ->
# message:new, send -> ack; `--scenario replay`: sustained ingest and the timeline and search
# rebuild rates) with a build from before a change and with this one, in one run, on the same
# servers. Each build runs
# with its own harness. The order alternates over rounds (before, after, then after, before, ...)
# after one discarded warm-up run per mode, so neither build always meets colder servers.
#   load-tests/shredding-cost.sh [--before REV] [--scenario latency|replay] [--modes embedded,distributed]
#                                [--rounds N] [SCENARIO ARGS]
# Appends every table to load-tests/RESULTS.md; compare medians and p99 across rounds.
set -euo pipefail
cd "$(dirname "$0")/.."
cmdline="$*"
before=8c67af8 # the last commit without sealing
modes=embedded,distributed
rounds=1
scenario=latency
while [[ $# -gt 0 ]]; do
  case "$1" in
    --before) before="$2"; shift 2 ;;
    --modes) modes="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --scenario) scenario="$2"; shift 2 ;;
    *) break ;;
  esac
done
args=("$@")
if [[ ${#args[@]} -eq 0 && "$scenario" == latency ]]; then args=(--messages 4000 --rate 1000); fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/confab-target}"
work="$(mktemp -d /tmp/confab-shredding-cost.XXXXXX)"
tree="$work/before"
cleanup() {
  [[ -n "${run_dir:-}" ]] && scripts/services/all.sh stop "$run_dir" >/dev/null 2>&1 || true
  git worktree remove --force "$tree" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
git worktree add --detach "$tree" "$before" >/dev/null
build() { # DIR NAME: release binaries of that tree, copied out
  (cd "$1" && cargo build --release -p confab -p confab-load)
  cp "$CARGO_TARGET_DIR/release/confab" "$work/confab-$2"
  cp "$CARGO_TARGET_DIR/release/confab-load" "$work/confab-load-$2"
}
build "$tree" before
build . after
run_dir="$work/servers"
scripts/services/all.sh start "$run_dir" >/dev/null
export CONFAB_TEST_ENV="$run_dir/env"
{
  echo
  echo "### crypto-shredding's cost, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GiB"
  echo "command: \`load-tests/shredding-cost.sh $cmdline\` (before: $before, after: $(git rev-parse --short HEAD))"
} >> load-tests/RESULTS.md
run() { # MODE BUILD: one run of the scenario
  CONFAB_BIN="$work/confab-$2" "$work/confab-load-$2" "$scenario" --mode "$1" "${args[@]}"
}
for mode in ${modes//,/ }; do
  run "$mode" after >/dev/null # warm-up, discarded: servers' JIT, page cache, a first keyspace
  for round in $(seq 1 "$rounds"); do
    order="before after"
    (( round % 2 == 0 )) && order="after before"
    for build in $order; do
      out="$(run "$mode" "$build")"
      printf '\n%s, %s build, round %s\n%s\n' "$mode" "$build" "$round" "$out" | tee -a load-tests/RESULTS.md
    done
  done
done
