#!/usr/bin/env bash
# Centrifugo, a benchmark PEER (issue 6): never a test dependency.
# Built from the Go module proxy (go install), memory engine, on a free 127.0.0.1 port.
#
#   scripts/peers/centrifugo.sh install               # go install into ~/.cache/confab/peers/bin
#   scripts/peers/centrifugo.sh start RUN_DIR [PORT]  # start, append CENTRIFUGO_* to RUN_DIR/env
#   scripts/peers/centrifugo.sh stop RUN_DIR          # stop (no error if not running)
#
# start appends to RUN_DIR/env:
#   CENTRIFUGO_URL=http://127.0.0.1:P     WebSocket clients: ws://127.0.0.1:P/connection/websocket
#                                         server API: POST $CENTRIFUGO_URL/api/<method>, header X-API-Key
#   CENTRIFUGO_API_KEY=...                http_api.key
#   CENTRIFUGO_HMAC_SECRET=...            client.token.hmac_secret_key: clients connect with an HS256
#                                         JWT whose "sub" is the user id (and "exp" if wanted)
# Channels: "chat:<room>" (namespace chat) and channels without a namespace both allow
# subscribe/publish/history/presence for any authenticated client; chat keeps 100 messages
# for 300 s of history.
#
# Env knobs: CONFAB_CACHE (default ~/.cache/confab), CENTRIFUGO_VERSION (default below),
#            CENTRIFUGO_PORT (same as the PORT argument), CENTRIFUGO_LOG_LEVEL (default warn),
#            CENTRIFUGO_START_TIMEOUT (seconds, default 30).
set -euo pipefail

CENTRIFUGO_VERSION="${CENTRIFUGO_VERSION:-6.9.1}"
CENTRIFUGO_MODULE="github.com/centrifugal/centrifugo/v${CENTRIFUGO_VERSION%%.*}"
CACHE_DIR="${CONFAB_CACHE:-$HOME/.cache/confab}"
BIN_DIR="$CACHE_DIR/peers/bin"
BIN="$BIN_DIR/centrifugo"

log() { echo "centrifugo.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rand_secret() { python3 -c 'import secrets; print(secrets.token_urlsafe(32))'; }

is_installed() {
  [[ -x "$BIN" ]] && "$BIN" version 2>/dev/null | grep -qF "Centrifugo v${CENTRIFUGO_VERSION} "
}

do_install() {
  is_installed && return 0
  command -v go >/dev/null || die "go not found (apt-get install golang, or a newer Go)"
  mkdir -p "$BIN_DIR"
  exec 9>"$BIN_DIR/.centrifugo.lock"
  flock 9
  if is_installed; then exec 9>&-; return 0; fi
  local t0; t0=$(now)
  log "go install ${CENTRIFUGO_MODULE}@v${CENTRIFUGO_VERSION} (first build takes ~2 min on 2 cores) ..."
  # The version string is injected at release time; set it the same way (see its .goreleaser.yml).
  if ! (cd "$BIN_DIR" && GOBIN="$BIN_DIR" GOFLAGS=-buildvcs=false go install \
        -ldflags "-s -w -X ${CENTRIFUGO_MODULE}/internal/build.Version=${CENTRIFUGO_VERSION}" \
        "${CENTRIFUGO_MODULE}@v${CENTRIFUGO_VERSION}" >"$BIN_DIR/.centrifugo-install.log" 2>&1); then
    tail -n 30 "$BIN_DIR/.centrifugo-install.log" >&2
    exec 9>&-
    die "go install failed"
  fi
  exec 9>&-
  is_installed || die "installed binary does not report v${CENTRIFUGO_VERSION}: $("$BIN" version 2>&1)"
  log "installed $("$BIN" version) in $(elapsed "$t0")s"
}

setup_paths() {
  [[ -n "${1:-}" ]] || die "usage: $0 {start RUN_DIR [PORT]|stop RUN_DIR}"
  [[ "${2:-}" == create ]] && mkdir -p "$1"
  if [[ -d "$1" ]]; then RUN_DIR="$(cd "$1" && pwd)"; else RUN_DIR="$1"; fi
  CDIR="$RUN_DIR/centrifugo"
  PID_FILE="$CDIR/pid"
  CONF="$CDIR/config.json"
  SECRETS="$CDIR/secrets"
  LOG_FILE="$CDIR/centrifugo.log"
}

# Is PID alive and the Centrifugo of *this* RUN_DIR? (guards against PID reuse)
pid_is_centrifugo() {
  local pid="$1"
  [[ "$pid" =~ ^[0-9]+$ && -r "/proc/$pid/cmdline" ]] || return 1
  tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "$CONF"
}

set_env() { # KEY VALUE: replace any stale value
  local envf="$RUN_DIR/env"; touch "$envf"
  local tmp; tmp=$(mktemp "$envf.XXXXXX")
  grep -v "^$1=" "$envf" >"$tmp" || true
  echo "$1=$2" >>"$tmp"
  cat "$tmp" >"$envf"; rm -f "$tmp"
}

write_config() { # PORT API_KEY HMAC_SECRET
  local ns_opts='"allow_subscribe_for_client": true, "allow_publish_for_client": true,
      "allow_history_for_client": true, "presence": true, "allow_presence_for_client": true'
  cat >"$CONF" <<JSON
{
  "http_server": { "address": "127.0.0.1", "port": $1 },
  "log": { "level": "${CENTRIFUGO_LOG_LEVEL:-warn}" },
  "engine": { "type": "memory" },
  "http_api": { "key": "$2" },
  "client": {
    "token": { "hmac_secret_key": "$3" },
    "allowed_origins": ["*"]
  },
  "channel": {
    "without_namespace": { $ns_opts },
    "namespaces": [
      { "name": "chat", $ns_opts, "history_size": 100, "history_ttl": "300s", "force_recovery": true }
    ]
  },
  "websocket": { "handler_prefix": "/connection/websocket" },
  "health": { "enabled": true },
  "usage_stats": { "disabled": true }
}
JSON
}

do_start() {
  setup_paths "${1:-}" create
  local want_port="${2:-${CENTRIFUGO_PORT:-}}"
  is_installed || do_install
  mkdir -p "$CDIR"
  local t0; t0=$(now)

  if [[ -f "$PID_FILE" ]] && pid_is_centrifugo "$(cat "$PID_FILE")"; then
    log "already running (pid $(cat "$PID_FILE"))"
    # shellcheck disable=SC1090
    . "$SECRETS"
    set_env CENTRIFUGO_URL "http://127.0.0.1:$PORT"
    set_env CENTRIFUGO_API_KEY "$API_KEY"
    set_env CENTRIFUGO_HMAC_SECRET "$HMAC_SECRET"
    return 0
  fi

  # Secrets are made once per RUN_DIR and kept across restarts.
  local API_KEY HMAC_SECRET PORT
  if [[ -f "$SECRETS" ]]; then
    # shellcheck disable=SC1090
    . "$SECRETS"
  else
    API_KEY=$(rand_secret); HMAC_SECRET=$(rand_secret)
  fi
  PORT="${want_port:-$(free_port)}"
  printf 'API_KEY=%s\nHMAC_SECRET=%s\nPORT=%s\n' "$API_KEY" "$HMAC_SECRET" "$PORT" >"$SECRETS"
  write_config "$PORT" "$API_KEY" "$HMAC_SECRET"
  "$BIN" checkconfig -c "$CONF" >"$CDIR/checkconfig.log" 2>&1 \
    || { cat "$CDIR/checkconfig.log" >&2; die "checkconfig failed"; }

  : >"$LOG_FILE"
  rm -f "$PID_FILE"
  # Many benchmark connections: raise the open-files limit as far as allowed.
  setsid -f bash -c 'ulimit -n "$(ulimit -Hn)" 2>/dev/null || true; echo $$ >"$1"; shift; exec "$@"' \
    _ "$PID_FILE" "$BIN" -c "$CONF" </dev/null >>"$LOG_FILE" 2>&1

  local deadline pid="" url="http://127.0.0.1:$PORT" timeout="${CENTRIFUGO_START_TIMEOUT:-30}"
  deadline=$(( $(date +%s) + timeout ))
  fail() {
    log "not ready: $1"; tail -n 40 "$LOG_FILE" >&2 || true
    [[ -n "$pid" ]] && kill -KILL "$pid" 2>/dev/null || true
    exit 1
  }
  while [[ -z "$pid" ]]; do
    [[ -s "$PID_FILE" ]] && pid=$(cat "$PID_FILE") && break
    (( $(date +%s) < deadline )) || fail "no pid file"
    sleep 0.05
  done
  until curl -fsS -o /dev/null --max-time 2 "$url/health" 2>/dev/null; do
    pid_is_centrifugo "$pid" || fail "process $pid exited"
    (( $(date +%s) < deadline )) || fail "no answer on $url/health within ${timeout}s"
    sleep 0.1
  done

  set_env CENTRIFUGO_URL "$url"
  set_env CENTRIFUGO_API_KEY "$API_KEY"
  set_env CENTRIFUGO_HMAC_SECRET "$HMAC_SECRET"
  local rss; rss=$(awk '/^VmRSS:/{print $2" "$3}' "/proc/$pid/status" 2>/dev/null || echo "?")
  echo "centrifugo ${CENTRIFUGO_VERSION} ready on 127.0.0.1:${PORT} pid ${pid} in $(elapsed "$t0")s, RSS ${rss}"
}

do_stop() {
  setup_paths "${1:-}"
  [[ -f "$PID_FILE" ]] || { log "not running (no pid file)"; return 0; }
  local pid; pid=$(cat "$PID_FILE")
  if ! pid_is_centrifugo "$pid"; then
    log "not running (stale pid $pid)"; rm -f "$PID_FILE"; return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local i
  for (( i = 0; i < 100; i++ )); do pid_is_centrifugo "$pid" || break; sleep 0.1; done
  if pid_is_centrifugo "$pid"; then
    log "pid $pid did not exit after TERM, sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PID_FILE"
  log "stopped (pid $pid)"
}

case "${1:-}" in
  install) do_install ;;
  start) do_start "${2:-}" "${3:-}" ;;
  stop) do_stop "${2:-}" ;;
  *) echo "usage: $0 {install|start RUN_DIR [PORT]|stop RUN_DIR}" >&2; exit 2 ;;
esac
