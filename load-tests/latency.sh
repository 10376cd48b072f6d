#!/usr/bin/env bash
# Scenario 1 (latency): send -> message:new, and send -> ack, at a fixed rate.
#   load-tests/latency.sh [--mode embedded|distributed] [--messages N] [--rate R]
# distributed (default): starts Kafka, Cassandra, Redis, then Confab (release build) with two
# gateways, sender on one and receiver on the other. embedded: one `confab serve`, no servers.
# Appends the table to load-tests/RESULTS.md with the date, machine and command.
set -euo pipefail
CONFAB_BENCH_SCRIPT="load-tests/latency.sh" exec "$(dirname "$0")/run.sh" latency "$@"
