//! Ticket workflows over HTTP, on both backends: every trigger kind
//! enrolls (changes, the handoff, and the time-based ones the scheduler
//! evaluates), filters and branches decide, every action has its effect
//! and its history line, rotation spreads fairly over available seated
//! targets and keeps its state across edits, delays and the hourly step
//! cap wait for the clock, webhooks are signed and retried, dry runs change
//! nothing, no workflow loops on its own change, both templates work end
//! to end, and the API refuses what it must (paths of bad fields, agents,
//! other accounts).
//!
//! The tests are split by area under `tests/workflows/`; this file holds
//! what they share. Steps run from the outbox (the dispatcher `spawn_app`
//! starts); time-based triggers and delays are driven by a [`FixedClock`]
//! and [`tick`], which runs the scheduler's due jobs by hand.

#[macro_use]
mod common;

#[path = "workflows/actions.rs"]
mod actions;
#[path = "workflows/api.rs"]
mod api;
#[path = "workflows/rotation.rs"]
mod rotation;
#[path = "workflows/templates.rs"]
mod templates;
#[path = "workflows/triggers.rs"]
mod triggers;

use std::{collections::BTreeMap, sync::Arc};

use common::{TestApp, eventually, spawn_app, spawn_app_with, spawn_app_with_clock};
use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_domain::{AccountId, Actor, FixedClock, MessageKind, TicketId};
use switchboard_store::NewMessage;

/// The account `spawn_app` creates.
const ACCOUNT: AccountId = AccountId(1);

/// Friday 2026-03-27 10:00 UTC: users without working hours are available.
const FRIDAY: &str = "2026-03-27T10:00:00Z";

/// The app on a clock stopped at `at`.
async fn app_at(at: &str) -> (TestApp, Arc<FixedClock>) {
    let clock = Arc::new(FixedClock::new(at.parse().unwrap()));
    (spawn_app_with_clock(clock.clone()).await, clock)
}

/// The app on a clock stopped at `at`, with at most `cap` workflow steps
/// per ticket per hour.
async fn app_with_cap(at: &str, cap: u32) -> (TestApp, Arc<FixedClock>) {
    let clock = Arc::new(FixedClock::new(at.parse().unwrap()));
    let config = switchboard_server::dispatcher::DispatcherConfig {
        workflow_steps_per_hour: cap,
        ..Default::default()
    };
    (spawn_app_with(clock.clone(), config).await, clock)
}

/// Moves the clock forward by `seconds`.
fn advance(clock: &FixedClock, seconds: i64) {
    clock.advance(jiff::SignedDuration::from_secs(seconds));
}

/// Runs the scheduler's due jobs until none is left (a scan can queue the
/// timers it sets for now).
async fn tick(app: &TestApp) {
    for _ in 0..50 {
        if app.store.run_due_jobs().await.unwrap() == 0 {
            return;
        }
    }
    panic!("the scheduler keeps finding due jobs");
}

/// Creates a workflow (asserting 201) and returns it.
async fn create_workflow(app: &TestApp, spec: Value) -> Value {
    let (status, wf) = app.post("/api/v1/workflows", &app.admin, spec).await;
    assert_eq!(status, StatusCode::CREATED, "{wf}");
    assert!(wf["id"].is_i64(), "{wf}");
    wf
}

/// A workflow enrolled by `trigger` that runs `actions`.
async fn simple_workflow(app: &TestApp, name: &str, trigger: Value, actions: Value) -> i64 {
    create_workflow(
        app,
        json!({"name": name, "triggers": [trigger], "actions": actions}),
    )
    .await["id"]
        .as_i64()
        .unwrap()
}

/// Creates a ticket from `body` (asserting 201) and returns its id.
async fn new_ticket(app: &TestApp, body: Value) -> i64 {
    let (status, t) = app.post("/api/v1/tickets", &app.admin, body).await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    t["id"].as_i64().unwrap()
}

/// A ticket with just a subject.
async fn plain_ticket(app: &TestApp, subject: &str) -> i64 {
    new_ticket(app, json!({"subject": subject})).await
}

async fn get_ticket(app: &TestApp, id: i64) -> Value {
    let (status, t) = app.get(&format!("/api/v1/tickets/{id}"), &app.admin).await;
    assert_eq!(status, StatusCode::OK, "{t}");
    t
}

async fn patch_ticket(app: &TestApp, id: i64, patch: Value) -> Value {
    let (status, t) = app
        .patch(&format!("/api/v1/tickets/{id}"), &app.admin, patch)
        .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    t
}

async fn assign(app: &TestApp, ticket: i64, owner: Value) -> Value {
    let (status, t) = app
        .put(
            &format!("/api/v1/tickets/{ticket}/owner"),
            &app.admin,
            owner,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    t
}

/// A public reply by `token`'s user.
async fn reply(app: &TestApp, token: &str, ticket: i64, body: &str) {
    let (status, added) = app
        .post(
            &format!("/api/v1/tickets/{ticket}/messages"),
            token,
            json!({"kind": "reply", "body": body}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
}

/// The customer writes on the ticket (inbound messages come from channels,
/// not from the API, so this goes through the store).
async fn customer_writes(app: &TestApp, ticket: i64, body: &str) {
    app.store
        .add_message(
            ACCOUNT,
            TicketId(ticket),
            NewMessage {
                kind: MessageKind::Inbound,
                author: Actor::System,
                body: body.into(),
                external_id: None,
            },
        )
        .await
        .unwrap();
}

/// `POST /tickets/{id}/handoff` as the super admin.
async fn hand_off(app: &TestApp, ticket: i64, to: Value) -> Value {
    let (status, t) = app
        .post(&format!("/api/v1/tickets/{ticket}/handoff"), &app.admin, to)
        .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    t
}

/// `POST /workflows/{id}/enroll` as the super admin (asserting 201).
async fn enroll(app: &TestApp, workflow: i64, ticket: i64) -> Value {
    let (status, e) = app
        .post(
            &format!("/api/v1/workflows/{workflow}/enroll"),
            &app.admin,
            json!({"ticket_id": ticket}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{e}");
    e
}

/// The ticket's enrollments, as `GET /tickets/{id}/workflows` lists them.
async fn enrollments(app: &TestApp, ticket: i64) -> Vec<Value> {
    let (status, list) = app
        .get(&format!("/api/v1/tickets/{ticket}/workflows"), &app.admin)
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    items(&list)
}

/// The `items` of a page (`{items, next_cursor}`).
fn items(page: &Value) -> Vec<Value> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a page: {page}"))
        .clone()
}

/// The account's workflows, as `GET /workflows` lists them.
async fn workflows(app: &TestApp, token: &str) -> Vec<Value> {
    let (status, page) = app.get("/api/v1/workflows", token).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    items(&page)
}

/// The ticket's enrollments once none is `running` (the outbox ran every
/// step that was due; `waiting` ones wait for the clock).
async fn settled(app: &TestApp, ticket: i64) -> Vec<Value> {
    eventually(
        &format!("ticket {ticket}'s enrollments to settle"),
        || async {
            let list = enrollments(app, ticket).await;
            list.iter().all(|e| e["state"] != "running").then_some(list)
        },
    )
    .await
}

/// The ticket's enrollments once there are `n` and every one is `state`.
async fn settled_as(app: &TestApp, ticket: i64, n: usize, state: &str) -> Vec<Value> {
    eventually(
        &format!("{n} enrollment(s) of ticket {ticket} to be {state}"),
        || async {
            let list = enrollments(app, ticket).await;
            (list.len() == n && list.iter().all(|e| e["state"] == state)).then_some(list)
        },
    )
    .await
}

/// The enrollments of `list` in workflow `wf`.
fn of_workflow(list: &[Value], wf: i64) -> Vec<Value> {
    list.iter()
        .filter(|e| e["workflow_id"] == json!(wf))
        .cloned()
        .collect()
}

/// The `step` positions an enrollment ran.
fn step_paths(enrollment: &Value) -> Vec<String> {
    enrollment["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("steps: {enrollment}"))
        .iter()
        .map(|s| s["step"].as_str().unwrap().to_owned())
        .collect()
}

/// The events of the ticket's history, oldest first.
async fn history(app: &TestApp, ticket: i64) -> Vec<Value> {
    let (status, page) = app
        .get(&format!("/api/v1/tickets/{ticket}/history"), &app.admin)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["event"].clone())
        .collect()
}

/// The `workflow_step` events of the ticket's history.
async fn workflow_steps(app: &TestApp, ticket: i64) -> Vec<Value> {
    history(app, ticket)
        .await
        .into_iter()
        .filter(|e| e["type"] == "workflow_step")
        .collect()
}

/// The `owner_changed` events of the ticket's history.
async fn owner_changes(app: &TestApp, ticket: i64) -> Vec<Value> {
    history(app, ticket)
        .await
        .into_iter()
        .filter(|e| e["type"] == "owner_changed")
        .collect()
}

/// The bodies of the ticket's messages of `kind`, oldest first.
async fn messages(app: &TestApp, ticket: i64, kind: &str) -> Vec<String> {
    let (status, page) = app
        .get(&format!("/api/v1/tickets/{ticket}/messages"), &app.admin)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == kind)
        .map(|m| m["body"].as_str().unwrap().to_owned())
        .collect()
}

async fn notes(app: &TestApp, ticket: i64) -> Vec<String> {
    messages(app, ticket, "note").await
}

/// The ticket ids of a user's in-app notifications on `topic`.
async fn told_of(app: &TestApp, token: &str, topic: &str) -> Vec<i64> {
    let (status, page) = app.get("/api/v1/notifications?limit=200", token).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["topic"] == topic)
        .map(|n| n["ticket_id"].as_i64().unwrap())
        .collect()
}

/// The owner user of a ticket.
fn owner(t: &Value) -> Option<i64> {
    t["owner"]["user_id"].as_i64()
}

/// How many of `owners` each user got.
fn counts(owners: &[Option<i64>]) -> BTreeMap<i64, usize> {
    let mut out = BTreeMap::new();
    for o in owners {
        *out.entry(o.expect("every ticket has an owner"))
            .or_default() += 1;
    }
    out
}

/// Seated agents (no working hours: always available); their ids.
async fn agents(app: &TestApp, names: &[&str]) -> Vec<i64> {
    let mut ids = Vec::new();
    for name in names {
        ids.push(app.user(name, "agent", json!({})).await.0);
    }
    ids
}

/// Sets a user away until a month after [`FRIDAY`].
async fn set_away(app: &TestApp, user: i64) {
    let (status, body) = app
        .put(
            &format!("/api/v1/users/{user}/availability"),
            &app.admin,
            json!({"status": "away", "until": "2026-04-30T00:00:00Z"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// A channel of `kind` (no routing: its tickets start unassigned).
async fn channel(app: &TestApp, kind: &str, settings: Option<Value>) -> i64 {
    let mut body = json!({"kind": kind, "name": format!("{kind} channel")});
    if let Some(s) = settings {
        body["settings"] = s;
    }
    let (status, ch) = app.post("/api/v1/channels", &app.admin, body).await;
    assert_eq!(status, StatusCode::CREATED, "{ch}");
    ch["id"].as_i64().unwrap()
}

async fn team(app: &TestApp, name: &str) -> i64 {
    let (status, t) = app
        .post("/api/v1/teams", &app.admin, json!({"name": name}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    t["id"].as_i64().unwrap()
}
