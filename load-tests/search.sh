#!/usr/bin/env bash
# Scenario 2 (search): index N messages, then measure visibility lag (ack -> found by
# /api/search) and query latency.
#   load-tests/search.sh [--mode embedded|distributed] [--messages N] [--samples S] [--queries Q]
# distributed (default): starts Kafka, Cassandra, Redis and OpenSearch, then Confab (release
# build) as separate processes. embedded: one `confab serve` (tantivy), no servers.
# Appends the table to load-tests/RESULTS.md with the date, machine and command.
set -euo pipefail
CONFAB_BENCH_SCRIPT="load-tests/search.sh" exec "$(dirname "$0")/run.sh" search "$@"
