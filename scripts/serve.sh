#!/usr/bin/env bash
# Starts Confab in embedded mode: the whole system in one process, no servers to install, data in
# ./confab-data (override with CONFAB_DATA_DIR). Installs the build prerequisites if missing
# (cmake, the curl and OpenSSL headers, which the bundled librdkafka needs to compile), then builds and
# runs `confab serve`. Arguments go to `confab`; Ctrl-C stops it gracefully.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v cc >/dev/null || missing+=(build-essential)
[ -f /usr/include/curl/curl.h ] || [ -f /usr/include/x86_64-linux-gnu/curl/curl.h ] || missing+=(libcurl4-openssl-dev)
[ -f /usr/include/openssl/ssl.h ] || missing+=(libssl-dev)
command -v pkg-config >/dev/null || missing+=(pkg-config)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing build prerequisites: ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/confab-target}"
cargo build --release -p confab
exec "$CARGO_TARGET_DIR/release/confab" "${@:-serve}"
