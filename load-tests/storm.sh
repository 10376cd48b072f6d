#!/usr/bin/env bash
# Issue 6, scenario 5 (reconnect storm): every client drops and reconnects at once with
# `resume`; time until all are back and resumed with what they missed.
#   load-tests/storm.sh [--mode embedded|distributed] [--clients 10000]
# Appends the table to load-tests/RESULTS.md with the date, machine and command.
set -euo pipefail
CONFAB_BENCH_SCRIPT="load-tests/storm.sh" exec "$(dirname "$0")/run.sh" storm "$@"
