# shellcheck shell=bash
# Shared helpers for scripts/services/*.sh (sourced, not run). Only minio.sh uses it so far.
#   . "$(dirname "$0")/../lib.sh"
# Expects the caller to define LOG_PREFIX (used by log/die) before calling them.

log() { echo "${LOG_PREFIX:-confab}: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Wall clock as seconds with fractions, and seconds elapsed since such a stamp (one decimal).
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }

# A TCP port that is free on 127.0.0.1 right now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A random URL-safe secret of N bytes (default 24).
rand_secret() { python3 -c "import secrets; print(secrets.token_urlsafe(${1:-24}))"; }

# RSS of a process, e.g. "123456 kB", or "?".
rss_of() { awk '/^VmRSS:/{print $2" "$3}' "/proc/$1/status" 2>/dev/null || echo "?"; }

# set_env FILE KEY=VALUE...: append the lines to FILE, removing earlier lines with the same
# keys first. FILE is only rewritten when there is such an earlier line; otherwise it is a
# plain append, as other services may be appending to the same file concurrently (all.sh).
set_env() {
  local envf="$1"; shift
  touch "$envf"
  local kv pat=""
  for kv in "$@"; do pat+="${pat:+|}^${kv%%=*}="; done
  if grep -qE "$pat" "$envf"; then
    local tmp; tmp=$(mktemp "$envf.XXXXXX")
    grep -vE "$pat" "$envf" >"$tmp" || true
    cat "$tmp" >"$envf"; rm -f "$tmp"
  fi
  printf '%s\n' "$@" >>"$envf"
}

# wait_until TIMEOUT_S CMD [ARGS...]: run CMD every 0.1 s until it exits 0 (returns 0),
# exits 99 (gives up at once: returns 1), or TIMEOUT_S seconds pass (returns 1).
wait_until() {
  local timeout="$1"; shift
  local deadline rc; deadline=$(awk -v n="$(now)" -v t="$timeout" 'BEGIN{printf "%d", n+t+0.999}')
  while :; do
    rc=0; "$@" || rc=$?
    (( rc == 0 )) && return 0
    (( rc == 99 )) && return 1
    (( $(date +%s) < deadline )) || return 1
    sleep 0.1
  done
}

# pid_matches PID ARG: is PID alive and is ARG one of its command-line arguments, exactly?
# (guards against PID reuse: pass something unique to the run, such as its data dir)
pid_matches() {
  [[ "$1" =~ ^[0-9]+$ && -r "/proc/$1/cmdline" ]] || return 1
  tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | grep -qxF -- "$2"
}

# stop_pidfile PIDFILE ARG [TERM_TIMEOUT_S=10]: TERM the process named in PIDFILE (only if
# pid_matches PID ARG), wait, then KILL; removes PIDFILE. No error if it is not running.
stop_pidfile() {
  local pidfile="$1" match="$2" timeout="${3:-10}" pid i
  [[ -f "$pidfile" ]] || { log "not running (no pid file)"; return 0; }
  pid=$(cat "$pidfile")
  if ! pid_matches "$pid" "$match"; then
    log "not running (stale pid $pid)"; rm -f "$pidfile"; return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for (( i = 0; i < timeout * 10; i++ )); do pid_matches "$pid" "$match" || break; sleep 0.1; done
  if pid_matches "$pid" "$match"; then
    log "pid $pid did not exit within ${timeout}s of TERM, sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
    for (( i = 0; i < 50; i++ )); do pid_matches "$pid" "$match" || break; sleep 0.1; done
  fi
  rm -f "$pidfile"
  log "stopped (pid $pid)"
}
