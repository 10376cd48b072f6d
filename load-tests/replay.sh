#!/usr/bin/env bash
# Issue 6, scenario 6 (replay): load messages, then rebuild the timeline and the search index
# from the log; events per second of each replay.
#   load-tests/replay.sh [--mode embedded|distributed] [--messages 100000]
# Appends the table to load-tests/RESULTS.md with the date, machine and command.
set -euo pipefail
CONFAB_BENCH_SCRIPT="load-tests/replay.sh" exec "$(dirname "$0")/run.sh" replay "$@"
