#!/usr/bin/env bash
# Ticket-create throughput on PostgreSQL with 1 and 3 Switchboard nodes,
# unrouted and routed load balanced over a team of 20 seated agents,
# measured in the same run as pgbench inserting the same rows as an
# unrouted create (the ticket and its history line, in one transaction) at
# the same client count. Prints the rates and their ratios.
#
#   bash benches/pg_create.sh                  # 64 clients, 10 s each
#   CONNECTIONS=32 DURATION=5 bash benches/pg_create.sh
#
# BASELINE_BIN=/path/to/other/switchboard also measures that binary's
# unrouted and routed creates on one node, first, in the same run.
#
# Needs wrk and pgbench (apt-get install wrk postgresql-client) and the test
# PostgreSQL (SWITCHBOARD_TEST_POSTGRES, default postgres://postgres@127.0.0.1:5432/test).
# Each part runs in a fresh schema that is dropped afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-10}
PG=${SWITCHBOARD_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/test}
PORT=${PORT:-18100}

command -v wrk >/dev/null || { echo "wrk is required: apt-get install wrk" >&2; exit 1; }
command -v pgbench >/dev/null || { echo "pgbench is required" >&2; exit 1; }
cargo build --release -q -p switchboard

data=$(mktemp -d)
pids=()
schemas=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for s in "${schemas[@]}"; do psql -q "$PG" -c "DROP SCHEMA IF EXISTS $s CASCADE" 2>/dev/null || true; done
  rm -rf "$data"
}
trap cleanup EXIT

fresh_schema() { # name -> URL with search_path
  psql -q "$PG" -c "DROP SCHEMA IF EXISTS $1 CASCADE; CREATE SCHEMA $1" 2>/dev/null
  schemas+=("$1")
  echo "$PG?options=-c%20search_path%3D$1"
}
wait_for() { for _ in $(seq 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "no answer from $1" >&2; exit 1; }
start_node() { # url dir port
  SWITCHBOARD_LOG=warn "${NODE_BIN:-target/release/switchboard}" serve --database "$1" --data-dir "$2" --listen "127.0.0.1:$3" > "$2.log" &
  pids+=($!)
  wait_for "http://127.0.0.1:$3/healthz"
}

api() { # port method path body
  curl -sf -X "$2" "http://127.0.0.1:$1/api/v1$3" -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' -d "$4"
}

# A team of $2 seated agents and a custom channel routing to it load
# balanced, through the node on port $1; prints the channel id.
routed_channel() {
  local port=$1 n=$2 members="" id team channel
  for i in $(seq "$n"); do
    id=$(api "$port" POST /users "{\"name\":\"Agent $i\",\"email\":\"agent$i@bench.example\",\"role\":\"agent\",\"help_desk_seat\":true}" | sed -E 's/.*"id":([0-9]+).*/\1/;q')
    members+="${members:+,}{\"user_id\":$id,\"main\":true}"
  done
  team=$(api "$port" POST /teams "{\"name\":\"Bench $n\",\"members\":[$members]}" | sed -E 's/^\{"id":([0-9]+).*/\1/')
  channel=$(api "$port" POST /channels '{"kind":"custom","name":"Bench"}' | sed -E 's/^\{"id":([0-9]+).*/\1/')
  api "$port" PATCH "/channels/$channel" "{\"routing\":{\"assign_to\":\"users_and_teams\",\"teams\":[$team],\"distribution\":\"load_balanced\"}}" > /dev/null
  echo "$channel"
}

# measure NAME NODES AGENTS -> creates/s over all nodes (AGENTS=0: unrouted)
measure() {
  local name=$1 nodes=$2 agents=$3 url channel="" per loads=() first=${#pids[@]}
  url=$(fresh_schema "sb_bench_$name")
  for i in $(seq "$nodes"); do start_node "$url" "$data/$name.$i" $((PORT + i)); done
  token=$(cat "$data/$name.1/admin-token")
  [ "$agents" -gt 0 ] && channel=$(routed_channel $((PORT + 1)) "$agents")
  echo "== $name: $nodes node(s), $agents agents, $CONNECTIONS connections, ${DURATION}s" >&2
  per=$((CONNECTIONS / nodes))
  for i in $(seq "$nodes"); do
    TOKEN=$token CHANNEL=$channel wrk -t1 -c"$per" -d"${DURATION}s" -s benches/create_ticket.lua "http://127.0.0.1:$((PORT + i))/api/v1/tickets" > "$data/$name.$i.txt" &
    loads+=($!)
  done
  wait "${loads[@]}"
  cat "$data/$name".*.txt >&2
  if grep -q "Non-2xx" "$data/$name".*.txt; then echo "errors during the run" >&2; exit 1; fi
  for p in "${pids[@]:$first}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  # (Run in a subshell: the cleanup trap does not see this schema.)
  psql -q "$PG" -c "DROP SCHEMA IF EXISTS sb_bench_$name CASCADE" 2>/dev/null || true
  awk '/Requests\/sec/ {s += $2} END {print s}' "$data/$name".*.txt
}

if [ -n "${BASELINE_BIN:-}" ]; then
  base_one=$(NODE_BIN=$BASELINE_BIN measure base_one 1 0)
  base_routed_one=$(NODE_BIN=$BASELINE_BIN measure base_routed_one 1 20)
fi
one=$(measure one 1 0)
routed_one=$(measure routed_one 1 20)
three=$(measure three 3 0)
routed_three=$(measure routed_three 3 20)
sleep 1

# pgbench: the same ticket row and history row, in one transaction, with
# the same client count, into a schema migrated by Switchboard itself.
url=$(fresh_schema sb_bench_pgbench)
start_node "$url" "$data/pgb" $((PORT + 9))
kill "${pids[-1]}"
cat > "$data/create.sql" <<'SQL'
BEGIN;
INSERT INTO tickets (account_id, subject, content, source, type, status, stage, priority, contact_id, properties, created_at, updated_at)
VALUES (1, 'Invoice charged twice this month', 'Hello, I was charged twice for my subscription this month (invoice 2026-11-0042). Could you refund the duplicate charge? I attached the bank statement to my previous e-mail. Thanks a lot, Cleo', 'api', 'email_other', 'open', 'new', 'high', NULL, '{"language":"fr","category":"billing","plan":"pro","order":"A-20931"}', 1795000000000, 1795000000000)
RETURNING id AS ticket_id \gset
INSERT INTO ticket_history (account_id, ticket_id, at, actor, event)
VALUES (1, :ticket_id, 1795000000000, '{"type":"user","user_id":1}', '{"type":"created","source":"api","owner":{"user_id":null,"team_id":null}}');
END;
SQL
echo "== pgbench: the same rows, $CONNECTIONS clients, ${DURATION}s" >&2
PGOPTIONS="-c search_path=sb_bench_pgbench" pgbench -n -c "$CONNECTIONS" -j 2 -T "$DURATION" -f "$data/create.sql" "$PG" > "$data/pgbench.txt"
cat "$data/pgbench.txt" >&2
pgb=$(awk -F'= ' '/^tps/ {split($2, a, " "); print a[1]}' "$data/pgbench.txt")

echo "pgbench_per_s=$pgb"
echo "unrouted_1_node_per_s=$one unrouted_3_nodes_per_s=$three"
echo "routed_20_1_node_per_s=$routed_one routed_20_3_nodes_per_s=$routed_three"
awk -v a="$one" -v b="$pgb" 'BEGIN { printf "unrouted_1_node_vs_pgbench=%.2f\n", a / b }'
awk -v a="$three" -v b="$pgb" 'BEGIN { printf "unrouted_3_nodes_vs_pgbench=%.2f\n", a / b }'
awk -v a="$routed_one" -v b="$one" 'BEGIN { printf "routed_vs_unrouted_1_node=%.2f\n", a / b }'
awk -v a="$routed_three" -v b="$three" 'BEGIN { printf "routed_vs_unrouted_3_nodes=%.2f\n", a / b }'
awk -v a="$routed_one" -v b="$pgb" 'BEGIN { printf "routed_1_node_vs_pgbench=%.2f\n", a / b }'
if [ -n "${BASELINE_BIN:-}" ]; then
  echo "baseline: unrouted_1_node_per_s=$base_one routed_20_1_node_per_s=$base_routed_one"
  awk -v a="$base_routed_one" -v b="$base_one" 'BEGIN { printf "baseline_routed_vs_unrouted_1_node=%.2f\n", a / b }'
fi
