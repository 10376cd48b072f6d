#!/usr/bin/env bash
# Checks the published contracts with their communities' own tools (issue 20): the WebSocket
# contract docs/asyncapi.yaml with the AsyncAPI Initiative's parser (tools/contracts). The test
# suite then validates every frame it receives against the same document (tests/src/asyncapi.rs).
# Installs node/npm (apt) and the pinned npm packages (tools/contracts/package-lock.json) if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "installing node and npm (apt)"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm >/dev/null
fi
cd tools/contracts
lock_sum="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ ! -d node_modules ] || [ "$(cat node_modules/.confab-lock 2>/dev/null)" != "$lock_sum" ]; then
  echo "npm ci (tools/contracts)"
  timeout 600 npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_sum" > node_modules/.confab-lock
fi
node check.mjs ../../docs/asyncapi.yaml
