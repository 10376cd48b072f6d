#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ for a bounded time each (CI's smoke fuzzing):
#   1. installs cargo-fuzz (and the nightly toolchain it needs) if missing,
#   2. builds every target once with `cargo +nightly fuzz build -s none` (release, debug
#      assertions and overflow checks on, no sanitizer: the targets and the code they reach are
#      safe Rust, so AddressSanitizer would mostly slow the build and the runs down),
#   3. runs each for CONFAB_FUZZ_SECONDS_PER_TARGET seconds (default 8: seven targets in about a
#      minute) over a copy of its checked-in corpus (fuzz/corpus/<target>/ is never modified),
#   4. prints per target the executions (libFuzzer's stat::number_of_executed_units) and whether
#      it crashed; a crash's input is kept in fuzz/artifacts/<target>/ and the script fails.
# Usage: scripts/fuzz.sh [target...]   (default: all targets). Honors CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

LOG_PREFIX="fuzz.sh"
log() { echo "${LOG_PREFIX}: $*" >&2; }
die() { log "error: $*"; exit 1; }

seconds="${CONFAB_FUZZ_SECONDS_PER_TARGET:-8}"
[[ "$seconds" =~ ^[0-9]+$ ]] || die "CONFAB_FUZZ_SECONDS_PER_TARGET must be whole seconds, got '$seconds'"

command -v cargo >/dev/null || die "cargo not found: install Rust (rustup) first"
if ! cargo +nightly --version >/dev/null 2>&1; then
  log "installing the nightly toolchain"
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  log "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

target_dir_args=()
if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
  target_dir_args=(--target-dir "$CARGO_TARGET_DIR")
fi
target_dir="${CARGO_TARGET_DIR:-fuzz/target}"
host="$(rustc +nightly -vV | sed -n 's/^host: //p')"
bin_dir="$target_dir/$host/release"

if [[ $# -gt 0 ]]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
[[ ${#targets[@]} -gt 0 ]] || die "no fuzz targets found"

log "building ${#targets[@]} targets"
build_start=$(date +%s)
cargo +nightly fuzz build -s none "${target_dir_args[@]}" || die "the fuzz targets do not build"
log "built in $(($(date +%s) - build_start)) s; running each for ${seconds} s"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

failed=()
summary=()
for t in "${targets[@]}"; do
  bin="$bin_dir/$t"
  [[ -x "$bin" ]] || die "no binary for target $t at $bin"
  mkdir -p "$work/$t/corpus" "$work/$t/artifacts"
  if [[ -d "fuzz/corpus/$t" ]]; then
    cp -R "fuzz/corpus/$t/." "$work/$t/corpus/"
  fi
  rc=0
  "$bin" "$work/$t/corpus" \
    -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$work/$t/artifacts/" >"$work/$t/log" 2>&1 || rc=$?
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t/log" | tail -n 1)"
  crashes=("$work/$t/artifacts/"*)
  if [[ $rc -ne 0 || -e "${crashes[0]}" ]]; then
    mkdir -p "fuzz/artifacts/$t"
    if [[ -e "${crashes[0]}" ]]; then
      cp "${crashes[@]}" "fuzz/artifacts/$t/"
    fi
    cp "$work/$t/log" "fuzz/artifacts/$t/fuzz.log"
    log "$t crashed (exit $rc); input and log kept in fuzz/artifacts/$t/; the log's end:"
    tail -n 30 "$work/$t/log" >&2
    failed+=("$t")
    summary+=("$(printf '%-14s %12s executions  CRASHED' "$t" "${execs:-?}")")
  else
    summary+=("$(printf '%-14s %12s executions  ok' "$t" "${execs:-?}")")
  fi
done

log "results (${seconds} s per target):"
printf '  %s\n' "${summary[@]}" >&2
if [[ ${#failed[@]} -gt 0 ]]; then
  die "${#failed[@]} target(s) crashed: ${failed[*]} (reproduce: cargo +nightly fuzz run -s none <target> fuzz/artifacts/<target>/<crash file>)"
fi
log "no crashes"
