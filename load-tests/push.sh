#!/usr/bin/env bash
# Scenario 4 (push): DMs to offline users with a Web Push subscription; time from the
# sender's ack to the push request at a local push service that speaks the protocol.
#   load-tests/push.sh [--mode embedded|distributed] [--pushes N] [--recipients R]
# distributed (default): starts Kafka, Cassandra, Redis and OpenSearch, then Confab (release
# build) as separate processes, the notifier included. embedded: one `confab serve`.
# Appends the table to load-tests/RESULTS.md with the date, machine and command.
set -euo pipefail
CONFAB_BENCH_SCRIPT="load-tests/push.sh" exec "$(dirname "$0")/run.sh" push "$@"
