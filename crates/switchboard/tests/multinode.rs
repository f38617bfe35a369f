//! Several `switchboard serve` processes on one PostgreSQL: routing stays
//! exact across nodes, acknowledged tickets survive a node's death, scheduled
//! work moves to the surviving nodes, and events cross nodes.
//!
//! Each test gets its own schema on the test server (see
//! `switchboard_store::postgres::testing`); outside CI the tests are skipped
//! when PostgreSQL is unreachable, under `CI=true` they fail.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::{Value, json};
use switchboard_domain::{AccountId, SystemClock};
use switchboard_store::{PgStore, Routing, postgres::testing::TestDatabase};

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

/// One node: `switchboard serve --database <url>` on a free port.
struct Node {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Node {
    fn start(url: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(BIN)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--database",
                url,
                "--data-dir",
            ])
            .arg(dir.path())
            .env("SWITCHBOARD_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let base = loop {
            let line = lines.next().expect("the node prints its address").unwrap();
            if let Some(addr) = line.strip_prefix("Switchboard listening on ") {
                break addr.trim().to_owned();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Node {
            child,
            base,
            _dir: dir,
        }
    }

    fn token(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("admin-token"))
            .unwrap()
            .trim()
            .to_owned()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The tests here run one at a time: three nodes each hold a pool of
/// connections, and four clusters at once would pass PostgreSQL's default
/// limit of 100 connections.
static ONE_CLUSTER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Three nodes on one fresh schema, the super admin's token, and a store
/// handle on the same schema for checks. `None` when PostgreSQL is
/// unavailable outside CI.
async fn cluster() -> Option<(TestDatabase, Vec<Node>, String, PgStore)> {
    let db = TestDatabase::create().await?;
    // The first node creates the account; the others find it.
    let first = Node::start(&db.url);
    let token = first.token();
    let nodes = vec![first, Node::start(&db.url), Node::start(&db.url)];
    let store = PgStore::connect(&db.url, Arc::new(SystemClock))
        .await
        .unwrap();
    Some((db, nodes, token, store))
}

async fn send(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Value,
) -> (u16, Value) {
    let res = client
        .request(method, url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Ten seated agents and a channel routing to them with `routing`.
async fn pool(base: &str, token: &str, routing: Value) -> (Vec<i64>, i64) {
    let client = reqwest::Client::new();
    let mut users = Vec::new();
    for i in 0..10 {
        let (status, user) = send(&client, reqwest::Method::POST, format!("{base}/api/v1/users"), token,
            json!({"name": format!("Agent {i}"), "email": format!("agent{i}@acme.example"), "role": "agent", "help_desk_seat": true})).await;
        assert_eq!(status, 201, "{user}");
        users.push(user["id"].as_i64().unwrap());
    }
    let (status, ch) = send(
        &client,
        reqwest::Method::POST,
        format!("{base}/api/v1/channels"),
        token,
        json!({"kind": "email", "name": "Support"}),
    )
    .await;
    assert_eq!(status, 201, "{ch}");
    let mut rule = routing;
    rule["users"] = json!(users);
    rule["assign_to"] = json!("users_and_teams");
    let (status, body) = send(
        &client,
        reqwest::Method::PATCH,
        format!("{base}/api/v1/channels/{}", ch["id"]),
        token,
        json!({"routing": rule}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    (users, ch["id"].as_i64().unwrap())
}

/// Fires `total` creates into `channel` from 48 concurrent clients spread
/// over the nodes; returns each acknowledged ticket's (id, owner).
async fn fire(
    bases: &[String],
    token: &str,
    channel: i64,
    total: usize,
) -> Vec<(i64, Option<i64>)> {
    let client = reqwest::Client::new();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for worker in 0..48 {
        let (client, next, acked, token) = (
            client.clone(),
            next.clone(),
            acked.clone(),
            token.to_owned(),
        );
        let base = bases[worker % bases.len()].clone();
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < total {
                let (status, t) = send(
                    &client,
                    reqwest::Method::POST,
                    format!("{base}/api/v1/tickets"),
                    &token,
                    json!({"subject": "Help", "channel_id": channel}),
                )
                .await;
                assert_eq!(status, 201, "{t}");
                acked
                    .lock()
                    .unwrap()
                    .push((t["id"].as_i64().unwrap(), t["owner"]["user_id"].as_i64()));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    Arc::try_unwrap(acked).unwrap().into_inner().unwrap()
}

/// Asserts 3,000 tickets, one owner each, counts within 1 over the pool,
/// the database agreeing with the acknowledgements, and no counter drift.
async fn assert_balanced(store: &PgStore, users: &[i64], acked: &[(i64, Option<i64>)]) {
    assert_eq!(acked.len(), 3000);
    let mut counts: BTreeMap<i64, u32> = users.iter().map(|u| (*u, 0)).collect();
    for (_, owner) in acked {
        *counts
            .get_mut(&owner.expect("every ticket has an owner"))
            .unwrap() += 1;
    }
    let (min, max) = (
        counts.values().min().unwrap(),
        counts.values().max().unwrap(),
    );
    assert!(max - min <= 1, "per-user counts {counts:?}");
    let stored: Vec<(i64, Option<i64>)> =
        sqlx::query_as("SELECT id, owner_user_id FROM tickets ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap();
    let mut acked = acked.to_vec();
    acked.sort();
    assert_eq!(
        stored, acked,
        "the database holds exactly the acknowledged tickets and owners"
    );
    assert_eq!(
        store.counter_drift(AccountId(1)).await.unwrap(),
        Vec::<String>::new()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_load_balance_one_pool_within_one() {
    let _serial = ONE_CLUSTER_AT_A_TIME.lock().await;
    let Some((_db, nodes, token, store)) = cluster().await else {
        return;
    };
    let bases: Vec<String> = nodes.iter().map(|n| n.base.clone()).collect();
    let (users, channel) = pool(&bases[0], &token, json!({"distribution": "load_balanced"})).await;
    let acked = fire(&bases, &token, channel, 3000).await;
    assert_balanced(&store, &users, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_round_robin_one_pool_within_one() {
    let _serial = ONE_CLUSTER_AT_A_TIME.lock().await;
    let Some((_db, nodes, token, store)) = cluster().await else {
        return;
    };
    let bases: Vec<String> = nodes.iter().map(|n| n.base.clone()).collect();
    let (users, channel) = pool(&bases[1], &token, json!({"distribution": "round_robin"})).await;
    let acked = fire(&bases, &token, channel, 3000).await;
    assert_balanced(&store, &users, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_node_loses_no_ticket_and_its_scheduled_work_moves() {
    let _serial = ONE_CLUSTER_AT_A_TIME.lock().await;
    let Some((_db, mut nodes, token, store)) = cluster().await else {
        return;
    };
    let bases: Vec<String> = nodes.iter().map(|n| n.base.clone()).collect();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    // A waiting ticket whose only agent comes back in 3 seconds.
    let (status, ana) = send(&client, reqwest::Method::POST, format!("{}/api/v1/users", bases[0]), &token,
        json!({"name": "Ana", "email": "ana@acme.example", "role": "agent", "help_desk_seat": true})).await;
    assert_eq!(status, 201, "{ana}");
    let ana = ana["id"].as_i64().unwrap();
    let back = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(3);
    let (status, body) = send(
        &client,
        reqwest::Method::PUT,
        format!("{}/api/v1/users/{ana}/availability", bases[0]),
        &token,
        json!({"status": "away", "until": back.to_string()}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, ch) = send(
        &client,
        reqwest::Method::POST,
        format!("{}/api/v1/channels", bases[0]),
        &token,
        json!({"kind": "email", "name": "Queue"}),
    )
    .await;
    let (status, body) = send(
        &client,
        reqwest::Method::PATCH,
        format!("{}/api/v1/channels/{}", bases[0], ch["id"]),
        &token,
        json!({"routing": {"assign_to": "users_and_teams", "users": [ana], "waiting_queue": true}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, waiting) = send(
        &client,
        reqwest::Method::POST,
        format!("{}/api/v1/tickets", bases[0]),
        &token,
        json!({"subject": "Waiting", "channel_id": ch["id"]}),
    )
    .await;
    assert_eq!(status, 201, "{waiting}");
    assert!(waiting["owner"]["user_id"].is_null(), "{waiting}");
    // A burst over all three nodes; node 0 (the one that scheduled Ana's
    // return) dies in the middle of it.
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for worker in 0..24 {
        let (client, acked, token, base) = (
            client.clone(),
            acked.clone(),
            token.clone(),
            bases[worker % 3].clone(),
        );
        tasks.push(tokio::spawn(async move {
            for _ in 0..40 {
                let Ok(res) = client
                    .post(format!("{base}/api/v1/tickets"))
                    .bearer_auth(&token)
                    .json(&json!({"subject": "burst"}))
                    .send()
                    .await
                else {
                    return;
                };
                if res.status() != 201 {
                    return;
                }
                let Ok(t) = res.json::<Value>().await else {
                    return;
                };
                acked.lock().unwrap().push(t["id"].as_i64().unwrap());
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    nodes[0].kill();
    for t in tasks {
        let _ = t.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 100,
        "the burst got going ({} acks)",
        acked.len()
    );
    let stored: Vec<i64> = sqlx::query_scalar("SELECT id FROM tickets")
        .fetch_all(store.pool())
        .await
        .unwrap();
    let stored: std::collections::BTreeSet<i64> = stored.into_iter().collect();
    let lost: Vec<&i64> = acked.iter().filter(|id| !stored.contains(id)).collect();
    assert!(lost.is_empty(), "acknowledged but missing: {lost:?}");
    // Ana's return is picked up by a surviving node's scheduler.
    let url = format!("{}/api/v1/tickets/{}", bases[1], waiting["id"]);
    for _ in 0..100 {
        let (_, t) = send(
            &client,
            reqwest::Method::GET,
            url.clone(),
            &token,
            Value::Null,
        )
        .await;
        if t["owner"]["user_id"].as_i64() == Some(ana) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the waiting ticket was not assigned after its agent came back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_event_stream_on_one_node_sees_an_assignment_made_on_another() {
    let _serial = ONE_CLUSTER_AT_A_TIME.lock().await;
    let Some((_db, nodes, token, _store)) = cluster().await else {
        return;
    };
    let (users, channel) = pool(
        &nodes[0].base,
        &token,
        json!({"distribution": "load_balanced"}),
    )
    .await;
    let client = reqwest::Client::new();
    let mut stream = client
        .get(format!("{}/api/v1/events", nodes[1].base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let (status, t) = send(
        &client,
        reqwest::Method::POST,
        format!("{}/api/v1/tickets", nodes[2].base),
        &token,
        json!({"subject": "Live", "channel_id": channel}),
    )
    .await;
    assert_eq!(status, 201, "{t}");
    let id = t["id"].as_i64().unwrap();
    let owner = t["owner"]["user_id"].as_i64().unwrap();
    assert!(users.contains(&owner));
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk()).await;
        let Ok(Ok(Some(bytes))) = chunk else { break };
        seen.push_str(&String::from_utf8_lossy(&bytes));
        for block in seen.split("\n\n") {
            if block.contains("event: assigned") {
                let data = block
                    .lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .unwrap();
                let event: Value = serde_json::from_str(data).unwrap();
                if event["ticket_id"] == json!(id) {
                    assert_eq!(event["event"]["to"]["user_id"], json!(owner), "{event}");
                    return;
                }
            }
        }
    }
    panic!("no assignment event for ticket {id} on the other node; saw:\n{seen}");
}

/// Reads server-sent events from `stream` until `done` says so (10 s at
/// most per chunk); returns every (id, event, data) read.
async fn read_events(
    stream: &mut reqwest::Response,
    mut done: impl FnMut(&[(i64, String, Value)]) -> bool,
) -> Vec<(i64, String, Value)> {
    let mut buffer = String::new();
    let mut events = Vec::new();
    while !done(&events) {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
            .await
            .expect("an event within 10 s")
            .unwrap()
            .expect("the stream stays open");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let field = |name: &str| {
                block.lines().find_map(|l| {
                    l.strip_prefix(name)
                        .map(|v| v.strip_prefix(' ').unwrap_or(v).to_owned())
                })
            };
            if let (Some(id), Some(event), Some(data)) =
                (field("id:"), field("event:"), field("data:"))
            {
                events.push((
                    id.parse().unwrap(),
                    event,
                    serde_json::from_str(&data).unwrap(),
                ));
            }
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_missed_while_disconnected_arrive_on_another_node() {
    let _serial = ONE_CLUSTER_AT_A_TIME.lock().await;
    let Some((_db, nodes, token, store)) = cluster().await else {
        return;
    };
    let client = reqwest::Client::new();
    let open = |node: usize, last: Option<i64>| {
        let mut req = client
            .get(format!("{}/api/v1/events", nodes[node].base))
            .bearer_auth(&token);
        if let Some(last) = last {
            req = req.header("Last-Event-ID", last.to_string());
        }
        req.send()
    };
    let create = |node: usize, subject: String| {
        send(
            &client,
            reqwest::Method::POST,
            format!("{}/api/v1/tickets", nodes[node].base),
            &token,
            json!({"subject": subject}),
        )
    };
    let mut first = open(0, None).await.unwrap();
    let (status, t) = create(0, "Seen".into()).await;
    assert_eq!(status, 201, "{t}");
    let seen = read_events(&mut first, |e| !e.is_empty()).await;
    assert_eq!(seen[0].2["ticket_id"], t["id"]);
    let last = seen[0].0;
    drop(first);

    // Disconnected: tickets on the two other nodes, then every node's
    // LISTEN connection is cut while more are committed.
    let mut missed = Vec::new();
    for n in 0..6 {
        let (status, t) = create(1 + n % 2, format!("Missed {n}")).await;
        assert_eq!(status, 201, "{t}");
        missed.push(t["id"].clone());
        if n == 2 {
            sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN %'")
                .execute(store.pool())
                .await
                .unwrap();
        }
    }
    let mut resumed = open(2, Some(last)).await.unwrap();
    let got = read_events(&mut resumed, |e| e.len() >= missed.len()).await;
    let ids: Vec<Value> = got.iter().map(|(_, _, d)| d["ticket_id"].clone()).collect();
    assert_eq!(ids, missed, "exactly the missed events, in order: {got:?}");
    assert!(got.iter().all(|(_, kind, _)| kind == "created"));
    assert!(got.windows(2).all(|w| w[0].0 < w[1].0) && got[0].0 > last);

    // Live again, a change on another node arrives too.
    let (_, t) = create(0, "Live".into()).await;
    let live = read_events(&mut resumed, |e| !e.is_empty()).await;
    assert_eq!(live[0].2["ticket_id"], t["id"]);
}
