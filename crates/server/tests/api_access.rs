//! The REST API over real HTTP: authentication, roles, account isolation,
//! configuration round trips, operational endpoints.

#[macro_use]
mod common;

use common::{TestApp, assert_problem, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

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

async fn agents_triage_but_cannot_change_configuration() {
    let app = spawn_app().await;
    let (_, agent) = app.user("Ana", "agent", json!({})).await;
    assert_eq!(app.get("/api/v1/users", &agent).await.0, StatusCode::OK);
    for (path, body) in [
        ("/api/v1/teams", json!({"name": "T"})),
        ("/api/v1/skills", json!({"name": "S", "category": "c"})),
        ("/api/v1/channels", json!({"kind": "email", "name": "E"})),
        (
            "/api/v1/users",
            json!({"name": "X", "email": "x@acme.example"}),
        ),
    ] {
        assert_problem(&app.post(path, &agent, body).await, 403, None);
    }
    let (_, admin_user) = app
        .post(
            "/api/v1/users",
            &app.admin,
            json!({"name": "Root", "email": "root@acme.example"}),
        )
        .await;
    let (_, channel) = app
        .post(
            "/api/v1/channels",
            &app.admin,
            json!({"kind": "email", "name": "E"}),
        )
        .await;
    for path in [
        format!("/api/v1/users/{}", admin_user["id"]),
        format!("/api/v1/channels/{}", channel["id"]),
    ] {
        assert_problem(
            &app.patch(&path, &agent, json!({"name": "Y"})).await,
            403,
            None,
        );
    }
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
    // The inbox routes automatically: the French invoice ticket went to the
    // French speaker of Tier 1, with an explanation.
    let (_, report) = app.get("/api/v1/tickets/1/routing", &app.admin).await;
    let decision = &report["decisions"][0]["explanation"];
    assert_eq!(decision["outcome"]["kind"], "assign", "{report}");
    assert_eq!(decision["required_skills"], json!(["French"]));
    let (_, teams) = app.get("/api/v1/teams", &app.admin).await;
    assert_eq!(teams["items"].as_array().unwrap().len(), 2);
}

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

async fn review_fixes_hold() {
    let app = spawn_app().await;
    let (_, admin) = app.user("Adam", "admin", json!({})).await;
    let (_, agent) = app.user("Ana", "agent", json!({})).await;
    let (bob, _) = app.user("Bob", "agent", json!({})).await;
    // An admin manages agents' availability, not a super admin's.
    assert_eq!(
        app.put(
            &format!("/api/v1/users/{bob}/availability"),
            &admin,
            json!({"status": "away"})
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_problem(
        &app.put(
            "/api/v1/users/1/availability",
            &admin,
            json!({"status": "away"}),
        )
        .await,
        403,
        None,
    );
    assert_problem(
        &app.put(
            &format!("/api/v1/users/{bob}/availability"),
            &agent,
            json!({"status": "away"}),
        )
        .await,
        403,
        None,
    );
    // Another account's ids are 404 even for an agent (existence before role).
    let (_, _, other) = switchboard_server::setup::create_account(
        app.store.as_ref(),
        "Globex",
        "G",
        "g@globex.example",
    )
    .await
    .unwrap();
    let (_, team) = app
        .post("/api/v1/teams", &app.admin, json!({"name": "T"}))
        .await;
    let (_, channel) = app
        .post(
            "/api/v1/channels",
            &app.admin,
            json!({"kind": "email", "name": "E"}),
        )
        .await;
    let (_, other_agent) = {
        let (s, u) = app
            .post(
                "/api/v1/users",
                &other,
                json!({"name": "Oz", "email": "oz@globex.example"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        let (_, t) = app
            .post(
                &format!("/api/v1/users/{}/tokens", u["id"]),
                &other,
                json!({}),
            )
            .await;
        (u, t["token"].as_str().unwrap().to_owned())
    };
    for path in [
        format!("/api/v1/users/{bob}"),
        format!("/api/v1/teams/{}", team["id"]),
        format!("/api/v1/channels/{}", channel["id"]),
    ] {
        assert_problem(
            &app.patch(&path, &other_agent, json!({"name": "x"})).await,
            404,
            None,
        );
    }
    assert_problem(
        &app.patch(
            &format!("/api/v1/teams/{}", team["id"]),
            &agent,
            json!({"name": "x"}),
        )
        .await,
        403,
        None,
    );
    // Team office hours are validated like channels'.
    let bad = json!({"office_hours": {"time_zone": "UTC", "hours": [{"day": "monday", "start": "17:00", "end": "09:00"}]}});
    assert_problem(
        &app.patch(&format!("/api/v1/teams/{}", team["id"]), &app.admin, bad)
            .await,
        422,
        Some("shifts"),
    );
    // Visitor tokens are visible characters; phone clashes name the phone.
    assert_problem(
        &app.post(
            "/api/v1/contacts",
            &agent,
            json!({"visitor_tokens": ["a\u{1f}b"]}),
        )
        .await,
        422,
        Some("visitor_tokens"),
    );
    app.post("/api/v1/contacts", &agent, json!({"phone": "+33612345678"}))
        .await;
    assert_problem(
        &app.post("/api/v1/contacts", &agent, json!({"phone": "+33612345678"}))
            .await,
        409,
        Some("phone"),
    );
    // A wrong method is a problem body too.
    assert_problem(
        &app.send(
            reqwest::Method::DELETE,
            "/api/v1/tickets",
            Some(&agent),
            None,
        )
        .await,
        405,
        None,
    );
}

/// Channel secrets are stored but never returned; editing other settings
/// keeps them; `null` removes one.
async fn channel_secrets_are_never_returned() {
    let app = spawn_app().await;
    let (status, ch) = app
        .post(
            "/api/v1/channels",
            &app.admin,
            json!({"kind": "whatsapp", "name": "WA", "settings": {"phone_number_id": "123",
                "secrets": {"app_secret": "shh-app", "verify_token": "shh-verify"}}}),
        )
        .await;
    assert_eq!(status, 201, "{ch}");
    assert_eq!(ch["settings"]["secrets"]["app_secret"], "(set)");
    assert!(!ch.to_string().contains("shh"), "{ch}");
    let id = ch["id"].as_i64().unwrap();
    let stored = || async {
        app.store
            .get_channel(
                switchboard_domain::AccountId(1),
                switchboard_domain::ChannelId(id),
            )
            .await
            .unwrap()
            .settings
    };
    let path = format!("/api/v1/channels/{id}");
    let (status, ch) = app
        .patch(
            &path,
            &app.admin,
            json!({"settings": {"phone_number_id": "456"}}),
        )
        .await;
    assert_eq!(status, 200, "{ch}");
    assert!(!ch.to_string().contains("shh"), "{ch}");
    assert_eq!(stored().await["secrets"]["app_secret"], "shh-app");
    assert_eq!(stored().await["phone_number_id"], "456");
    let (status, _) = app
        .patch(
            &path,
            &app.admin,
            json!({"settings": {"phone_number_id": "456",
            "secrets": {"app_secret": "(set)", "verify_token": null}}}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(stored().await["secrets"], json!({"app_secret": "shh-app"}));
    let (_, listed) = app.get("/api/v1/channels", &app.admin).await;
    assert!(!listed.to_string().contains("shh"), "{listed}");
}

on_both_backends!(
    channel_secrets_are_never_returned,
    requests_without_a_valid_token_get_401,
    agents_triage_but_cannot_change_configuration,
    only_super_admins_manage_admins,
    another_account_sees_404_not_403,
    configuration_round_trips_through_the_api,
    operational_endpoints_and_openapi,
    the_demo_help_desk_is_seeded_once,
    deactivating_a_user_revokes_their_tokens_at_once,
    review_fixes_hold,
);
