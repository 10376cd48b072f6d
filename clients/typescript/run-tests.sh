#!/usr/bin/env bash
# Tests of the TypeScript client (clients/typescript, @confab/client) against a real `confab serve`.
#
#   clients/typescript/run-tests.sh
#
# Installs node/npm with apt if missing, runs `npm ci` only when package-lock.json changed (its
# hash is kept in node_modules/.confab-lock), builds the package (tsc: dist/), compiles the tests
# and runs them with node's test runner twice: with the `ws` package's WebSocket injected, and
# with the runtime's own global WebSocket (Node 22, or Node 20 with --experimental-websocket),
# the kind browsers have. Each test file starts its own server on random ports in a temporary
# directory (test/harness.ts) and stops it at the end.
#
# Env: CONFAB_BIN (default ~/.cache/confab-target/debug/confab), TSCLIENT_TIMEOUT_SECS (each
#      pass, default 600), CONFAB_TEST_KEEP=1 (keep the servers' directories).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export CONFAB_BIN="${CONFAB_BIN:-$HOME/.cache/confab-target/debug/confab}"

if [ ! -x "$CONFAB_BIN" ]; then
  echo "no confab binary at $CONFAB_BIN: build it (cargo build -p confab) or set CONFAB_BIN" >&2
  exit 1
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "== installing node and npm (apt)"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm >/dev/null
fi
major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$major" -lt 20 ]; then
  echo "node $(node --version) is too old: @confab/client needs Node.js 20 or later" >&2
  exit 1
fi

cd "$HERE"
lock_sum="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ ! -d node_modules ] || [ "$(cat node_modules/.confab-lock 2>/dev/null)" != "$lock_sum" ]; then
  echo "== npm ci (clients/typescript)"
  timeout 600 npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_sum" > node_modules/.confab-lock
fi

echo "== build (tsc: dist/) and the tests (build-test/)"
timeout 300 npm run --silent build
timeout 300 npm run --silent build:test

limit="${TSCLIENT_TIMEOUT_SECS:-600}"
echo "== node --test, WebSocket from the ws package (binary: $CONFAB_BIN)"
CONFAB_TEST_WEBSOCKET=ws timeout --kill-after=15 "$limit" node --test --test-concurrency=1 build-test/*.test.js

flags=()
if ! node -e 'process.exit(typeof WebSocket === "function" ? 0 : 1)'; then flags=(--experimental-websocket); fi
echo "== node --test, the runtime's global WebSocket ${flags[*]:-}"
CONFAB_TEST_WEBSOCKET=global timeout --kill-after=15 "$limit" node "${flags[@]}" --test --test-concurrency=1 build-test/*.test.js
