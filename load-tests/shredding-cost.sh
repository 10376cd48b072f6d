#!/usr/bin/env bash
# What crypto-shredding costs (issue 18): scenario 1 (send -> message:new, send -> ack) with a
# build from before texts were sealed and with this one, back to back in one run, embedded and
# then on the real stack (same servers for both builds). Each build runs with its own harness.
#   load-tests/shredding-cost.sh [--before REV] [--rate R] [--messages N]
# Appends the four tables to load-tests/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
before=8c67af8 # the last commit without sealing
if [[ "${1:-}" == --before ]]; then before="$2"; shift 2; fi
args=("$@")
[[ ${#args[@]} -gt 0 ]] || args=(--messages 4000 --rate 1000)
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
  echo "command: \`load-tests/shredding-cost.sh $*\` (before: $before, after: $(git rev-parse --short HEAD))"
} >> load-tests/RESULTS.md
for mode in embedded distributed; do
  for build in before after; do
    out="$(CONFAB_BIN="$work/confab-$build" "$work/confab-load-$build" latency --mode "$mode" "${args[@]}")"
    printf '\n%s, %s build\n%s\n' "$mode" "$build" "$out" | tee -a load-tests/RESULTS.md
  done
done
