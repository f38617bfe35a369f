#!/usr/bin/env bash
# Ticket-create throughput over HTTP against a bare axum endpoint that parses
# the same JSON into the same type, all in one run with the same load
# generator (machines here are noisy: only ratios measured side by side mean
# anything). Switchboard runs on SQLite (durable acknowledgements, group commit,
# token auth, contact lookup, history row) in three scenarios, each on a
# fresh data directory:
#
#   unrouted   tickets with no channel: no routing rule applies;
#   routed_20  tickets on a channel routed load balanced over a team of 20
#              seated, available agents (decision, owner, counters, load
#              expiry job, explanation, notification: the whole path);
#   routed_1000  the same over 1,000 agents.
#
# The bare endpoint is measured before and after; ratios are against the
# mean of the two.
#
#   bash benches/http_create.sh            # 64 connections, 10 s each
#   CONNECTIONS=16 DURATION=5 SCENARIOS="unrouted routed_20" bash benches/http_create.sh
#
# To compare two versions side by side, build the other one and name its
# binary in BASELINE_BIN: each scenario then runs on it and on this tree's
# binary alternately, in the same run.
#
#   git worktree add /tmp/base <commit> && (cd /tmp/base && cargo build --release -p switchboard)
#   BASELINE_BIN=/tmp/base/target/release/switchboard bash benches/http_create.sh
#
# Needs wrk and curl (apt-get install wrk curl). Load goes to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-10}
SB_PORT=${SB_PORT:-18080}
BARE_PORT=${BARE_PORT:-18091}
SCENARIOS=${SCENARIOS:-"unrouted routed_20 routed_1000"}

command -v wrk >/dev/null || { echo "wrk is required: apt-get install wrk" >&2; exit 1; }
cargo build --release -q -p switchboard
cargo build --release -q -p switchboard-server --example bare_endpoint

work=$(mktemp -d)
pid=""
stop() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=""; fi; }
cleanup() { stop; rm -rf "$work"; }
trap cleanup EXIT

wait_for() { for _ in $(seq 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "no answer from $1" >&2; exit 1; }

run_wrk() { # url token channel -> requests/s
  TOKEN=$2 CHANNEL=$3 wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s benches/create_ticket.lua "$1" > "$work/wrk.txt"
  cat "$work/wrk.txt" >&2
  if grep -q "Non-2xx" "$work/wrk.txt"; then echo "errors during the run" >&2; exit 1; fi
  awk '/Requests\/sec/ {print $2}' "$work/wrk.txt"
}

bare() {
  target/release/examples/bare_endpoint "127.0.0.1:$BARE_PORT" > /dev/null &
  pid=$!
  wait_for "http://127.0.0.1:$BARE_PORT/"
  echo "== bare axum endpoint, same body, $CONNECTIONS connections, ${DURATION}s" >&2
  run_wrk "http://127.0.0.1:$BARE_PORT/api/v1/tickets" unused ""
  stop
}

api() { # method path body
  curl -sf -X "$1" "http://127.0.0.1:$SB_PORT/api/v1$2" -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' -d "$3"
}

# A team of $1 seated agents (main members) and a custom channel routing to
# it load balanced; prints the channel id.
routed_channel() {
  local n=$1 members="" id
  for i in $(seq "$n"); do
    id=$(api POST /users "{\"name\":\"Agent $i\",\"email\":\"agent$i@bench.example\",\"role\":\"agent\",\"help_desk_seat\":true}" | sed -E 's/.*"id":([0-9]+).*/\1/;q')
    members+="${members:+,}{\"user_id\":$id,\"main\":true}"
  done
  local team channel
  team=$(api POST /teams "{\"name\":\"Bench $n\",\"members\":[$members]}" | sed -E 's/^\{"id":([0-9]+).*/\1/')
  channel=$(api POST /channels '{"kind":"custom","name":"Bench"}' | sed -E 's/^\{"id":([0-9]+).*/\1/')
  api PATCH "/channels/$channel" "{\"routing\":{\"assign_to\":\"users_and_teams\",\"teams\":[$team],\"distribution\":\"load_balanced\"}}" > /dev/null
  echo "$channel"
}

scenario() { # name [binary] -> creates/s
  local name=$1 bin=${2:-target/release/switchboard} channel=""
  rm -rf "${work:?}/$name"
  SWITCHBOARD_LOG=warn "$bin" serve --data-dir "$work/$name" --listen "127.0.0.1:$SB_PORT" > "$work/$name.log" 2>&1 &
  pid=$!
  wait_for "http://127.0.0.1:$SB_PORT/healthz"
  token=$(cat "$work/$name/admin-token")
  case $name in
    unrouted) ;;
    routed_*) channel=$(routed_channel "${name#routed_}") ;;
  esac
  echo "== switchboard $name: POST /api/v1/tickets, $CONNECTIONS connections, ${DURATION}s" >&2
  local rate
  rate=$(run_wrk "http://127.0.0.1:$SB_PORT/api/v1/tickets" "$token" "$channel")
  if [ -n "$channel" ]; then
    # Every ticket of the run must have been assigned by routing.
    local unassigned
    unassigned=$(curl -s "http://127.0.0.1:$SB_PORT/api/v1/tickets?view=unassigned&limit=1" -H "Authorization: Bearer $token" | grep -c '"id"' || true)
    [ "$unassigned" = 0 ] || { echo "routed scenario left tickets unassigned" >&2; exit 1; }
  fi
  stop
  echo "$rate"
}

b1=$(bare)
declare -A rates base
for s in $SCENARIOS; do
  if [ -n "${BASELINE_BIN:-}" ]; then base[$s]=$(scenario "$s" "$BASELINE_BIN"); fi
  rates[$s]=$(scenario "$s")
done
b2=$(bare)
bare_mean=$(awk -v a="$b1" -v b="$b2" 'BEGIN { printf "%.0f", (a + b) / 2 }')
echo "bare_axum_per_s=$bare_mean (before $b1, after $b2)"
for s in $SCENARIOS; do
  awk -v n="$s" -v a="${rates[$s]}" -v b="$bare_mean" 'BEGIN { printf "%s_per_s=%s ratio=%.2f\n", n, a, a / b }'
  if [ -n "${BASELINE_BIN:-}" ]; then
    awk -v n="$s" -v a="${base[$s]}" -v r="${rates[$s]}" -v b="$bare_mean" \
      'BEGIN { printf "%s_baseline_per_s=%s ratio=%.2f (this tree %+.0f%%)\n", n, a, a / b, 100 * (r - a) / a }'
  fi
done
