# shellcheck shell=bash
# Shared helpers for scripts/services/*.sh and scripts/peers/*.sh (sourced, not run):
#   LOG_PREFIX="name.sh"; . "$here/../lib.sh"
# log/die print LOG_PREFIX. The helpers that call back into the caller (wait_until,
# start_with_retries) name their locals _wu_*/_sr_* so that they hide none of the caller's.

log() { echo "${LOG_PREFIX:-confab}: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Wall clock as seconds with fractions, and seconds elapsed since such a stamp (one decimal).
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }

# The python3 of the helpers below: the system one if any (a pyenv shim costs ~0.2 s a call).
PY3=python3
if [[ -x /usr/bin/python3 ]]; then PY3=/usr/bin/python3; fi

# pick_free_ports N: N distinct TCP ports free on 127.0.0.1 right now (bound at once), space separated.
pick_free_ports() {
  "$PY3" - "$1" <<'PYEOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
PYEOF
}

# A TCP port that is free on 127.0.0.1 right now.
free_port() { pick_free_ports 1; }

# port_is_free PORT: could a server listen on 127.0.0.1:PORT now? Binds with SO_REUSEADDR, as the
# servers do, so a port with connections in TIME_WAIT counts as free.
port_is_free() {
  "$PY3" - "$1" <<'PYEOF'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
    s.listen(1)
except OSError:
    sys.exit(1)
finally:
    s.close()
PYEOF
}

# A random URL-safe secret of N bytes (default 24).
rand_secret() { "$PY3" -c "import secrets; print(secrets.token_urlsafe(${1:-24}))"; }

# N random bytes (default 16) as lowercase hex.
rand_hex() { "$PY3" -c "import secrets; print(secrets.token_hex(${1:-16}))"; }

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
# CMD runs at least once; set -e does not hold inside it, so it must check what it runs.
wait_until() {
  local _wu_timeout="$1"; shift
  local _wu_deadline _wu_rc
  _wu_deadline=$(awk -v n="$(now)" -v t="$_wu_timeout" 'BEGIN{printf "%d", n+t+0.999}')
  while :; do
    _wu_rc=0; "$@" || _wu_rc=$?
    (( _wu_rc == 0 )) && return 0
    (( _wu_rc == 99 )) && return 1
    (( $(date +%s) < _wu_deadline )) || return 1
    sleep 0.1
  done
}

# pid_matches PID ARG: is PID alive and is ARG one of its command-line arguments, exactly?
# (guards against PID reuse: pass something unique to the run, such as its data dir; a zombie
# has no command line, so it counts as gone)
pid_matches() {
  [[ "$1" =~ ^[0-9]+$ && -r "/proc/$1/cmdline" ]] || return 1
  tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | grep -qxF -- "$2"
}

# stop_pidfile PIDFILE ARG [TERM_TIMEOUT_S=10]: TERM the process named in PIDFILE (only if
# pid_matches PID ARG), wait, then KILL; removes PIDFILE. No error if it is not running.
# Sets STOP_RESULT to none (was not running), stopped (exited on TERM) or killed.
# shellcheck disable=SC2034  # STOP_RESULT is read by the callers
stop_pidfile() {
  local pidfile="$1" match="$2" timeout="${3:-10}" pid i
  STOP_RESULT=none
  [[ -f "$pidfile" ]] || { log "not running (no pid file)"; return 0; }
  pid=$(cat "$pidfile")
  if ! pid_matches "$pid" "$match"; then
    log "not running (stale pid $pid)"; rm -f "$pidfile"; return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  STOP_RESULT=stopped
  for (( i = 0; i < timeout * 10; i++ )); do pid_matches "$pid" "$match" || break; sleep 0.1; done
  if pid_matches "$pid" "$match"; then
    log "pid $pid did not exit within ${timeout}s of TERM, sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
    STOP_RESULT=killed
    for (( i = 0; i < 50; i++ )); do pid_matches "$pid" "$match" || break; sleep 0.1; done
  fi
  rm -f "$pidfile"
  log "stopped (pid $pid)"
}

# start_with_retries TRIES LAUNCH READY FAIL [LOG]: start a server, again on fresh ports when it
# dies at start because a port it picked was taken meanwhile (all.sh starts servers side by side).
# Up to TRIES times: LAUNCH ATTEMPT_NO (pick ports, except those the user fixed, and start it),
# then READY: 0 = up; 75 = exited at start or could not bind: try again, after showing LOG's tail.
# Any other status, or 75 on the last try, calls FAIL MSG, which must exit. Call this as a plain
# command (not under if, && or ||) so that set -e holds in LAUNCH; it does not hold in READY.
start_with_retries() {
  local _sr_tries="$1" _sr_launch="$2" _sr_ready="$3" _sr_fail="$4" _sr_log="${5:-}" _sr_n _sr_rc
  for (( _sr_n = 1; ; _sr_n++ )); do
    "$_sr_launch" "$_sr_n"
    _sr_rc=0; "$_sr_ready" || _sr_rc=$?
    (( _sr_rc == 0 )) && return 0
    if (( _sr_rc != 75 )); then "$_sr_fail" "readiness check failed (status $_sr_rc)"; return 1; fi
    if (( _sr_n >= _sr_tries )); then "$_sr_fail" "process exited at start (attempt $_sr_n of $_sr_tries)"; return 1; fi
    log "process exited at start (attempt $_sr_n of $_sr_tries; a port taken?); trying other ports"
    if [[ -n "$_sr_log" ]]; then tail -n 5 "$_sr_log" >&2 || true; fi
  done
}
