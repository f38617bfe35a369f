#!/usr/bin/env bash
# Ticket-create throughput over HTTP: Switchboard (SQLite, synchronous=FULL,
# group commit, token auth, contact lookup, history row) against a bare axum
# endpoint that parses the same JSON into the same type, measured in the same
# run with the same load generator. Prints both rates and their ratio.
#
#   bash benches/http_create.sh            # 64 connections, 10 s each
#   CONNECTIONS=16 DURATION=5 bash benches/http_create.sh
#
# Needs wrk (apt-get install wrk). Load goes to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-10}
SB_PORT=${SB_PORT:-18080}
BARE_PORT=${BARE_PORT:-18091}

command -v wrk >/dev/null || { echo "wrk is required: apt-get install wrk" >&2; exit 1; }
cargo build --release -q -p switchboard
cargo build --release -q -p switchboard-server --example bare_endpoint

data=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$data"; }
trap cleanup EXIT

wait_for() { for _ in $(seq 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "no answer from $1" >&2; exit 1; }

run_wrk() { # url -> requests/s
  TOKEN=$2 wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s benches/create_ticket.lua "$1" > "$data/wrk.txt"
  cat "$data/wrk.txt" >&2
  if grep -q "Non-2xx" "$data/wrk.txt"; then echo "errors during the run" >&2; exit 1; fi
  awk '/Requests\/sec/ {print $2}' "$data/wrk.txt"
}

SWITCHBOARD_LOG=warn target/release/switchboard serve --data-dir "$data/sb" --listen "127.0.0.1:$SB_PORT" > "$data/sb.log" &
pids+=($!)
wait_for "http://127.0.0.1:$SB_PORT/healthz"
token=$(cat "$data/sb/admin-token")
echo "== switchboard: POST /api/v1/tickets, $CONNECTIONS connections, ${DURATION}s" >&2
sb=$(run_wrk "http://127.0.0.1:$SB_PORT/api/v1/tickets" "$token")
count=$(curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$SB_PORT/metrics" | awk '/^switchboard_tickets_created_total/ {print $2}')
kill "${pids[0]}"

target/release/examples/bare_endpoint "127.0.0.1:$BARE_PORT" > /dev/null &
pids+=($!)
wait_for "http://127.0.0.1:$BARE_PORT/"
echo "== bare axum endpoint, same body, $CONNECTIONS connections, ${DURATION}s" >&2
bare=$(run_wrk "http://127.0.0.1:$BARE_PORT/api/v1/tickets" "unused")

echo "switchboard_creates_per_s=$sb tickets_stored=$count"
echo "bare_axum_per_s=$bare"
awk -v a="$sb" -v b="$bare" 'BEGIN { printf "ratio=%.2f\n", a / b }'
