#!/usr/bin/env bash
# Issue 6, scenario 2 (throughput): the highest sustained send rate that every consumer keeps up
# with (lag bounded), with the CPU and memory of every process, the rate stepped up.
#   load-tests/throughput.sh [--mode embedded|distributed] [--senders 8] [--channels 40]
#                            [--readers 1] [--rates 500,1000,...] [--seconds 20]
# distributed (the default) starts Kafka, Cassandra, Redis, OpenSearch and MinIO first.
# Appends the tables to load-tests/RESULTS.md with the date, machine and command.
set -euo pipefail
CONFAB_BENCH_SCRIPT="load-tests/throughput.sh" exec "$(dirname "$0")/run.sh" throughput "$@"
