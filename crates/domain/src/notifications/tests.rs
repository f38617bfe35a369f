use super::*;

fn person(id: i64, name: &str, teams: &[i64]) -> Person {
    Person {
        id: UserId(id),
        name: Name::try_from(name.to_owned()).unwrap(),
        email: EmailAddress::try_from(format!(
            "{}@acme.example",
            name.to_lowercase().replace(' ', ".")
        ))
        .unwrap(),
        seated: true,
        deactivated: false,
        teams: teams.iter().copied().map(TeamId).collect(),
    }
}

fn people() -> Vec<Person> {
    let mut unseated = person(4, "Dee", &[]);
    unseated.seated = false;
    let mut gone = person(5, "Eve", &[1]);
    gone.deactivated = true;
    vec![
        person(1, "Ana Lima", &[1]),
        person(2, "Bob", &[1, 2]),
        person(3, "Cy", &[2]),
        unseated,
        gone,
    ]
}

fn facts(
    people: &[Person],
    owner: Option<i64>,
    team: Option<i64>,
    actor: Option<i64>,
) -> TicketFacts<'_> {
    TicketFacts {
        owner_user: owner.map(UserId),
        owner_team: team.map(TeamId),
        people,
        actor: actor.map(UserId),
    }
}

fn users(told: &[(UserId, Topic)]) -> Vec<i64> {
    told.iter().map(|(u, _)| u.0).collect()
}

#[test]
fn new_unassigned_goes_to_the_team_or_every_seated_user_but_the_actor() {
    let p = people();
    let team = audience(&NotifyEvent::NewUnassigned, &facts(&p, None, Some(1), None));
    assert_eq!(users(&team), [1, 2]);
    assert!(team.iter().all(|(_, t)| *t == Topic::NewUnassigned));
    let all = audience(&NotifyEvent::NewUnassigned, &facts(&p, None, None, Some(2)));
    assert_eq!(
        users(&all),
        [1, 3],
        "unseated, deactivated and the actor are left out"
    );
    assert!(audience(&NotifyEvent::NewUnassigned, &facts(&p, Some(1), None, None)).is_empty());
}

#[test]
fn assignment_replies_handoffs_and_overdue_go_to_the_right_people() {
    let p = people();
    let assigned = NotifyEvent::Assigned { user_id: UserId(3) };
    assert_eq!(
        audience(&assigned, &facts(&p, Some(3), None, Some(1))),
        [(UserId(3), Topic::AssignedToMe)]
    );
    assert!(
        audience(&assigned, &facts(&p, Some(3), None, Some(3))).is_empty(),
        "not told of what you did"
    );
    assert_eq!(
        audience(
            &NotifyEvent::CustomerReplied,
            &facts(&p, Some(2), None, None)
        ),
        [(UserId(2), Topic::CustomerRepliedMine)]
    );
    assert_eq!(
        users(&audience(
            &NotifyEvent::CustomerReplied,
            &facts(&p, None, Some(2), None)
        )),
        [2, 3]
    );
    let to_team = NotifyEvent::HandedOff {
        user_id: None,
        team_id: Some(TeamId(2)),
    };
    assert_eq!(
        users(&audience(&to_team, &facts(&p, None, None, None))),
        [2, 3]
    );
    let to_user = NotifyEvent::HandedOff {
        user_id: Some(UserId(1)),
        team_id: Some(TeamId(2)),
    };
    assert_eq!(
        audience(&to_user, &facts(&p, None, None, None)),
        [(UserId(1), Topic::HandedOff)]
    );
    assert_eq!(
        audience(
            &NotifyEvent::FirstReplyOverdue,
            &facts(&p, Some(1), None, None)
        ),
        [(UserId(1), Topic::FirstReplyOverdue)]
    );
    assert!(
        audience(
            &NotifyEvent::FirstReplyOverdue,
            &facts(&p, None, None, None)
        )
        .is_empty()
    );
    let gone = NotifyEvent::Assigned { user_id: UserId(5) };
    assert!(
        audience(&gone, &facts(&p, Some(5), None, None)).is_empty(),
        "deactivated users are not told"
    );
}

#[test]
fn mentions_match_names_and_addresses_whole() {
    let p = people();
    let m = |body: &str| {
        mentions(body, &p)
            .into_iter()
            .map(|u| u.0)
            .collect::<Vec<_>>()
    };
    assert_eq!(m("@Ana Lima can you look? cc @bob@acme.example"), [1, 2]);
    assert_eq!(m("@cy, @CY and @cy."), [3]);
    assert_eq!(
        m("ask ana@acme.example or @Bobby"),
        Vec::<i64>::new(),
        "inside a word, or a longer word"
    );
    assert_eq!(m("@ana.lima@acme.example"), [1]);
    assert_eq!(m("no one"), Vec::<i64>::new());
    let note = NotifyEvent::Note {
        body: "@bob @cy".into(),
    };
    assert_eq!(
        users(&audience(&note, &facts(&p, None, None, Some(3)))),
        [2]
    );
}

#[test]
fn a_user_setting_wins_over_the_default_which_wins_over_the_built_in() {
    let mut prefs = Preferences::default();
    let (u, t) = (UserId(1), Topic::NewUnassigned);
    assert_eq!(prefs.resolve(u, t, Method::Email), (false, Source::BuiltIn));
    assert_eq!(prefs.resolve(u, t, Method::InApp), (true, Source::BuiltIn));
    prefs.defaults.insert((t, Method::Email), true);
    assert_eq!(
        prefs.resolve(u, t, Method::Email),
        (true, Source::AccountDefault)
    );
    prefs.users.insert((u, t, Method::Email), false);
    assert_eq!(prefs.resolve(u, t, Method::Email), (false, Source::User));
    assert_eq!(
        prefs.resolve(UserId(2), t, Method::Email),
        (true, Source::AccountDefault)
    );
    let all = prefs.effective(u);
    assert_eq!(all.len(), Topic::ALL.len() * Method::ALL.len());
    let email = all
        .iter()
        .find(|e| e.topic == t && e.method == Method::Email)
        .unwrap();
    assert_eq!(
        (email.setting, email.enabled, email.source),
        (Setting::Off, false, Source::User)
    );
    let d = prefs.default_settings();
    assert!(
        d.iter()
            .any(|e| e.topic == t && e.method == Method::Email && e.setting == Setting::On)
    );
}

#[test]
fn the_cap_holds_e_mails_for_the_digest_at_the_end_of_the_hour() {
    let now: Timestamp = "2025-03-07T10:42:00Z".parse().unwrap();
    let (start, end) = cap_window(now);
    assert_eq!(start.to_string(), "2025-03-07T10:00:00Z");
    assert_eq!(end.to_string(), "2025-03-07T11:00:00Z");
    assert_eq!(email_cap(19, 20, now), EmailPlan::Send);
    assert_eq!(email_cap(20, 20, now), EmailPlan::Hold { digest_at: end });
    assert_eq!(email_cap(0, 0, now), EmailPlan::Hold { digest_at: end });
}

#[test]
fn plan_combines_audience_preferences_and_cap() {
    let p = people();
    let now: Timestamp = "2025-03-07T10:42:00Z".parse().unwrap();
    let mut prefs = Preferences::default();
    prefs
        .users
        .insert((UserId(2), Topic::NewUnassigned, Method::InApp), false);
    prefs
        .users
        .insert((UserId(1), Topic::NewUnassigned, Method::Email), true);
    let sent = HashMap::from([((UserId(1), Topic::NewUnassigned), 3)]);
    let told = audience(&NotifyEvent::NewUnassigned, &facts(&p, None, Some(1), None));
    let planned = plan(&told, &prefs, &sent, Some(3), now);
    assert!(
        plan(&told, &prefs, &sent, None, now)
            .iter()
            .all(|p| p.email.is_none()),
        "no settings, no e-mail"
    );
    assert_eq!(
        planned,
        [Planned {
            user: UserId(1),
            topic: Topic::NewUnassigned,
            in_app: true,
            email: Some(EmailPlan::Hold {
                digest_at: cap_window(now).1
            }),
        }],
        "Bob wants neither method"
    );
}

#[test]
fn duplicate_settings_are_refused_and_events_round_trip() {
    let s = PreferenceSetting {
        topic: Topic::Mentioned,
        method: Method::Email,
        setting: Setting::On,
    };
    assert!(check_settings(&[s, s]).is_err());
    assert!(check_settings(&[s]).is_ok());
    let e = NotifyEvent::HandedOff {
        user_id: Some(UserId(2)),
        team_id: None,
    };
    let json = serde_json::to_string(&e).unwrap();
    assert_eq!(json, r#"{"event":"handed_off","user_id":2,"team_id":null}"#);
    assert_eq!(serde_json::from_str::<NotifyEvent>(&json).unwrap(), e);
    assert_eq!(email_subject(TicketId(7), "Refund"), "[#7] Refund");
    assert_eq!(
        candidates(&NotifyEvent::Assigned { user_id: UserId(2) }, None),
        Candidates::One(UserId(2))
    );
    assert_eq!(
        candidates(&NotifyEvent::NewUnassigned, Some(UserId(1))),
        Candidates::Nobody
    );
    assert_eq!(
        candidates(&NotifyEvent::CustomerReplied, None),
        Candidates::Everyone
    );
    use crate::MessageKind;
    assert_eq!(message_event(MessageKind::Inbound, "hi", true), None);
    assert_eq!(
        message_event(MessageKind::Inbound, "hi", false),
        Some(NotifyEvent::CustomerReplied)
    );
    assert_eq!(message_event(MessageKind::Reply, "hi", false), None);
    assert_eq!(
        message_event(MessageKind::Note, "@x", true),
        Some(NotifyEvent::Note { body: "@x".into() })
    );
    assert_eq!(
        digest_summary(&[Topic::Mentioned, Topic::Mentioned])
            .values()
            .sum::<usize>(),
        2
    );
}
