//! Workflows in the real binary: a delay survives SIGKILL and its step runs
//! once after the restart (SQLite), the hourly step cap follows its flag
//! and environment variable, and three nodes on one PostgreSQL run one
//! rotate step per ticket for 300 tickets, exactly once, evenly.
//!
//! The PostgreSQL test gets its own schema on the test server (see
//! `switchboard_store::postgres::testing`); outside CI it is skipped when
//! PostgreSQL is unreachable, under `CI=true` it fails.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use switchboard_store::postgres::testing::TestDatabase;

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

/// A running `switchboard serve` on a free port.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    /// `serve` on `data_dir` (SQLite) or on `database`, with more arguments
    /// and environment variables.
    fn start(data_dir: &Path, database: Option<&str>, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir);
        if let Some(url) = database {
            cmd.args(["--database", url]);
        }
        let mut child = cmd
            .args(args)
            .env("SWITCHBOARD_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let base = loop {
            let line = lines
                .next()
                .expect("the server prints its address")
                .unwrap();
            if let Some(addr) = line.strip_prefix("Switchboard listening on ") {
                break addr.trim().to_owned();
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server { child, base }
    }

    /// SIGKILL: no chance to flush anything.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn admin_token(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("admin-token"))
        .unwrap()
        .trim()
        .to_owned()
}

/// A JSON client for one token.
#[derive(Clone)]
struct Api {
    client: reqwest::Client,
    token: String,
}

impl Api {
    fn new(token: String) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        Api { client, token }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        url: String,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.client.request(method, url).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, url: String) -> Value {
        let (status, body) = self.send(reqwest::Method::GET, url, None).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn post(&self, url: String, body: Value) -> Value {
        let (status, got) = self.send(reqwest::Method::POST, url, Some(body)).await;
        assert_eq!(status, 201, "{got}");
        got
    }
}

/// Polls `check` every 50 ms for up to 60 s.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn enrollments(api: &Api, base: &str, ticket: i64) -> Vec<Value> {
    api.get(format!("{base}/api/v1/tickets/{ticket}/workflows"))
        .await["items"]
        .as_array()
        .unwrap()
        .clone()
}

async fn notes(api: &Api, base: &str, ticket: i64) -> Vec<String> {
    api.get(format!("{base}/api/v1/tickets/{ticket}/messages"))
        .await["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "note")
        .map(|m| m["body"].as_str().unwrap().to_owned())
        .collect()
}

async fn history(api: &Api, base: &str, ticket: i64) -> Vec<Value> {
    api.get(format!("{base}/api/v1/tickets/{ticket}/history"))
        .await["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["event"].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delay_survives_sigkill_and_its_next_step_runs_once_after_restart() {
    delay_across_a_kill(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_delay_survives_sigkill_and_its_next_step_runs_once_after_restart() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    delay_across_a_kill(Some(&db.url)).await;
}

/// A workflow's delay is pending when the server is SIGKILLed; after a
/// restart on the same database (SQLite file, or PostgreSQL) its next step
/// runs once, not before the delay is over.
async fn delay_across_a_kill(database: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), database, &[], &[]);
    let api = Api::new(admin_token(dir.path()));
    let base = server.base.clone();
    api.post(
        format!("{base}/api/v1/workflows"),
        json!({"name": "Later", "triggers": [{"kind": "ticket_created"}],
            "actions": [{"type": "delay", "seconds": 2},
                        {"type": "add_note", "body": "after the delay"}]}),
    )
    .await;
    let created = Instant::now();
    let ticket = api
        .post(
            format!("{base}/api/v1/tickets"),
            json!({"subject": "Wait for it"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    // The delay ran: the enrollment waits (committed) for its next step.
    let waiting = eventually("the enrollment to wait", || async {
        let list = enrollments(&api, &base, ticket).await;
        (list.len() == 1 && list[0]["state"] == "waiting").then_some(list)
    })
    .await;
    assert!(notes(&api, &base, ticket).await.is_empty());
    assert!(
        created.elapsed() < Duration::from_millis(1800),
        "the machine is too slow to kill the process inside the delay ({:?})",
        created.elapsed()
    );
    server.kill();
    assert!(waiting[0]["waiting_until"].is_string(), "{}", waiting[0]);

    let restarted = Server::start(dir.path(), database, &[], &[]);
    let base = restarted.base.clone();
    eventually("the note after the restart", || async {
        (!notes(&api, &base, ticket).await.is_empty()).then_some(())
    })
    .await;
    // Give a second run, if there were one, the time to show.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(notes(&api, &base, ticket).await, ["after the delay"]);
    let list = enrollments(&api, &base, ticket).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["state"], "done", "{}", list[0]);
    let steps: Vec<&str> = list[0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["0", "1"]);
    let lines = history(&api, &base, ticket)
        .await
        .into_iter()
        .filter(|e| e["type"] == "workflow_step")
        .count();
    assert_eq!(lines, 2);
    // Not before the delay was over.
    let at = |s: &Value| {
        s["at"]
            .as_str()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .unwrap()
    };
    let gap = at(&list[0]["steps"][1]) - at(&list[0]["steps"][0]);
    assert!(
        gap.total(jiff::Unit::Millisecond).unwrap() >= 1900.0,
        "{gap:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_step_cap_follows_its_flag_and_environment_variable() {
    let dir = tempfile::tempdir().unwrap();
    let four: Vec<Value> = (0..4)
        .map(|i| json!({"type": "add_note", "body": format!("n{i}")}))
        .collect();
    let run = |args: &'static [&'static str],
               env: &'static [(&'static str, &'static str)],
               first: bool| {
        let dir = dir.path().to_owned();
        let four = four.clone();
        async move {
            let server = Server::start(&dir, None, args, env);
            let api = Api::new(admin_token(&dir));
            let base = server.base.clone();
            if first {
                api.post(
                    format!("{base}/api/v1/workflows"),
                    json!({"name": "Chatty", "triggers": [{"kind": "ticket_created"}], "actions": four}),
                )
                .await;
            }
            let ticket = api
                .post(
                    format!("{base}/api/v1/tickets"),
                    json!({"subject": "Capped"}),
                )
                .await["id"]
                .as_i64()
                .unwrap();
            let list = eventually("the enrollment to wait", || async {
                let list = enrollments(&api, &base, ticket).await;
                (list.len() == 1 && list[0]["state"] == "waiting").then_some(list)
            })
            .await;
            (
                server,
                list[0]["steps"].as_array().unwrap().len(),
                notes(&api, &base, ticket).await.len(),
            )
        }
    };
    let (mut server, steps, written) = run(&["--workflow-steps-per-hour", "2"], &[], true).await;
    assert_eq!((steps, written), (2, 2));
    server.kill();
    let (_server, steps, written) =
        run(&[], &[("SWITCHBOARD_WORKFLOW_STEPS_PER_HOUR", "1")], false).await;
    assert_eq!((steps, written), (1, 1));
}

/// Three nodes on one fresh PostgreSQL schema and the super admin's token;
/// `None` when PostgreSQL is unavailable outside CI.
async fn cluster() -> Option<(TestDatabase, Vec<Server>, Vec<tempfile::TempDir>, String)> {
    let db = TestDatabase::create().await?;
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    // The first node creates the account; the others find it.
    let first = Server::start(dirs[0].path(), Some(&db.url), &[], &[]);
    let token = admin_token(dirs[0].path());
    let nodes = vec![
        first,
        Server::start(dirs[1].path(), Some(&db.url), &[], &[]),
        Server::start(dirs[2].path(), Some(&db.url), &[], &[]),
    ];
    Some((db, nodes, dirs, token))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_run_each_rotate_step_once_for_300_tickets_within_one() {
    let Some((_db, nodes, _dirs, token)) = cluster().await else {
        return;
    };
    let bases: Vec<String> = nodes.iter().map(|n| n.base.clone()).collect();
    let api = Api::new(token);
    const USERS: usize = 7;
    const TICKETS: usize = 300;
    let mut users = Vec::new();
    for i in 0..USERS {
        let user = api
            .post(
                format!("{}/api/v1/users", bases[i % 3]),
                json!({"name": format!("Agent {i}"), "email": format!("agent{i}@acme.example"),
                    "role": "agent", "help_desk_seat": true}),
            )
            .await;
        users.push(user["id"].as_i64().unwrap());
    }
    let wf = api
        .post(
            format!("{}/api/v1/workflows", bases[1]),
            json!({"name": "Spread", "triggers": [{"kind": "ticket_created"}],
                "actions": [{"type": "rotate_owner", "targets": {"users": users}, "distribution": "round_robin"}]}),
        )
        .await;
    let wf_id = wf["id"].as_i64().unwrap();

    // 24 concurrent clients spread over the nodes.
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let acked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for worker in 0..24 {
        let (api, next, acked) = (api.clone(), next.clone(), acked.clone());
        let base = bases[worker % 3].clone();
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < TICKETS {
                let t = api
                    .post(format!("{base}/api/v1/tickets"), json!({"subject": "Help"}))
                    .await;
                acked.lock().unwrap().push(t["id"].as_i64().unwrap());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut tickets = acked.lock().unwrap().clone();
    tickets.sort();
    assert_eq!(tickets.len(), TICKETS);

    // Every step ran (on whichever node claimed it): nothing left unassigned.
    eventually("every ticket to get an owner", || async {
        let page = api
            .get(format!(
                "{}/api/v1/tickets?view=unassigned&limit=200",
                bases[0]
            ))
            .await;
        page["items"].as_array().unwrap().is_empty().then_some(())
    })
    .await;
    // Give a duplicate run, if there were one, the time to show.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut owners = BTreeMap::new();
    for (i, t) in tickets.iter().enumerate() {
        let base = &bases[i % 3];
        let list = enrollments(&api, base, *t).await;
        assert_eq!(list.len(), 1, "ticket {t}: {list:?}");
        let e = &list[0];
        assert_eq!(e["workflow_id"], json!(wf_id));
        assert_eq!(e["state"], "done", "ticket {t}: {e}");
        assert_eq!(e["steps"].as_array().unwrap().len(), 1, "ticket {t}: {e}");
        let events = history(&api, base, *t).await;
        let steps: Vec<&Value> = events
            .iter()
            .filter(|e| e["type"] == "workflow_step")
            .collect();
        assert_eq!(steps.len(), 1, "ticket {t}: {events:?}");
        let changes: Vec<&Value> = events
            .iter()
            .filter(|e| e["type"] == "owner_changed")
            .collect();
        assert_eq!(changes.len(), 1, "ticket {t}: {events:?}");
        assert_eq!(changes[0]["reason"], "workflow");
        let owner = changes[0]["to"]["user_id"].as_i64().unwrap();
        assert_eq!(steps[0]["explanation"]["outcome"]["user_id"], json!(owner));
        let ticket = api.get(format!("{base}/api/v1/tickets/{t}")).await;
        assert_eq!(ticket["owner"]["user_id"], json!(owner));
        *owners.entry(owner).or_insert(0u32) += 1;
    }
    assert_eq!(owners.keys().copied().collect::<Vec<_>>(), users);
    let (min, max) = (
        owners.values().min().unwrap(),
        owners.values().max().unwrap(),
    );
    assert!(max - min <= 1, "per-user counts {owners:?}");
}
