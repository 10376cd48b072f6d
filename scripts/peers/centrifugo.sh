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
# start tries up to three times, on other ports, when centrifugo exits at start (the port it was
# given was taken meanwhile); a port given (PORT, CENTRIFUGO_PORT) is kept (no retry then).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck disable=SC2034  # read by log() in lib.sh
LOG_PREFIX="centrifugo.sh"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$here/../lib.sh"

CENTRIFUGO_VERSION="${CENTRIFUGO_VERSION:-6.9.1}"
CENTRIFUGO_MODULE="github.com/centrifugal/centrifugo/v${CENTRIFUGO_VERSION%%.*}"
CACHE_DIR="${CONFAB_CACHE:-$HOME/.cache/confab}"
BIN_DIR="$CACHE_DIR/peers/bin"
BIN="$BIN_DIR/centrifugo"

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

write_env() { # URL API_KEY HMAC_SECRET: replace any stale values
  set_env "$RUN_DIR/env" "CENTRIFUGO_URL=$1" "CENTRIFUGO_API_KEY=$2" "CENTRIFUGO_HMAC_SECRET=$3"
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

fail() {
  log "not ready: $1"; tail -n 40 "$LOG_FILE" >&2 || true
  if [[ -n "$pid" ]]; then kill -KILL "$pid" 2>/dev/null || true; fi
  exit 1
}
have_pid() { [[ -s "$PID_FILE" ]]; }
healthy() {
  curl -fsS -o /dev/null --max-time 2 "$url/health" 2>/dev/null && return 0
  pid_matches "$pid" "$CONF" || return 99
  return 1
}

# launch ATTEMPT: pick the port (the one given, if any), write the config, start centrifugo.
launch() {
  PORT="${want_port:-$(free_port)}"
  url="http://127.0.0.1:$PORT" pid=""
  printf 'API_KEY=%s\nHMAC_SECRET=%s\nPORT=%s\n' "$API_KEY" "$HMAC_SECRET" "$PORT" >"$SECRETS"
  write_config "$PORT" "$API_KEY" "$HMAC_SECRET"
  "$BIN" checkconfig -c "$CONF" >"$CDIR/checkconfig.log" 2>&1 \
    || { cat "$CDIR/checkconfig.log" >&2; die "checkconfig failed"; }

  : >"$LOG_FILE"
  rm -f "$PID_FILE"
  # Many benchmark connections: raise the open-files limit as far as allowed.
  # shellcheck disable=SC2016
  setsid -f bash -c 'ulimit -n "$(ulimit -Hn)" 2>/dev/null || true; echo $$ >"$1"; shift; exec "$@"' \
    _ "$PID_FILE" "$BIN" -c "$CONF" </dev/null >>"$LOG_FILE" 2>&1
  deadline=$(( $(date +%s) + timeout ))
}

# ready: for start_with_retries (75: centrifugo exited at start, as when its port was taken).
ready() {
  wait_until "$(( deadline - $(date +%s) ))" have_pid || fail "no pid file"
  pid=$(cat "$PID_FILE")
  wait_until "$(( deadline - $(date +%s) ))" healthy && return 0
  pid_matches "$pid" "$CONF" || return 75
  fail "no answer on $url/health within ${timeout}s"
}

do_start() {
  setup_paths "${1:-}" create
  local want_port="${2:-${CENTRIFUGO_PORT:-}}"
  is_installed || do_install
  mkdir -p "$CDIR"
  local t0; t0=$(now)

  if [[ -f "$PID_FILE" ]] && pid_matches "$(cat "$PID_FILE")" "$CONF"; then
    log "already running (pid $(cat "$PID_FILE"))"
    # shellcheck disable=SC1090
    . "$SECRETS"
    write_env "http://127.0.0.1:$PORT" "$API_KEY" "$HMAC_SECRET"
    return 0
  fi

  # Secrets are made once per RUN_DIR and kept across restarts.
  local API_KEY HMAC_SECRET PORT
  if [[ -f "$SECRETS" ]]; then
    # shellcheck disable=SC1090
    . "$SECRETS"
  else
    API_KEY=$(rand_secret 32); HMAC_SECRET=$(rand_secret 32)
  fi

  local deadline=0 pid="" url="" timeout="${CENTRIFUGO_START_TIMEOUT:-30}" tries=3
  [[ -z "$want_port" ]] || tries=1
  start_with_retries "$tries" launch ready fail "$LOG_FILE"

  write_env "$url" "$API_KEY" "$HMAC_SECRET"
  echo "centrifugo ${CENTRIFUGO_VERSION} ready on 127.0.0.1:${PORT} pid ${pid} in $(elapsed "$t0")s, RSS $(rss_of "$pid")"
}

do_stop() {
  setup_paths "${1:-}"
  stop_pidfile "$PID_FILE" "$CONF" 10
}

case "${1:-}" in
  install) do_install ;;
  start) do_start "${2:-}" "${3:-}" ;;
  stop) do_stop "${2:-}" ;;
  *) echo "usage: $0 {install|start RUN_DIR [PORT]|stop RUN_DIR}" >&2; exit 2 ;;
esac
