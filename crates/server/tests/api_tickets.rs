//! The REST API over real HTTP: ticket views, manual triage, replies,
//! idempotent creation and problem bodies for bad input.

#[macro_use]
mod common;

use common::{TestApp, assert_problem, spawn_app};
use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_domain::{Actor, MessageKind, TicketId};
use switchboard_store::NewMessage;

async fn views_show_the_right_tickets() {
    let app = spawn_app().await;
    let (_, team) = app
        .post("/api/v1/teams", &app.admin, json!({"name": "Tier 1"}))
        .await;
    let (ana_id, ana) = app
        .user("Ana", "agent", json!({"main_team_id": team["id"]}))
        .await;
    let (_, bob) = app.user("Bob", "agent", json!({})).await;
    let unassigned = app.ticket(&bob, "nobody's").await["id"].as_i64().unwrap();
    let mine = app.ticket(&bob, "for Ana").await["id"].as_i64().unwrap();
    let team_only = app.ticket(&bob, "for the team").await["id"]
        .as_i64()
        .unwrap();
    let closed = app.ticket(&bob, "done").await["id"].as_i64().unwrap();
    app.put(
        &format!("/api/v1/tickets/{mine}/owner"),
        &bob,
        json!({"user_id": ana_id}),
    )
    .await;
    app.put(
        &format!("/api/v1/tickets/{team_only}/owner"),
        &bob,
        json!({"team_id": team["id"]}),
    )
    .await;
    app.patch(
        &format!("/api/v1/tickets/{closed}"),
        &bob,
        json!({"status": "closed"}),
    )
    .await;
    let view = |v: &'static str, token: String| {
        let app = &app;
        async move {
            TestApp::ids(
                &app.get(&format!("/api/v1/tickets?view={v}"), &token)
                    .await
                    .1,
            )
        }
    };
    assert_eq!(
        view("unassigned", ana.clone()).await,
        vec![team_only, unassigned]
    );
    assert_eq!(view("mine", ana.clone()).await, vec![mine]);
    assert_eq!(view("mine", bob.clone()).await, Vec::<i64>::new());
    assert_eq!(view("team_unassigned", ana.clone()).await, vec![team_only]);
    assert_eq!(view("team_open", ana.clone()).await, vec![team_only, mine]);
    assert_eq!(view("team_open", bob.clone()).await, Vec::<i64>::new());
    assert_eq!(view("closed", ana.clone()).await, vec![closed]);
    assert_eq!(
        view("open", ana.clone()).await,
        vec![team_only, mine, unassigned]
    );
    // Filters and pagination.
    let (_, page) = app
        .get(
            &format!("/api/v1/tickets?owner={ana_id}&type=email_other&priority=medium"),
            &ana,
        )
        .await;
    assert_eq!(TestApp::ids(&page), vec![mine]);
    let (_, first) = app.get("/api/v1/tickets?limit=3", &ana).await;
    assert_eq!(TestApp::ids(&first), vec![closed, team_only, mine]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = app
        .get(&format!("/api/v1/tickets?limit=3&cursor={cursor}"), &ana)
        .await;
    assert_eq!(
        (TestApp::ids(&second), second["next_cursor"].clone()),
        (vec![unassigned], Value::Null)
    );
}

async fn manual_assign_reassign_and_unassign_are_in_the_history() {
    let app = spawn_app().await;
    let (ana_id, ana) = app.user("Ana", "agent", json!({})).await;
    let (bob_id, bob) = app.user("Bob", "agent", json!({})).await;
    let t = app.ticket(&app.admin, "Refund").await;
    assert_eq!(t["owner"], json!({"user_id": null, "team_id": null}));
    assert_eq!(
        (t["type"].as_str(), t["status"].as_str()),
        (Some("email_other"), Some("open"))
    );
    let path = format!("/api/v1/tickets/{}/owner", t["id"]);
    let (_, assigned) = app.put(&path, &app.admin, json!({"user_id": ana_id})).await;
    assert_eq!(assigned["owner"]["user_id"], json!(ana_id));
    assert!(assigned["assigned_at"].is_string());
    let (_, told) = app.get("/api/v1/notifications", &ana).await;
    assert_eq!(
        (
            told["items"][0]["topic"].as_str(),
            told["items"][0]["ticket_id"].clone()
        ),
        (Some("assigned_to_me"), t["id"].clone()),
        "assignees are told"
    );
    let (_, reassigned) = app.put(&path, &bob, json!({"user_id": bob_id})).await;
    assert_eq!(reassigned["owner"]["user_id"], json!(bob_id));
    let (_, unassigned) = app.put(&path, &bob, json!({})).await;
    assert_eq!(
        unassigned["owner"],
        json!({"user_id": null, "team_id": null})
    );
    let (_, history) = app
        .get(&format!("/api/v1/tickets/{}/history", t["id"]), &bob)
        .await;
    let owners: Vec<Value> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["event"]["type"] == "owner_changed")
        .map(|h| {
            json!([
                h["event"]["to"]["user_id"],
                h["actor"]["user_id"],
                h["event"]["reason"]
            ])
        })
        .collect();
    assert_eq!(
        owners,
        vec![
            json!([ana_id, 1, "manual"]),
            json!([bob_id, bob_id, "manual"]),
            json!([null, bob_id, "manual"])
        ]
    );
    assert_eq!(history["items"][0]["event"]["type"], "created");
    assert_problem(
        &app.put(&path, &bob, json!({"user_id": 424242})).await,
        422,
        Some("user_id"),
    );
    assert_problem(
        &app.put(&path, &bob, json!({"owner": 1})).await,
        422,
        Some("owner"),
    );
}

async fn replying_to_an_unassigned_ticket_makes_the_replier_its_owner() {
    let app = spawn_app().await;
    let (ana_id, ana) = app.user("Ana", "agent", json!({})).await;
    let (_, bob) = app.user("Bob", "agent", json!({})).await;
    let t = app.ticket(&app.admin, "Help").await;
    let path = format!("/api/v1/tickets/{}/messages", t["id"]);
    let (status, noted) = app
        .post(&path, &bob, json!({"kind": "note", "body": "looking"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        noted["ticket"]["owner"]["user_id"],
        Value::Null,
        "a note does not assign"
    );
    let (_, replied) = app
        .post(&path, &ana, json!({"kind": "reply", "body": "On it!"}))
        .await;
    assert_eq!(replied["ticket"]["owner"]["user_id"], json!(ana_id));
    assert_eq!(replied["ticket"]["stage"], "waiting_on_contact");
    assert_eq!(
        replied["message"]["author"],
        json!({"kind": "user", "user_id": ana_id})
    );
    let (_, again) = app
        .post(&path, &bob, json!({"kind": "reply", "body": "me too"}))
        .await;
    assert_eq!(
        again["ticket"]["owner"]["user_id"],
        json!(ana_id),
        "an owned ticket keeps its owner"
    );
    let (_, messages) = app.get(&path, &bob).await;
    assert_eq!(messages["items"].as_array().unwrap().len(), 3);
    assert_problem(
        &app.post(&path, &bob, json!({"kind": "reply", "body": "  "}))
            .await,
        422,
        Some("body"),
    );
    assert_problem(
        &app.post(&path, &bob, json!({"kind": "inbound", "body": "x"}))
            .await,
        422,
        Some("kind"),
    );
}

async fn an_idempotency_key_makes_retries_return_the_original() {
    let app = spawn_app().await;
    let send = |key: &'static str, body: Value| {
        let app = &app;
        async move {
            app.client
                .post(format!("{}/api/v1/tickets", app.base))
                .bearer_auth(&app.admin)
                .header("Idempotency-Key", key)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let body = json!({"subject": "Charged twice", "contact": {"email": "c@x.example"}});
    let first = send("abc-1", body.clone()).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    let retry = send("abc-1", body.clone()).await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(first, retry);
    let (_, all) = app.get("/api/v1/tickets", &app.admin).await;
    assert_eq!(TestApp::ids(&all).len(), 1, "one ticket, not two");
    let reused = send("abc-1", json!({"subject": "Something else"})).await;
    assert_eq!(reused.status(), StatusCode::CONFLICT);
    let problem: Value = reused.json().await.unwrap();
    assert_eq!(problem["field"], "Idempotency-Key");
}

async fn bad_input_gets_a_problem_naming_the_field() {
    let app = spawn_app().await;
    let raw = |body: &'static str, content_type: &'static str| {
        let app = &app;
        async move {
            let res = app
                .client
                .post(format!("{}/api/v1/tickets", app.base))
                .bearer_auth(&app.admin)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap();
            (res.status(), res.json::<Value>().await.unwrap())
        }
    };
    assert_problem(&raw("{\"subject\": ", "application/json").await, 400, None);
    assert_problem(
        &raw("{\"subject\": \"a\"} trailing", "application/json").await,
        400,
        None,
    );
    assert_problem(
        &raw("subject=a", "application/x-www-form-urlencoded").await,
        415,
        None,
    );
    let post = |body: Value| app.post("/api/v1/tickets", &app.admin, body);
    assert_problem(
        &post(json!({"content": "no subject"})).await,
        422,
        Some("subject"),
    );
    assert_problem(&post(json!({"subject": "   "})).await, 422, Some("subject"));
    assert_problem(
        &post(json!({"subject": "s", "surprise": 1})).await,
        422,
        Some("surprise"),
    );
    assert_problem(
        &post(json!({"subject": "s", "contact": {"email": "nope"}})).await,
        422,
        Some("contact.email"),
    );
    assert_problem(
        &post(json!({"subject": "s", "contact": {"phone": "0612"}})).await,
        422,
        Some("contact.phone"),
    );
    assert_problem(
        &post(json!({"subject": "s", "contact": {}})).await,
        422,
        Some("contact"),
    );
    assert_problem(
        &post(json!({"subject": "s", "priority": "whenever"})).await,
        422,
        Some("priority"),
    );
    assert_problem(
        &post(json!({"subject": "s", "channel_id": "one"})).await,
        422,
        Some("channel_id"),
    );
    assert_problem(
        &post(json!({"subject": "s", "channel_id": 999})).await,
        422,
        Some("channel_id"),
    );
    assert_problem(
        &post(json!({"subject": "s", "properties": []})).await,
        422,
        Some("properties"),
    );
    assert_problem(
        &app.post(
            "/api/v1/users",
            &app.admin,
            json!({"name": "T", "email": "t@acme.example", "time_zone": "Mars/Base"}),
        )
        .await,
        422,
        Some("time_zone"),
    );
    assert_problem(
        &app.post(
            "/api/v1/users",
            &app.admin,
            json!({"name": "Dup", "email": "ADMIN@acme.example"}),
        )
        .await,
        409,
        Some("email"),
    );
    assert_problem(
        &app.get("/api/v1/tickets/not-a-number", &app.admin).await,
        404,
        Some("id"),
    );
    assert_problem(
        &app.get("/api/v1/tickets?view=everything", &app.admin).await,
        400,
        Some("view"),
    );
    assert_problem(
        &app.get("/api/v1/tickets?colour=red", &app.admin).await,
        400,
        Some("colour"),
    );
    assert_problem(
        &app.get("/api/v1/tickets?limit=0", &app.admin).await,
        400,
        Some("limit"),
    );
    assert_problem(
        &app.get("/api/v1/tickets/424242", &app.admin).await,
        404,
        None,
    );
    assert_problem(&app.get("/api/v1/nowhere", &app.admin).await, 404, None);
    let t = app.ticket(&app.admin, "x").await;
    assert_problem(
        &app.patch(
            &format!("/api/v1/tickets/{}", t["id"]),
            &app.admin,
            json!({"status": "open", "stage": "closed"}),
        )
        .await,
        422,
        Some("stage"),
    );
    // Just over the 2 MiB limit: the server answers 413 from the
    // Content-Length without reading the body and closes the connection, so
    // a body much larger than the socket buffers could still be being
    // written then (a broken pipe on the client's side, not an answer).
    let huge = format!(
        "{{\"subject\": \"s\", \"content\": \"{}\"}}",
        "x".repeat(2 * 1024 * 1024)
    );
    let res = app
        .client
        .post(format!("{}/api/v1/tickets", app.base))
        .bearer_auth(&app.admin)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Nothing of the refused requests was stored.
    let (_, all) = app.get("/api/v1/tickets", &app.admin).await;
    assert_eq!(TestApp::ids(&all).len(), 1);
}

/// A second message with a provider id already stored is a duplicate
/// delivery, told apart by its kind (not its field name) on both backends;
/// other clashes are not duplicates.
async fn a_stored_external_id_again_is_a_duplicate() {
    let app = spawn_app().await;
    let (_, bob) = app.user("Bob", "agent", json!({})).await;
    let id = app.ticket(&bob, "by mail").await["id"].as_i64().unwrap();
    let account = app.store.first_account().await.unwrap().unwrap().id;
    let message = || NewMessage {
        kind: MessageKind::Inbound,
        author: Actor::System,
        body: "hello".into(),
        external_id: Some("<dup@customer.example>".into()),
    };
    let ticket = TicketId(id);
    app.store
        .add_message(account, ticket, message())
        .await
        .unwrap();
    let before = app
        .store
        .list_messages(account, ticket)
        .await
        .unwrap()
        .len();
    let again = app.store.add_message(account, ticket, message()).await;
    let e = again.expect_err("stored twice");
    assert!(e.is_duplicate(), "{e:?}");
    assert!(e.to_string().starts_with("external_id:"), "{e}");
    let after = app
        .store
        .list_messages(account, ticket)
        .await
        .unwrap()
        .len();
    assert_eq!(after, before, "nothing stored the second time");
    // A clash on a unique name is a conflict, not a duplicate.
    let (status, body) = app
        .post("/api/v1/teams", &app.admin, json!({"name": "Tier 1"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let taken = app
        .store
        .create_team(
            account,
            serde_json::from_value(json!({"name": "Tier 1"})).unwrap(),
        )
        .await
        .expect_err("name taken");
    assert!(!taken.is_duplicate(), "{taken:?}");
}

on_both_backends!(
    a_stored_external_id_again_is_a_duplicate,
    views_show_the_right_tickets,
    manual_assign_reassign_and_unassign_are_in_the_history,
    replying_to_an_unassigned_ticket_makes_the_replier_its_owner,
    an_idempotency_key_makes_retries_return_the_original,
    bad_input_gets_a_problem_naming_the_field,
);
