#!/usr/bin/env bash
# Issue 6, scenario 3 (connections), side by side with Centrifugo: idle WebSockets on one server
# from several 127.0.0.x source addresses; memory per connection and the heartbeat's cost.
#   load-tests/connections.sh [--system embedded,distributed,centrifugo] [--connections 15000]
#                             [--per-workspace 100] [--concurrency 200]
# The open-files hard limit here is 20,000 per process, which caps --connections (the load
# generator holds the client ends). Appends the table to load-tests/RESULTS.md.
set -euo pipefail
CONFAB_BENCH_SCRIPT="load-tests/connections.sh" exec "$(dirname "$0")/run.sh" connections "$@"
