//! What enrolls a ticket: each trigger kind, the time-based ones through
//! the scheduler, filters (AND/OR groups, `changed_to`, properties,
//! contacts, priorities, office hours), re-enrollment, and the loop guard.

use std::collections::{BTreeMap, BTreeSet};

use super::*;

on_both_backends!(
    each_change_trigger_enrolls_its_workflows,
    time_based_triggers_enroll_when_the_scheduler_finds_them_due,
    filters_decide_which_tickets_enroll,
    changed_to_and_bounds_read_the_change,
    created_in_office_hours_reads_the_creation_instant,
    reenrollment_off_enrolls_once_and_on_enrolls_again,
    a_workflows_own_change_never_enrolls_it_again,
);

/// The names of the workflows (by id in `names`) the ticket enrolled in.
async fn enrolled(app: &TestApp, ticket: i64, names: &BTreeMap<i64, &str>) -> BTreeSet<String> {
    enrollments(app, ticket)
        .await
        .iter()
        .map(|e| names[&e["workflow_id"].as_i64().unwrap()].to_owned())
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

async fn each_change_trigger_enrolls_its_workflows() {
    let app = spawn_app().await;
    let (ana, ana_token) = app.user("Ana", "agent", json!({})).await;
    let kinds = [
        ("created", json!({"kind": "ticket_created"})),
        (
            "property",
            json!({"kind": "property_changed", "property": "plan"}),
        ),
        (
            "property_to_gold",
            json!({"kind": "property_changed", "property": "plan", "to": "gold"}),
        ),
        ("owner", json!({"kind": "owner_changed"})),
        ("status", json!({"kind": "status_changed"})),
        ("received", json!({"kind": "message_received"})),
        ("sent", json!({"kind": "message_sent"})),
        ("handoff", json!({"kind": "customer_agent_handoff"})),
    ];
    let mut names = BTreeMap::new();
    let mut trigger_of = BTreeMap::new();
    for (name, trigger) in &kinds {
        let id = simple_workflow(
            &app,
            name,
            trigger.clone(),
            json!([{"type": "add_note", "body": format!("{name} ran")}]),
        )
        .await;
        names.insert(id, *name);
        trigger_of.insert(id, trigger["kind"].as_str().unwrap().to_owned());
    }

    // Every ticket is created first (each enrolls `created`), then one
    // change each.
    let mut t = Vec::new();
    for i in 0..9 {
        t.push(plain_ticket(&app, &format!("T{i}")).await);
    }
    patch_ticket(&app, t[1], json!({"properties": {"plan": "silver"}})).await;
    patch_ticket(&app, t[2], json!({"properties": {"plan": "gold"}})).await;
    assign(&app, t[3], json!({"user_id": ana})).await;
    patch_ticket(&app, t[4], json!({"status": "closed"})).await;
    customer_writes(&app, t[5], "Any news?").await;
    // Sent: assigned first (that change enrolls `owner`), then the owner
    // replies (the stage moves to waiting_on_contact: `status`).
    assign(&app, t[6], json!({"user_id": ana})).await;
    reply(&app, &ana_token, t[6], "On it.").await;
    hand_off(&app, t[7], json!({})).await;
    let (status, _) = app
        .post(
            &format!("/api/v1/tickets/{}/messages", t[8]),
            &app.admin,
            json!({"kind": "note", "body": "internal"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let expected = [
        set(&["created"]),
        set(&["created", "property"]),
        set(&["created", "property", "property_to_gold"]),
        set(&["created", "owner"]),
        set(&["created", "status"]),
        // An inbound message moves the stage to waiting_on_us.
        set(&["created", "received", "status"]),
        set(&["created", "owner", "sent", "status"]),
        set(&["created", "handoff"]),
        // A note is neither received nor sent.
        set(&["created"]),
    ];
    for (ticket, want) in t.iter().zip(&expected) {
        assert_eq!(
            &enrolled(&app, *ticket, &names).await,
            want,
            "ticket {ticket}"
        );
    }
    // Each enrollment remembers its trigger, runs its one step and the
    // note is there once.
    for ticket in &t {
        let list = settled(&app, *ticket).await;
        for e in &list {
            let wf = e["workflow_id"].as_i64().unwrap();
            assert_eq!(e["trigger"], json!(trigger_of[&wf]), "{e}");
            assert_eq!(e["state"], "done", "{e}");
            assert_eq!(e["ticket_id"], json!(ticket));
            assert_eq!(step_paths(e), ["0"], "{e}");
        }
        let mut got = notes(&app, *ticket).await;
        got.retain(|n| n.ends_with(" ran"));
        got.sort();
        let mut want: Vec<String> = list
            .iter()
            .map(|e| format!("{} ran", names[&e["workflow_id"].as_i64().unwrap()]))
            .collect();
        want.sort();
        assert_eq!(got, want, "ticket {ticket}");
    }
}

async fn time_based_triggers_enroll_when_the_scheduler_finds_them_due() {
    let (app, clock) = app_at(FRIDAY).await;
    let (ana, ana_token) = app.user("Ana", "agent", json!({})).await;
    let note = |name: &str| json!([{"type": "add_note", "body": format!("{name} fired")}]);
    let nfr = simple_workflow(
        &app,
        "no first reply",
        json!({"kind": "no_first_reply", "after_seconds": 600}),
        note("nfr"),
    )
    .await;
    let nca = simple_workflow(
        &app,
        "no customer answer",
        json!({"kind": "no_customer_answer", "after_seconds": 600}),
        note("nca"),
    )
    .await;
    // a: assigned, never answered. b: assigned and answered, the customer
    // silent since. c: answered, then the customer wrote. d: closed.
    let a = plain_ticket(&app, "a").await;
    assign(&app, a, json!({"user_id": ana})).await;
    let b = plain_ticket(&app, "b").await;
    assign(&app, b, json!({"user_id": ana})).await;
    reply(&app, &ana_token, b, "Here is the fix.").await;
    let c = plain_ticket(&app, "c").await;
    assign(&app, c, json!({"user_id": ana})).await;
    reply(&app, &ana_token, c, "Does this help?").await;
    let d = plain_ticket(&app, "d").await;
    patch_ticket(&app, d, json!({"status": "closed"})).await;
    advance(&clock, 1);
    customer_writes(&app, c, "Yes, thanks").await;
    // Saved after the tickets exist: its scan sets their timers.
    let olt = simple_workflow(
        &app,
        "open too long",
        json!({"kind": "open_longer_than", "after_seconds": 600}),
        note("olt"),
    )
    .await;
    let names: BTreeMap<i64, &str> = [(nfr, "nfr"), (nca, "nca"), (olt, "olt")].into();

    tick(&app).await;
    advance(&clock, 597); // 598 s after the tickets
    tick(&app).await;
    for t in [a, b, c, d] {
        assert!(
            enrollments(&app, t).await.is_empty(),
            "nothing is due yet for {t}"
        );
    }
    advance(&clock, 4); // 602 s
    tick(&app).await;
    let want = [
        (a, set(&["nfr", "olt"])),
        (b, set(&["nca", "olt"])),
        (c, set(&["olt"])),
        (d, set(&[])),
    ];
    for (t, names_wanted) in &want {
        assert_eq!(
            &enrolled(&app, *t, &names).await,
            names_wanted,
            "ticket {t}"
        );
        for e in settled(&app, *t).await {
            let kind = match names[&e["workflow_id"].as_i64().unwrap()] {
                "nfr" => "no_first_reply",
                "nca" => "no_customer_answer",
                _ => "open_longer_than",
            };
            assert_eq!(e["trigger"], kind, "{e}");
            assert_eq!(e["state"], "done", "{e}");
        }
    }
    assert_eq!(notes(&app, a).await.len(), 2);
    // Once per instant due, and re-enrollment is off: later ticks add nothing.
    advance(&clock, 3600);
    tick(&app).await;
    for (t, names_wanted) in &want {
        assert_eq!(enrollments(&app, *t).await.len(), names_wanted.len());
    }
}

async fn filters_decide_which_tickets_enroll() {
    let app = spawn_app().await;
    // (high AND plan gold) OR contact e-mail contains "@vip.example".
    let either = create_workflow(
        &app,
        json!({"name": "VIP", "triggers": [{"kind": "ticket_created"}],
            "filters": [
                {"all": [{"field": "priority", "op": "equals", "value": "high"},
                         {"field": "property", "name": "plan", "op": "equals", "value": "gold"}]},
                {"all": [{"field": "contact", "name": "email", "op": "contains", "value": "@VIP.example"}]}
            ],
            "actions": [{"type": "add_note", "body": "vip"}]}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    // No region, or one of eu/uk; on the API (no channel).
    let region = create_workflow(
        &app,
        json!({"name": "Region", "triggers": [{"kind": "ticket_created"}],
            "filters": [
                {"all": [{"field": "property", "name": "region", "op": "is_not_set"},
                         {"field": "original_channel", "op": "equals", "value": "api"}]},
                {"all": [{"field": "property", "name": "region", "op": "in", "values": ["eu", "uk"]}]}
            ],
            "actions": [{"type": "add_note", "body": "region"}]}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let cases = [
        (
            json!({"subject": "1", "priority": "high", "properties": {"plan": "gold"}}),
            true,
            true,
        ),
        (
            json!({"subject": "2", "priority": "high", "properties": {"plan": "silver", "region": "us"}}),
            false,
            false,
        ),
        (
            json!({"subject": "3", "priority": "low", "contact": {"email": "cleo@vip.example"}, "properties": {"region": "UK"}}),
            true,
            true,
        ),
        (
            json!({"subject": "4", "priority": "low", "contact": {"email": "dan@plain.example"}, "properties": {"region": "us"}}),
            false,
            false,
        ),
        (
            json!({"subject": "5", "priority": "medium", "properties": {"plan": "gold"}}),
            false,
            true,
        ),
    ];
    for (body, vip, regional) in cases {
        let t = new_ticket(&app, body.clone()).await;
        let list = enrollments(&app, t).await;
        assert_eq!(of_workflow(&list, either).len(), vip as usize, "{body}");
        assert_eq!(
            of_workflow(&list, region).len(),
            regional as usize,
            "{body}"
        );
    }
}

async fn changed_to_and_bounds_read_the_change() {
    let app = spawn_app().await;
    // The plan changed to gold, on a ticket above medium priority.
    let wf = create_workflow(
        &app,
        json!({"name": "Upgraded", "triggers": [{"kind": "property_changed", "property": "plan"}],
            "filters": [{"all": [
                {"field": "property", "name": "plan", "op": "changed_to", "value": "gold"},
                {"field": "priority", "op": "greater_than", "value": 1}
            ]}],
            "reenrollment": {"enabled": true, "triggers": ["property_changed"]},
            "actions": [{"type": "add_note", "body": "upgraded"}]}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let high = new_ticket(&app, json!({"subject": "high", "priority": "high"})).await;
    patch_ticket(&app, high, json!({"properties": {"plan": "silver"}})).await;
    assert!(enrollments(&app, high).await.is_empty(), "not to gold");
    patch_ticket(&app, high, json!({"properties": {"plan": "gold"}})).await;
    assert_eq!(of_workflow(&enrollments(&app, high).await, wf).len(), 1);
    settled(&app, high).await;
    // Still gold: another property change is no change *to* gold.
    patch_ticket(
        &app,
        high,
        json!({"properties": {"plan": "gold", "seats": 3}}),
    )
    .await;
    assert_eq!(enrollments(&app, high).await.len(), 1);
    let low = new_ticket(&app, json!({"subject": "low", "priority": "medium"})).await;
    patch_ticket(&app, low, json!({"properties": {"plan": "gold"}})).await;
    assert!(
        enrollments(&app, low).await.is_empty(),
        "medium is not above 1"
    );
}

async fn created_in_office_hours_reads_the_creation_instant() {
    let (app, clock) = app_at(FRIDAY).await;
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
    let after_hours = create_workflow(
        &app,
        json!({"name": "After hours", "triggers": [{"kind": "ticket_created"}],
            "filters": [{"all": [{"field": "created_in_office_hours", "of": {"team": desk}, "value": false}]}],
            "actions": [{"type": "add_note", "body": "we are closed"}]}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let open = plain_ticket(&app, "Friday morning").await;
    assert!(enrollments(&app, open).await.is_empty());
    clock.set("2026-03-28T10:00:00Z".parse().unwrap()); // Saturday
    let closed = plain_ticket(&app, "Saturday").await;
    assert_eq!(
        of_workflow(&enrollments(&app, closed).await, after_hours).len(),
        1
    );
}

async fn reenrollment_off_enrolls_once_and_on_enrolls_again() {
    let app = spawn_app().await;
    let trigger = json!({"kind": "property_changed", "property": "plan"});
    let once = simple_workflow(
        &app,
        "Once",
        trigger.clone(),
        json!([{"type": "add_note", "body": "once"}]),
    )
    .await;
    let again = create_workflow(
        &app,
        json!({"name": "Again", "triggers": [trigger],
            "reenrollment": {"enabled": true, "triggers": ["property_changed"]},
            "actions": [{"type": "add_note", "body": "again"}]}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    // Re-enrollment on, but for another trigger kind only: once.
    let other_kind = create_workflow(
        &app,
        json!({"name": "Other kind", "triggers": [{"kind": "property_changed", "property": "plan"}],
            "reenrollment": {"enabled": true, "triggers": ["owner_changed"]},
            "actions": [{"type": "add_note", "body": "other"}]}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let t = plain_ticket(&app, "Plans").await;
    for plan in ["a", "b", "c"] {
        patch_ticket(&app, t, json!({"properties": {"plan": plan}})).await;
        // The next change comes once this run is over (a running
        // enrollment is never doubled).
        settled(&app, t).await;
    }
    let list = enrollments(&app, t).await;
    assert_eq!(of_workflow(&list, once).len(), 1);
    assert_eq!(of_workflow(&list, again).len(), 3);
    assert_eq!(of_workflow(&list, other_kind).len(), 1);
    let mut n = notes(&app, t).await;
    n.sort();
    assert_eq!(n, ["again", "again", "again", "once", "other"]);
    // By hand, a finished workflow takes the ticket again.
    let by_hand = enroll(&app, once, t).await;
    assert_eq!(by_hand["trigger"], "manual");
    assert_eq!(by_hand["workflow_id"], json!(once));
    assert_eq!(by_hand["ticket_id"], json!(t));
    settled(&app, t).await;
    assert_eq!(of_workflow(&enrollments(&app, t).await, once).len(), 2);
}

async fn a_workflows_own_change_never_enrolls_it_again() {
    let app = spawn_app().await;
    let [ana, bob] = agents(&app, &["Ana", "Bob"]).await[..] else {
        unreachable!()
    };
    // Triggered by an owner change, it changes the owner: it would run
    // forever if its own change enrolled it (re-enrollment is even on).
    let mover = create_workflow(
        &app,
        json!({"name": "Mover", "triggers": [{"kind": "owner_changed"}],
            "reenrollment": {"enabled": true, "triggers": ["owner_changed"]},
            "actions": [{"type": "assign", "user_id": bob},
                        {"type": "set_property", "name": "escalated", "value": true}]}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    // Its change may enroll *another* workflow.
    let watcher = simple_workflow(
        &app,
        "Watcher",
        json!({"kind": "property_changed", "property": "escalated"}),
        json!([{"type": "add_note", "body": "escalated"}]),
    )
    .await;
    let t = plain_ticket(&app, "Loop?").await;
    assign(&app, t, json!({"user_id": ana})).await;
    let list = settled_as(&app, t, 2, "done").await;
    // Give a loop, if there were one, the time to show.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let list_later = settled(&app, t).await;
    assert_eq!(list_later.len(), 2, "{list_later:?}");
    assert_eq!(of_workflow(&list, mover).len(), 1);
    let w = of_workflow(&list, watcher);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0]["trigger"], "property_changed");
    assert_eq!(owner(&get_ticket(&app, t).await), Some(bob));
    let reasons: Vec<(Value, Value)> = owner_changes(&app, t)
        .await
        .iter()
        .map(|e| (e["to"]["user_id"].clone(), e["reason"].clone()))
        .collect();
    assert_eq!(
        reasons,
        [
            (json!(ana), json!("manual")),
            (json!(bob), json!("workflow"))
        ]
    );
    assert_eq!(notes(&app, t).await, ["escalated"]);
}
