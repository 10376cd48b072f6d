#!/usr/bin/env bash
# Scenario 3 (fanout): N members of one channel all connected; time for a message to reach
# every socket, and presence propagation between gateways.
#   load-tests/fanout.sh [--mode embedded|distributed] [--members N] [--messages M]
# distributed (default): starts Kafka, Cassandra, Redis and OpenSearch, then Confab (release
# build) with two gateways. embedded: one `confab serve`. Needs ulimit -n >= N + 1000.
# Appends the table to load-tests/RESULTS.md with the date, machine and command.
set -euo pipefail
CONFAB_BENCH_SCRIPT="load-tests/fanout.sh" exec "$(dirname "$0")/run.sh" fanout "$@"
