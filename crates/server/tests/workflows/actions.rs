//! What the steps do: each action's effect and history line, branches and
//! the default branch, replies through the channel, signed webhooks with
//! retries, delays (a duration, office hours) and the hourly step cap.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use super::*;
use crate::common::{fast_dispatcher, sink};

on_both_backends!(
    each_field_action_changes_the_ticket_and_is_recorded,
    branches_take_the_first_match_else_the_default,
    send_reply_goes_out_on_the_tickets_channel,
    a_webhook_failing_twice_is_retried_and_signed,
    a_delay_waits_for_the_clock,
    a_delay_until_open_waits_for_the_teams_office_hours,
    the_hourly_step_cap_makes_the_rest_wait,
);

async fn each_field_action_changes_the_ticket_and_is_recorded() {
    let app = spawn_app().await;
    let billing = team(&app, "Billing").await;
    let (ana, ana_token) = app.user("Ana", "agent", json!({})).await;
    let (bob, bob_token) = app.user("Bob", "agent", json!({})).await;
    let (_, cy_token) = app
        .user("Cy", "agent", json!({"main_team_id": billing}))
        .await;
    let actions = json!([
        {"type": "assign", "user_id": ana, "team_id": billing},
        {"type": "set_property", "name": "plan", "value": "gold"},
        {"type": "set_priority", "value": "urgent"},
        {"type": "set_stage", "value": "waiting_on_contact"},
        {"type": "add_note", "body": "Hi {{contact.name}}: {{ticket.subject}} (#{{ticket.id}})"},
        {"type": "notify", "users": [bob], "owner": true, "teams": [billing]},
        {"type": "unassign"},
        {"type": "set_status", "value": "closed"}
    ]);
    let wf = simple_workflow(
        &app,
        "Everything",
        json!({"kind": "ticket_created"}),
        actions,
    )
    .await;
    let t = new_ticket(
        &app,
        json!({"subject": "Broken printer", "contact": {"email": "cleo@customer.example", "name": "Cleo"}}),
    )
    .await;
    let list = settled_as(&app, t, 1, "done").await;
    let e = &list[0];
    assert_eq!(e["workflow_id"], json!(wf));
    assert_eq!(e["trigger"], "ticket_created");
    assert!(e["next_step"].is_null() && e["error"].is_null(), "{e}");
    assert!(
        e["started_at"].is_string() && e["updated_at"].is_string(),
        "{e}"
    );
    let want_actions = [
        "assign",
        "set_property",
        "set_priority",
        "set_stage",
        "add_note",
        "notify",
        "unassign",
        "set_status",
    ];
    let steps = e["steps"].as_array().unwrap();
    assert_eq!(steps.len(), want_actions.len(), "{e}");
    for (i, (s, a)) in steps.iter().zip(want_actions).enumerate() {
        assert_eq!(s["step"], i.to_string(), "{s}");
        assert_eq!(s["action"], a, "{s}");
        assert!(s["summary"].as_str().is_some_and(|x| !x.is_empty()), "{s}");
        assert!(s["at"].is_string(), "{s}");
    }

    let ticket = get_ticket(&app, t).await;
    assert_eq!(ticket["properties"]["plan"], "gold");
    assert_eq!(ticket["priority"], "urgent");
    assert_eq!(
        (ticket["status"].as_str(), ticket["stage"].as_str()),
        (Some("closed"), Some("closed"))
    );
    assert_eq!(
        ticket["owner"],
        json!({"user_id": null, "team_id": billing})
    );
    assert_eq!(
        notes(&app, t).await,
        [format!("Hi Cleo: Broken printer (#{t})")]
    );

    // The history: each step once, in order, with the workflow and the
    // enrollment; owner changes for the workflow's reason.
    let recorded = workflow_steps(&app, t).await;
    assert_eq!(recorded.len(), want_actions.len(), "{recorded:?}");
    for (i, (r, a)) in recorded.iter().zip(want_actions).enumerate() {
        assert_eq!(r["workflow_id"], json!(wf), "{r}");
        assert_eq!(r["enrollment_id"], e["id"], "{r}");
        assert_eq!(r["step"], i.to_string(), "{r}");
        assert_eq!(r["action"], a, "{r}");
        assert_eq!(r["summary"], steps[i]["summary"], "{r}");
    }
    let owners: Vec<(Value, Value)> = owner_changes(&app, t)
        .await
        .iter()
        .map(|o| (o["to"].clone(), o["reason"].clone()))
        .collect();
    assert_eq!(
        owners,
        [
            (
                json!({"user_id": ana, "team_id": billing}),
                json!("workflow")
            ),
            (
                json!({"user_id": null, "team_id": billing}),
                json!("workflow")
            ),
        ]
    );
    let stages: Vec<Value> = history(&app, t)
        .await
        .into_iter()
        .filter(|h| h["type"] == "status_changed")
        .map(|h| h["to_stage"].clone())
        .collect();
    assert_eq!(stages, [json!("waiting_on_contact"), json!("closed")]);
    // Notify told Bob, the owner at that step (Ana) and Billing (Cy).
    for token in [&bob_token, &ana_token, &cy_token] {
        assert_eq!(told_of(&app, token, "workflow_notice").await, [t]);
    }
}

async fn branches_take_the_first_match_else_the_default() {
    let app = spawn_app().await;
    let wf = simple_workflow(
        &app,
        "Triage",
        json!({"kind": "ticket_created"}),
        json!([
            {"type": "branch", "branches": [
                {"name": "urgent",
                 "filters": [{"all": [{"field": "priority", "op": "equals", "value": "urgent"}]}],
                 "actions": [{"type": "add_note", "body": "urgent path"},
                             {"type": "set_property", "name": "lane", "value": "fast"}]},
                {"name": "vip",
                 "filters": [{"all": [{"field": "contact", "name": "email", "op": "contains", "value": "vip"}]}],
                 "actions": [{"type": "add_note", "body": "vip path"}]}
             ],
             "default": [{"type": "add_note", "body": "default path"}]},
            {"type": "add_note", "body": "after"}
        ]),
    )
    .await;
    let cases = [
        (
            json!({"subject": "both", "priority": "urgent", "contact": {"email": "a@vip.example"}}),
            vec!["0", "0.0.0", "0.0.1", "1"],
            "urgent",
            vec!["urgent path", "after"],
        ),
        (
            json!({"subject": "vip", "contact": {"email": "b@vip.example"}}),
            vec!["0", "0.1.0", "1"],
            "vip",
            vec!["vip path", "after"],
        ),
        (
            json!({"subject": "plain"}),
            vec!["0", "0.2.0", "1"],
            "default",
            vec!["default path", "after"],
        ),
    ];
    for (body, paths, branch, want_notes) in cases {
        let t = new_ticket(&app, body).await;
        let list = settled_as(&app, t, 1, "done").await;
        assert_eq!(list[0]["workflow_id"], json!(wf));
        assert_eq!(step_paths(&list[0]), paths, "{}", list[0]);
        let first = &list[0]["steps"][0];
        assert_eq!(first["action"], "branch");
        assert!(
            first["summary"].as_str().unwrap().contains(branch),
            "{first}"
        );
        assert_eq!(notes(&app, t).await, want_notes);
        let lane = get_ticket(&app, t).await["properties"]["lane"].clone();
        assert_eq!(lane == "fast", branch == "urgent", "{lane}");
        let recorded: Vec<Value> = workflow_steps(&app, t)
            .await
            .iter()
            .map(|s| s["step"].clone())
            .collect();
        assert_eq!(recorded, paths.iter().map(|p| json!(p)).collect::<Vec<_>>());
    }
}

async fn send_reply_goes_out_on_the_tickets_channel() {
    let app = spawn_app().await;
    let (relay, received) = sink::start("127.0.0.1:0".parse().unwrap()).await;
    let email = channel(
        &app,
        "email",
        Some(json!({"address": "support@acme.example",
            "smtp_relay": {"host": "127.0.0.1", "port": relay.port(), "tls": "none"}})),
    )
    .await;
    simple_workflow(
        &app,
        "Acknowledge",
        json!({"kind": "ticket_created"}),
        json!([{"type": "send_reply", "body": "Hello {{contact.name}}, ticket {{ticket.id}} is with us."}]),
    )
    .await;
    // The workflow's reply may enroll another workflow.
    let seen = simple_workflow(
        &app,
        "Reply seen",
        json!({"kind": "message_sent"}),
        json!([{"type": "add_note", "body": "a reply went out"}]),
    )
    .await;
    let t = new_ticket(
        &app,
        json!({"subject": "Where is my order?", "channel_id": email,
            "contact": {"email": "cleo@customer.example", "name": "Cleo"}}),
    )
    .await;
    let text = format!("Hello Cleo, ticket {t} is with us.");
    let mail = eventually("the reply at the relay", || async {
        received.lock().unwrap().first().cloned()
    })
    .await;
    assert_eq!(mail.to, ["cleo@customer.example"]);
    assert!(mail.data.contains(&text), "{}", mail.data);
    assert_eq!(messages(&app, t, "reply").await, [text]);
    let list = settled_as(&app, t, 2, "done").await;
    assert_eq!(of_workflow(&list, seen).len(), 1);
    assert_eq!(notes(&app, t).await, ["a reply went out"]);
    assert!(get_ticket(&app, t).await["first_reply_at"].is_string());
    common::outbox_settled(app.store.as_ref(), ACCOUNT).await;
    assert_eq!(received.lock().unwrap().len(), 1, "sent once");
}

/// One request the webhook receiver got: its signature header, content
/// type and raw body.
type Call = (Option<String>, Option<String>, Vec<u8>);

/// A receiver on a free port answering 500 to the first `failures`
/// requests, then 200; returns its URL and what it received.
async fn webhook_receiver(failures: usize) -> (String, Arc<Mutex<Vec<Call>>>) {
    use axum::{body::Bytes, http::HeaderMap, http::StatusCode as Code};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let calls: Arc<Mutex<Vec<Call>>> = Arc::default();
    let seen = calls.clone();
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let seen = seen.clone();
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                let mut calls = seen.lock().unwrap();
                calls.push((
                    header("x-switchboard-signature"),
                    header("content-type"),
                    body.to_vec(),
                ));
                if calls.len() <= failures {
                    Code::INTERNAL_SERVER_ERROR
                } else {
                    Code::OK
                }
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (format!("http://{addr}/hook"), calls)
}

fn signature(secret: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn a_webhook_failing_twice_is_retried_and_signed() {
    let app = spawn_app_with(
        Arc::new(switchboard_domain::SystemClock),
        fast_dispatcher(10),
    )
    .await;
    let (url, calls) = webhook_receiver(2).await;
    let secret = "whsec-0123456789";
    let wf = create_workflow(
        &app,
        json!({"name": "Tell the CRM", "triggers": [{"kind": "ticket_created"}],
            "actions": [{"type": "webhook", "url": url, "secret": secret}]}),
    )
    .await;
    assert!(
        !wf.to_string().contains(secret),
        "the secret is write-only: {wf}"
    );
    let (_, shown) = app
        .get(&format!("/api/v1/workflows/{}", wf["id"]), &app.admin)
        .await;
    assert!(!shown.to_string().contains(secret), "{shown}");
    assert!(shown["actions"][0].get("secret").is_none(), "{shown}");
    let t = plain_ticket(&app, "Sync me").await;
    let got = eventually("three attempts", || async {
        let c = calls.lock().unwrap().clone();
        (c.len() >= 3).then_some(c)
    })
    .await;
    common::outbox_settled(app.store.as_ref(), ACCOUNT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        calls.lock().unwrap().len(),
        3,
        "no attempt after the success"
    );
    for (sig, content_type, body) in &got {
        assert_eq!(sig.as_deref(), Some(signature(secret, body).as_str()));
        assert!(
            content_type
                .as_deref()
                .is_some_and(|c| c.starts_with("application/json")),
            "{content_type:?}"
        );
    }
    assert!(
        got.windows(2).all(|w| w[0].2 == w[1].2),
        "the same body each time"
    );
    let body: Value = serde_json::from_slice(&got[2].2).unwrap();
    assert_eq!(body["workflow_id"], wf["id"]);
    assert_eq!(body["workflow"], "Tell the CRM");
    assert_eq!(body["step"], "0");
    assert_eq!(body["ticket"]["id"], json!(t));
    assert_eq!(body["ticket"]["subject"], "Sync me");
    let list = settled_as(&app, t, 1, "done").await;
    assert_eq!(list[0]["steps"][0]["action"], "webhook");
    // The outbox shows the delivery (done, three attempts), never the secret.
    let (_, done) = app.get("/api/v1/outbox?state=done", &app.admin).await;
    assert!(!done.to_string().contains(secret), "{done}");
    let row = done["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["topic"]["topic"] == "workflow_webhook")
        .cloned()
        .unwrap_or_else(|| panic!("a done webhook row: {done}"));
    assert_eq!(row["attempts"], 3, "{row}");
}

async fn a_delay_waits_for_the_clock() {
    let (app, clock) = app_at(FRIDAY).await;
    simple_workflow(
        &app,
        "Later",
        json!({"kind": "ticket_created"}),
        json!([{"type": "add_note", "body": "before"},
               {"type": "delay", "seconds": 600},
               {"type": "add_note", "body": "after"}]),
    )
    .await;
    let t = plain_ticket(&app, "Wait").await;
    let list = settled_as(&app, t, 1, "waiting").await;
    let e = &list[0];
    assert_eq!(step_paths(e), ["0", "1"]);
    assert_eq!(e["next_step"], "2");
    let until: jiff::Timestamp = e["waiting_until"].as_str().unwrap().parse().unwrap();
    assert_eq!(until, "2026-03-27T10:10:00Z".parse().unwrap());
    assert_eq!(notes(&app, t).await, ["before"]);
    advance(&clock, 599);
    tick(&app).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(enrollments(&app, t).await[0]["state"], "waiting");
    assert_eq!(notes(&app, t).await, ["before"]);
    advance(&clock, 2);
    tick(&app).await;
    let list = settled_as(&app, t, 1, "done").await;
    assert_eq!(step_paths(&list[0]), ["0", "1", "2"]);
    assert!(list[0]["waiting_until"].is_null(), "{}", list[0]);
    assert_eq!(notes(&app, t).await, ["before", "after"]);
    assert_eq!(workflow_steps(&app, t).await.len(), 3);
}

async fn a_delay_until_open_waits_for_the_teams_office_hours() {
    // Friday 18:00 UTC: the desk (Monday to Friday, 09:00 to 17:00 UTC) is
    // closed until Monday 09:00.
    let (app, clock) = app_at("2026-03-27T18:00:00Z").await;
    let desk = team(&app, "Desk").await;
    let hours: Vec<Value> = ["monday", "tuesday", "wednesday", "thursday", "friday"]
        .iter()
        .map(|d| json!({"day": d, "start": "09:00", "end": "17:00"}))
        .collect();
    let (status, body) = app
        .patch(
            &format!("/api/v1/teams/{desk}"),
            &app.admin,
            json!({"office_hours": {"time_zone": "UTC", "hours": hours}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    simple_workflow(
        &app,
        "Morning",
        json!({"kind": "ticket_created"}),
        json!([{"type": "delay", "until_open": {"team": desk}},
               {"type": "add_note", "body": "good morning"}]),
    )
    .await;
    let t = plain_ticket(&app, "Weekend").await;
    let list = settled_as(&app, t, 1, "waiting").await;
    let until: jiff::Timestamp = list[0]["waiting_until"].as_str().unwrap().parse().unwrap();
    assert_eq!(until, "2026-03-30T09:00:00Z".parse().unwrap());
    assert!(notes(&app, t).await.is_empty());
    clock.set("2026-03-30T09:00:01Z".parse().unwrap());
    tick(&app).await;
    settled_as(&app, t, 1, "done").await;
    assert_eq!(notes(&app, t).await, ["good morning"]);
    // Already open: no wait at all.
    let open = plain_ticket(&app, "Monday").await;
    let list = settled_as(&app, open, 1, "done").await;
    assert_eq!(step_paths(&list[0]), ["0", "1"]);
    assert_eq!(notes(&app, open).await, ["good morning"]);
}

async fn the_hourly_step_cap_makes_the_rest_wait() {
    let (app, clock) = app_with_cap(FRIDAY, 3).await;
    let five: Vec<Value> = (0..5)
        .map(|i| json!({"type": "add_note", "body": format!("n{i}")}))
        .collect();
    simple_workflow(
        &app,
        "Chatty",
        json!({"kind": "ticket_created"}),
        json!(five),
    )
    .await;
    let t = plain_ticket(&app, "Capped").await;
    // The cap is per ticket: another ticket runs its own three.
    let other = plain_ticket(&app, "Also capped").await;
    for ticket in [t, other] {
        let list = settled_as(&app, ticket, 1, "waiting").await;
        assert_eq!(step_paths(&list[0]), ["0", "1", "2"], "{}", list[0]);
        assert_eq!(list[0]["next_step"], "3");
        let until: jiff::Timestamp = list[0]["waiting_until"].as_str().unwrap().parse().unwrap();
        assert_eq!(until, "2026-03-27T11:00:00Z".parse().unwrap());
        assert_eq!(notes(&app, ticket).await, ["n0", "n1", "n2"]);
    }
    tick(&app).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(notes(&app, t).await.len(), 3, "the hour has not moved");
    advance(&clock, 3601);
    tick(&app).await;
    for ticket in [t, other] {
        let list = settled_as(&app, ticket, 1, "done").await;
        assert_eq!(step_paths(&list[0]), ["0", "1", "2", "3", "4"]);
        assert_eq!(notes(&app, ticket).await, ["n0", "n1", "n2", "n3", "n4"]);
        assert_eq!(workflow_steps(&app, ticket).await.len(), 5);
    }
}
