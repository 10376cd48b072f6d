#!/usr/bin/env bash
# Redis 7 for tests: Debian's redis-server, on a free 127.0.0.1 port, no persistence.
#   redis.sh install | start RUN_DIR | stop RUN_DIR
# start appends CONFAB_REDIS_URL=redis://127.0.0.1:P/ to RUN_DIR/env.
# Env knobs: REDIS_PORT (default random).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck disable=SC2034  # read by log() in lib.sh
LOG_PREFIX="redis"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$here/../lib.sh"

install() {
  if command -v redis-server >/dev/null 2>&1; then return 0; fi
  log "installing redis-server from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq redis-server >/dev/null
  # the package starts a system instance on 6379; tests use their own
  (systemctl stop redis-server 2>/dev/null || service redis-server stop 2>/dev/null || true) >/dev/null 2>&1
}

setup_paths() { # RUN_DIR [create]
  [[ "${2:-}" == create ]] && mkdir -p "$1/redis"
  if [[ -d "$1" ]]; then RUN_DIR="$(cd "$1" && pwd)"; else RUN_DIR="$1"; fi
  RDIR="$RUN_DIR/redis"
  PID_FILE="$RDIR/pid"
  LOG_FILE="$RDIR/redis.log"
}

# launch ATTEMPT: redis-server daemonizes; it writes its pid file once it listens. The process
# title is left alone so that its command line still names PID_FILE (for pid_matches).
launch() {
  port="${REDIS_PORT:-$(free_port)}"
  log_from=$(( $(stat -c %s "$LOG_FILE" 2>/dev/null || echo 0) + 1 ))
  rm -f "$PID_FILE"
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --set-proc-title no --pidfile "$PID_FILE" --logfile "$LOG_FILE" --dir "$RDIR"
}

# Did this attempt's redis give up listening (its log since launch says so)?
bind_failed() { tail -c "+$log_from" "$LOG_FILE" 2>/dev/null | grep -q 'Failed listening on port'; }

# Does it answer PING? (bounded: whoever took the port may accept and never answer)
redis_up() {
  if bind_failed; then return 99; fi
  timeout 2 redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && [[ -s "$PID_FILE" ]]
}

ready() { # for start_with_retries
  wait_until 10 redis_up && return 0
  bind_failed && return 75
  fail "did not answer PING within 10 s"
}

fail() { log "$1"; tail -20 "$LOG_FILE" >&2; exit 1; }

start() {
  setup_paths "$1" create
  install
  local port log_from t0 tries=3 pid
  [[ -z "${REDIS_PORT:-}" ]] || tries=1
  t0=$(now)
  start_with_retries "$tries" launch ready fail "$LOG_FILE"
  pid=$(cat "$PID_FILE")
  set_env "$RUN_DIR/env" "CONFAB_REDIS_URL=redis://127.0.0.1:$port/"
  echo "redis ready on 127.0.0.1:$port in $(elapsed "$t0")s, RSS $(rss_of "$pid")"
}

stop() {
  setup_paths "$1"
  stop_pidfile "$PID_FILE" "$PID_FILE" 5
}

case "${1:-}" in
  install) install ;;
  start) start "${2:?RUN_DIR}" ;;
  stop) stop "${2:?RUN_DIR}" ;;
  *) echo "usage: $0 install|start RUN_DIR|stop RUN_DIR" >&2; exit 2 ;;
esac
