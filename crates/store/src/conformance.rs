//! The behaviour every storage backend must show, written once. Each
//! function takes a fresh, empty store; [`conformance_tests!`] turns all of
//! them into `#[tokio::test]`s for one backend:
//!
//! ```text
//! switchboard_store::conformance_tests!(my_backend_fresh_store());
//! ```
//!
//! where the expression is a future of a [`Fixture`].

use std::{any::Any, sync::Arc};

use serde_json::json;
use switchboard_domain::{input::*, *};

use crate::{Idempotency, NewMessage, Store, StoreError, TicketQuery, View};

/// A fresh, empty store and whatever must live as long as it (a temporary
/// directory, a database to drop).
pub struct Fixture {
    /// The store under test.
    pub store: Arc<dyn Store>,
    /// Dropped after the test.
    pub guard: Box<dyn Any + Send>,
}

/// Generates one `#[tokio::test]` per conformance case, each calling `$make`
/// (a future of a [`Fixture`]) for a fresh store.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@cases $make;
            accounts_start_with_a_super_admin_and_languages,
            tokens_authenticate_active_users_only,
            users_and_teams_keep_one_main_team,
            the_last_super_admin_stays,
            accounts_are_isolated,
            tickets_get_type_contact_and_history,
            idempotent_create_returns_the_original,
            views_select_the_right_tickets,
            pagination_walks_every_ticket_once,
            manual_assignment_is_recorded,
            a_reply_assigns_an_ownerless_ticket,
            status_and_stage_move_together,
            concurrent_creates_are_all_kept,
            contacts_and_visitor_tokens,
            channels_keep_settings_and_routing,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $case() {
            let fixture: $crate::conformance::Fixture = $make.await;
            $crate::conformance::$case(fixture.store.as_ref()).await;
            drop(fixture);
        }
    )*};
}

fn name(s: &str) -> Name {
    Name::try_from(s.to_owned()).unwrap()
}

fn email(s: &str) -> EmailAddress {
    EmailAddress::try_from(s.to_owned()).unwrap()
}

/// A new user input with defaults.
pub fn new_user(n: &str, e: &str, role: Role) -> NewUser {
    NewUser {
        name: name(n),
        email: email(e),
        role,
        help_desk_seat: true,
        time_zone: TimeZoneName::utc(),
        main_team_id: None,
        secondary_team_ids: vec![],
        skill_ids: vec![],
    }
}

/// A new ticket input with defaults.
pub fn new_ticket(subject: &str) -> NewTicket {
    NewTicket {
        subject: name(subject),
        content: "Hello".into(),
        channel_id: None,
        contact: None,
        priority: Priority::Medium,
        properties: Default::default(),
    }
}

async fn account(store: &dyn Store, n: &str) -> (AccountId, User) {
    let (account, admin) = store
        .create_account(
            name(n),
            new_user("Admin", &format!("admin@{n}.example"), Role::Agent),
            format!("admin-hash-{n}"),
        )
        .await
        .unwrap();
    (account.id, admin)
}

fn by(user: &User) -> Actor {
    Actor::User { user_id: user.id }
}

fn page_ids(page: &crate::Page<Ticket>) -> Vec<TicketId> {
    page.items.iter().map(|t| t.id).collect()
}

async fn view(store: &dyn Store, a: AccountId, caller: &User, v: View) -> Vec<TicketId> {
    let q = TicketQuery {
        view: Some(v),
        limit: 200,
        ..Default::default()
    };
    page_ids(&store.list_tickets(a, caller.id, q).await.unwrap())
}

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
    let agent = store
        .create_user(a, new_user("Ana", "ana@acme.example", Role::Agent))
        .await
        .unwrap();
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
    let t1 = store
        .create_team(
            a,
            NewTeam {
                name: name("Billing"),
                members: vec![],
            },
        )
        .await
        .unwrap();
    let t2 = store
        .create_team(
            a,
            NewTeam {
                name: name("Tech"),
                members: vec![],
            },
        )
        .await
        .unwrap();
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
    let ticket = store
        .create_ticket(a, new_ticket("Printer"), None, by(&admin_a))
        .await
        .unwrap()
        .value;
    let team = store
        .create_team(
            a,
            NewTeam {
                name: name("Billing"),
                members: vec![],
            },
        )
        .await
        .unwrap();
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

pub async fn tickets_get_type_contact_and_history(store: &dyn Store) {
    let (a, admin) = account(store, "acme").await;
    let chat = store
        .create_channel(
            a,
            NewChannel {
                kind: ChannelKind::Chat,
                name: name("Site chat"),
                settings: Default::default(),
            },
            "k1".into(),
        )
        .await
        .unwrap();
    let mut input = new_ticket("Where is my order?");
    input.channel_id = Some(chat.id);
    input.contact = Some(ContactRef {
        email: Some(email("c@x.example")),
        phone: None,
        name: Some(name("Cleo")),
    });
    input.properties.insert("language".into(), json!("fr"));
    let t = store
        .create_ticket(a, input.clone(), None, by(&admin))
        .await
        .unwrap();
    assert!(t.created);
    let t = t.value;
    assert_eq!(
        (t.source, t.ticket_type, t.status, t.stage),
        (
            TicketSource::Chat,
            TicketType::Message,
            Status::Open,
            Stage::New
        )
    );
    assert_eq!(t.owner, Owner::default());
    assert_eq!(
        store.get_ticket(a, t.id).await.unwrap(),
        t,
        "what create returns is what is stored"
    );
    let again = store
        .create_ticket(a, input, None, by(&admin))
        .await
        .unwrap()
        .value;
    assert_eq!(
        again.contact_id, t.contact_id,
        "the contact is found by e-mail, not created twice"
    );
    let contact = store.get_contact(a, t.contact_id.unwrap()).await.unwrap();
    assert_eq!(contact.name.unwrap().as_str(), "Cleo");
    let api = store
        .create_ticket(a, new_ticket("API"), None, by(&admin))
        .await
        .unwrap()
        .value;
    assert_eq!(
        (api.source, api.ticket_type),
        (TicketSource::Api, TicketType::EmailOther)
    );
    let history = store.history(a, t.id).await.unwrap();
    assert!(matches!(
        history[0].event,
        HistoryEvent::Created {
            source: TicketSource::Chat,
            ..
        }
    ));
    let mut unknown = new_ticket("x");
    unknown.channel_id = Some(ChannelId(424242));
    assert!(matches!(
        store.create_ticket(a, unknown, None, by(&admin)).await,
        Err(StoreError::Invalid(_))
    ));
}

pub async fn idempotent_create_returns_the_original(store: &dyn Store) {
    let (a, admin) = account(store, "acme").await;
    let key = |fp: &str| {
        Some(Idempotency {
            key: "k-1".into(),
            fingerprint: fp.into(),
        })
    };
    let first = store
        .create_ticket(a, new_ticket("Once"), key("f"), by(&admin))
        .await
        .unwrap();
    let retry = store
        .create_ticket(a, new_ticket("Once"), key("f"), by(&admin))
        .await
        .unwrap();
    assert!(first.created && !retry.created);
    assert_eq!(first.value.id, retry.value.id);
    assert!(matches!(
        store
            .create_ticket(a, new_ticket("Other"), key("g"), by(&admin))
            .await,
        Err(StoreError::Conflict {
            field: "Idempotency-Key",
            ..
        })
    ));
    // Keys are per account.
    let (b, admin_b) = account(store, "globex").await;
    assert!(
        store
            .create_ticket(b, new_ticket("Once"), key("f"), by(&admin_b))
            .await
            .unwrap()
            .created
    );
    let all = TicketQuery {
        limit: 50,
        ..Default::default()
    };
    assert_eq!(
        store
            .list_tickets(a, admin.id, all)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

pub async fn views_select_the_right_tickets(store: &dyn Store) {
    let (a, admin) = account(store, "acme").await;
    let team = store
        .create_team(
            a,
            NewTeam {
                name: name("Billing"),
                members: vec![],
            },
        )
        .await
        .unwrap();
    let other_team = store
        .create_team(
            a,
            NewTeam {
                name: name("Tech"),
                members: vec![],
            },
        )
        .await
        .unwrap();
    let mut input = new_user("Ana", "ana@acme.example", Role::Agent);
    input.main_team_id = Some(team.id);
    let ana = store.create_user(a, input).await.unwrap();
    let actor = by(&admin);
    let mk = |s: &'static str| async move {
        store
            .create_ticket(a, new_ticket(s), None, actor)
            .await
            .unwrap()
            .value
            .id
    };
    let (unassigned, mine, team_only, other, closed) = (
        mk("u").await,
        mk("m").await,
        mk("t").await,
        mk("o").await,
        mk("c").await,
    );
    let owner = |u: Option<UserId>, t: Option<TeamId>| Owner {
        user_id: u,
        team_id: t,
    };
    store
        .set_owner(a, mine, owner(Some(ana.id), None), by(&admin))
        .await
        .unwrap();
    store
        .set_owner(a, team_only, owner(None, Some(team.id)), by(&admin))
        .await
        .unwrap();
    store
        .set_owner(a, other, owner(None, Some(other_team.id)), by(&admin))
        .await
        .unwrap();
    store
        .update_ticket(
            a,
            closed,
            TicketPatch {
                status: Some(Status::Closed),
                ..Default::default()
            },
            by(&admin),
        )
        .await
        .unwrap();
    assert_eq!(
        view(store, a, &ana, View::Unassigned).await,
        vec![other, team_only, unassigned]
    );
    assert_eq!(view(store, a, &ana, View::Mine).await, vec![mine]);
    assert_eq!(
        view(store, a, &ana, View::TeamUnassigned).await,
        vec![team_only]
    );
    // Ana's ticket took her main team, so it is in her team's open view.
    assert_eq!(
        view(store, a, &ana, View::TeamOpen).await,
        vec![team_only, mine]
    );
    assert_eq!(view(store, a, &ana, View::Closed).await, vec![closed]);
    assert_eq!(
        view(store, a, &admin, View::Mine).await,
        Vec::<TicketId>::new()
    );
    let filtered = TicketQuery {
        team_id: Some(other_team.id),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        page_ids(&store.list_tickets(a, admin.id, filtered).await.unwrap()),
        vec![other]
    );
}

pub async fn pagination_walks_every_ticket_once(store: &dyn Store) {
    let (a, admin) = account(store, "acme").await;
    let mut created = Vec::new();
    for i in 0..7 {
        created.push(
            store
                .create_ticket(a, new_ticket(&format!("t{i}")), None, by(&admin))
                .await
                .unwrap()
                .value
                .id,
        );
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let q = TicketQuery {
            cursor,
            limit: 3,
            ..Default::default()
        };
        let page = store.list_tickets(a, admin.id, q).await.unwrap();
        seen.extend(page_ids(&page));
        match page.next_cursor {
            Some(c) => cursor = Some(c.parse().unwrap()),
            None => break,
        }
    }
    created.reverse();
    assert_eq!(seen, created);
}

pub async fn manual_assignment_is_recorded(store: &dyn Store) {
    let (a, admin) = account(store, "acme").await;
    let ana = store
        .create_user(a, new_user("Ana", "ana@acme.example", Role::Agent))
        .await
        .unwrap();
    let bob = store
        .create_user(a, new_user("Bob", "bob@acme.example", Role::Agent))
        .await
        .unwrap();
    let t = store
        .create_ticket(a, new_ticket("x"), None, by(&admin))
        .await
        .unwrap()
        .value;
    let to = |u: &User| Owner {
        user_id: Some(u.id),
        team_id: None,
    };
    let assigned = store
        .set_owner(a, t.id, to(&ana), by(&admin))
        .await
        .unwrap();
    assert_eq!(assigned.owner.user_id, Some(ana.id));
    assert!(assigned.assigned_at.is_some());
    let reassigned = store
        .set_owner(a, t.id, to(&bob), by(&admin))
        .await
        .unwrap();
    assert_eq!(reassigned.owner.user_id, Some(bob.id));
    let unassigned = store
        .set_owner(a, t.id, Owner::default(), by(&admin))
        .await
        .unwrap();
    assert_eq!(
        (unassigned.owner, unassigned.assigned_at),
        (Owner::default(), None)
    );
    let changes: Vec<_> = store
        .history(a, t.id)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|h| match h.event {
            HistoryEvent::OwnerChanged { to, reason, .. } => Some((to.user_id, reason, h.actor)),
            _ => None,
        })
        .collect();
    assert_eq!(
        changes,
        vec![
            (Some(ana.id), "manual".to_owned(), by(&admin)),
            (Some(bob.id), "manual".to_owned(), by(&admin)),
            (None, "manual".to_owned(), by(&admin)),
        ]
    );
    assert!(matches!(
        store
            .set_owner(
                a,
                t.id,
                Owner {
                    user_id: Some(UserId(99999)),
                    team_id: None
                },
                by(&admin)
            )
            .await,
        Err(StoreError::Invalid(_))
    ));
}

pub async fn a_reply_assigns_an_ownerless_ticket(store: &dyn Store) {
    let (a, admin) = account(store, "acme").await;
    let ana = store
        .create_user(a, new_user("Ana", "ana@acme.example", Role::Agent))
        .await
        .unwrap();
    let bob = store
        .create_user(a, new_user("Bob", "bob@acme.example", Role::Agent))
        .await
        .unwrap();
    let t = store
        .create_ticket(a, new_ticket("x"), None, by(&admin))
        .await
        .unwrap()
        .value;
    let msg = |kind, u: &User| NewMessage {
        kind,
        author: by(u),
        body: "hi".into(),
        external_id: None,
    };
    let (_, after_note) = store
        .add_message(a, t.id, msg(MessageKind::Note, &bob))
        .await
        .unwrap();
    assert_eq!(after_note.owner.user_id, None, "a note does not assign");
    let (m, after_reply) = store
        .add_message(a, t.id, msg(MessageKind::Reply, &ana))
        .await
        .unwrap();
    assert_eq!(after_reply.owner.user_id, Some(ana.id));
    assert_eq!(after_reply.stage, Stage::WaitingOnContact);
    assert!(after_reply.first_reply_at.is_some());
    let (_, after_second) = store
        .add_message(a, t.id, msg(MessageKind::Reply, &bob))
        .await
        .unwrap();
    assert_eq!(
        after_second.owner.user_id,
        Some(ana.id),
        "an owned ticket keeps its owner"
    );
    let messages = store.list_messages(a, t.id).await.unwrap();
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[1], m);
    let reasons: Vec<_> = store
        .history(a, t.id)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|h| match h.event {
            HistoryEvent::OwnerChanged { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(reasons, vec!["reply".to_owned()]);
}

pub async fn status_and_stage_move_together(store: &dyn Store) {
    let (a, admin) = account(store, "acme").await;
    let t = store
        .create_ticket(a, new_ticket("x"), None, by(&admin))
        .await
        .unwrap()
        .value;
    let close = TicketPatch {
        stage: Some(Stage::Closed),
        ..Default::default()
    };
    let closed = store
        .update_ticket(a, t.id, close, by(&admin))
        .await
        .unwrap();
    assert_eq!(
        (closed.status, closed.stage),
        (Status::Closed, Stage::Closed)
    );
    assert!(closed.closed_at.is_some());
    let reopen = TicketPatch {
        status: Some(Status::Open),
        priority: Some(Priority::High),
        ..Default::default()
    };
    let reopened = store
        .update_ticket(a, t.id, reopen, by(&admin))
        .await
        .unwrap();
    assert_eq!(
        (reopened.status, reopened.stage, reopened.closed_at),
        (Status::Open, Stage::WaitingOnUs, None)
    );
    assert_eq!(reopened.priority, Priority::High);
    let bad = TicketPatch {
        status: Some(Status::Open),
        stage: Some(Stage::Closed),
        ..Default::default()
    };
    assert!(matches!(
        store.update_ticket(a, t.id, bad, by(&admin)).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(
        store.get_ticket(a, t.id).await.unwrap(),
        reopened,
        "a refused change writes nothing"
    );
}

pub async fn concurrent_creates_are_all_kept(store: &dyn Store) {
    let (a, admin) = account(store, "acme").await;
    let store_tasks: Vec<_> = (0..200)
        .map(|i| {
            let actor = by(&admin);
            let subject = format!("t{i}");
            // Futures run concurrently on the runtime; the writer batches them.
            async move {
                store
                    .create_ticket(a, new_ticket(&subject), None, actor)
                    .await
            }
        })
        .collect();
    let results = futures_join_all(store_tasks).await;
    let mut ids: Vec<_> = results.into_iter().map(|r| r.unwrap().value.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 200);
    let all = TicketQuery {
        limit: 200,
        ..Default::default()
    };
    assert_eq!(
        store
            .list_tickets(a, admin.id, all)
            .await
            .unwrap()
            .items
            .len(),
        200
    );
}

/// Polls futures together on the current task (no extra dependency).
async fn futures_join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, out) in futures.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *out = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(Option::unwrap).collect()
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
        routing: Some(Some(json!({"assign_to": "nobody"}))),
        ..Default::default()
    };
    let updated = store.update_channel(a, ch.id, patch).await.unwrap();
    assert_eq!(updated.routing, Some(json!({"assign_to": "nobody"})));
    assert_eq!(store.get_channel(a, ch.id).await.unwrap(), updated);
    assert_eq!(store.list_channels(a).await.unwrap().len(), 1);
}
