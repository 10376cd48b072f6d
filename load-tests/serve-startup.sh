#!/usr/bin/env bash
# Embedded `confab serve` (release build): time from exec to a 200 on /healthz, and RSS at rest
# (after the first-run demo is created and 5 s idle), for a fresh and an existing data dir.
# Appends the table to load-tests/RESULTS.md.
#   load-tests/serve-startup.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/confab-target}"
cargo build --release -p confab
bin="$CARGO_TARGET_DIR/release/confab"
runs="${1:-5}"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
work="$(mktemp -d /tmp/confab-startup.XXXXXX)"; trap 'rm -rf "$work"' EXIT
measure() { # data_dir -> "ms rss_kib"
  local t0 t1 pid
  t0=$(date +%s%N)
  CONFAB_DATA_DIR="$1" CONFAB_GATEWAY__LISTEN="127.0.0.1:$port" CONFAB_LOG=warn "$bin" serve >/dev/null 2>&1 & pid=$!
  until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; do sleep 0.005; done
  t1=$(date +%s%N)
  sleep 5
  local rss; rss=$(awk '/VmRSS/{print $2}' /proc/$pid/status)
  kill -TERM $pid; wait $pid || true
  echo "$(( (t1 - t0) / 1000000 )) $rss"
}
fresh=(); existing=()
for i in $(seq 1 "$runs"); do fresh+=("$(measure "$work/fresh-$i")"); done
for i in $(seq 1 "$runs"); do existing+=("$(measure "$work/fresh-1")"); done
table=$(python3 - "${fresh[@]}" -- "${existing[@]}" <<'PY'
import sys, statistics
args = sys.argv[1:]; cut = args.index("--")
def row(name, xs):
    ms = [int(x.split()[0]) for x in xs]; rss = [int(x.split()[1]) for x in xs]
    return f"| {name} | {len(ms)} | {statistics.median(ms):.0f} | {max(ms)} | {statistics.median(rss)/1024:.1f} |"
print("| data dir | runs | ready median ms | ready max ms | RSS at rest MiB (median) |")
print("|---|---|---|---|---|")
print(row("fresh (creates the demo workspace)", args[:cut]))
print(row("existing", args[cut+1:]))
PY
)
echo "$table"
{
  echo
  echo "## Embedded startup and memory"
  echo
  echo "### $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GiB, $(uname -m)"
  echo "command: \`load-tests/serve-startup.sh $runs\`"
  echo
  echo "$table"
} >> load-tests/RESULTS.md
