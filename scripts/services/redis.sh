#!/usr/bin/env bash
# Redis 7 for tests: Debian's redis-server, on a free 127.0.0.1 port, no persistence.
#   redis.sh install | start RUN_DIR | stop RUN_DIR
# start appends CONFAB_REDIS_URL=redis://127.0.0.1:P/ to RUN_DIR/env.
set -euo pipefail

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

install() {
  if command -v redis-server >/dev/null 2>&1; then return 0; fi
  echo "redis: installing redis-server from Debian" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq redis-server >/dev/null
  # the package starts a system instance on 6379; tests use their own
  (systemctl stop redis-server 2>/dev/null || service redis-server stop 2>/dev/null || true) >/dev/null 2>&1
}

start() {
  local run="$1"; mkdir -p "$run/redis"
  install
  local port="${REDIS_PORT:-$(free_port)}"
  local t0; t0=$(date +%s.%N)
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --pidfile "$run/redis/pid" --logfile "$run/redis/redis.log" --dir "$run/redis"
  for _ in $(seq 1 100); do
    if redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then
      local pid; pid=$(cat "$run/redis/pid")
      sed -i '/^CONFAB_REDIS_URL=/d' "$run/env" 2>/dev/null || true
      echo "CONFAB_REDIS_URL=redis://127.0.0.1:$port/" >> "$run/env"
      echo "redis ready on 127.0.0.1:$port in $(python3 -c "print(round($(date +%s.%N)-$t0,2))")s, RSS $(awk '/VmRSS/{print $2" "$3}' /proc/$pid/status)"
      return 0
    fi
    sleep 0.1
  done
  echo "redis did not answer PING within 10 s" >&2; tail -20 "$run/redis/redis.log" >&2; return 1
}

stop() {
  local run="$1" pidfile="$1/redis/pid"
  [ -f "$pidfile" ] || return 0
  local pid; pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

case "${1:-}" in
  install) install ;;
  start) start "${2:?RUN_DIR}" ;;
  stop) stop "${2:?RUN_DIR}" ;;
  *) echo "usage: $0 install|start RUN_DIR|stop RUN_DIR" >&2; exit 2 ;;
esac
