//! The rotate action: round robin spreads evenly, load balanced and random
//! choose only available seated targets, `only_if_unowned` skips, the
//! rotation state survives an edit of the targets, and a dry run names
//! the choice while changing nothing.

use std::collections::BTreeSet;

use super::*;

on_both_backends!(
    round_robin_over_three_users_spreads_nine_tickets_three_each,
    load_balanced_and_random_choose_only_available_seated_targets,
    only_if_unowned_skips_an_owned_ticket,
    the_rotation_survives_a_change_of_its_targets,
    a_dry_run_changes_nothing_and_names_the_rotates_choice,
);

/// The chosen user of a rotate step's explanation.
fn chosen(step: &Value) -> Option<i64> {
    let outcome = &step["explanation"]["outcome"];
    (outcome["kind"] == "assign").then(|| outcome["user_id"].as_i64().unwrap())
}

async fn round_robin_over_three_users_spreads_nine_tickets_three_each() {
    let (app, _) = app_at(FRIDAY).await;
    let users = agents(&app, &["Ana", "Bob", "Cy"]).await;
    let wf = simple_workflow(
        &app,
        "Rotate",
        json!({"kind": "ticket_created"}),
        json!([{"type": "rotate_owner", "targets": {"users": users}, "distribution": "round_robin"}]),
    )
    .await;
    let mut tickets = Vec::new();
    for i in 0..9 {
        tickets.push(plain_ticket(&app, &format!("R{i}")).await);
    }
    let mut owners = Vec::new();
    for t in &tickets {
        let list = settled_as(&app, *t, 1, "done").await;
        let step = &list[0]["steps"][0];
        assert_eq!(step["action"], "rotate_owner");
        assert_eq!(
            step["explanation"]["rule"]["distribution"], "round_robin",
            "{step}"
        );
        let o = owner(&get_ticket(&app, *t).await);
        assert_eq!(chosen(step), o, "the explanation names the owner: {step}");
        owners.push(o);
        // The history line carries the explanation too, and the owner
        // change is the workflow's.
        let recorded = workflow_steps(&app, *t).await;
        assert_eq!(recorded.len(), 1);
        assert_eq!(recorded[0]["workflow_id"], json!(wf));
        assert_eq!(chosen(&recorded[0]), o);
        let changes = owner_changes(&app, *t).await;
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0]["reason"], "workflow");
    }
    let c = counts(&owners);
    assert_eq!(c.keys().copied().collect::<Vec<_>>(), users);
    assert!(c.values().all(|n| *n == 3), "{c:?}");
}

async fn load_balanced_and_random_choose_only_available_seated_targets() {
    let (app, _) = app_at(FRIDAY).await;
    let [ana, bob, cy] = agents(&app, &["Ana", "Bob", "Cy"]).await[..] else {
        unreachable!()
    };
    let (una, _) = app
        .user("Una", "agent", json!({"help_desk_seat": false}))
        .await;
    let (gus, _) = app.user("Gus", "agent", json!({})).await;
    set_away(&app, cy).await;
    let (status, body) = app
        .patch(
            &format!("/api/v1/users/{gus}"),
            &app.admin,
            json!({"deactivated": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let everyone = json!({"users": [ana, bob, cy, una, gus]});
    let lane = |name: &str| json!([{"all": [{"field": "property", "name": "lane", "op": "equals", "value": name}]}]);
    for (name, distribution) in [("lb", "load_balanced"), ("random", "random")] {
        create_workflow(
            &app,
            json!({"name": name, "triggers": [{"kind": "ticket_created"}], "filters": lane(name),
                "actions": [{"type": "rotate_owner", "targets": everyone, "distribution": distribution}]}),
        )
        .await;
    }
    // Told not to mind availability: the away user may be chosen.
    create_workflow(
        &app,
        json!({"name": "anyone", "triggers": [{"kind": "ticket_created"}], "filters": lane("anyone"),
            "actions": [{"type": "rotate_owner", "targets": {"users": [cy]}, "only_available": false}]}),
    )
    .await;

    let run = |lane: &'static str, n: usize| {
        let app = &app;
        async move {
            let mut owners = Vec::new();
            let mut last = Value::Null;
            for i in 0..n {
                let t = new_ticket(
                    app,
                    json!({"subject": format!("{lane} {i}"), "properties": {"lane": lane}}),
                )
                .await;
                last = settled_as(app, t, 1, "done").await[0].clone();
                owners.push(owner(&get_ticket(app, t).await));
            }
            (owners, last)
        }
    };
    let (lb, last) = run("lb", 6).await;
    let c = counts(&lb);
    assert_eq!(c, [(ana, 3), (bob, 3)].into(), "{c:?}");
    let verdicts: Vec<(i64, String)> = last["steps"][0]["explanation"]["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["user_id"].as_i64().unwrap(),
                c["verdict"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (user, verdict) in [
        (ana, "eligible"),
        (bob, "eligible"),
        (cy, "away"),
        (una, "not_seated"),
        (gus, "deactivated"),
    ] {
        assert!(
            verdicts.contains(&(user, verdict.to_owned())),
            "{user} {verdict}: {verdicts:?}"
        );
    }
    let (random, _) = run("random", 20).await;
    let seen: BTreeSet<i64> = counts(&random).into_keys().collect();
    assert_eq!(
        seen,
        [ana, bob].into(),
        "only the available seated, and both"
    );
    let (anyone, _) = run("anyone", 1).await;
    assert_eq!(anyone, [Some(cy)]);
}

async fn only_if_unowned_skips_an_owned_ticket() {
    let (app, _) = app_at(FRIDAY).await;
    let [ana, bob, cy] = agents(&app, &["Ana", "Bob", "Cy"]).await[..] else {
        unreachable!()
    };
    // No triggers: enrolled by hand only.
    let wf = create_workflow(
        &app,
        json!({"name": "Fill in", "actions": [{"type": "rotate_owner",
            "targets": {"users": [ana, bob]}, "only_if_unowned": true}]}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let owned = plain_ticket(&app, "Owned").await;
    assign(&app, owned, json!({"user_id": cy})).await;
    enroll(&app, wf, owned).await;
    let list = settled_as(&app, owned, 1, "done").await;
    let step = &list[0]["steps"][0];
    assert!(
        step["summary"].as_str().unwrap().contains("skipped"),
        "{step}"
    );
    assert_eq!(owner(&get_ticket(&app, owned).await), Some(cy));
    assert!(
        owner_changes(&app, owned)
            .await
            .iter()
            .all(|c| c["reason"] != "workflow")
    );
    let free = plain_ticket(&app, "Free").await;
    enroll(&app, wf, free).await;
    settled_as(&app, free, 1, "done").await;
    let o = owner(&get_ticket(&app, free).await).unwrap();
    assert!([ana, bob].contains(&o), "{o}");
}

async fn the_rotation_survives_a_change_of_its_targets() {
    let (app, _) = app_at(FRIDAY).await;
    let [ana, bob, cy] = agents(&app, &["Ana", "Bob", "Cy"]).await[..] else {
        unreachable!()
    };
    let wf = create_workflow(
        &app,
        json!({"name": "Rotate", "triggers": [{"kind": "ticket_created"}],
            "actions": [{"type": "rotate_owner", "id": "rr", "targets": {"users": [ana, bob]}}]}),
    )
    .await;
    assert_eq!(wf["actions"][0]["id"], "rr");
    let id = wf["id"].as_i64().unwrap();
    let first = plain_ticket(&app, "1").await;
    settled_as(&app, first, 1, "done").await;
    let served = owner(&get_ticket(&app, first).await).unwrap();
    // Cy joins; the same action id keeps the rotation.
    let (status, patched) = app
        .patch(
            &format!("/api/v1/workflows/{id}"),
            &app.admin,
            json!({"actions": [{"type": "rotate_owner", "id": "rr", "targets": {"users": [ana, bob, cy]}}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(
        patched["actions"][0]["targets"]["users"],
        json!([ana, bob, cy])
    );
    let mut next = BTreeSet::new();
    for s in ["2", "3"] {
        let t = plain_ticket(&app, s).await;
        settled_as(&app, t, 1, "done").await;
        next.insert(owner(&get_ticket(&app, t).await).unwrap());
    }
    let rest: BTreeSet<i64> = [ana, bob, cy]
        .into_iter()
        .filter(|u| *u != served)
        .collect();
    assert_eq!(
        next, rest,
        "the cycle goes on: {served} was served already, the others come first"
    );
    // A new cycle: everyone once more.
    let mut cycle = BTreeSet::new();
    for s in ["4", "5", "6"] {
        let t = plain_ticket(&app, s).await;
        settled_as(&app, t, 1, "done").await;
        cycle.insert(owner(&get_ticket(&app, t).await).unwrap());
    }
    assert_eq!(cycle, [ana, bob, cy].into());
}

async fn a_dry_run_changes_nothing_and_names_the_rotates_choice() {
    let (app, _) = app_at(FRIDAY).await;
    let [ana, bob] = agents(&app, &["Ana", "Bob"]).await[..] else {
        unreachable!()
    };
    let wf = create_workflow(
        &app,
        json!({"name": "Dry", "actions": [
            {"type": "rotate_owner", "targets": {"users": [ana, bob]}},
            {"type": "branch", "branches": [
                {"name": "urgent", "filters": [{"all": [{"field": "priority", "op": "equals", "value": "urgent"}]}],
                 "actions": [{"type": "set_priority", "value": "low"}]}],
             "default": [{"type": "add_note", "body": "checked"}]},
            {"type": "delay", "seconds": 60},
            {"type": "set_property", "name": "dry", "value": "no"}
        ]}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let t = plain_ticket(&app, "Try me").await;
    let before_history = history(&app, t).await;
    let before = get_ticket(&app, t).await;
    let path = format!("/api/v1/workflows/{wf}/test");
    let (status, run) = app.post(&path, &app.admin, json!({"ticket_id": t})).await;
    assert_eq!(status, StatusCode::OK, "{run}");
    let steps = run["steps"].as_array().unwrap();
    let listed: Vec<(Value, Value)> = steps
        .iter()
        .map(|s| (s["step"].clone(), s["action"].clone()))
        .collect();
    assert_eq!(
        listed,
        [
            (json!("0"), json!("rotate_owner")),
            (json!("1"), json!("branch")),
            (json!("1.1.0"), json!("add_note")),
            (json!("2"), json!("delay")),
            (json!("3"), json!("set_property")),
        ]
    );
    assert!(
        steps[1]["summary"].as_str().unwrap().contains("default"),
        "{}",
        steps[1]
    );
    let choice = chosen(&steps[0]).expect("the rotate names whom it would choose");
    assert!([ana, bob].contains(&choice));
    assert!(steps[0]["explanation"]["summary"].is_string());
    assert!(
        steps[0]["explanation"]["candidates"]
            .as_array()
            .unwrap()
            .len()
            == 2
    );
    // Nothing changed, and asking again gives the same answer.
    assert_eq!(history(&app, t).await, before_history);
    assert_eq!(get_ticket(&app, t).await, before);
    assert!(enrollments(&app, t).await.is_empty());
    assert!(notes(&app, t).await.is_empty());
    let (_, again) = app.post(&path, &app.admin, json!({"ticket_id": t})).await;
    assert_eq!(chosen(&again["steps"][0]), Some(choice));
    // The real run chooses whom the dry run named.
    enroll(&app, wf, t).await;
    settled(&app, t).await;
    assert_eq!(owner(&get_ticket(&app, t).await), Some(choice));
}
