//! Notifications over HTTP, on both backends: every topic reaches the app
//! and a real SMTP sink according to defaults and overrides, the hourly
//! cap and its digest, no self-notification, read marks, the stream, and
//! who may change which settings.

#[macro_use]
mod common;

use std::{sync::Arc, time::Duration};

use common::{TestApp, assert_problem, sink, spawn_app, spawn_app_with_clock};
use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_domain::{
    AccountId, Actor, FixedClock, MessageKind, TeamId, TicketId, UserId, notifications::NotifyEvent,
};
use switchboard_store::NewMessage;

on_both_backends!(
    each_topic_reaches_the_app_and_e_mail_by_defaults_and_overrides,
    the_hourly_cap_holds_the_rest_for_one_digest,
    nobody_is_told_of_their_own_change,
    read_marks_and_the_unread_count,
    the_stream_sends_new_notifications_and_resumes,
    who_may_change_which_settings,
    bad_settings_are_refused_naming_the_field,
);

const ACCOUNT: AccountId = AccountId(1);

/// Points the account's notification e-mail at a fresh sink.
async fn with_sink(app: &TestApp, cap: Option<u32>) -> sink::Received {
    let (addr, received) = sink::start("127.0.0.1:0".parse().unwrap()).await;
    let mut body = json!({"address": "desk@acme.example",
        "smtp_relay": {"host": "127.0.0.1", "port": addr.port(), "tls": "none"},
        "secrets": {"smtp_username": "relay-user", "smtp_password": "hunter2"}});
    if let Some(cap) = cap {
        body["hourly_cap"] = json!(cap);
    }
    let (status, shown) = app
        .put("/api/v1/notification-settings/email", &app.admin, body)
        .await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert!(!shown.to_string().contains("hunter2"), "{shown}");
    received
}

/// The (topic, ticket id) pairs of a user's in-app notifications, oldest first.
async fn told(app: &TestApp, token: &str) -> Vec<(String, i64)> {
    let (status, page) = app.get("/api/v1/notifications?limit=200", token).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let mut out: Vec<(String, i64)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["topic"].as_str().unwrap().to_owned(),
                n["ticket_id"].as_i64().unwrap(),
            )
        })
        .collect();
    out.reverse();
    out
}

/// The mails the sink received for `to`, once the outbox has settled.
async fn mails_to(app: &TestApp, received: &sink::Received, to: &str) -> Vec<sink::Delivery> {
    common::outbox_settled(app.store.as_ref(), ACCOUNT).await;
    received
        .lock()
        .unwrap()
        .iter()
        .filter(|d| d.to.iter().any(|t| t == to))
        .cloned()
        .collect()
}

async fn set(app: &TestApp, path: &str, token: &str, settings: Value) -> (StatusCode, Value) {
    app.put(path, token, json!({ "settings": settings })).await
}

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

async fn each_topic_reaches_the_app_and_e_mail_by_defaults_and_overrides() {
    let app = spawn_app().await;
    let received = with_sink(&app, None).await;
    let (_, team) = app
        .post("/api/v1/teams", &app.admin, json!({"name": "Billing"}))
        .await;
    let team_id = team["id"].as_i64().unwrap();
    let (ana_id, ana) = app
        .user("Ana", "agent", json!({"main_team_id": team_id}))
        .await;
    let (bob_id, bob) = app.user("Bob", "agent", json!({})).await;

    // New and unassigned: every seated user but its creator, in the app
    // only (the built-in default sends no e-mail for it).
    let first = app.ticket(&app.admin, "First").await["id"]
        .as_i64()
        .unwrap();
    assert_eq!(told(&app, &ana).await, [("new_unassigned".into(), first)]);
    assert_eq!(told(&app, &bob).await, [("new_unassigned".into(), first)]);
    assert!(
        mails_to(&app, &received, "ana@acme.example")
            .await
            .is_empty()
    );

    // An account default turns the e-mail on; Bob's own setting wins.
    let (status, d) = set(
        &app,
        "/api/v1/notification-settings/defaults",
        &app.admin,
        json!([{"topic": "new_unassigned", "method": "email", "setting": "on"}]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{d}");
    let (status, mine) = set(
        &app,
        &format!("/api/v1/users/{bob_id}/notification-settings"),
        &bob,
        json!([{"topic": "new_unassigned", "method": "email", "setting": "off"},
               {"topic": "assigned_to_me", "method": "in_app", "setting": "off"}]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    let entry = |v: &Value, topic: &str, method: &str| {
        v["settings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["topic"] == topic && e["method"] == method)
            .cloned()
            .unwrap()
    };
    assert_eq!(entry(&mine, "new_unassigned", "email")["source"], "user");
    assert_eq!(entry(&mine, "new_unassigned", "email")["enabled"], false);
    let (_, ana_view) = app
        .get(
            &format!("/api/v1/users/{ana_id}/notification-settings"),
            &ana,
        )
        .await;
    assert_eq!(
        entry(&ana_view, "new_unassigned", "email")["source"],
        "account_default"
    );
    assert_eq!(entry(&ana_view, "new_unassigned", "email")["enabled"], true);
    assert_eq!(entry(&ana_view, "mentioned", "email")["source"], "built_in");
    let second = app.ticket(&app.admin, "Second").await["id"]
        .as_i64()
        .unwrap();
    let ana_mail = mails_to(&app, &received, "ana@acme.example").await;
    assert_eq!(ana_mail.len(), 1, "{ana_mail:?}");
    assert!(
        ana_mail[0].data.contains(&format!("[#{second}] Second")),
        "{}",
        ana_mail[0].data
    );
    assert!(
        ana_mail[0]
            .data
            .contains(&format!("https://desk.example/tickets/{second}")),
        "{}",
        ana_mail[0].data
    );
    assert!(
        ana_mail[0].data.contains(&format!(
            "References: <notify.t{second}.u{ana_id}@acme.example>"
        )),
        "{}",
        ana_mail[0].data
    );
    assert_eq!(ana_mail[0].auth.as_deref(), Some("\0relay-user\0hunter2"));
    assert!(
        mails_to(&app, &received, "bob@acme.example")
            .await
            .is_empty()
    );

    // A team's new ticket goes to its members only.
    let (_, t) = app
        .post("/api/v1/tickets", &app.admin, json!({"subject": "Team"}))
        .await;
    let team_ticket = t["id"].as_i64().unwrap();
    app.put(
        &format!("/api/v1/tickets/{team_ticket}/owner"),
        &app.admin,
        json!({"team_id": team_id}),
    )
    .await;
    customer_writes(&app, team_ticket, "opening").await;
    customer_writes(&app, team_ticket, "hello again").await;
    assert_eq!(
        told(&app, &ana).await.last().unwrap(),
        &("customer_replied_unassigned".to_owned(), team_ticket)
    );
    assert!(
        !told(&app, &bob)
            .await
            .iter()
            .any(|(t, id)| t == "customer_replied_unassigned" && *id == team_ticket)
    );

    // Assigned to me: by hand, in the app and by e-mail; Bob turned the
    // bell off for it but still gets the e-mail.
    app.put(
        &format!("/api/v1/tickets/{first}/owner"),
        &app.admin,
        json!({"user_id": ana_id}),
    )
    .await;
    app.put(
        &format!("/api/v1/tickets/{second}/owner"),
        &app.admin,
        json!({"user_id": bob_id}),
    )
    .await;
    assert_eq!(
        told(&app, &ana).await.last().unwrap(),
        &("assigned_to_me".to_owned(), first)
    );
    assert!(
        !told(&app, &bob)
            .await
            .iter()
            .any(|(t, _)| t == "assigned_to_me")
    );
    assert!(
        mails_to(&app, &received, "bob@acme.example")
            .await
            .iter()
            .any(|m| m.data.contains(&format!("[#{second}]")))
    );

    // The customer replies on Ana's ticket (the first message of a ticket
    // is its opening, not a reply); someone mentions her in a note.
    customer_writes(&app, first, "opening").await;
    customer_writes(&app, first, "any news?").await;
    assert_eq!(
        told(&app, &ana).await.last().unwrap(),
        &("customer_replied_mine".to_owned(), first)
    );
    let (status, _) = app
        .post(
            &format!("/api/v1/tickets/{first}/messages"),
            &bob,
            json!({"kind": "note", "body": "@ana can you check? cc @Bob"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        told(&app, &ana).await.last().unwrap(),
        &("mentioned".to_owned(), first)
    );
    assert!(
        !told(&app, &bob).await.iter().any(|(t, _)| t == "mentioned"),
        "not told of one's own note"
    );

    // Raised directly: a handoff by the customer agent, an overdue first reply.
    app.store
        .raise_notification(
            ACCOUNT,
            TicketId(second),
            Actor::System,
            NotifyEvent::HandedOff {
                user_id: None,
                team_id: Some(TeamId(team_id)),
            },
        )
        .await
        .unwrap();
    app.store
        .raise_notification(
            ACCOUNT,
            TicketId(first),
            Actor::System,
            NotifyEvent::FirstReplyOverdue,
        )
        .await
        .unwrap();
    let last_two: Vec<_> = told(&app, &ana).await.into_iter().rev().take(2).collect();
    assert_eq!(
        last_two,
        [
            ("first_reply_overdue".to_owned(), first),
            ("handed_off".to_owned(), second)
        ]
    );
    app.store
        .raise_notification(
            ACCOUNT,
            TicketId(first),
            Actor::System,
            NotifyEvent::HandedOff {
                user_id: Some(UserId(bob_id)),
                team_id: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        told(&app, &bob).await.last().unwrap(),
        &("handed_off".to_owned(), first)
    );
    // A workflow's notify step (its own tests run it; here, the topic).
    app.store
        .raise_notification(
            ACCOUNT,
            TicketId(second),
            Actor::System,
            NotifyEvent::Workflow {
                users: vec![UserId(ana_id)],
            },
        )
        .await
        .unwrap();
    assert_eq!(
        told(&app, &ana).await.last().unwrap(),
        &("workflow_notice".to_owned(), second)
    );

    // Ana's e-mails: the two new tickets after the default turned them on,
    // then every personal topic (their built-in default is on).
    let ana_all = mails_to(&app, &received, "ana@acme.example").await;
    assert_eq!(ana_all.len(), 8, "{ana_all:?}");
    // The dispatcher sends in parallel: the sink's order is not the
    // notifications' order.
    for (phrase, n) in [
        ("New unassigned ticket", 2),
        ("Assigned to you", 1),
        ("The customer replied on your ticket", 1),
        ("You were mentioned", 1),
        ("Handed off", 1),
        ("first reply", 1),
        ("A workflow asks you", 1),
    ] {
        let found = ana_all.iter().filter(|m| m.data.contains(phrase)).count();
        assert_eq!(found, n, "{phrase}: {ana_all:?}");
    }
}

async fn the_hourly_cap_holds_the_rest_for_one_digest() {
    let clock = Arc::new(FixedClock::new("2025-03-07T10:10:00Z".parse().unwrap()));
    let app = spawn_app_with_clock(clock.clone()).await;
    let received = with_sink(&app, Some(2)).await;
    let (ana_id, _) = app.user("Ana", "agent", json!({})).await;
    for i in 0..5 {
        let t = app.ticket(&app.admin, &format!("T{i}")).await;
        app.put(
            &format!("/api/v1/tickets/{}/owner", t["id"]),
            &app.admin,
            json!({"user_id": ana_id}),
        )
        .await;
    }
    let sent = mails_to(&app, &received, "ana@acme.example").await;
    assert_eq!(sent.len(), 2, "the cap: {sent:?}");
    assert_eq!(
        app.store.run_due_jobs().await.unwrap(),
        0,
        "the digest waits for the hour to end"
    );
    clock.set("2025-03-07T11:00:01Z".parse().unwrap());
    assert!(app.store.run_due_jobs().await.unwrap() >= 1);
    let all = mails_to(&app, &received, "ana@acme.example").await;
    assert_eq!(all.len(), 3, "one digest for the three held: {all:?}");
    let digest = &all[2].data;
    assert!(
        digest.contains("Switchboard digest: 3 notifications"),
        "{digest}"
    );
    assert!(digest.contains("T4"), "{digest}");
    // A new hour: the cap starts again.
    let t = app.ticket(&app.admin, "Later").await;
    app.put(
        &format!("/api/v1/tickets/{}/owner", t["id"]),
        &app.admin,
        json!({"user_id": ana_id}),
    )
    .await;
    assert_eq!(mails_to(&app, &received, "ana@acme.example").await.len(), 4);
}

async fn nobody_is_told_of_their_own_change() {
    let app = spawn_app().await;
    let received = with_sink(&app, None).await;
    let (ana_id, ana) = app.user("Ana", "agent", json!({})).await;
    let (_, bob) = app.user("Bob", "agent", json!({})).await;
    let t = app.ticket(&ana, "Mine").await["id"].as_i64().unwrap();
    assert!(told(&app, &ana).await.is_empty(), "Ana created it");
    assert_eq!(told(&app, &bob).await, [("new_unassigned".into(), t)]);
    app.put(
        &format!("/api/v1/tickets/{t}/owner"),
        &ana,
        json!({"user_id": ana_id}),
    )
    .await;
    app.post(
        &format!("/api/v1/tickets/{t}/messages"),
        &ana,
        json!({"kind": "note", "body": "@ana note to self"}),
    )
    .await;
    assert!(told(&app, &ana).await.is_empty());
    assert!(
        mails_to(&app, &received, "ana@acme.example")
            .await
            .is_empty()
    );
}

async fn read_marks_and_the_unread_count() {
    let app = spawn_app().await;
    let (_, ana) = app.user("Ana", "agent", json!({})).await;
    for s in ["A", "B", "C"] {
        app.ticket(&app.admin, s).await;
    }
    let (_, page) = app.get("/api/v1/notifications", &ana).await;
    assert_eq!(page["unread"], 3);
    let first = page["items"][2]["id"].as_i64().unwrap();
    let (status, marked) = app
        .post("/api/v1/notifications/read", &ana, json!({"ids": [first]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{marked}");
    assert_eq!(
        (marked["marked"].as_u64(), marked["unread"].as_u64()),
        (Some(1), Some(2))
    );
    let (_, unread) = app.get("/api/v1/notifications?unread=true", &ana).await;
    assert_eq!(TestApp::ids(&unread).len(), 2);
    assert!(!TestApp::ids(&unread).contains(&first));
    // Someone else's ids change nothing.
    let (_, none) = app
        .post(
            "/api/v1/notifications/read",
            &app.admin,
            json!({"ids": [first]}),
        )
        .await;
    assert_eq!(none["marked"], 0);
    let (_, all) = app
        .post("/api/v1/notifications/read", &ana, json!({"all": true}))
        .await;
    assert_eq!(
        (all["marked"].as_u64(), all["unread"].as_u64()),
        (Some(2), Some(0))
    );
    let (_, page) = app.get("/api/v1/notifications", &ana).await;
    assert!(
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["read_at"].is_string())
    );
    assert_problem(
        &app.post("/api/v1/notifications/read", &ana, json!({}))
            .await,
        422,
        Some("ids"),
    );
}

/// Reads SSE frames from `res` until `n` notification ids were seen.
async fn read_ids(mut res: reqwest::Response, n: usize) -> Vec<i64> {
    let mut text = String::new();
    let mut ids = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while ids.len() < n {
            let chunk = res.chunk().await.unwrap().unwrap();
            text.push_str(&String::from_utf8_lossy(&chunk));
            ids = text
                .lines()
                .filter_map(|l| l.strip_prefix("id: "))
                .filter_map(|v| v.parse().ok())
                .collect();
        }
    })
    .await
    .expect("the notifications arrive");
    assert!(text.contains("event: notification"), "{text}");
    ids
}

async fn the_stream_sends_new_notifications_and_resumes() {
    let app = spawn_app().await;
    let (_, ana) = app.user("Ana", "agent", json!({})).await;
    let old = app.ticket(&app.admin, "Before").await;
    let open = || {
        app.client
            .get(format!("{}/api/v1/notifications/stream", app.base))
            .bearer_auth(&ana)
    };
    let res = open().send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let new = app.ticket(&app.admin, "After").await;
    let ids = read_ids(res, 1).await;
    let (_, page) = app.get("/api/v1/notifications", &ana).await;
    assert_eq!(
        ids,
        [page["items"][0]["id"].as_i64().unwrap()],
        "only what came after {old} ... {new}"
    );
    let resumed = open().header("Last-Event-ID", "0").send().await.unwrap();
    assert_eq!(read_ids(resumed, 2).await.len(), 2, "from the start");
    let bad = open().header("Last-Event-ID", "x").send().await.unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

async fn who_may_change_which_settings() {
    let app = spawn_app().await;
    let (ana_id, ana) = app.user("Ana", "agent", json!({})).await;
    let (bob_id, _) = app.user("Bob", "agent", json!({})).await;
    let (_, admin) = app.user("Ada", "admin", json!({})).await;
    let one = json!([{"topic": "mentioned", "method": "email", "setting": "off"}]);
    let bob_path = format!("/api/v1/users/{bob_id}/notification-settings");
    assert_problem(&app.get(&bob_path, &ana).await, 403, None);
    assert_problem(&set(&app, &bob_path, &ana, one.clone()).await, 403, None);
    assert_eq!(
        set(&app, &bob_path, &admin, one.clone()).await.0,
        StatusCode::OK,
        "admins manage agents"
    );
    for token in [&ana, &admin] {
        assert_problem(
            &set(
                &app,
                "/api/v1/notification-settings/defaults",
                token,
                one.clone(),
            )
            .await,
            403,
            None,
        );
        assert_problem(
            &app.post(
                "/api/v1/notification-settings/defaults/apply",
                token,
                json!({}),
            )
            .await,
            403,
            None,
        );
        assert_problem(
            &app.get("/api/v1/notification-settings/email", token).await,
            403,
            None,
        );
    }
    let (status, _) = app
        .get("/api/v1/notification-settings/defaults", &ana)
        .await;
    assert_eq!(status, StatusCode::OK, "anyone reads the defaults");
    set(
        &app,
        &format!("/api/v1/users/{ana_id}/notification-settings"),
        &ana,
        one.clone(),
    )
    .await;
    let (status, applied) = app
        .post(
            "/api/v1/notification-settings/defaults/apply",
            &app.admin,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{applied}");
    assert_eq!(applied["cleared"], 2);
    let (_, mine) = app
        .get(
            &format!("/api/v1/users/{ana_id}/notification-settings"),
            &ana,
        )
        .await;
    assert!(
        mine["settings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["setting"] == "unset")
    );
    // Another account's user is not found.
    let (_, _, other) = switchboard_server::setup::create_account(
        app.store.as_ref(),
        "Other",
        "O",
        "o@other.example",
    )
    .await
    .unwrap();
    assert_problem(
        &app.get(
            &format!("/api/v1/users/{ana_id}/notification-settings"),
            &other,
        )
        .await,
        404,
        None,
    );
    // The relay password is never shown.
    with_sink(&app, None).await;
    let (_, shown) = app
        .get("/api/v1/notification-settings/email", &app.admin)
        .await;
    assert_eq!(shown["secrets"]["smtp_password"], "(set)");
    let (_, kept) = app.put("/api/v1/notification-settings/email", &app.admin,
        json!({"address": "desk@acme.example", "smtp_relay": {"host": "127.0.0.1"}, "secrets": {"smtp_password": "(set)"}})).await;
    assert_eq!(kept["secrets"]["smtp_password"], "(set)", "{kept}");
    assert_eq!(
        kept["secrets"]["smtp_username"], "(set)",
        "kept when left out"
    );
}

async fn bad_settings_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let (ana_id, ana) = app.user("Ana", "agent", json!({})).await;
    let path = format!("/api/v1/users/{ana_id}/notification-settings");
    let got = set(
        &app,
        &path,
        &ana,
        json!([{"topic": "gossip", "method": "email", "setting": "on"}]),
    )
    .await;
    assert_eq!(got.0.as_u16(), 422, "{}", got.1);
    assert!(
        got.1["field"]
            .as_str()
            .unwrap_or_default()
            .contains("topic"),
        "{}",
        got.1
    );
    let twice = json!([{"topic": "mentioned", "method": "email", "setting": "on"},
        {"topic": "mentioned", "method": "email", "setting": "off"}]);
    assert_problem(&set(&app, &path, &ana, twice).await, 422, Some("settings"));
    let bad_port = app
        .put(
            "/api/v1/notification-settings/email",
            &app.admin,
            json!({"smtp_relay": {"host": "h", "port": 70000}}),
        )
        .await;
    assert_problem(&bad_port, 422, Some("smtp_relay.port"));
    let bad_cap = app
        .put(
            "/api/v1/notification-settings/email",
            &app.admin,
            json!({"hourly_cap": -1}),
        )
        .await;
    assert_problem(&bad_cap, 422, Some("hourly_cap"));
    let unknown = app
        .put(
            "/api/v1/notification-settings/email",
            &app.admin,
            json!({"host": "h"}),
        )
        .await;
    assert_problem(&unknown, 422, Some("settings"));
    assert_problem(
        &app.get("/api/v1/notifications?limit=0", &ana).await,
        400,
        Some("limit"),
    );
}
