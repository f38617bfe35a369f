//! Conformance cases for accounts, tokens, users, teams, contacts and channels.

use serde_json::json;
use switchboard_domain::{input::*, *};

use super::*;
use crate::{Store, StoreError, TicketQuery};

pub async fn accounts_start_with_a_super_admin_and_languages(store: &dyn Store) {
    assert_eq!(store.account_count().await.unwrap(), 0);
    assert!(store.first_account().await.unwrap().is_none());
    let (a, admin) = account(store, "acme").await;
    assert_eq!(
        admin.role,
        Role::SuperAdmin,
        "the first user is a super admin whatever was asked"
    );
    assert_eq!(store.account_count().await.unwrap(), 1);
    assert_eq!(store.first_account().await.unwrap().unwrap().id, a);
    let skills = store.list_skills(a).await.unwrap();
    assert!(
        skills
            .iter()
            .any(|s| s.name.as_str() == "French" && s.category.as_str() == LANGUAGE_CATEGORY)
    );
}

pub async fn tokens_authenticate_active_users_only(store: &dyn Store) {
    let (a, admin) = account(store, "acme").await;
    let agent = agent(store, a, "Ana").await;
    store
        .create_token(a, agent.id, "cli".into(), "hash-1".into())
        .await
        .unwrap();
    let p = store.authenticate("hash-1".into()).await.unwrap().unwrap();
    assert_eq!(
        (p.account_id, p.user_id, p.role),
        (a, agent.id, Role::Agent)
    );
    assert!(store.authenticate("hash-2".into()).await.unwrap().is_none());
    store
        .update_user(
            a,
            agent.id,
            UserPatch {
                deactivated: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        store.authenticate("hash-1".into()).await.unwrap().is_none(),
        "deactivated users lose access"
    );
    let (b, _) = account(store, "other").await;
    assert!(matches!(
        store
            .create_token(b, admin.id, "x".into(), "hash-3".into())
            .await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn users_and_teams_keep_one_main_team(store: &dyn Store) {
    let (a, _) = account(store, "acme").await;
    let t1 = empty_team(store, a, "Billing").await;
    let t2 = empty_team(store, a, "Tech").await;
    let mut input = new_user("Ana", "ana@acme.example", Role::Agent);
    input.main_team_id = Some(t1.id);
    input.secondary_team_ids = vec![t2.id, t1.id];
    let ana = store.create_user(a, input).await.unwrap();
    assert_eq!(ana.main_team_id, Some(t1.id));
    assert_eq!(
        ana.secondary_team_ids,
        vec![t2.id],
        "the main team is not also secondary"
    );
    let team = store.get_team(a, t1.id).await.unwrap();
    assert_eq!(
        team.members,
        vec![TeamMember {
            user_id: ana.id,
            main: true
        }]
    );
    assert_eq!(team.seated_members, 1);
    // Making her a main member of Tech too is refused.
    let clash = store
        .update_team(
            a,
            t2.id,
            TeamPatch {
                members: Some(vec![TeamMember {
                    user_id: ana.id,
                    main: true,
                }]),
                ..Default::default()
            },
        )
        .await;
    assert!(
        matches!(
            clash,
            Err(StoreError::Conflict {
                field: "members",
                ..
            })
        ),
        "{clash:?}"
    );
    // Duplicate names and unknown teams are refused too.
    assert!(matches!(
        store
            .create_team(
                a,
                NewTeam {
                    name: name("billing"),
                    members: vec![]
                }
            )
            .await,
        Err(StoreError::Conflict { field: "name", .. })
    ));
    let mut bad = new_user("Bob", "bob@acme.example", Role::Agent);
    bad.main_team_id = Some(TeamId(9999));
    assert!(matches!(
        store.create_user(a, bad).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store
            .create_user(a, new_user("Ana 2", "ANA@acme.example", Role::Agent))
            .await,
        Err(StoreError::Conflict { field: "email", .. })
    ));
    let moved = store
        .update_user(
            a,
            ana.id,
            UserPatch {
                main_team_id: Some(Some(t2.id)),
                secondary_team_ids: Some(vec![]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (moved.main_team_id, moved.secondary_team_ids.len()),
        (Some(t2.id), 0)
    );
    assert_eq!(store.get_team(a, t1.id).await.unwrap().members.len(), 0);
}

pub async fn the_last_super_admin_stays(store: &dyn Store) {
    let (a, admin) = account(store, "acme").await;
    let demote = UserPatch {
        role: Some(Role::Agent),
        ..Default::default()
    };
    assert!(matches!(
        store.update_user(a, admin.id, demote.clone()).await,
        Err(StoreError::Conflict { .. })
    ));
    store
        .create_user(
            a,
            new_user("Second", "second@acme.example", Role::SuperAdmin),
        )
        .await
        .unwrap();
    assert_eq!(
        store.update_user(a, admin.id, demote).await.unwrap().role,
        Role::Agent
    );
}

pub async fn accounts_are_isolated(store: &dyn Store) {
    let (a, admin_a) = account(store, "acme").await;
    let (b, admin_b) = account(store, "globex").await;
    let ticket = ticket(store, a, &admin_a, "Printer").await;
    let team = empty_team(store, a, "Billing").await;
    assert!(matches!(
        store.get_ticket(b, ticket.id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.get_user(b, admin_a.id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.get_team(b, team.id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.history(b, ticket.id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .set_owner(
                b,
                ticket.id,
                Owner {
                    user_id: Some(admin_b.id),
                    team_id: None
                },
                by(&admin_b)
            )
            .await,
        Err(StoreError::NotFound(_))
    ));
    // Nor can B's ticket name A's user as owner.
    let theirs = store
        .create_ticket(b, new_ticket("Mine"), None, by(&admin_b))
        .await
        .unwrap()
        .value;
    assert!(matches!(
        store
            .set_owner(
                b,
                theirs.id,
                Owner {
                    user_id: Some(admin_a.id),
                    team_id: None
                },
                by(&admin_b)
            )
            .await,
        Err(StoreError::Invalid(_))
    ));
    let all = TicketQuery {
        limit: 50,
        ..Default::default()
    };
    assert_eq!(
        page_ids(&store.list_tickets(b, admin_b.id, all).await.unwrap()),
        vec![theirs.id]
    );
    assert_eq!(store.list_users(b).await.unwrap().len(), 1);
}

pub async fn contacts_and_visitor_tokens(store: &dyn Store) {
    let (a, admin) = account(store, "acme").await;
    let c = store
        .create_contact(
            a,
            NewContact {
                name: Some(name("Cleo")),
                email: Some(email("cleo@x.example")),
                phone: Some(E164::try_from("+33612345678".to_owned()).unwrap()),
                owner_user_id: Some(admin.id),
                visitor_tokens: vec!["utk-1".into()],
            },
        )
        .await
        .unwrap();
    assert_eq!(c.visitor_tokens, vec!["utk-1".to_owned()]);
    let other = store
        .create_contact(
            a,
            NewContact {
                name: Some(name("Dan")),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let stolen = ContactPatch {
        visitor_tokens: Some(vec!["utk-1".into()]),
        ..Default::default()
    };
    assert!(matches!(
        store.update_contact(a, other.id, stolen).await,
        Err(StoreError::Conflict { .. })
    ));
    let cleared = store
        .update_contact(
            a,
            c.id,
            ContactPatch {
                owner_user_id: Some(None),
                visitor_tokens: Some(vec!["utk-2".into(), "utk-3".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(cleared.owner_user_id, None);
    assert_eq!(
        cleared.visitor_tokens,
        vec!["utk-2".to_owned(), "utk-3".to_owned()]
    );
    let page = store.list_contacts(a, None, 1).await.unwrap();
    assert_eq!(page.items[0].id, other.id);
    assert!(page.next_cursor.is_some());
    // A ticket from a known phone finds the contact.
    let mut input = new_ticket("call me");
    input.contact = Some(ContactRef {
        phone: Some(E164::try_from("+33 6 12 34 56 78".to_owned()).unwrap()),
        ..Default::default()
    });
    let t = store
        .create_ticket(a, input, None, by(&admin))
        .await
        .unwrap()
        .value;
    assert_eq!(t.contact_id, Some(c.id));
}

pub async fn channels_keep_settings_and_routing(store: &dyn Store) {
    let (a, _) = account(store, "acme").await;
    let mut settings = serde_json::Map::new();
    settings.insert("address".into(), json!("support@acme.example"));
    let ch = store
        .create_channel(
            a,
            NewChannel {
                kind: ChannelKind::Email,
                name: name("Support"),
                settings,
            },
            "key-1".into(),
        )
        .await
        .unwrap();
    assert_eq!(ch.settings["address"], json!("support@acme.example"));
    assert_eq!(ch.routing, None);
    let patch = ChannelPatch {
        routing: Some(Some(
            serde_json::from_value(json!({"assign_to": "nobody"})).unwrap(),
        )),
        ..Default::default()
    };
    let updated = store.update_channel(a, ch.id, patch).await.unwrap();
    let rule = updated.routing.clone().unwrap();
    assert_eq!(
        (rule.assign_to, rule.distribution, rule.only_available),
        (
            switchboard_domain::routing::AssignTo::Nobody,
            switchboard_domain::routing::Distribution::LoadBalanced,
            true
        ),
        "defaults are filled in"
    );
    let bad = ChannelPatch {
        routing: Some(Some(
            serde_json::from_value(json!({"assign_to": "users_and_teams", "users": [424242]}))
                .unwrap(),
        )),
        ..Default::default()
    };
    assert!(
        matches!(
            store.update_channel(a, ch.id, bad).await,
            Err(StoreError::Invalid(_))
        ),
        "unknown users are refused"
    );
    assert_eq!(store.get_channel(a, ch.id).await.unwrap(), updated);
    assert_eq!(store.list_channels(a).await.unwrap().len(), 1);
}
