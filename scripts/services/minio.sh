#!/usr/bin/env bash
# MinIO (S3-compatible object store) for the pre-signed upload/download tests.
# Built from the Go module proxy (go install of the server module), single drive, on a free
# 127.0.0.1 port, web console off.
#
#   scripts/services/minio.sh install          # go install into ~/.cache/confab/services/bin
#   scripts/services/minio.sh start RUN_DIR    # start, append CONFAB_S3_* to RUN_DIR/env
#   scripts/services/minio.sh stop RUN_DIR     # stop (no error if not running)
#
# start appends to RUN_DIR/env (older lines with the same keys are removed first):
#   CONFAB_S3_ENDPOINT=http://127.0.0.1:P   path-style S3 API, SigV4, pre-signed URLs
#   CONFAB_S3_ACCESS_KEY=...                root user (random per RUN_DIR, kept across restarts)
#   CONFAB_S3_SECRET_KEY=...                root password
#   CONFAB_S3_REGION=us-east-1
# Data lives in RUN_DIR/minio/data; no bucket is created.
#
# MinIO publishes no semver tags, so the module is pinned by its pseudo-version (the last
# commit of github.com/minio/minio, 2026-02-12); the binary's embedded module version
# (`go version -m`) is what `install` checks. A `go install` build reports its own version as
# "DEVELOPMENT.GOGET"; that is expected. MinIO is AGPL-3.0: it runs here as a separate,
# unmodified test server and is never linked into Confab.
#
# Env knobs: CONFAB_CACHE (default ~/.cache/confab), MINIO_MODULE_VERSION (default below),
#            MINIO_PORT (default random), MINIO_START_TIMEOUT (seconds, default 30),
#            MINIO_BUILD_JOBS (go build -p, default 2).
# start tries up to three times, on other ports, when minio exits at start (a port it was given
# was taken meanwhile); a MINIO_PORT given is kept (no retry then).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck disable=SC2034  # read by log() in lib.sh
LOG_PREFIX="minio.sh"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$here/../lib.sh"

MINIO_MODULE="github.com/minio/minio"
MINIO_MODULE_VERSION="${MINIO_MODULE_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}"
CACHE_DIR="${CONFAB_CACHE:-$HOME/.cache/confab}"
BIN_DIR="$CACHE_DIR/services/bin"
BIN="$BIN_DIR/minio"
REGION=us-east-1

is_installed() {
  [[ -x "$BIN" ]] || return 1
  command -v go >/dev/null || return 1
  [[ "$(go version -m "$BIN" 2>/dev/null | awk '$1 == "mod" {print $2" "$3; exit}')" \
       == "$MINIO_MODULE $MINIO_MODULE_VERSION" ]]
}

do_install() {
  is_installed && return 0
  command -v go >/dev/null || die "go not found (Go >= 1.24 is needed)"
  mkdir -p "$BIN_DIR"
  exec 9>"$BIN_DIR/.minio.lock"
  flock 9
  if is_installed; then exec 9>&-; return 0; fi
  local t0; t0=$(now)
  log "go install ${MINIO_MODULE}@${MINIO_MODULE_VERSION} (cold: downloads ~250 modules and builds; minutes on 2 cores) ..."
  # Static, stripped build as upstream's Makefile does (CGO off, -trimpath); nice'd so that a
  # parallel cargo build keeps its share of the 2 cores.
  if ! (cd "$BIN_DIR" && CGO_ENABLED=0 GOBIN="$BIN_DIR" GOFLAGS=-buildvcs=false GOTOOLCHAIN="${GOTOOLCHAIN:-local}" \
        nice -n 10 go install -p "${MINIO_BUILD_JOBS:-2}" -trimpath -ldflags "-s -w" \
        "${MINIO_MODULE}@${MINIO_MODULE_VERSION}" >"$BIN_DIR/.minio-install.log" 2>&1); then
    tail -n 30 "$BIN_DIR/.minio-install.log" >&2
    exec 9>&-
    die "go install failed (log: $BIN_DIR/.minio-install.log)"
  fi
  exec 9>&-
  is_installed || die "installed binary is not ${MINIO_MODULE}@${MINIO_MODULE_VERSION}"
  log "installed $MINIO_MODULE@$MINIO_MODULE_VERSION ($(du -h "$BIN" | cut -f1)) in $(elapsed "$t0")s"
}

setup_paths() { # RUN_DIR [create]
  [[ -n "${1:-}" ]] || die "usage: $0 {start|stop} RUN_DIR"
  [[ "${2:-}" == create ]] && mkdir -p "$1"
  if [[ -d "$1" ]]; then RUN_DIR="$(cd "$1" && pwd)"; else RUN_DIR="$1"; fi
  MDIR="$RUN_DIR/minio"
  DATA_DIR="$MDIR/data"
  PID_FILE="$MDIR/pid"
  SECRETS="$MDIR/secrets"
  LOG_FILE="$MDIR/minio.log"
}

write_env() { # PORT ACCESS_KEY SECRET_KEY
  set_env "$RUN_DIR/env" "CONFAB_S3_ENDPOINT=http://127.0.0.1:$1" "CONFAB_S3_ACCESS_KEY=$2" \
    "CONFAB_S3_SECRET_KEY=$3" "CONFAB_S3_REGION=$REGION"
}

fail() {
  log "not ready: $1"; tail -n 40 "$LOG_FILE" >&2 || true
  if [[ -n "$pid" ]]; then kill -KILL "$pid" 2>/dev/null || true; fi
  exit 1
}
have_pid() { [[ -s "$PID_FILE" ]]; }
# live: the HTTP server answers; ready: the object layer is up (S3 calls no longer get 503).
healthy() {
  pid_matches "$pid" "$DATA_DIR" || return 99
  curl -fsS -o /dev/null --max-time 2 "$url/minio/health/live" 2>/dev/null &&
    curl -fsS -o /dev/null --max-time 2 "$url/minio/health/ready" 2>/dev/null
}

# launch ATTEMPT: pick ports (MINIO_PORT if set) and start minio.
launch() {
  PORT="${MINIO_PORT:-$(free_port)}"
  cport=$(free_port)
  [[ "$cport" != "$PORT" ]] || cport=$(free_port)
  url="http://127.0.0.1:$PORT"
  printf 'ACCESS_KEY=%s\nSECRET_KEY=%s\nPORT=%s\n' "$ACCESS_KEY" "$SECRET_KEY" "$PORT" >"$SECRETS"
  chmod 600 "$SECRETS"

  : >"$LOG_FILE"
  rm -f "$PID_FILE"
  # MINIO_BROWSER=off turns the web console off; its listener is still pinned to 127.0.0.1.
  # The inner shell records its own PID and execs minio, so the PID file holds minio's PID.
  # shellcheck disable=SC2016
  setsid -f env \
      MINIO_ROOT_USER="$ACCESS_KEY" MINIO_ROOT_PASSWORD="$SECRET_KEY" \
      MINIO_REGION="$REGION" MINIO_BROWSER=off MINIO_UPDATE=off MINIO_CI_CD=on \
      bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$PID_FILE" \
      "$BIN" server --quiet --anonymous \
        --address "127.0.0.1:$PORT" --console-address "127.0.0.1:$cport" "$DATA_DIR" \
      </dev/null >>"$LOG_FILE" 2>&1
  wait_until 5 have_pid || fail "no pid file"
  pid=$(cat "$PID_FILE")
}

# ready: for start_with_retries (75: minio exited at start, as when a port was taken).
ready() {
  wait_until "$timeout" healthy && return 0
  pid_matches "$pid" "$DATA_DIR" && fail "no answer on $url/minio/health/{live,ready} within ${timeout}s"
  return 75
}

do_start() {
  setup_paths "${1:-}" create
  is_installed || do_install
  mkdir -p "$MDIR" "$DATA_DIR"

  # Credentials are made once per RUN_DIR: MinIO encrypts its IAM config with them.
  local ACCESS_KEY SECRET_KEY PORT=""
  if [[ -f "$SECRETS" ]]; then
    # shellcheck disable=SC1090
    . "$SECRETS"
  else
    ACCESS_KEY="confab-$(rand_hex 6)"
    SECRET_KEY=$(rand_hex 20)
  fi

  if [[ -f "$PID_FILE" ]] && pid_matches "$(cat "$PID_FILE")" "$DATA_DIR"; then
    log "already running (pid $(cat "$PID_FILE")) on 127.0.0.1:$PORT"
    write_env "$PORT" "$ACCESS_KEY" "$SECRET_KEY"
    return 0
  fi

  local t0 timeout="${MINIO_START_TIMEOUT:-30}" pid="" url="" cport tries=3
  t0=$(now)
  [[ -z "${MINIO_PORT:-}" ]] || tries=1
  # A free port can be taken between free_port and minio's bind by a server starting beside it
  # (all.sh starts them in parallel); minio then exits at once, and is started again on others.
  start_with_retries "$tries" launch ready fail "$LOG_FILE"

  write_env "$PORT" "$ACCESS_KEY" "$SECRET_KEY"
  echo "minio ready on 127.0.0.1:${PORT} pid ${pid} in $(elapsed "$t0")s, RSS $(rss_of "$pid")"
}

do_stop() {
  setup_paths "${1:-}"
  stop_pidfile "$PID_FILE" "$DATA_DIR" "${MINIO_STOP_TIMEOUT:-10}"
}

case "${1:-}" in
  install) do_install ;;
  start) do_start "${2:-}" ;;
  stop) do_stop "${2:-}" ;;
  *) echo "usage: $0 {install|start RUN_DIR|stop RUN_DIR}" >&2; exit 2 ;;
esac
