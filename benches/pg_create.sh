#!/usr/bin/env bash
# Ticket-create throughput on PostgreSQL with 1 and 3 Switchboard nodes,
# measured in the same run as pgbench inserting the same rows (the ticket
# and its history line, in one transaction) at the same client count.
# Prints the three rates and the two ratios.
#
#   bash benches/pg_create.sh                  # 64 clients, 10 s each
#   CONNECTIONS=32 DURATION=5 bash benches/pg_create.sh
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
  SWITCHBOARD_LOG=warn target/release/switchboard serve --database "$1" --data-dir "$2" --listen "127.0.0.1:$3" > "$2.log" &
  pids+=($!)
  wait_for "http://127.0.0.1:$3/healthz"
}

# 1 node.
url=$(fresh_schema sb_bench_one)
start_node "$url" "$data/one" "$PORT"
token=$(cat "$data/one/admin-token")
echo "== 1 node: POST /api/v1/tickets, $CONNECTIONS connections, ${DURATION}s" >&2
TOKEN=$token wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" -s benches/create_ticket.lua "http://127.0.0.1:$PORT/api/v1/tickets" > "$data/one.txt"
cat "$data/one.txt" >&2
grep -q "Non-2xx" "$data/one.txt" && { echo "errors during the run" >&2; exit 1; }
one=$(awk '/Requests\/sec/ {print $2}' "$data/one.txt")
kill "${pids[-1]}"

# 3 nodes on one schema; one wrk per node, the connections split between them.
url=$(fresh_schema sb_bench_three)
start_node "$url" "$data/n0" $((PORT + 1))
token=$(cat "$data/n0/admin-token")
start_node "$url" "$data/n1" $((PORT + 2))
start_node "$url" "$data/n2" $((PORT + 3))
echo "== 3 nodes: $CONNECTIONS connections split over them, ${DURATION}s" >&2
per=$((CONNECTIONS / 3))
loads=()
for i in 1 2 3; do
  TOKEN=$token wrk -t1 -c"$per" -d"${DURATION}s" -s benches/create_ticket.lua "http://127.0.0.1:$((PORT + i))/api/v1/tickets" > "$data/three.$i.txt" &
  loads+=($!)
done
wait "${loads[@]}"
cat "$data"/three.*.txt >&2
grep -q "Non-2xx" "$data"/three.*.txt && { echo "errors during the run" >&2; exit 1; }
three=$(awk '/Requests\/sec/ {s += $2} END {print s}' "$data"/three.*.txt)
# Stop the nodes: pgbench needs their connections.
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
sleep 1

# pgbench: the same ticket row and history row, in one transaction, with
# the same client count, into a schema migrated by Switchboard itself.
url=$(fresh_schema sb_bench_pgbench)
start_node "$url" "$data/pgb" $((PORT + 4))
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

echo "switchboard_1_node_per_s=$one"
echo "switchboard_3_nodes_per_s=$three"
echo "pgbench_per_s=$pgb"
awk -v a="$one" -v b="$pgb" 'BEGIN { printf "ratio_1_node=%.2f\n", a / b }'
awk -v a="$three" -v b="$pgb" 'BEGIN { printf "ratio_3_nodes=%.2f\n", a / b }'
