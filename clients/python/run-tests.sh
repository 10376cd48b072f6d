#!/usr/bin/env bash
# Tests of the Python client (clients/python) against a real `confab serve`.
#
#   clients/python/run-tests.sh [pytest args...]
#
# Makes (once) a virtualenv at ${CONFAB_CACHE:-~/.cache/confab}/pyclient-venv and installs the
# package there in editable mode with its test extras; pip runs again only when pyproject.toml
# changes (its hash is kept in a stamp file in the venv). Then runs pytest, which starts its own
# server on random ports in a temporary directory (tests/conftest.py) and stops it at the end.
#
# Env: CONFAB_BIN (default ~/.cache/confab-target/debug/confab), CONFAB_CACHE,
#      PYCLIENT_TIMEOUT_SECS (whole run, default 900), CONFAB_TEST_KEEP=1 (keep the server's dir),
#      PYTHON (the interpreter the venv is made from, default python3).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${CONFAB_CACHE:-$HOME/.cache/confab}"
VENV="$CACHE/pyclient-venv"
STAMP="$VENV/.confab-pyproject-sha256"
PYTHON="${PYTHON:-python3}"
export CONFAB_BIN="${CONFAB_BIN:-$HOME/.cache/confab-target/debug/confab}"

if [ ! -x "$CONFAB_BIN" ]; then
  echo "no confab binary at $CONFAB_BIN: build it (cargo build -p confab) or set CONFAB_BIN" >&2
  exit 1
fi

mkdir -p "$CACHE"
if [ ! -x "$VENV/bin/python" ]; then
  echo "== making the virtualenv $VENV"
  "$PYTHON" -m venv "$VENV"
fi

WANT="$( (sha256sum "$HERE/pyproject.toml"; "$VENV/bin/python" -c 'import sys; print(sys.version)') | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$WANT" ] || ! "$VENV/bin/python" -c 'import confab_client, pytest, pytest_asyncio' 2>/dev/null; then
  echo "== installing confab-client[test] into $VENV"
  timeout 600 "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$HERE[test]"
  echo "$WANT" > "$STAMP"
fi

cd "$HERE"
echo "== pytest (binary: $CONFAB_BIN)"
# pytest-timeout bounds each test (pyproject.toml); this bounds the whole run
exec timeout --kill-after=15 "${PYCLIENT_TIMEOUT_SECS:-900}" "$VENV/bin/python" -m pytest -p no:cacheprovider "$@"
