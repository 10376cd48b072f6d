#!/usr/bin/env bash
# Scenario 1 in both modes, back to back in one run (same build, same minute, same machine load):
# embedded first, then the real stack. Each run appends its table to load-tests/RESULTS.md.
#   load-tests/compare-modes.sh [--messages N] [--rate R]
set -euo pipefail
cd "$(dirname "$0")/.."
{ echo; echo "### comparison run $(date -u +%Y-%m-%dT%H:%MZ): \`load-tests/compare-modes.sh $*\` (the two entries below)"; } >> load-tests/RESULTS.md
load-tests/latency.sh --mode embedded "$@"
load-tests/latency.sh --mode distributed "$@"
