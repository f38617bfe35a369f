//! The REST API over real HTTP: authentication, roles, account isolation,
//! views, manual triage, idempotency and problem bodies.

mod common;

use common::{TestApp, assert_problem, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn requests_without_a_valid_token_get_401() {
    let app = spawn_app().await;
    for token in [None, Some("sb_not-a-real-token"), Some("garbage")] {
        let got = app.send(Method::GET, "/api/v1/tickets", token, None).await;
        assert_problem(&got, 401, None);
    }
    let res = app
        .client
        .get(format!("{}/api/v1/users", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    assert_eq!(res.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn agents_triage_but_cannot_change_configuration() {
    let app = spawn_app().await;
    let (_, agent) = app.user("Ana", "agent", json!({})).await;
    assert_eq!(app.get("/api/v1/users", &agent).await.0, StatusCode::OK);
    assert_problem(
        &app.post("/api/v1/teams", &agent, json!({"name": "T"}))
            .await,
        403,
        None,
    );
    assert_problem(
        &app.post(
            "/api/v1/skills",
            &agent,
            json!({"name": "S", "category": "c"}),
        )
        .await,
        403,
        None,
    );
    assert_problem(
        &app.post(
            "/api/v1/channels",
            &agent,
            json!({"kind": "email", "name": "E"}),
        )
        .await,
        403,
        None,
    );
    assert_problem(
        &app.post(
            "/api/v1/users",
            &agent,
            json!({"name": "X", "email": "x@acme.example"}),
        )
        .await,
        403,
        None,
    );
    let (_, admin_user) = app
        .post(
            "/api/v1/users",
            &app.admin,
            json!({"name": "Root", "email": "root@acme.example"}),
        )
        .await;
    assert_problem(
        &app.patch(
            &format!("/api/v1/users/{}", admin_user["id"]),
            &agent,
            json!({"name": "Y"}),
        )
        .await,
        403,
        None,
    );
    let (_, channel) = app
        .post(
            "/api/v1/channels",
            &app.admin,
            json!({"kind": "email", "name": "E"}),
        )
        .await;
    assert_problem(
        &app.patch(
            &format!("/api/v1/channels/{}", channel["id"]),
            &agent,
            json!({"name": "Z"}),
        )
        .await,
        403,
        None,
    );
    // What agents may do.
    let t = app.ticket(&agent, "Printer on fire").await;
    let (status, _) = app
        .put(
            &format!("/api/v1/tickets/{}/owner", t["id"]),
            &agent,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        app.post("/api/v1/contacts", &agent, json!({"email": "c@x.example"}))
            .await
            .0,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn only_super_admins_manage_admins() {
    let app = spawn_app().await;
    let (admin_id, admin) = app.user("Adam", "admin", json!({})).await;
    let (agent_id, _) = app.user("Ana", "agent", json!({})).await;
    // An admin manages agents...
    assert_eq!(
        app.patch(
            &format!("/api/v1/users/{agent_id}"),
            &admin,
            json!({"help_desk_seat": false})
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        app.post(
            &format!("/api/v1/users/{agent_id}/tokens"),
            &admin,
            json!({})
        )
        .await
        .0,
        StatusCode::CREATED
    );
    // ...but cannot create, promote to, or change admins.
    assert_problem(
        &app.post(
            "/api/v1/users",
            &admin,
            json!({"name": "B", "email": "b@acme.example", "role": "admin"}),
        )
        .await,
        403,
        None,
    );
    assert_problem(
        &app.patch(
            &format!("/api/v1/users/{agent_id}"),
            &admin,
            json!({"role": "super_admin"}),
        )
        .await,
        403,
        None,
    );
    let (other_admin, _) = app.user("Alex", "admin", json!({})).await;
    assert_problem(
        &app.patch(
            &format!("/api/v1/users/{other_admin}"),
            &admin,
            json!({"name": "N"}),
        )
        .await,
        403,
        None,
    );
    // An agent can mint a token for themself, not for others.
    let (_, agent) = app.user("Bea", "agent", json!({})).await;
    let (status, me) = app.get("/api/v1/users", &agent).await;
    assert_eq!(status, StatusCode::OK);
    let bea = me["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "Bea")
        .unwrap()["id"]
        .clone();
    let (status, issued) = app
        .post(
            &format!("/api/v1/users/{bea}/tokens"),
            &agent,
            json!({"name": "laptop"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        app.get("/api/v1/tickets", issued["token"].as_str().unwrap())
            .await
            .0,
        StatusCode::OK
    );
    assert_problem(
        &app.post(
            &format!("/api/v1/users/{admin_id}/tokens"),
            &agent,
            json!({}),
        )
        .await,
        403,
        None,
    );
    // The super admin can do all of it.
    assert_eq!(
        app.patch(
            &format!("/api/v1/users/{agent_id}"),
            &app.admin,
            json!({"role": "admin"})
        )
        .await
        .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn another_account_sees_404_not_403() {
    let app = spawn_app().await;
    let (_, _, other) = switchboard_server::setup::create_account(
        app.store.as_ref(),
        "Globex",
        "G",
        "g@globex.example",
    )
    .await
    .unwrap();
    let (user_id, _) = app.user("Ana", "agent", json!({})).await;
    let t = app.ticket(&app.admin, "Acme's secret").await;
    let id = &t["id"];
    let (_, team) = app
        .post("/api/v1/teams", &app.admin, json!({"name": "Acme team"}))
        .await;
    for path in [
        format!("/api/v1/tickets/{id}"),
        format!("/api/v1/tickets/{id}/history"),
        format!("/api/v1/tickets/{id}/messages"),
        format!("/api/v1/users/{user_id}"),
        format!("/api/v1/teams/{}", team["id"]),
    ] {
        assert_problem(&app.get(&path, &other).await, 404, None);
    }
    assert_problem(
        &app.patch(
            &format!("/api/v1/tickets/{id}"),
            &other,
            json!({"priority": "low"}),
        )
        .await,
        404,
        None,
    );
    assert_problem(
        &app.put(&format!("/api/v1/tickets/{id}/owner"), &other, json!({}))
            .await,
        404,
        None,
    );
    assert_problem(
        &app.post(
            &format!("/api/v1/tickets/{id}/messages"),
            &other,
            json!({"kind": "reply", "body": "hi"}),
        )
        .await,
        404,
        None,
    );
    assert_problem(
        &app.patch(
            &format!("/api/v1/users/{user_id}"),
            &other,
            json!({"name": "pwned"}),
        )
        .await,
        404,
        None,
    );
    assert_problem(
        &app.post(
            &format!("/api/v1/users/{user_id}/tokens"),
            &other,
            json!({}),
        )
        .await,
        404,
        None,
    );
    let (_, list) = app.get("/api/v1/tickets", &other).await;
    assert_eq!(TestApp::ids(&list), Vec::<i64>::new());
    // And B cannot point its own ticket at A's user.
    let mine = app.ticket(&other, "Globex ticket").await;
    assert_problem(
        &app.put(
            &format!("/api/v1/tickets/{}/owner", mine["id"]),
            &other,
            json!({"user_id": user_id}),
        )
        .await,
        422,
        Some("user_id"),
    );
    assert_eq!(
        app.get(&format!("/api/v1/tickets/{id}"), &app.admin)
            .await
            .1["priority"],
        "medium",
        "nothing changed"
    );
}

#[tokio::test]
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

#[tokio::test]
async fn manual_assign_reassign_and_unassign_are_in_the_history() {
    let app = spawn_app().await;
    let (ana_id, _) = app.user("Ana", "agent", json!({})).await;
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

#[tokio::test]
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

#[tokio::test]
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

#[tokio::test]
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
        400,
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
    let huge = format!(
        "{{\"subject\": \"s\", \"content\": \"{}\"}}",
        "x".repeat(3 * 1024 * 1024)
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

#[tokio::test]
async fn configuration_round_trips_through_the_api() {
    let app = spawn_app().await;
    let (_, skill) = app
        .post(
            "/api/v1/skills",
            &app.admin,
            json!({"name": "Billing", "category": "topic"}),
        )
        .await;
    let (_, team) = app
        .post("/api/v1/teams", &app.admin, json!({"name": "Billing"}))
        .await;
    let (ana_id, _) = app
        .user(
            "Ana",
            "agent",
            json!({"time_zone": "Europe/Paris", "skill_ids": [skill["id"]]}),
        )
        .await;
    let (status, team) = app
        .patch(
            &format!("/api/v1/teams/{}", team["id"]),
            &app.admin,
            json!({"members": [{"user_id": ana_id, "main": true}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{team}");
    assert_eq!(
        (team["seated_members"].clone(), team["members"].clone()),
        (json!(1), json!([{"user_id": ana_id, "main": true}]))
    );
    let (_, ana) = app
        .get(&format!("/api/v1/users/{ana_id}"), &app.admin)
        .await;
    assert_eq!(
        (
            ana["main_team_id"].clone(),
            ana["time_zone"].clone(),
            ana["skill_ids"].clone()
        ),
        (
            team["id"].clone(),
            json!("Europe/Paris"),
            json!([skill["id"]])
        )
    );
    let (_, skills) = app.get("/api/v1/skills", &app.admin).await;
    assert!(
        skills["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "French" && s["category"] == "language")
    );
    let (_, contact) = app.post("/api/v1/contacts", &app.admin, json!({"name": "Cleo", "email": "cleo@x.example", "owner_user_id": ana_id, "visitor_tokens": ["utk"]})).await;
    let (_, patched) = app
        .patch(
            &format!("/api/v1/contacts/{}", contact["id"]),
            &app.admin,
            json!({"owner_user_id": null, "phone": "+33612345678"}),
        )
        .await;
    assert_eq!(
        (patched["owner_user_id"].clone(), patched["phone"].clone()),
        (Value::Null, json!("+33612345678"))
    );
    let (_, channel) = app
        .post(
            "/api/v1/channels",
            &app.admin,
            json!({"kind": "chat", "name": "Site", "settings": {"greeting": "Hi"}}),
        )
        .await;
    assert_eq!(channel["key"].as_str().unwrap().len(), 32);
    let (_, t) = app.post("/api/v1/tickets", &app.admin, json!({"subject": "From chat", "channel_id": channel["id"], "contact": {"email": "cleo@x.example"}})).await;
    assert_eq!(
        (
            t["type"].clone(),
            t["source"].clone(),
            t["contact_id"].clone()
        ),
        (json!("message"), json!("chat"), contact["id"].clone())
    );
}

#[tokio::test]
async fn operational_endpoints_and_openapi() {
    let app = spawn_app().await;
    let get = |p: &'static str| app.client.get(format!("{}{p}", app.base)).send();
    assert_eq!(get("/healthz").await.unwrap().status(), StatusCode::OK);
    assert_eq!(get("/readyz").await.unwrap().status(), StatusCode::OK);
    app.ticket(&app.admin, "counted").await;
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("switchboard_http_requests_total"),
        "{metrics}"
    );
    let doc: Value = get("/api/v1/openapi.json")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/api/v1/tickets",
        "/api/v1/tickets/{id}/owner",
        "/api/v1/users/{id}/tokens",
        "/api/v1/channels/{id}",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
    assert!(doc["components"]["schemas"]["NewTicket"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test]
async fn the_demo_help_desk_is_seeded_once() {
    let app = spawn_app().await;
    assert!(
        switchboard_server::setup::seed_demo(app.store.as_ref())
            .await
            .unwrap()
    );
    assert!(
        !switchboard_server::setup::seed_demo(app.store.as_ref())
            .await
            .unwrap()
    );
    let (_, channels) = app.get("/api/v1/channels", &app.admin).await;
    let kinds: Vec<_> = channels["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds,
        ["email", "form", "chat", "whatsapp", "calls", "custom"]
    );
    let (_, tickets) = app.get("/api/v1/tickets?view=unassigned", &app.admin).await;
    assert!(!TestApp::ids(&tickets).is_empty());
    let (_, teams) = app.get("/api/v1/teams", &app.admin).await;
    assert_eq!(teams["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn deactivating_a_user_revokes_their_tokens_at_once() {
    let app = spawn_app().await;
    let (ana_id, ana) = app.user("Ana", "agent", json!({})).await;
    assert_eq!(
        app.get("/api/v1/tickets", &ana).await.0,
        StatusCode::OK,
        "cached now"
    );
    let (status, _) = app
        .patch(
            &format!("/api/v1/users/{ana_id}"),
            &app.admin,
            json!({"deactivated": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_problem(&app.get("/api/v1/tickets", &ana).await, 401, None);
    assert_problem(
        &app.patch("/api/v1/users/1", &app.admin, json!({"role": "agent"}))
            .await,
        409,
        Some("role"),
    );
}
