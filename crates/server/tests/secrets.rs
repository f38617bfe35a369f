//! Secrets never leave, on both backends: every kind of channel secret
//! (SMTP username and password, WhatsApp verify token, app secret and
//! access token, the Twilio auth token, the chat visitor signing key, an
//! untyped channel's own) and every API token is set, then the routes that
//! touch them are exercised (reads and lists, edits good and bad, replies
//! that go out with the credentials and fail, the webhooks with good and
//! bad checks, the outbox, every parameterless read of the document), and
//! every answer (status line, headers and body) and every line the server
//! logged at `trace` is searched for every secret value. The one answer
//! allowed to show a secret is the one that issues an API token.
//!
//! The server runs in this process (the harness), so its log is captured by
//! installing a `trace` subscriber that writes to a buffer; the binary
//! installs the same `fmt` subscriber with `SWITCHBOARD_LOG`.

#[macro_use]
mod common;

use std::sync::{Arc, Mutex, OnceLock};

use common::{TestApp, eventually, fast_dispatcher, sink, spawn_app_with};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard_domain::SystemClock;

/// Everything the subscriber wrote, shared by the tests of this binary.
fn log() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = buf.clone();
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
            .with_ansi(false)
            .with_writer(move || LogWriter(writer.clone()))
            .init();
        buf
    })
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The app, and every answer it gave, as text.
struct Recorder {
    app: TestApp,
    answers: Mutex<Vec<String>>,
}

impl Recorder {
    /// Sends a request; records the answer (unless `issuing`, the answer
    /// that shows a new token once) and returns status and body.
    async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<(&str, String)>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .app
            .client
            .request(method.clone(), format!("{}{path}", self.app.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some((media, bytes)) = body {
            req = req.header(reqwest::header::CONTENT_TYPE, media).body(bytes);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        // The request line is the caller's; only the answer is searched.
        let head = format!("{status} {:?}", res.headers());
        let text = res.text().await.unwrap();
        assert!(!status.is_server_error(), "{method} {path}: {head}: {text}");
        self.answers.lock().unwrap().push(
            format!(
                "(answer to {method} {}) {head} {text}",
                path.split('?').next().unwrap_or_default()
            )
            .replace('\n', " "),
        );
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn json(&self, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
        let token = self.app.admin.clone();
        self.raw(
            method,
            path,
            Some(&token),
            &[],
            Some(("application/json", body.to_string())),
        )
        .await
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let token = self.app.admin.clone();
        self.raw(Method::GET, path, Some(&token), &[], None).await
    }
}

fn secret(what: &str) -> String {
    format!("s3cr3t-{what}-{:016x}", rand_u64())
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish()
}

async fn no_secret_leaves() {
    let log = log();
    let relay = sink::free_port().await;
    let (relay, received) = sink::start(relay).await;
    let graph = {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        format!("http://127.0.0.1:{port}")
    };
    let app = spawn_app_with(Arc::new(SystemClock), fast_dispatcher(1)).await;
    let r = Recorder {
        app,
        answers: Mutex::new(Vec::new()),
    };
    let mut secrets: Vec<(String, String)> = Vec::new();
    let mut keep = |what: &str| {
        let s = secret(what);
        secrets.push((what.to_owned(), s.clone()));
        s
    };
    let (smtp_user, smtp_pass) = (keep("smtp-username"), keep("smtp-password"));
    let (verify, app_secret, access) = (
        keep("verify-token"),
        keep("app-secret"),
        keep("access-token"),
    );
    let (twilio, signing, custom) = (
        keep("twilio-auth-token"),
        keep("visitor-signing-key"),
        keep("custom"),
    );
    let (rotated, refused, unknown_key) =
        (keep("rotated"), keep("refused-edit"), keep("unknown-key"));
    let not_an_object = keep("not-an-object");

    // Channels with every kind of secret.
    let mut channels = Vec::new();
    for (kind, settings) in [
        (
            "email",
            json!({"address": "support@acme.example",
            "smtp_relay": {"host": "127.0.0.1", "port": relay.port(), "tls": "none"},
            "secrets": {"smtp_username": smtp_user, "smtp_password": smtp_pass}}),
        ),
        (
            "whatsapp",
            json!({"phone_number_id": "123", "graph_base_url": graph,
            "secrets": {"verify_token": verify, "app_secret": app_secret, "access_token": access}}),
        ),
        ("calls", json!({"secrets": {"auth_token": twilio}})),
        ("chat", json!({"secrets": {"visitor_signing_key": signing}})),
        ("custom", json!({"secrets": {"api_key": custom}})),
    ] {
        let (status, ch) = r
            .json(
                Method::POST,
                "/api/v1/channels",
                json!({"kind": kind, "name": kind, "settings": settings}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{ch}");
        channels.push((
            kind,
            ch["id"].as_i64().unwrap(),
            ch["key"].as_str().unwrap().to_owned(),
        ));
    }
    let key = |k: &str| channels.iter().find(|c| c.0 == k).unwrap().2.clone();
    let id = |k: &str| channels.iter().find(|c| c.0 == k).unwrap().1;

    // Reads, edits that keep the secrets, a rotation, refused edits.
    r.get("/api/v1/channels").await;
    for (kind, cid, _) in &channels {
        let path = format!("/api/v1/channels/{cid}");
        r.get(&path).await;
        let (status, body) = r
            .json(
                Method::PATCH,
                &path,
                json!({"name": format!("{kind} renamed")}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let email = format!("/api/v1/channels/{}", id("email"));
    let (status, _) = r
        .json(
            Method::PATCH,
            &email,
            json!({"settings": {"address": "support@acme.example",
            "smtp_relay": {"host": "127.0.0.1", "port": relay.port(), "tls": "none"},
            "secrets": {"smtp_username": "(set)", "smtp_password": "(set)"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let custom_path = format!("/api/v1/channels/{}", id("custom"));
    let (status, _) = r
        .json(
            Method::PATCH,
            &custom_path,
            json!({"settings": {"secrets": {"api_key": rotated}}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for (path, body) in [
        (
            email.clone(),
            json!({"settings": {"smtp_relay": {"host": "127.0.0.1", "port": "twenty-five"},
            "secrets": {"smtp_password": refused}}}),
        ),
        (
            email.clone(),
            json!({"settings": {"secrets": {"smtp_password": 42, "smtp_username": refused}}}),
        ),
        (
            format!("/api/v1/channels/{}", id("whatsapp")),
            json!({"settings": {"phone_number_id": "123",
            "secrets": {"app_secret": refused, "no_such_secret": unknown_key}}}),
        ),
        (
            email.clone(),
            json!({"settings": {"secrets": not_an_object}}),
        ),
        (email.clone(), json!({"settings": not_an_object})),
    ] {
        let (status, body) = r.json(Method::PATCH, &path, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {body}");
        assert!(
            body["field"].is_string(),
            "the problem names the field: {body}"
        );
    }
    for (kind, settings) in [
        (
            "whatsapp",
            json!({"secrets": {"verify_token": refused, "bogus": unknown_key}}),
        ),
        ("custom", json!({"secrets": not_an_object})),
        (
            "chat",
            json!({"secrets": {"visitor_signing_key": refused, "other": 7}}),
        ),
    ] {
        let (status, body) = r
            .json(
                Method::POST,
                "/api/v1/channels",
                json!({"kind": kind, "name": "bad", "settings": settings}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{kind}: {body}");
        assert_eq!(body["field"], "settings.secrets", "{body}");
    }

    // Replies that go out with the credentials: e-mail through the relay
    // (which sees the login), WhatsApp to a Graph API that is not there.
    for (kind, contact) in [
        ("email", json!({"email": "cleo@customer.example"})),
        ("whatsapp", json!({"phone": "+15551234567"})),
    ] {
        let (status, t) = r
            .json(
                Method::POST,
                "/api/v1/tickets",
                json!({"subject": kind, "channel_id": id(kind), "contact": contact}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{t}");
        let tid = t["id"].as_i64().unwrap();
        let (status, m) = r
            .json(
                Method::POST,
                &format!("/api/v1/tickets/{tid}/messages"),
                json!({"kind": "reply", "body": "Hello"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{m}");
        r.get(&format!("/api/v1/tickets/{tid}/messages")).await;
        r.get(&format!("/api/v1/tickets/{tid}/history")).await;
    }
    eventually(
        "the e-mail reply to reach the relay with the login",
        || async {
            let got = received.lock().unwrap();
            got.iter()
                .any(|m| m.auth.as_ref().is_some_and(|a| a.contains(&smtp_pass)))
                .then_some(())
        },
    )
    .await;
    eventually("the WhatsApp reply to fail", || async {
        let (_, page) = r.get("/api/v1/outbox?state=failed").await;
        (!page["items"].as_array()?.is_empty()).then_some(())
    })
    .await;
    r.get("/api/v1/outbox").await;

    // The webhooks: WhatsApp's subscription check (right and wrong), a
    // notification and a Twilio call with bad signatures; a chat visitor.
    let wa = format!("/webhooks/whatsapp/{}", key("whatsapp"));
    for (token, expected) in [
        (verify.as_str(), StatusCode::OK),
        ("wrong", StatusCode::FORBIDDEN),
    ] {
        let (status, body) = r
            .raw(
                Method::GET,
                &format!("{wa}?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=42"),
                None,
                &[],
                None,
            )
            .await;
        assert_eq!(status, expected, "{body}");
    }
    let note = json!({"object": "whatsapp_business_account", "entry": []}).to_string();
    let (status, _) = r
        .raw(
            Method::POST,
            &wa,
            None,
            &[("x-hub-signature-256", "sha256=00")],
            Some(("application/json", note)),
        )
        .await;
    assert!(status.is_client_error());
    let (status, _) = r
        .raw(
            Method::POST,
            &format!("/webhooks/twilio/{}/voice", key("calls")),
            None,
            &[("x-twilio-signature", "bm9wZQ==")],
            Some((
                "application/x-www-form-urlencoded",
                "CallSid=CA1&From=%2B15551234567".into(),
            )),
        )
        .await;
    assert!(status.is_client_error());
    let (status, started) = r
        .raw(
            Method::POST,
            &format!("/chat/{}/conversations", key("chat")),
            None,
            &[],
            Some(("application/json", json!({"message": "hi"}).to_string())),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    // `EventSource` cannot send headers: the visitor's token rides in the
    // query. It is the visitor's to see (the start answer), never the log's.
    let visitor_token = started["visitor_token"].as_str().unwrap().to_owned();
    let (status, _) = r
        .raw(
            Method::GET,
            &format!(
                "/chat/{}/conversations/{}/messages?visitor_token={visitor_token}",
                key("chat"),
                started["conversation_id"]
            ),
            None,
            &[],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // API tokens: one issued (its answer is the one place it shows), used.
    let (_, users) = r.get("/api/v1/users").await;
    let uid = TestApp::ids(&users)[0];
    let (status, issued) = {
        let token = r.app.admin.clone();
        let res = r
            .app
            .client
            .post(format!("{}/api/v1/users/{uid}/tokens", r.app.base))
            .bearer_auth(token)
            .json(&json!({"name": "scan"}))
            .send()
            .await
            .unwrap();
        (res.status(), res.json::<Value>().await.unwrap())
    };
    assert_eq!(status, StatusCode::CREATED);
    let issued = issued["token"].as_str().unwrap().to_owned();
    let (status, _) = r
        .raw(Method::GET, "/api/v1/tickets", Some(&issued), &[], None)
        .await;
    assert_eq!(status, StatusCode::OK);
    secrets.push(("issued API token".into(), issued.clone()));
    secrets.push(("admin API token".into(), r.app.admin.clone()));
    for t in [&issued, &r.app.admin.clone()] {
        let hash = switchboard_server::auth::hash_token(t);
        secrets.push(("an API token's stored hash".into(), hash));
    }

    // Every parameterless read of the document, and each channel again.
    let (_, doc) = r
        .raw(Method::GET, "/api/v1/openapi.json", None, &[], None)
        .await;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let streams = item["get"]["responses"]["200"]["content"]
            .get("text/event-stream")
            .is_some();
        if item.get("get").is_some() && !path.contains('{') && !streams {
            r.get(path).await;
        }
    }
    for (_, cid, _) in &channels {
        r.get(&format!("/api/v1/channels/{cid}")).await;
    }

    // The channels still hold what was set (the scan is not vacuous).
    let stored = r
        .app
        .store
        .list_channels(switchboard_domain::AccountId(1))
        .await
        .unwrap();
    let all = serde_json::to_string(&stored).unwrap();
    for s in [
        &smtp_pass,
        &verify,
        &app_secret,
        &access,
        &twilio,
        &signing,
        &rotated,
    ] {
        assert!(all.contains(s.as_str()), "{s} is stored");
    }

    let answers = r.answers.lock().unwrap().join("\n");
    // Give the dispatcher's last log lines a moment.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let logged = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
    assert!(logged.contains("outbox row failed"), "the log is captured");
    let log_only = [("chat visitor token".to_owned(), visitor_token)];
    for (what, value) in secrets.iter().chain(&log_only) {
        let places = if log_only.iter().any(|(w, _)| w == what) {
            vec![("the log", &logged)]
        } else {
            vec![("an answer", &answers), ("the log", &logged)]
        };
        for (place, text) in places {
            if let Some(at) = text.find(value.as_str()) {
                let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
                let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
                panic!("the {what} is in {place}: {}", &text[line_start..line_end]);
            }
        }
    }
    eprintln!(
        "secret scan ({:?}): {} secrets, {} answers, {} log bytes",
        common::BACKEND.get(),
        secrets.len() + log_only.len(),
        r.answers.lock().unwrap().len(),
        logged.len()
    );
}

on_both_backends!(no_secret_leaves);
