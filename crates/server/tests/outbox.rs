//! Reply delivery through the transactional outbox, over HTTP and real SMTP,
//! on both backends: the reply request never waits for the relay, a relay
//! that is down gets the reply once it is back, a row that keeps failing
//! ends `failed` and a manual retry sends it.

#[macro_use]
mod common;

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use common::{TestApp, assert_problem, eventually, fast_dispatcher, sink, spawn_app_with};
use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_domain::SystemClock;

const ADDRESS: &str = "support@acme.example";

/// An e-mail channel relaying to `relay`, and a ticket on it from Cleo.
async fn email_ticket(app: &TestApp, relay: SocketAddr) -> i64 {
    let settings = json!({"address": ADDRESS,
        "smtp_relay": {"host": "127.0.0.1", "port": relay.port(), "tls": "none"}});
    let (status, channel) = app
        .post(
            "/api/v1/channels",
            &app.admin,
            json!({"kind": "email", "name": "Support", "settings": settings}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{channel}");
    let (status, ticket) = app
        .post(
            "/api/v1/tickets",
            &app.admin,
            json!({"subject": "Charged twice", "channel_id": channel["id"],
                   "contact": {"email": "cleo@customer.example", "name": "Cleo"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ticket}");
    ticket["id"].as_i64().unwrap()
}

async fn reply(app: &TestApp, ticket: i64, body: &str) -> Value {
    let (status, added) = app
        .post(
            &format!("/api/v1/tickets/{ticket}/messages"),
            &app.admin,
            json!({"kind": "reply", "body": body}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    added
}

/// The account's outbox rows in `state`.
async fn rows(app: &TestApp, state: &str) -> Vec<Value> {
    let (status, page) = app
        .get(&format!("/api/v1/outbox?state={state}"), &app.admin)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"].as_array().unwrap().clone()
}

async fn a_hanging_relay_does_not_slow_the_reply() {
    let relay = sink::hanging().await;
    let app = spawn_app_with(Arc::new(SystemClock), fast_dispatcher(5)).await;
    let ticket = email_ticket(&app, relay).await;
    let started = Instant::now();
    let added = reply(&app, ticket, "We are on it.").await;
    // The relay never answers (the dispatcher gives an attempt 10 s); the
    // agent's request is answered once the reply is committed. Generous
    // bound: this machine is shared.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(added["message"]["body"], "We are on it.");
    // The delivery is under way (claimed, leased), not lost.
    let pending = eventually("the claim", || async {
        let p = rows(&app, "pending").await;
        (p.len() == 1 && p[0]["attempts"] == 1).then_some(p)
    })
    .await;
    assert_eq!(
        pending[0]["topic"],
        json!({"topic": "deliver_reply", "ticket_id": ticket, "message_id": added["message"]["id"]})
    );
}

async fn a_relay_down_for_a_while_gets_the_reply_once_it_is_back() {
    let relay = sink::free_port().await;
    let app = spawn_app_with(Arc::new(SystemClock), fast_dispatcher(100)).await;
    let ticket = email_ticket(&app, relay).await;
    let added = reply(&app, ticket, "Refund on its way.").await;
    // Nothing listens: attempts fail and are retried with backoff.
    let waiting = eventually("two failed attempts", || async {
        let p = rows(&app, "pending").await;
        (p.len() == 1 && p[0]["attempts"].as_u64() >= Some(2)).then_some(p)
    })
    .await;
    assert!(
        waiting[0]["last_error"]
            .as_str()
            .is_some_and(|e| e.starts_with("relay:")),
        "{waiting:?}"
    );
    let (_, sent) = sink::start(relay).await;
    eventually("the delivery", || async {
        (!sent.lock().unwrap().is_empty()).then_some(())
    })
    .await;
    eventually("the row to be done", || async {
        (rows(&app, "done").await.len() == 1).then_some(())
    })
    .await;
    let delivered = sent.lock().unwrap().clone();
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert_eq!(delivered[0].to, ["cleo@customer.example"]);
    let message_id = added["message"]["external_id"].as_str().unwrap();
    assert!(
        delivered[0]
            .data
            .contains(&format!("Message-ID: {message_id}")),
        "{}",
        delivered[0].data
    );
    assert!(rows(&app, "pending").await.is_empty());
}

async fn a_row_that_keeps_failing_ends_failed_and_a_retry_sends_it() {
    let relay = sink::free_port().await;
    let app = spawn_app_with(Arc::new(SystemClock), fast_dispatcher(2)).await;
    let ticket = email_ticket(&app, relay).await;
    reply(&app, ticket, "Sorry for the wait.").await;
    let failed = eventually("the row to fail", || async {
        let f = rows(&app, "failed").await;
        (f.len() == 1).then_some(f)
    })
    .await;
    let row = &failed[0];
    assert_eq!(row["attempts"], 2, "{row}");
    assert_eq!(row["state"], "failed");
    assert!(
        row["last_error"]
            .as_str()
            .is_some_and(|e| e.starts_with("relay:")),
        "{row}"
    );
    assert!(row["created_at"].is_string() && row["updated_at"].is_string());
    let id = row["id"].as_i64().unwrap();
    let path = format!("/api/v1/outbox/{id}/retry");

    // Admins only; another account's admin does not even see the row.
    let (_, agent) = app.user("Ana", "agent", json!({})).await;
    assert_problem(&app.get("/api/v1/outbox", &agent).await, 403, None);
    assert_problem(&app.post(&path, &agent, json!({})).await, 403, None);
    let (_, _, other) = switchboard_server::setup::create_account(
        app.store.as_ref(),
        "Globex",
        "G",
        "g@globex.example",
    )
    .await
    .unwrap();
    assert_problem(&app.post(&path, &other, json!({})).await, 404, None);
    let (status, theirs) = app.get("/api/v1/outbox", &other).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(theirs["items"], json!([]));
    assert_problem(
        &app.get("/api/v1/outbox?state=stuck", &app.admin).await,
        400,
        None,
    );

    // The relay is fixed; the admin retries.
    let (_, sent) = sink::start(relay).await;
    let (status, retried) = app.post(&path, &app.admin, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{retried}");
    assert_eq!(retried["state"], "pending");
    assert_eq!(retried["attempts"], 0);
    eventually("the row to be done", || async {
        (rows(&app, "done").await.len() == 1).then_some(())
    })
    .await;
    assert_eq!(sent.lock().unwrap().len(), 1);
    // A done row cannot be retried.
    assert_problem(
        &app.post(&path, &app.admin, json!({})).await,
        409,
        Some("state"),
    );
}

on_both_backends!(
    a_hanging_relay_does_not_slow_the_reply,
    a_relay_down_for_a_while_gets_the_reply_once_it_is_back,
    a_row_that_keeps_failing_ends_failed_and_a_retry_sends_it,
);
