//! The store conformance suite on PostgreSQL: the same cases as on SQLite,
//! each in a fresh schema of the test server (see
//! `switchboard_store::postgres::testing`).

use std::sync::Arc;

use switchboard_store::{
    PgStore,
    conformance::{Fixture, start_clock},
    postgres::testing::TestDatabase,
};

async fn fresh() -> Option<Fixture> {
    let db = TestDatabase::create().await?;
    let clock = start_clock();
    let store = PgStore::connect(&db.url, clock.clone())
        .await
        .expect("connect to the test schema");
    Some(Fixture {
        store: Arc::new(store),
        clock,
        guard: Box::new(db),
    })
}

switchboard_store::conformance_tests!(fresh());

/// Two nodes on one database: two `PgStore`s on the same schema, each
/// keeping its own routing state for the account. Tickets created on
/// either node, one at a time and both at once, are always given to the
/// least loaded agent as the database has it: every decision sees exactly
/// the tickets routed before it (on any node), loads end within one of
/// each other and the counters match a recount. A directory change on one
/// node (a deactivation, an availability change) holds on the other from
/// its next ticket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_never_route_from_a_stale_kept_state() {
    use jiff::SignedDuration;
    use switchboard_domain::{
        input::*,
        routing::{ManualAvailability, ManualStatus, Outcome, RoutingRule, Verdict},
        *,
    };
    use switchboard_store::{AvailabilityChange, conformance::new_user, prelude::*};

    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let clock = start_clock();
    let one = PgStore::connect(&db.url, clock.clone()).await.unwrap();
    let two = PgStore::connect(&db.url, clock.clone()).await.unwrap();
    let nodes: [&dyn Store; 2] = [&one, &two];

    let admin = new_user("Admin", "admin@acme.example", Role::Agent);
    let name = |s: &str| Name::try_from(s.to_owned()).unwrap();
    let (account, _) = one
        .create_account(name("acme"), admin, "h".into())
        .await
        .unwrap();
    let a = account.id;
    let mut agents = Vec::new();
    for (i, n) in ["Ana", "Bob", "Cy"].into_iter().enumerate() {
        let email = format!("{}@acme.example", n.to_lowercase());
        let input = new_user(n, &email, Role::Agent);
        agents.push(nodes[i % 2].create_user(a, input).await.unwrap());
    }
    let ids: Vec<UserId> = agents.iter().map(|u| u.id).collect();
    let input = NewChannel {
        kind: ChannelKind::Custom,
        name: name("Custom"),
        settings: Default::default(),
    };
    let ch = two.create_channel(a, input, "custom".into()).await.unwrap();
    let rule: RoutingRule =
        serde_json::from_value(serde_json::json!({"assign_to": "users_and_teams", "users": ids}))
            .unwrap();
    let patch = ChannelPatch {
        routing: Some(Some(rule)),
        ..Default::default()
    };
    one.update_channel(a, ch.id, patch).await.unwrap();

    // One at a time, alternating: the explanation's loads are the true ones.
    let mut load: std::collections::HashMap<UserId, u32> = ids.iter().map(|u| (*u, 0)).collect();
    let mut routed = Vec::new();
    for i in 0..12 {
        clock.advance(SignedDuration::from_secs(1));
        let t = create_on(nodes[i % 2], a, ch.id, "alternating").await;
        let owner = t.owner.user_id.expect("assigned");
        let log = nodes[(i + 1) % 2].routing_log(a, t.id).await.unwrap();
        let seen: std::collections::HashMap<UserId, u32> = log[0]
            .explanation
            .candidates
            .iter()
            .map(|c| (c.user_id, c.load))
            .collect();
        assert_eq!(seen, load, "ticket {i} (node {}) saw the true loads", i % 2);
        let least = *load.values().min().unwrap();
        assert_eq!(
            load[&owner], least,
            "ticket {i} went to a least loaded agent"
        );
        *load.get_mut(&owner).unwrap() += 1;
        routed.push(t.id);
    }

    // Both at once: the routing lock orders them, and each still sees all
    // the tickets routed before it.
    for _ in 0..10 {
        clock.advance(SignedDuration::from_secs(1));
        let (x, y) = tokio::join!(
            create_on(nodes[0], a, ch.id, "concurrent"),
            create_on(nodes[1], a, ch.id, "concurrent")
        );
        routed.push(x.id);
        routed.push(y.id);
    }
    let mut seen_totals = Vec::new();
    let mut owners: std::collections::HashMap<UserId, u32> = Default::default();
    for id in &routed {
        let log = one.routing_log(a, *id).await.unwrap();
        let e = &log[0].explanation;
        let total: u32 = e.candidates.iter().map(|c| c.load).sum();
        let least = e.candidates.iter().map(|c| c.load).min().unwrap();
        let Outcome::Assign { user_id, .. } = e.outcome else {
            panic!("ticket {id} not assigned: {}", e.summary);
        };
        let chosen = e.candidates.iter().find(|c| c.user_id == user_id).unwrap();
        assert_eq!(chosen.load, least, "ticket {id}: {}", e.summary);
        *owners.entry(user_id).or_default() += 1;
        seen_totals.push(total);
    }
    seen_totals.sort_unstable();
    let expected: Vec<u32> = (0..routed.len() as u32).collect();
    assert_eq!(
        seen_totals, expected,
        "each decision saw exactly the tickets routed before it"
    );
    let (lo, hi) = (
        owners.values().min().copied().unwrap_or(0),
        owners.values().max().copied().unwrap_or(0),
    );
    assert_eq!(owners.len(), 3);
    assert!(hi - lo <= 1, "loads within one: {owners:?}");
    assert_eq!(one.counter_drift(a).await.unwrap(), Vec::<String>::new());
    assert_eq!(two.counter_drift(a).await.unwrap(), Vec::<String>::new());
    // Each node followed the other's decisions by their deltas: after its
    // first load, it never read the whole state again.
    for (i, node) in [&one, &two].into_iter().enumerate() {
        let (loads, catch_ups) = node.routing_state_counts();
        assert!(loads <= 2, "node {i} read the state whole {loads} times");
        assert!(catch_ups >= 10, "node {i} caught up only {catch_ups} times");
    }

    // A deactivation on node one holds on node two's next ticket.
    let (ana, bob, cy) = (&agents[0], &agents[1], &agents[2]);
    let deactivate = UserPatch {
        deactivated: Some(true),
        ..Default::default()
    };
    one.update_user(a, bob.id, deactivate).await.unwrap();
    for _ in 0..4 {
        clock.advance(SignedDuration::from_secs(1));
        let t = create_on(nodes[1], a, ch.id, "after deactivation").await;
        assert_ne!(t.owner.user_id, Some(bob.id));
        let log = two.routing_log(a, t.id).await.unwrap();
        let bob_verdict = log[0]
            .explanation
            .candidates
            .iter()
            .find(|c| c.user_id == bob.id)
            .map(|c| c.verdict.clone());
        assert_eq!(bob_verdict, Some(Verdict::Deactivated));
    }

    // Cy away on node two: node one gives everything to Ana.
    let away = ManualAvailability {
        status: ManualStatus::Away,
        until: None,
    };
    two.change_availability(a, cy.id, AvailabilityChange::Manual(Some(away)))
        .await
        .unwrap();
    for _ in 0..3 {
        clock.advance(SignedDuration::from_secs(1));
        let t = create_on(nodes[0], a, ch.id, "after away").await;
        assert_eq!(t.owner.user_id, Some(ana.id));
    }
    assert_eq!(two.counter_drift(a).await.unwrap(), Vec::<String>::new());
    drop((one, two));
}

/// A node runs its waiting routed creates of one account together (one
/// transaction, one lock, one commit for all; see `postgres::batch`). Many
/// at once still end load balanced exactly, with the counters matching a
/// recount, and a create that fails among them fails alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routed_creates_run_together_and_a_bad_one_fails_alone() {
    use switchboard_domain::{input::*, routing::RoutingRule, *};
    use switchboard_store::{StoreError, conformance::new_user, prelude::*};

    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let clock = start_clock();
    let node = Arc::new(PgStore::connect(&db.url, clock.clone()).await.unwrap());
    let name = |s: &str| Name::try_from(s.to_owned()).unwrap();
    let (account, _) = node
        .create_account(
            name("acme"),
            new_user("Admin", "admin@acme.example", Role::Agent),
            "h".into(),
        )
        .await
        .unwrap();
    let a = account.id;
    let mut ids = Vec::new();
    for n in ["Ana", "Bob", "Cy", "Dee"] {
        let email = format!("{}@acme.example", n.to_lowercase());
        ids.push(
            node.create_user(a, new_user(n, &email, Role::Agent))
                .await
                .unwrap()
                .id,
        );
    }
    let input = NewChannel {
        kind: ChannelKind::Custom,
        name: name("Custom"),
        settings: Default::default(),
    };
    let ch = node
        .create_channel(a, input, "custom".into())
        .await
        .unwrap();
    let rule: RoutingRule = serde_json::from_value(serde_json::json!({
        "assign_to": "users_and_teams", "users": ids, "distribution": "load_balanced"
    }))
    .unwrap();
    let patch = ChannelPatch {
        routing: Some(Some(rule)),
        ..Default::default()
    };
    node.update_channel(a, ch.id, patch).await.unwrap();

    // 40 at once: they queue behind the first, and run together.
    let created = create_many(&node, a, ch.id, 40, None).await;
    assert!(created.iter().all(Result::is_ok), "{created:?}");
    let (batches, creates) = node.routed_batch_counts();
    assert!(
        batches >= 1 && creates >= 2,
        "no create ran with another ({batches}, {creates})"
    );
    // 21 more, one of them refused in the store once its batch has begun
    // (a contact with neither an e-mail nor a phone): it fails alone.
    let created = create_many(&node, a, ch.id, 21, Some(10)).await;
    for (i, result) in created.iter().enumerate() {
        match (i, result) {
            (10, Err(StoreError::Invalid(_))) => {}
            (10, other) => panic!("the bad create: {other:?}"),
            (_, Ok(_)) => {}
            (i, Err(e)) => panic!("create {i} failed with the bad one: {e}"),
        }
    }
    let mut owners: std::collections::HashMap<UserId, u32> = Default::default();
    let page = node
        .list_tickets(
            a,
            ids[0],
            switchboard_store::TicketQuery {
                limit: 200,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    for t in &page.items {
        *owners
            .entry(t.owner.user_id.expect("assigned"))
            .or_default() += 1;
    }
    assert_eq!(
        owners.values().copied().collect::<Vec<_>>(),
        vec![15; 4],
        "{owners:?}"
    );
    // The counters and `last_assigned_at` a batch writes once, at its end,
    // are in the tables.
    assert_eq!(node.counter_drift(a).await.unwrap(), Vec::<String>::new());
    let stamped: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM users WHERE account_id = $1 AND last_assigned_at IS NOT NULL",
    )
    .bind(a.0)
    .fetch_one(node.pool())
    .await
    .unwrap();
    assert_eq!(stamped, 4);
}

/// `n` routed creates on `ch` at once, in order of their index; the one at
/// `bad` (if any) has a contact the store refuses.
async fn create_many(
    node: &Arc<PgStore>,
    a: switchboard_domain::AccountId,
    ch: switchboard_domain::ChannelId,
    n: usize,
    bad: Option<usize>,
) -> Vec<switchboard_store::Result<switchboard_domain::Ticket>> {
    use switchboard_domain::{Actor, Name, input::ContactRef};
    use switchboard_store::prelude::*;
    let mut all = tokio::task::JoinSet::new();
    for i in 0..n {
        let node = node.clone();
        all.spawn(async move {
            let mut input = switchboard_store::conformance::new_ticket(&format!("together {i}"));
            input.channel_id = Some(ch);
            if bad == Some(i) {
                input.contact = Some(ContactRef {
                    email: None,
                    phone: None,
                    name: Some(Name::try_from("Nobody".to_owned()).unwrap()),
                });
            }
            let created = node.create_ticket(a, input, None, Actor::System).await;
            (i, created.map(|c| c.value))
        });
    }
    let mut results: Vec<_> = all.join_all().await;
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// A ticket created on `store` (one node) on the routed channel `ch`.
async fn create_on(
    store: &dyn switchboard_store::Store,
    a: switchboard_domain::AccountId,
    ch: switchboard_domain::ChannelId,
    subject: &str,
) -> switchboard_domain::Ticket {
    let mut input = switchboard_store::conformance::new_ticket(subject);
    input.channel_id = Some(ch);
    store
        .create_ticket(a, input, None, switchboard_domain::Actor::System)
        .await
        .unwrap()
        .value
}

/// Two nodes keep their own copies of an account's settings (notification
/// preferences, the enabled workflows): a change made on one node holds on
/// the other from its next change, and a node whose copy is current reads
/// none of them again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_changed_on_one_node_hold_on_the_other() {
    use switchboard_domain::{
        notifications::{Method, PreferenceSetting, Setting, Topic},
        *,
    };
    use switchboard_store::{NotificationQuery, conformance::new_user, prelude::*};

    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let clock = start_clock();
    let one = PgStore::connect(&db.url, clock.clone()).await.unwrap();
    let two = PgStore::connect(&db.url, clock.clone()).await.unwrap();
    let name = |s: &str| Name::try_from(s.to_owned()).unwrap();
    let (account, admin) = one
        .create_account(
            name("acme"),
            new_user("Admin", "admin@acme.example", Role::Agent),
            "h".into(),
        )
        .await
        .unwrap();
    let a = account.id;
    let ana = one
        .create_user(a, new_user("Ana", "ana@acme.example", Role::Agent))
        .await
        .unwrap();
    let by_admin = Actor::User { user_id: admin.id };
    let to = Owner {
        user_id: Some(ana.id),
        team_id: None,
    };
    let unread = || async {
        let q = NotificationQuery {
            unread_only: false,
            cursor: None,
            limit: 100,
        };
        one.notifications(a, ana.id, q)
            .await
            .unwrap()
            .items
            .iter()
            .filter(|n| n.topic == notifications::Topic::AssignedToMe)
            .count()
    };
    let subject = |s: &str| {
        let mut t = switchboard_store::conformance::new_ticket(s);
        t.priority = Priority::Low;
        t
    };
    let t1 = two
        .create_ticket(a, subject("one"), None, by_admin)
        .await
        .unwrap()
        .value;
    two.set_owner(a, t1.id, to, by_admin).await.unwrap();
    assert_eq!(unread().await, 1, "told in the app by default");
    // Node one turns Ana's in-app assignments off; node two kept the old
    // preferences and must not use them.
    let off = PreferenceSetting {
        topic: Topic::AssignedToMe,
        method: Method::InApp,
        setting: Setting::Off,
    };
    one.set_notification_preferences(a, ana.id, vec![off])
        .await
        .unwrap();
    let t2 = two
        .create_ticket(a, subject("two"), None, by_admin)
        .await
        .unwrap()
        .value;
    two.set_owner(a, t2.id, to, by_admin).await.unwrap();
    assert_eq!(unread().await, 1, "node two follows node one's change");
    // A workflow made on node one enrolls tickets created on node two.
    let spec = serde_json::from_value(serde_json::json!({"name": "Tag",
        "triggers": [{"kind": "ticket_created"}],
        "actions": [{"type": "set_priority", "value": "high"}]}))
    .unwrap();
    one.create_workflow(a, spec).await.unwrap();
    let t3 = two
        .create_ticket(a, subject("three"), None, by_admin)
        .await
        .unwrap()
        .value;
    assert_eq!(two.ticket_enrollments(a, t3.id).await.unwrap().len(), 1);
    drop((one, two));
}
