//! Both templates end to end: the handoff rotation by original channel,
//! and the reassignment of a ticket that got no first reply in time.

use std::collections::BTreeSet;

use super::*;

on_both_backends!(
    the_handoff_template_rotates_among_each_channels_people,
    the_no_first_reply_template_reassigns_only_unanswered_tickets,
);

async fn the_handoff_template_rotates_among_each_channels_people() {
    let (app, _) = app_at(FRIDAY).await;
    let chat = channel(&app, "chat", None).await;
    let email = channel(&app, "email", None).await;
    let form = channel(&app, "form", None).await;
    let [chat_a, chat_b] = agents(&app, &["Chad", "Chloe"]).await[..] else {
        unreachable!()
    };
    let mail = team(&app, "Mail").await;
    let mut mail_people = Vec::new();
    for name in ["Mia", "Max"] {
        mail_people.push(
            app.user(name, "agent", json!({"main_team_id": mail}))
                .await
                .0,
        );
    }
    let (status, wf) = app
        .post(
            "/api/v1/workflows/templates/reassign_for_customer_agent_handoff",
            &app.admin,
            json!({"name": "After the bot",
                "channels": [{"original_channel": "chat", "users": [chat_a, chat_b]},
                             {"original_channel": "email", "teams": [mail]}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{wf}");
    assert_eq!(wf["name"], "After the bot");
    assert_eq!(wf["triggers"], json!([{"kind": "customer_agent_handoff"}]));
    let branches = wf["actions"][0]["branches"].as_array().unwrap();
    assert_eq!(wf["actions"][0]["type"], "branch");
    assert_eq!(branches.len(), 2);
    assert_eq!(branches[0]["actions"][0]["type"], "rotate_owner");
    assert!(
        branches[0]["actions"][0]["id"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    let id = wf["id"].as_i64().unwrap();
    let (_, listed) = app
        .get(&format!("/api/v1/workflows/{id}"), &app.admin)
        .await;
    assert_eq!(listed, wf, "an ordinary workflow once made");

    let create = |ch: i64, i: usize| {
        let app = &app;
        async move {
            new_ticket(
                app,
                json!({"subject": format!("from {ch} #{i}"), "channel_id": ch}),
            )
            .await
        }
    };
    let mut chats = Vec::new();
    let mut mails = Vec::new();
    for i in 0..4 {
        chats.push(create(chat, i).await);
        mails.push(create(email, i).await);
    }
    let other = create(form, 0).await;
    // Created: nothing yet (the trigger is the handoff).
    for t in chats.iter().chain(&mails) {
        assert!(enrollments(&app, *t).await.is_empty());
        assert_eq!(owner(&get_ticket(&app, *t).await), None);
    }
    for t in chats.iter().chain(&mails).chain([&other]) {
        hand_off(&app, *t, json!({})).await;
    }
    let mut chat_owners = Vec::new();
    for t in &chats {
        let list = settled_as(&app, *t, 1, "done").await;
        assert_eq!(list[0]["trigger"], "customer_agent_handoff");
        assert_eq!(step_paths(&list[0]), ["0", "0.0.0"]);
        chat_owners.push(owner(&get_ticket(&app, *t).await));
        assert_eq!(
            owner_changes(&app, *t).await.last().unwrap()["reason"],
            "workflow"
        );
    }
    assert_eq!(counts(&chat_owners), [(chat_a, 2), (chat_b, 2)].into());
    let mut mail_owners = Vec::new();
    for t in &mails {
        let list = settled_as(&app, *t, 1, "done").await;
        assert_eq!(step_paths(&list[0]), ["0", "0.1.0"]);
        let ticket = get_ticket(&app, *t).await;
        assert_eq!(ticket["owner"]["team_id"], json!(mail), "{ticket}");
        mail_owners.push(owner(&ticket));
    }
    assert_eq!(
        counts(&mail_owners),
        [(mail_people[0], 2), (mail_people[1], 2)].into()
    );
    // A form ticket has no branch: nothing changes.
    let list = settled_as(&app, other, 1, "done").await;
    assert_eq!(step_paths(&list[0]), ["0"]);
    assert!(
        list[0]["steps"][0]["summary"]
            .as_str()
            .unwrap()
            .contains("default")
    );
    assert_eq!(owner(&get_ticket(&app, other).await), None);
    // Each handoff enrolls again (the template turns re-enrollment on).
    hand_off(&app, chats[0], json!({})).await;
    let list = settled_as(&app, chats[0], 2, "done").await;
    assert_eq!(list[1]["trigger"], "customer_agent_handoff");
    let again = owner(&get_ticket(&app, chats[0]).await).unwrap();
    assert!([chat_a, chat_b].contains(&again));
    // The default name.
    let (status, unnamed) = app
        .post(
            "/api/v1/workflows/templates/reassign_for_customer_agent_handoff",
            &app.admin,
            json!({"channels": [{"original_channel": "whatsapp", "users": [chat_a]}], "distribution": "load_balanced"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{unnamed}");
    assert!(unnamed["name"].as_str().is_some_and(|n| !n.is_empty()));
    assert_eq!(
        unnamed["actions"][0]["branches"][0]["actions"][0]["distribution"],
        "load_balanced"
    );
}

async fn the_no_first_reply_template_reassigns_only_unanswered_tickets() {
    let (app, clock) = app_at(FRIDAY).await;
    let (ana, ana_token) = app.user("Ana", "agent", json!({})).await;
    let [bob, cy] = agents(&app, &["Bob", "Cy"]).await[..] else {
        unreachable!()
    };
    let everyone = [ana, bob, cy];
    let (status, wf) = app
        .post(
            "/api/v1/workflows/templates/reassign_without_first_reply",
            &app.admin,
            json!({"after_seconds": 600, "targets": {"users": everyone}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{wf}");
    assert_eq!(
        wf["triggers"],
        json!([{"kind": "no_first_reply", "after_seconds": 600}])
    );
    assert_eq!(wf["actions"][0]["type"], "rotate_owner");
    assert_eq!(wf["actions"][0]["exclude_current_owner"], true);
    let silent = plain_ticket(&app, "Nobody answered").await;
    assign(&app, silent, json!({"user_id": ana})).await;
    let answered = plain_ticket(&app, "Answered").await;
    assign(&app, answered, json!({"user_id": ana})).await;
    reply(&app, &ana_token, answered, "Looking into it.").await;
    let unowned = plain_ticket(&app, "Nobody's").await;

    advance(&clock, 599);
    tick(&app).await;
    assert!(enrollments(&app, silent).await.is_empty(), "not yet");
    advance(&clock, 2);
    tick(&app).await;
    let list = settled_as(&app, silent, 1, "done").await;
    assert_eq!(list[0]["trigger"], "no_first_reply");
    let first = owner(&get_ticket(&app, silent).await).unwrap();
    assert_ne!(first, ana, "someone else");
    assert!(everyone.contains(&first));
    let step = &list[0]["steps"][0];
    assert_eq!(
        step["explanation"]["outcome"]["user_id"],
        json!(first),
        "{step}"
    );
    let changes = owner_changes(&app, silent).await;
    assert_eq!(changes.last().unwrap()["reason"], "workflow");
    assert_eq!(changes.last().unwrap()["from"]["user_id"], json!(ana));
    for t in [answered, unowned] {
        assert!(enrollments(&app, t).await.is_empty(), "ticket {t}");
    }
    assert_eq!(owner(&get_ticket(&app, answered).await), Some(ana));
    // The owner who did not answer was told.
    assert_eq!(
        told_of(&app, &ana_token, "first_reply_overdue").await,
        [silent]
    );

    // The new owner does not answer either: reassigned again, away from them.
    advance(&clock, 601);
    tick(&app).await;
    let list = settled_as(&app, silent, 2, "done").await;
    assert_eq!(list[1]["trigger"], "no_first_reply");
    let second = owner(&get_ticket(&app, silent).await).unwrap();
    assert_ne!(second, first);
    // Once answered, it stays.
    let owners_token = if second == ana {
        ana_token.clone()
    } else {
        let (_, token) = app
            .post(
                &format!("/api/v1/users/{second}/tokens"),
                &app.admin,
                json!({"name": "reply"}),
            )
            .await;
        token["token"].as_str().unwrap().to_owned()
    };
    reply(&app, &owners_token, silent, "Sorry for the wait!").await;
    advance(&clock, 3600);
    tick(&app).await;
    assert_eq!(enrollments(&app, silent).await.len(), 2);
    assert_eq!(owner(&get_ticket(&app, silent).await), Some(second));
    let seen: BTreeSet<i64> = [first, second].into();
    assert_eq!(seen.len(), 2);
    for t in [answered, unowned] {
        assert!(enrollments(&app, t).await.is_empty(), "ticket {t}");
    }
}
