//! The workflow routes: create, read, update, delete (which cancels what
//! runs), enrolling by hand, the handoff route, validation errors naming
//! their field, agents refused, other accounts kept out.

use super::*;
use crate::common::assert_problem;

on_both_backends!(
    create_list_read_update_and_delete,
    deleting_a_workflow_cancels_its_running_enrollments,
    manual_enrollment_ignores_filters_and_refuses_a_second_running_one,
    validation_errors_name_the_field,
    agents_are_refused_and_other_accounts_see_nothing,
    the_handoff_route_gives_the_ticket_and_tells_who_gets_it,
);

async fn create_list_read_update_and_delete() {
    let app = spawn_app().await;
    let [ana] = agents(&app, &["Ana"]).await[..] else {
        unreachable!()
    };
    let spec = json!({"name": "Welcome", "triggers": [{"kind": "ticket_created"}],
    "actions": [
        {"type": "rotate_owner", "targets": {"users": [ana]}},
        {"type": "webhook", "url": "https://hooks.example/in", "secret": "s3cret-s3cret"},
        {"type": "add_note", "body": "welcome"}
    ]});
    let wf = create_workflow(&app, spec).await;
    let id = wf["id"].as_i64().unwrap();
    assert_eq!(wf["name"], "Welcome");
    assert_eq!(wf["enabled"], true, "enabled by default");
    assert_eq!(wf["filters"], json!([]));
    assert_eq!(
        wf["reenrollment"],
        json!({"enabled": false, "triggers": []})
    );
    assert_eq!(wf["triggers"], json!([{"kind": "ticket_created"}]));
    assert_eq!(wf["actions"][0]["id"], "a1", "{wf}");
    assert_eq!(wf["actions"][0]["distribution"], "round_robin");
    assert_eq!(wf["actions"][0]["only_available"], true);
    assert_eq!(wf["actions"][1]["id"], "a2", "{wf}");
    assert!(wf["actions"][1].get("secret").is_none(), "{wf}");
    assert!(!wf.to_string().contains("s3cret-s3cret"));
    let created: jiff::Timestamp = wf["created_at"].as_str().unwrap().parse().unwrap();
    let updated: jiff::Timestamp = wf["updated_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(created, updated);

    assert_eq!(workflows(&app, &app.admin).await, std::slice::from_ref(&wf));
    let (status, one) = app
        .get(&format!("/api/v1/workflows/{id}"), &app.admin)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one, wf);

    // A subset of the fields; the rest stays. Disabled, it enrolls nothing.
    let path = format!("/api/v1/workflows/{id}");
    let (status, off) = app
        .patch(
            &path,
            &app.admin,
            json!({"name": "Welcome (paused)", "enabled": false}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{off}");
    assert_eq!(off["name"], "Welcome (paused)");
    assert_eq!(off["enabled"], false);
    assert_eq!(off["actions"], wf["actions"]);
    assert_eq!(off["created_at"], wf["created_at"]);
    let later: jiff::Timestamp = off["updated_at"].as_str().unwrap().parse().unwrap();
    assert!(later >= updated);
    let paused = plain_ticket(&app, "While paused").await;
    assert!(enrollments(&app, paused).await.is_empty());
    let (_, on) = app.patch(&path, &app.admin, json!({"enabled": true})).await;
    assert_eq!(on["enabled"], true);
    let live = plain_ticket(&app, "Live").await;
    assert_eq!(of_workflow(&enrollments(&app, live).await, id).len(), 1);

    let (status, _) = app
        .send(reqwest::Method::DELETE, &path, Some(&app.admin), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_problem(&app.get(&path, &app.admin).await, 404, None);
    assert_problem(
        &app.send(reqwest::Method::DELETE, &path, Some(&app.admin), None)
            .await,
        404,
        None,
    );
    assert_problem(
        &app.patch(&path, &app.admin, json!({"enabled": false}))
            .await,
        404,
        None,
    );
    assert!(workflows(&app, &app.admin).await.is_empty());
    let after = plain_ticket(&app, "After delete").await;
    assert!(enrollments(&app, after).await.is_empty());
}

async fn deleting_a_workflow_cancels_its_running_enrollments() {
    let (app, _) = app_at(FRIDAY).await;
    let wf = simple_workflow(
        &app,
        "Slow",
        json!({"kind": "ticket_created"}),
        json!([{"type": "delay", "seconds": 3600}, {"type": "add_note", "body": "too late"}]),
    )
    .await;
    let t = plain_ticket(&app, "Slow").await;
    settled_as(&app, t, 1, "waiting").await;
    let (status, _) = app
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v1/workflows/{wf}"),
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let list = enrollments(&app, t).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["state"], "cancelled", "{}", list[0]);
    assert_eq!(list[0]["workflow_id"], json!(wf));
    assert!(notes(&app, t).await.is_empty());
}

async fn manual_enrollment_ignores_filters_and_refuses_a_second_running_one() {
    let (app, _) = app_at(FRIDAY).await;
    // Only urgent tickets would enroll by trigger; by hand any may.
    let wf = create_workflow(
        &app,
        json!({"name": "Hold", "triggers": [{"kind": "ticket_created"}],
            "filters": [{"all": [{"field": "priority", "op": "equals", "value": "urgent"}]}],
            "actions": [{"type": "delay", "seconds": 3600}, {"type": "add_note", "body": "done holding"}]}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let t = plain_ticket(&app, "Medium").await;
    assert!(enrollments(&app, t).await.is_empty());
    let e = enroll(&app, wf, t).await;
    assert_eq!(e["workflow_id"], json!(wf));
    assert_eq!(e["ticket_id"], json!(t));
    assert_eq!(e["trigger"], "manual");
    assert!(
        ["running", "waiting"].contains(&e["state"].as_str().unwrap()),
        "{e}"
    );
    assert!(e["id"].is_i64() && e["steps"].is_array(), "{e}");
    let list = settled_as(&app, t, 1, "waiting").await;
    assert_eq!(list[0]["id"], e["id"]);
    let path = format!("/api/v1/workflows/{wf}/enroll");
    assert_problem(
        &app.post(&path, &app.admin, json!({"ticket_id": t})).await,
        409,
        None,
    );
    assert_problem(
        &app.post(&path, &app.admin, json!({"ticket_id": 424242}))
            .await,
        422,
        Some("ticket_id"),
    );
    assert_problem(
        &app.post(
            "/api/v1/workflows/424242/enroll",
            &app.admin,
            json!({"ticket_id": t}),
        )
        .await,
        404,
        None,
    );
    let (status, body) = app.post(&path, &app.admin, json!({})).await;
    assert_eq!(status.as_u16(), 422, "{body}");
    assert_eq!(enrollments(&app, t).await.len(), 1);
}

async fn validation_errors_name_the_field() {
    let app = spawn_app().await;
    let [ana] = agents(&app, &["Ana"]).await[..] else {
        unreachable!()
    };
    let note = json!({"type": "add_note", "body": "x"});
    let with_actions = |actions: Value| json!({"name": "Bad", "actions": actions});
    let cases = [
        (
            with_actions(
                json!([note, note, {"type": "rotate_owner", "targets": {"users": [424242]}}]),
            ),
            "actions[2].targets.users[0]",
        ),
        (
            with_actions(
                json!([{"type": "rotate_owner", "targets": {"users": [ana], "teams": [424242]}}]),
            ),
            "actions[0].targets.teams[0]",
        ),
        (
            with_actions(json!([{"type": "rotate_owner", "targets": {}}])),
            "actions[0].targets",
        ),
        (
            json!({"name": "Bad", "triggers": [{"kind": "no_first_reply", "after_seconds": 0}]}),
            "triggers[0].after_seconds",
        ),
        (
            json!({"name": "Bad", "triggers": [{"kind": "ticket_created"}, {"kind": "property_changed", "property": " "}]}),
            "triggers[1].property",
        ),
        (
            json!({"name": "Bad", "filters": [{"all": []}]}),
            "filters[0].all",
        ),
        (
            json!({"name": "Bad", "filters": [{"all": [{"field": "priority", "op": "equals", "value": "high"},
                {"field": "channel", "op": "contains", "value": "x"}]}]}),
            "filters[0].all[1].op",
        ),
        (
            with_actions(
                json!([{"type": "branch", "branches": [{"name": "b", "filters": [],
                "actions": [note, {"type": "assign", "user_id": 424242}]}]}]),
            ),
            "actions[0].branches[0].actions[1].user_id",
        ),
        (
            with_actions(
                json!([{"type": "branch", "branches": [{"name": "b", "filters": [], "actions": []}],
                "default": [{"type": "notify"}]}]),
            ),
            "actions[0].default[0].users",
        ),
        (
            with_actions(json!([{"type": "webhook", "url": "ftp://hooks.example/in"}])),
            "actions[0].url",
        ),
        (
            with_actions(
                json!([{"type": "webhook", "url": "https://hooks.example/in", "secret": "short"}]),
            ),
            "actions[0].secret",
        ),
        (
            with_actions(json!([{"type": "delay", "seconds": 0}])),
            "actions[0].seconds",
        ),
        (
            with_actions(json!([{"type": "delay", "until_open": {"team": 424242}}])),
            "actions[0].until_open.team",
        ),
        (
            with_actions(json!([note, {"type": "add_note", "body": "  "}])),
            "actions[1].body",
        ),
        (
            with_actions(json!([{"type": "set_property", "name": "", "value": 1}])),
            "actions[0].name",
        ),
        (json!({"name": ""}), "name"),
    ];
    for (body, field) in cases {
        let got = app
            .post("/api/v1/workflows", &app.admin, body.clone())
            .await;
        assert_problem(&got, 422, Some(field));
    }
    // Shapes serde refuses: still a 422 problem.
    for body in [
        json!({"name": "Bad", "colour": "red"}),
        json!({"name": "Bad", "actions": [{"type": "teleport"}]}),
        json!({"name": "Bad", "triggers": [{"kind": "full_moon"}]}),
        json!({"name": "Bad", "triggers": [{"kind": "open_longer_than", "after_seconds": -5}]}),
        json!({"triggers": []}),
    ] {
        assert_problem(
            &app.post("/api/v1/workflows", &app.admin, body).await,
            422,
            None,
        );
    }
    assert!(
        workflows(&app, &app.admin).await.is_empty(),
        "nothing was stored"
    );

    // A bad patch changes nothing.
    let wf = create_workflow(&app, json!({"name": "Good", "actions": [note]})).await;
    let path = format!("/api/v1/workflows/{}", wf["id"]);
    assert_problem(
        &app.patch(
            &path,
            &app.admin,
            json!({"actions": [{"type": "rotate_owner", "targets": {"users": [424242]}}]}),
        )
        .await,
        422,
        Some("actions[0].targets.users[0]"),
    );
    assert_problem(
        &app.patch(&path, &app.admin, json!({"colour": "red"})).await,
        422,
        None,
    );
    assert_eq!(app.get(&path, &app.admin).await.1, wf);

    // Templates.
    assert_problem(
        &app.post(
            "/api/v1/workflows/templates/make_coffee",
            &app.admin,
            json!({}),
        )
        .await,
        404,
        None,
    );
    let handoff = "/api/v1/workflows/templates/reassign_for_customer_agent_handoff";
    assert_problem(
        &app.post(handoff, &app.admin, json!({"channels": []})).await,
        422,
        Some("channels"),
    );
    for body in [
        json!({"channels": [{"original_channel": "email", "users": [424242]}]}),
        json!({"channels": [{"original_channel": "carrier_pigeon", "users": [ana]}]}),
        json!({"channels": [{"original_channel": "email"}]}),
    ] {
        assert_problem(&app.post(handoff, &app.admin, body).await, 422, None);
    }
    let nfr = "/api/v1/workflows/templates/reassign_without_first_reply";
    for body in [
        json!({"after_seconds": 0, "targets": {"users": [ana]}}),
        json!({"after_seconds": 600, "targets": {"users": [424242]}}),
        json!({"targets": {"users": [ana]}}),
    ] {
        assert_problem(&app.post(nfr, &app.admin, body).await, 422, None);
    }
    assert_eq!(workflows(&app, &app.admin).await.len(), 1);
}

async fn agents_are_refused_and_other_accounts_see_nothing() {
    let app = spawn_app().await;
    let (ana, agent) = app.user("Ana", "agent", json!({})).await;
    let (_, admin) = app.user("Ada", "admin", json!({})).await;
    let spec = json!({"name": "Mine", "actions": [{"type": "add_note", "body": "x"}]});
    // Admins manage workflows too.
    let (status, wf) = app.post("/api/v1/workflows", &admin, spec.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{wf}");
    let id = wf["id"].as_i64().unwrap();
    let (status, _) = app.get("/api/v1/workflows", &admin).await;
    assert_eq!(status, StatusCode::OK);
    let t = plain_ticket(&app, "Ours").await;
    enroll(&app, id, t).await;
    settled(&app, t).await;

    let wf_path = format!("/api/v1/workflows/{id}");
    let handoff_template = json!({"channels": [{"original_channel": "email", "users": [ana]}]});
    let nfr_template = json!({"after_seconds": 60, "targets": {"users": [ana]}});
    let refused = |token: &str| {
        let token = token.to_owned();
        let app = &app;
        let (wf_path, spec, ht, nt) = (
            wf_path.clone(),
            spec.clone(),
            handoff_template.clone(),
            nfr_template.clone(),
        );
        async move {
            use reqwest::Method;
            vec![
                app.send(Method::GET, "/api/v1/workflows", Some(&token), None)
                    .await,
                app.send(Method::POST, "/api/v1/workflows", Some(&token), Some(spec))
                    .await,
                app.send(Method::GET, &wf_path, Some(&token), None).await,
                app.send(
                    Method::PATCH,
                    &wf_path,
                    Some(&token),
                    Some(json!({"enabled": false})),
                )
                .await,
                app.send(Method::DELETE, &wf_path, Some(&token), None).await,
                app.send(
                    Method::POST,
                    &format!("{wf_path}/enroll"),
                    Some(&token),
                    Some(json!({"ticket_id": t})),
                )
                .await,
                app.send(
                    Method::POST,
                    &format!("{wf_path}/test"),
                    Some(&token),
                    Some(json!({"ticket_id": t})),
                )
                .await,
                app.send(
                    Method::POST,
                    "/api/v1/workflows/templates/reassign_for_customer_agent_handoff",
                    Some(&token),
                    Some(ht),
                )
                .await,
                app.send(
                    Method::POST,
                    "/api/v1/workflows/templates/reassign_without_first_reply",
                    Some(&token),
                    Some(nt),
                )
                .await,
                app.send(
                    Method::POST,
                    &format!("/api/v1/tickets/{t}/handoff"),
                    Some(&token),
                    Some(json!({})),
                )
                .await,
            ]
        }
    };
    for got in refused(&agent).await {
        assert_problem(&got, 403, None);
    }
    // Any user of the account reads a ticket's enrollments.
    let (status, list) = app
        .get(&format!("/api/v1/tickets/{t}/workflows"), &agent)
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(items(&list).len(), 1);
    assert_eq!(
        app.get(&wf_path, &app.admin).await.1,
        wf,
        "the agent changed nothing"
    );
    // No token at all.
    assert_problem(
        &app.send(reqwest::Method::GET, "/api/v1/workflows", None, None)
            .await,
        401,
        None,
    );

    // Another account: our workflow and ticket do not exist for it.
    let (_, _, other) = switchboard_server::setup::create_account(
        app.store.as_ref(),
        "Globex",
        "Gina",
        "gina@globex.example",
    )
    .await
    .unwrap();
    let (status, theirs) = app.get("/api/v1/workflows", &other).await;
    assert_eq!(status, StatusCode::OK);
    assert!(items(&theirs).is_empty(), "{theirs}");
    let mut not_found = refused(&other).await;
    // Their own list, create and templates are theirs to use: drop them.
    not_found.remove(8);
    not_found.remove(7);
    not_found.remove(1);
    not_found.remove(0);
    for got in not_found {
        assert_problem(&got, 404, None);
    }
    assert_problem(
        &app.get(&format!("/api/v1/tickets/{t}/workflows"), &other)
            .await,
        404,
        None,
    );
    // Their own workflow cannot take our ticket: named in a body, a ticket
    // they cannot see is the body's fault (422), like a missing one.
    let (status, own) = app.post("/api/v1/workflows", &other, spec.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{own}");
    assert_problem(
        &app.post(
            &format!("/api/v1/workflows/{}/enroll", own["id"]),
            &other,
            json!({"ticket_id": t}),
        )
        .await,
        422,
        Some("ticket_id"),
    );
    assert_problem(
        &app.post(
            &format!("/api/v1/workflows/{}/test", own["id"]),
            &other,
            json!({"ticket_id": t}),
        )
        .await,
        422,
        Some("ticket_id"),
    );
    // ...and a template naming our user is refused.
    let (status, body) = app
        .post(
            "/api/v1/workflows/templates/reassign_without_first_reply",
            &other,
            json!({"after_seconds": 60, "targets": {"users": [ana]}}),
        )
        .await;
    assert_eq!(status.as_u16(), 422, "{body}");
    // Ours still lists only our own.
    assert_eq!(workflows(&app, &app.admin).await, [wf]);
}

async fn the_handoff_route_gives_the_ticket_and_tells_who_gets_it() {
    let app = spawn_app().await;
    let sales = team(&app, "Sales").await;
    let (ana, ana_token) = app.user("Ana", "agent", json!({})).await;
    let (_, bob_token) = app
        .user("Bob", "agent", json!({"main_team_id": sales}))
        .await;
    let to_ana = plain_ticket(&app, "For Ana").await;
    let t = hand_off(&app, to_ana, json!({"user_id": ana})).await;
    assert_eq!(t["id"], json!(to_ana));
    assert_eq!(owner(&t), Some(ana));
    assert_eq!(owner(&get_ticket(&app, to_ana).await), Some(ana));
    let changes = owner_changes(&app, to_ana).await;
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["reason"], "handoff");
    assert!(
        told_of(&app, &ana_token, "handed_off")
            .await
            .contains(&to_ana)
    );

    let to_team = plain_ticket(&app, "For Sales").await;
    let t = hand_off(&app, to_team, json!({"team_id": sales})).await;
    assert_eq!(t["owner"]["team_id"], json!(sales));
    assert!(t["owner"]["user_id"].is_null(), "{t}");
    assert!(
        told_of(&app, &bob_token, "handed_off")
            .await
            .contains(&to_team)
    );
    assert!(
        !told_of(&app, &ana_token, "handed_off")
            .await
            .contains(&to_team)
    );

    // Neither: the ticket keeps its owner (only the trigger fires).
    let t = hand_off(&app, to_ana, json!({})).await;
    assert_eq!(owner(&t), Some(ana));
    assert_eq!(owner_changes(&app, to_ana).await.len(), 1);

    let path = format!("/api/v1/tickets/{to_ana}/handoff");
    assert_problem(
        &app.post(&path, &app.admin, json!({"user_id": 424242}))
            .await,
        422,
        Some("user_id"),
    );
    assert_problem(
        &app.post(&path, &app.admin, json!({"team_id": 424242}))
            .await,
        422,
        Some("team_id"),
    );
    assert_problem(
        &app.post(&path, &app.admin, json!({"queue": 1})).await,
        422,
        None,
    );
    assert_problem(
        &app.post("/api/v1/tickets/424242/handoff", &app.admin, json!({}))
            .await,
        404,
        None,
    );
}
