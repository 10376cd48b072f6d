#!/usr/bin/env bash
# End-to-end tests of the web client (web/) in headless Chromium against a real `confab serve`.
#
#   scripts/web-e2e.sh                 # uses $CONFAB_BIN, default ~/.cache/confab-target/debug/confab
#
# Installs what is missing (Debian's chromium, node/npm, the npm packages from web/package-lock.json),
# checks that the checked-in bundle web/dist is what web/src builds to, then runs web/tests/e2e.mjs
# (random free port, temp data dir, the server killed afterwards even on failure; every wait is
# bounded and the whole run has a deadline). Screenshots go to docs/screenshots/.
#
# Env: CONFAB_BIN, E2E_TIMEOUT_MS (default 420000), KEEP=1 (keep the server's temp dir),
#      E2E_SERVE_EMBEDDED=1 (test the page embedded in the binary instead of web/dist on disk).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WEB="$ROOT/web"
CONFAB_BIN="${CONFAB_BIN:-$HOME/.cache/confab-target/debug/confab}"
export CONFAB_BIN

say() { printf '\n== %s\n' "$*"; }
sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  sudo_ apt-get install -y --no-install-recommends "$@" >/dev/null 2>&1 || {
    sudo_ apt-get update >/dev/null && sudo_ apt-get install -y --no-install-recommends "$@" >/dev/null
  }
}

if [ ! -x "$CONFAB_BIN" ]; then
  echo "no confab binary at $CONFAB_BIN: build it (cargo build -p confab) or set CONFAB_BIN" >&2
  exit 1
fi

if [ ! -x /usr/bin/chromium ]; then
  say "installing chromium (apt)"
  apt_install chromium
fi
# colour emoji in screenshots (reactions); optional
if ! fc-list 2>/dev/null | grep -qi "color emoji"; then
  apt_install fonts-noto-color-emoji || true
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  say "installing node and npm (apt)"
  apt_install nodejs npm
fi

cd "$WEB"
LOCK_SUM="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ ! -d node_modules ] || [ "$(cat node_modules/.confab-lock 2>/dev/null)" != "$LOCK_SUM" ]; then
  say "npm ci (web/)"
  timeout 600 npm ci --no-audit --no-fund --loglevel=error
  echo "$LOCK_SUM" > node_modules/.confab-lock
fi

say "checking that web/dist is up to date with web/src"
timeout 120 npx --no-install tsc --noEmit -p .
FRESH="$(mktemp -d)"
trap 'rm -rf "$FRESH"' EXIT
timeout 120 node build.mjs "$FRESH" >/dev/null
for f in index.html app.js app.css; do
  if ! cmp -s "$FRESH/$f" "dist/$f"; then
    echo "web/dist/$f is stale: web/src changed without a rebuild. Run: (cd web && npm run build)" >&2
    exit 1
  fi
done
extra="$(cd dist && ls | grep -vxE 'index.html|app.js|app.css' || true)"
if [ -n "$extra" ]; then
  echo "web/dist has files the build does not make: $extra" >&2
  exit 1
fi
echo "web/dist matches web/src"

say "e2e tests (binary: $CONFAB_BIN)"
if [ "${E2E_SERVE_EMBEDDED:-0}" = 1 ]; then unset CONFAB_WEB_DIR; else export CONFAB_WEB_DIR="$WEB/dist"; fi
# the test file has its own deadline; this one is the backstop
timeout --kill-after=10 "$(( ${E2E_TIMEOUT_MS:-420000} / 1000 + 60 ))" node tests/e2e.mjs
