#!/usr/bin/env bash
# The whole test suite, on a fresh machine or this one:
#   1. installs what the build and the servers need (Debian packages, Maven jars) if missing,
#   2. checks the habits (cargo fmt, clippy with warnings as errors, cargo deny on bans, licenses
#      and sources), runs each fuzz target for a few seconds (scripts/fuzz.sh), checks
#      docs/asyncapi.yaml with the AsyncAPI parser (scripts/check-contracts.sh), the alert rules,
#      their unit tests and the Grafana dashboard's queries with promtool (scripts/check-deploy.sh)
#      and builds the workspace,
#   3. starts real Kafka, Cassandra, Redis, OpenSearch and MinIO on free 127.0.0.1 ports
#      (scripts/services/all.sh),
#   4. runs every unit and end-to-end test against them (schemathesis among them, against the
#      HTTP API's OpenAPI documents),
#   5. runs the Python and TypeScript client libraries' tests against `confab serve`
#      (clients/*/run-tests.sh)
#      and the web client's end-to-end tests in headless Chromium (scripts/web-e2e.sh, which
#      installs chromium and the npm packages if missing), and
#   6. stops the servers, pass or fail.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v cmake >/dev/null || need_apt+=(cmake)
command -v cc >/dev/null || need_apt+=(build-essential)
command -v java >/dev/null || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need_apt+=(maven)
command -v redis-server >/dev/null || need_apt+=(redis-server)
[ -f /usr/include/curl/curl.h ] || [ -f /usr/include/x86_64-linux-gnu/curl/curl.h ] || need_apt+=(libcurl4-openssl-dev)
command -v python3 >/dev/null || need_apt+=(python3)
# librdkafka is built with TLS (SASL_SSL, SCRAM) against the system's OpenSSL
[ -f /usr/include/openssl/ssl.h ] || need_apt+=(libssl-dev)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
command -v openssl >/dev/null || need_apt+=(openssl)   # the secured test broker's CA
command -v strace >/dev/null || need_apt+=(strace)   # tests/tests/durability.rs watches fsyncs
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null; then
  echo "cargo not found: install Rust (rustup) first" >&2; exit 1
fi

# build output survives between runs on the same machine
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/confab-target}"
export CARGO_TERM_COLOR=never

# habits, before anything is built for the tests: formatted, no clippy warnings, and the
# dependency tree checked (duplicate versions, licenses, sources; deny.toml says what is allowed)
for component in rustfmt clippy; do
  cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1 || rustup component add "$component"
done
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
deny_version=0.20.2
if [ "$(cargo deny --version 2>/dev/null)" != "cargo-deny $deny_version" ]; then
  echo "installing cargo-deny $deny_version from crates.io"
  cargo install cargo-deny --version "$deny_version" --locked --quiet
fi
cargo deny --log-level error check bans licenses sources

# smoke fuzzing: every cargo-fuzz target in fuzz/ for a few seconds over its checked-in corpus
# (installs the nightly toolchain and cargo-fuzz if missing; a crash fails the run)
CONFAB_FUZZ_SECONDS_PER_TARGET="${CONFAB_FUZZ_SECONDS_PER_TARGET:-8}" scripts/fuzz.sh

# the WebSocket contract (docs/asyncapi.yaml) checked by the AsyncAPI parser; the tests then
# validate every frame they receive against it (tests/src/asyncapi.rs)
scripts/check-contracts.sh
# deploy/: alert rules and their unit tests, the dashboard's queries (promtool, from Debian)
scripts/check-deploy.sh

cargo build --workspace --tests --bins

# Confluent's Python client and DuckDB, for the data-team examples' tests
# (examples/python/read_events.py, land_parquet.py), and schemathesis, which tests the HTTP API
# against its OpenAPI documents (tests/tests/openapi.rs)
pyenv_dir="${CONFAB_CACHE:-$HOME/.cache/confab}/pyenv"
schemathesis_version=4.32.5
if ! "$pyenv_dir/bin/python" -c 'import confluent_kafka.schema_registry.avro, fastavro, duckdb' 2>/dev/null \
  || [ "$("$pyenv_dir/bin/schemathesis" --version 2>/dev/null)" != "schemathesis, version $schemathesis_version" ]; then
  python3 -m venv "$pyenv_dir"
  "$pyenv_dir/bin/pip" install -q "confluent-kafka[avro]" duckdb "schemathesis==$schemathesis_version"
fi
export CONFAB_PYTHON="$pyenv_dir/bin/python"

run_dir="$(mktemp -d /tmp/confab-test.XXXXXX)"
cleanup() { scripts/services/all.sh stop "$run_dir" || true; rm -rf "$run_dir"; }
trap cleanup EXIT
# every distributed test makes a keyspace of its own (17 tables, 2 of them the key store's): a
# 1 GiB heap ran out of memory (OutOfMemoryError, the node exits) after about two runs of the
# suite against one node; 2 GiB leaves room for one run and its reruns
CASSANDRA_HEAP="${CASSANDRA_HEAP:-2G}" scripts/services/all.sh start "$run_dir"

export CONFAB_TEST_ENV="$run_dir/env" CONFAB_REQUIRE_SERVERS=1
# the search adapters' own conformance tests (search/tests) take the OpenSearch URL directly
CONFAB_TEST_OPENSEARCH_URL="$(grep '^CONFAB_OPENSEARCH_URL=' "$run_dir/env" | tail -1 | cut -d= -f2-)"
export CONFAB_TEST_OPENSEARCH_URL
export CONFAB_BIN="$CARGO_TARGET_DIR/debug/confab"
log="$run_dir/cargo-test.log"
set +e
cargo test --workspace --no-fail-fast "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# the client libraries against `confab serve`: Python (clients/python: its own venv and pytest)
# and TypeScript (clients/typescript: npm ci, tsc, node's test runner)
bash clients/python/run-tests.sh -q 2>&1 | tee "$run_dir/python-client.log"
python_client_status=${PIPESTATUS[0]}
bash clients/typescript/run-tests.sh 2>&1 | tee "$run_dir/typescript-client.log"
typescript_client_status=${PIPESTATUS[0]}
# the web client, embedded in the binary just built (the script checks web/dist against web/src)
# (screenshots go to the run dir: `scripts/web-e2e.sh` alone refreshes docs/screenshots)
SCREENSHOTS="$run_dir/screenshots" E2E_SERVE_EMBEDDED=1 bash scripts/web-e2e.sh 2>&1 | tee "$run_dir/web-e2e.log"
web_status=${PIPESTATUS[0]}
set -e
# one closing line for the whole suite (cargo prints one per test binary)
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
grep -E '^[0-9]+ passed, [0-9]+ failed in' "$run_dir/web-e2e.log" | sed 's/^/web client (Chromium): /' || true
grep -E '^[0-9]+ (passed|failed)' "$run_dir/python-client.log" | tail -1 | sed 's/^/Python client (pytest): /' || true
awk '/^# pass / { p += $3 } /^# fail / { f += $3 } END { printf "TypeScript client (node --test, both WebSockets): %d passed, %d failed\n", p, f }' \
  "$run_dir/typescript-client.log" || true
[ "$web_status" -eq 0 ] || echo "web e2e failed (exit $web_status)"
[ "$python_client_status" -eq 0 ] || echo "Python client tests failed (exit $python_client_status)"
[ "$typescript_client_status" -eq 0 ] || echo "TypeScript client tests failed (exit $typescript_client_status)"
[ "$status" -eq 0 ] && [ "$web_status" -eq 0 ] && [ "$python_client_status" -eq 0 ] && [ "$typescript_client_status" -eq 0 ]
