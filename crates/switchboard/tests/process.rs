//! The real binary as a process: first start, `account create`, durability
//! under SIGKILL (tickets, and a reply not yet sent when the process died),
//! and graceful shutdown on SIGTERM.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

/// A running `switchboard serve` on a free port.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(data_dir: &Path) -> Self {
        Self::start_with(data_dir, &[])
    }

    /// The same, with more environment variables.
    fn start_with(data_dir: &Path, env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env("SWITCHBOARD_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
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

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args(["-s", name, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn admin_token(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("admin-token"))
        .unwrap()
        .trim()
        .to_owned()
}

/// Fires creates from 16 concurrent clients until the server stops
/// answering; returns every (id, subject) acknowledged with 201.
async fn burst(base: String, token: String, acked: Arc<Mutex<Vec<(i64, String)>>>) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for worker in 0..16 {
        let (client, base, token, acked) =
            (client.clone(), base.clone(), token.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            for n in 0.. {
                let subject = format!("burst {worker}-{n}");
                let sent = client
                    .post(format!("{base}/api/v1/tickets"))
                    .bearer_auth(&token)
                    .json(&json!({"subject": subject, "content": "x".repeat(300)}))
                    .send()
                    .await;
                let Ok(res) = sent else { return };
                if res.status() != reqwest::StatusCode::CREATED {
                    return;
                }
                let Ok(body) = res.json::<Value>().await else {
                    return;
                };
                acked
                    .lock()
                    .unwrap()
                    .push((body["id"].as_i64().unwrap(), subject));
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

async fn wait_for_acks(acked: &Mutex<Vec<(i64, String)>>, at_least: usize) {
    for _ in 0..600 {
        if acked.lock().unwrap().len() >= at_least {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the server did not acknowledge {at_least} creates in time");
}

async fn assert_all_present(base: &str, token: &str, acked: &[(i64, String)]) {
    let client = reqwest::Client::new();
    for (id, subject) in acked {
        let res = client
            .get(format!("{base}/api/v1/tickets/{id}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            reqwest::StatusCode::OK,
            "ticket {id} acknowledged with 201 is missing"
        );
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["subject"], json!(subject));
    }
}

/// Starts a server on `dir`, fires creates from 16 clients, sends `signal`
/// once `acks` creates were acknowledged, and returns the admin token, every
/// acknowledged ticket and how the process ended.
async fn stop_during_burst(
    dir: &Path,
    signal: &str,
    acks: usize,
) -> (String, Vec<(i64, String)>, std::process::ExitStatus) {
    let mut server = Server::start(dir);
    let token = admin_token(dir);
    let acked = Arc::new(Mutex::new(Vec::new()));
    let load = tokio::spawn(burst(server.base.clone(), token.clone(), acked.clone()));
    wait_for_acks(&acked, acks).await;
    server.signal(signal);
    let status = server.child.wait().unwrap();
    load.await.unwrap();
    let acked = acked.lock().unwrap().clone();
    (token, acked, status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_ticket_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    // SIGKILL: no chance to flush anything.
    let (token, acked, _) = stop_during_burst(dir.path(), "KILL", 300).await;
    let restarted = Server::start(dir.path());
    assert_eq!(
        admin_token(dir.path()),
        token,
        "a later start never rewrites the admin token"
    );
    assert_all_present(&restarted.base, &token, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_requests_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (token, acked, status) = stop_during_burst(dir.path(), "TERM", 100).await;
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    let restarted = Server::start(dir.path());
    assert_all_present(&restarted.base, &token, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_open_event_streams_instead_of_waiting_for_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    let token = admin_token(dir.path());
    let mut stream = reqwest::Client::new()
        .get(format!("{}/api/v1/events", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    server.signal("TERM");
    // An SSE client never closes its side: without the shutdown reaching the
    // stream, graceful shutdown would wait for it forever.
    let mut exited = None;
    for _ in 0..100 {
        if let Some(status) = server.child.try_wait().unwrap() {
            exited = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = exited.expect("the server exits within 5 s with a client still listening");
    assert!(status.success(), "{status}");
    // The stream ended cleanly on the client's side too.
    while let Ok(Some(_)) = stream.chunk().await {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_create_prints_a_token_for_an_isolated_account() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let admin = admin_token(dir.path());
    let meta = std::fs::metadata(dir.path().join("admin-token")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }
    // The CLI writes to the same database while the server runs.
    let out = Command::new(BIN)
        .args([
            "account",
            "create",
            "Globex",
            "--admin-email",
            "boss@globex.example",
            "--data-dir",
        ])
        .arg(dir.path())
        .env("SWITCHBOARD_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let other = stdout
        .lines()
        .find_map(|l| l.strip_prefix("API token (shown once): "))
        .expect("the token is printed")
        .to_owned();
    let client = reqwest::Client::new();
    let created: Value = client
        .post(format!("{}/api/v1/tickets", server.base))
        .bearer_auth(&admin)
        .json(&json!({"subject": "Default account's ticket"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let res = client
        .get(format!("{}/api/v1/tickets/{}", server.base, created["id"]))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::NOT_FOUND);
    let users: Value = client
        .get(format!("{}/api/v1/users", server.base))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(users["items"].as_array().unwrap().len(), 1);
    assert_eq!(users["items"][0]["email"], "boss@globex.example");
    assert_eq!(users["items"][0]["role"], "super_admin");
}

/// A tiny SMTP sink on `port`: records the DATA of every message accepted.
async fn smtp_sink(port: u16) -> Arc<Mutex<Vec<String>>> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = got.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut r = BufReader::new(r);
                w.write_all(b"220 sink\r\n").await?;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).await? == 0 {
                        return Ok::<_, std::io::Error>(());
                    }
                    let upper = line.to_ascii_uppercase();
                    if upper.starts_with("DATA") {
                        w.write_all(b"354 go\r\n").await?;
                        let mut data = String::new();
                        loop {
                            let mut l = String::new();
                            if r.read_line(&mut l).await? == 0 {
                                return Ok(());
                            }
                            if l == ".\r\n" {
                                break;
                            }
                            data.push_str(&l);
                        }
                        seen.lock().unwrap().push(data);
                        w.write_all(b"250 queued\r\n").await?;
                    } else if upper.starts_with("QUIT") {
                        w.write_all(b"221 bye\r\n").await?;
                        return Ok(());
                    } else if upper.starts_with("EHLO") {
                        w.write_all(b"250 sink\r\n").await?;
                    } else {
                        w.write_all(b"250 ok\r\n").await?;
                    }
                }
            });
        }
    });
    got
}

/// Polls `check` every 50 ms for up to 30 s.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..600 {
        if let Some(v) = check().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn outbox(client: &reqwest::Client, base: &str, token: &str, state: &str) -> Vec<Value> {
    let page: Value = client
        .get(format!("{base}/api/v1/outbox?state={state}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["items"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_committed_before_sigkill_is_sent_once_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    // A port where nothing listens yet: the relay is "down".
    let relay = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let fast = [("SWITCHBOARD_OUTBOX_BACKOFF_MS", "200")];
    let server = Server::start_with(dir.path(), &fast);
    let token = admin_token(dir.path());
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        client
            .post(format!("{}{path}", server.base))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let channel: Value = post(
        "/api/v1/channels",
        json!({"kind": "email", "name": "Support", "settings": {"address": "support@acme.example",
            "smtp_relay": {"host": "127.0.0.1", "port": relay, "tls": "none"}}}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let ticket: Value = post(
        "/api/v1/tickets",
        json!({"subject": "Charged twice", "channel_id": channel["id"],
            "contact": {"email": "cleo@customer.example"}}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let res = post(
        &format!("/api/v1/tickets/{}/messages", ticket["id"]),
        json!({"kind": "reply", "body": "The refund is on its way."}),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::CREATED);
    let added: Value = res.json().await.unwrap();
    let message_id = added["message"]["external_id"].as_str().unwrap().to_owned();
    // Committed, tried, and waiting for a retry.
    eventually("a failed attempt", || async {
        let pending = outbox(&client, &server.base, &token, "pending").await;
        (pending.len() == 1 && pending[0]["last_error"].is_string()).then_some(())
    })
    .await;
    server.signal("KILL");
    drop(server);

    let sent = smtp_sink(relay).await;
    let restarted = Server::start_with(dir.path(), &fast);
    eventually("the row to be done", || async {
        (outbox(&client, &restarted.base, &token, "done").await.len() == 1).then_some(())
    })
    .await;
    // Give a duplicate, if there were one, the time to show up.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let sent = sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1, "exactly once: {sent:?}");
    assert!(
        sent[0].contains(&format!("Message-ID: {message_id}")),
        "{}",
        sent[0]
    );
}
