//! Test harness: `spawn_app()` starts the real server on port 0 over a real
//! database, with one account and its super admin's token; helpers send
//! JSON and return status and body.
//!
//! Every test runs twice ([`on_both_backends!`]): on SQLite (a file in a
//! temporary directory) and on a fresh schema of the test PostgreSQL.

#![allow(dead_code)]

pub mod sink;

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard_domain::SystemClock;
use switchboard_server::{AppState, setup};
use switchboard_store::{PgStore, SqliteStore, Store, postgres::testing::TestDatabase};

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

tokio::task_local! {
    /// The backend of the test running in this task (set by
    /// [`on_both_backends!`]); `spawn_app` reads it.
    pub static BACKEND: Backend;
}

/// Turns each listed `async fn name()` into two tests, `sqlite::name` and
/// `postgres::name`: the same HTTP test on both backends. The PostgreSQL
/// variant is skipped when the test server is unreachable, except under
/// `CI=true`, where it fails.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {$(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                crate::common::BACKEND
                    .scope(crate::common::Backend::Sqlite, super::$name())
                    .await
            }
        )*}
        mod postgres {$(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if !switchboard_store::postgres::testing::available().await {
                    return;
                }
                crate::common::BACKEND
                    .scope(crate::common::Backend::Postgres, super::$name())
                    .await
            }
        )*}
    };
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    /// The super admin of the first account.
    pub admin: String,
    pub store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
    _db: Option<TestDatabase>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with_clock(Arc::new(SystemClock)).await
}

/// The same, with an injected clock (for availability and the scheduler)
/// and a seeded random source.
pub async fn spawn_app_with_clock(clock: Arc<dyn switchboard_domain::Clock>) -> TestApp {
    spawn_app_with(
        clock,
        switchboard_server::dispatcher::DispatcherConfig::default(),
    )
    .await
}

/// An outbox dispatcher that retries fast: 100 ms doubling to at most
/// 400 ms, giving up after `max_attempts`.
pub fn fast_dispatcher(max_attempts: u32) -> switchboard_server::dispatcher::DispatcherConfig {
    use std::time::Duration;
    switchboard_server::dispatcher::DispatcherConfig {
        policy: switchboard_domain::outbox::RetryPolicy {
            base: Duration::from_millis(100),
            max_delay: Duration::from_millis(400),
            max_attempts,
        },
        ..Default::default()
    }
}

/// The app with an injected clock and dispatcher configuration.
pub async fn spawn_app_with(
    clock: Arc<dyn switchboard_domain::Clock>,
    dispatcher: switchboard_server::dispatcher::DispatcherConfig,
) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let (store, db): (Arc<dyn Store>, _) = if BACKEND.try_with(|b| *b) == Ok(Backend::Postgres) {
        let db = TestDatabase::create()
            .await
            .expect("the test PostgreSQL is reachable");
        let store = PgStore::connect(&db.url, clock)
            .await
            .unwrap()
            .with_seed(42);
        (Arc::new(store), Some(db))
    } else {
        let store = SqliteStore::open(&dir.path().join("test.db"), clock)
            .unwrap()
            .with_seed(42);
        (Arc::new(store), None)
    };
    let (_, _, admin) =
        setup::create_account(store.as_ref(), "Acme", "Admin", "admin@acme.example")
            .await
            .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = AppState::new(store.clone())
        .with_dispatcher(dispatcher)
        .with_public_url(Some("https://desk.example".into()));
    tokio::spawn(switchboard_server::serve(
        listener,
        state,
        std::future::pending(),
    ));
    TestApp {
        base,
        client: reqwest::Client::new(),
        admin,
        store,
        _dir: dir,
        _db: db,
    }
}

impl TestApp {
    /// Sends `body` (if any) as JSON with `token` (if any).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.send(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::PUT, path, Some(token), Some(body)).await
    }

    /// Creates a user with `role` and returns its id and a token for it.
    pub async fn user(&self, name: &str, role: &str, extra: Value) -> (i64, String) {
        let mut body = json!({"name": name, "email": format!("{}@acme.example", name.to_lowercase()), "role": role, "help_desk_seat": true});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let (status, user) = self.post("/api/v1/users", &self.admin, body).await;
        assert_eq!(status, StatusCode::CREATED, "{user}");
        let id = user["id"].as_i64().unwrap();
        let (status, token) = self
            .post(
                &format!("/api/v1/users/{id}/tokens"),
                &self.admin,
                json!({"name": "test"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{token}");
        (id, token["token"].as_str().unwrap().to_owned())
    }

    /// Creates a ticket and returns it.
    pub async fn ticket(&self, token: &str, subject: &str) -> Value {
        let (status, t) = self
            .post("/api/v1/tickets", token, json!({"subject": subject}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{t}");
        t
    }

    /// Ids of a list response.
    pub fn ids(page: &Value) -> Vec<i64> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_i64().unwrap())
            .collect()
    }
}

/// Polls `check` (every 20 ms, for up to 20 s) until it returns `Some`.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Waits until the account has no pending outbox row (every delivery was
/// sent or failed for good).
pub async fn outbox_settled(store: &dyn Store, account: switchboard_domain::AccountId) {
    eventually("the outbox to settle", || async {
        let pending = store
            .list_outbox(account, Some(switchboard_store::OutboxState::Pending), 200)
            .await
            .unwrap();
        pending.is_empty().then_some(())
    })
    .await
}

/// Asserts a problem body with `status` naming `field`.
pub fn assert_problem(got: &(StatusCode, Value), status: u16, field: Option<&str>) {
    let (s, body) = got;
    assert_eq!(s.as_u16(), status, "{body}");
    assert_eq!(body["status"], json!(status), "{body}");
    assert!(
        body["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("urn:switchboard:problem:")),
        "{body}"
    );
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    if let Some(f) = field {
        assert_eq!(body["field"], json!(f), "{body}");
    }
}
