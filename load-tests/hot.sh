#!/usr/bin/env bash
# Issue 6, scenario 4 as a rate, side by side with Centrifugo: one channel with every member
# connected, one sender at each offered rate; deliveries per second, and the time until the
# last member has each message.
#   load-tests/hot.sh [--system embedded,distributed,centrifugo] [--members 5000] [--rates 2,5,10,20,40]
#                     [--seconds 10]
# Appends the tables to load-tests/RESULTS.md with the date, machine and command.
set -euo pipefail
CONFAB_BENCH_SCRIPT="load-tests/hot.sh" exec "$(dirname "$0")/run.sh" hot "$@"
