#!/usr/bin/env bash
# Issue 6, scenario 1 (latency under load), side by side with Centrifugo: senders into channels
# with connected receivers, the rate stepped up until p99 crosses 100 ms.
#   load-tests/underload.sh [--system embedded,distributed,centrifugo] [--senders 4]
#                           [--channels 20] [--members 5] [--rates 250,500,...] [--seconds 10]
# Systems run one after the other in this one script run (the last named is the peer the
# others are compared with). distributed starts Kafka, Cassandra, Redis, OpenSearch and MinIO
# first; centrifugo is started by scripts/peers/centrifugo.sh. Confab is a release build.
# Appends the tables to load-tests/RESULTS.md with the date, machine and command.
set -euo pipefail
CONFAB_BENCH_SCRIPT="load-tests/underload.sh" exec "$(dirname "$0")/run.sh" underload "$@"
