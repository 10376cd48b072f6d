#!/usr/bin/env bash
# Redis 7 for tests: Debian's redis-server, on a free 127.0.0.1 port, no persistence.
#   redis.sh install | start RUN_DIR | stop RUN_DIR
# start appends CONFAB_REDIS_URL=redis://127.0.0.1:P/ to RUN_DIR/env.
# Env knobs: REDIS_PORT (default random);
#   REDIS_SECURITY=tls: TLS only (no plaintext port), a CA of its own (RUN_DIR/redis/tls/ca.pem),
#     the default user off and one ACL user `confab` with a random password, allowed every
#     command but only the keys `NS:*` when REDIS_ACL_NAMESPACE=NS is given (all keys otherwise).
#     start then appends CONFAB_REDIS_URL=rediss://confab:PASSWORD@127.0.0.1:P/ and
#     CONFAB_REDIS_CA=<ca.pem>.
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

secured() { [[ "${REDIS_SECURITY:-}" == tls ]]; }

# A CA and a server certificate for 127.0.0.1/localhost signed by it, made once per RUN_DIR;
# the ACL user's password likewise.
make_tls() {
  TLS_DIR="$RDIR/tls"
  [[ -s "$TLS_DIR/server.pem" && -s "$TLS_DIR/password" ]] && return 0
  mkdir -p "$TLS_DIR" && chmod 700 "$TLS_DIR"
  (
    cd "$TLS_DIR"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=confab-test-redis-ca" \
      -keyout ca.key -out ca.pem 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >san.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
      -extfile san.ext -out server.pem 2>/dev/null
    openssl rand -hex 16 >password
    chmod 600 ca.key server.key password
  ) || die "could not make the test CA"
}

# launch ATTEMPT: redis-server daemonizes; it writes its pid file once it listens. The process
# title is left alone so that its command line still names PID_FILE (for pid_matches).
launch() {
  port="${REDIS_PORT:-$(free_port)}"
  log_from=$(( $(stat -c %s "$LOG_FILE" 2>/dev/null || echo 0) + 1 ))
  rm -f "$PID_FILE"
  local listen=(--port "$port")
  if secured; then
    local keys="~*"
    [[ -z "${REDIS_ACL_NAMESPACE:-}" ]] || keys="~${REDIS_ACL_NAMESPACE}:*"
    listen=(--port 0 --tls-port "$port" --tls-cert-file "$TLS_DIR/server.pem"
      --tls-key-file "$TLS_DIR/server.key" --tls-ca-cert-file "$TLS_DIR/ca.pem" --tls-auth-clients no
      --user default off --user confab on ">$(cat "$TLS_DIR/password")" "$keys" '&*' +@all)
  fi
  redis-server "${listen[@]}" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --set-proc-title no --pidfile "$PID_FILE" --logfile "$LOG_FILE" --dir "$RDIR"
}

# Did this attempt's redis give up listening (its log since launch says so)?
bind_failed() { tail -c "+$log_from" "$LOG_FILE" 2>/dev/null | grep -q 'Failed listening on port'; }

# Does it answer PING? (bounded: whoever took the port may accept and never answer)
redis_up() {
  if bind_failed; then return 99; fi
  local cli=(-p "$port")
  secured && cli+=(--tls --cacert "$TLS_DIR/ca.pem" --user confab --pass "$(cat "$TLS_DIR/password")" --no-auth-warning)
  timeout 2 redis-cli "${cli[@]}" ping 2>/dev/null | grep -q PONG && [[ -s "$PID_FILE" ]]
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
  secured && make_tls
  start_with_retries "$tries" launch ready fail "$LOG_FILE"
  pid=$(cat "$PID_FILE")
  if secured; then
    set_env "$RUN_DIR/env" "CONFAB_REDIS_URL=rediss://confab:$(cat "$TLS_DIR/password")@127.0.0.1:$port/"
    set_env "$RUN_DIR/env" "CONFAB_REDIS_CA=$TLS_DIR/ca.pem"
  else
    set_env "$RUN_DIR/env" "CONFAB_REDIS_URL=redis://127.0.0.1:$port/"
  fi
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
