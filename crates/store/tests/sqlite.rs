//! The store conformance suite and SQLite-specific checks, on a real
//! SQLite file in a temporary directory.

use std::sync::Arc;

use switchboard_domain::SystemClock;
use switchboard_store::{
    SqliteStore,
    conformance::{Fixture, new_ticket, new_user, start_clock},
    prelude::*,
};

async fn fresh() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = start_clock();
    let store = SqliteStore::open(&dir.path().join("test.db"), clock.clone()).unwrap();
    Fixture {
        store: Arc::new(store),
        clock,
        guard: Box::new(dir),
    }
}

switchboard_store::conformance_tests!(fresh());

/// The account `acme` with its super admin.
async fn acme(store: &SqliteStore) -> (switchboard_domain::Account, switchboard_domain::User) {
    let name = "acme".to_owned().try_into().unwrap();
    let admin = new_user("A", "a@acme.example", switchboard_domain::Role::Agent);
    store.create_account(name, admin, "h".into()).await.unwrap()
}

#[tokio::test]
async fn committed_writes_survive_closing_and_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.db");
    let store = SqliteStore::open(&path, Arc::new(SystemClock)).unwrap();
    let (account, admin) = acme(&store).await;
    let actor = switchboard_domain::Actor::User { user_id: admin.id };
    let t = store
        .create_ticket(account.id, new_ticket("kept"), None, actor)
        .await
        .unwrap()
        .value;
    store.close();
    assert!(
        store
            .create_ticket(account.id, new_ticket("late"), None, actor)
            .await
            .is_err(),
        "closed stores refuse writes"
    );
    drop(store);
    let reopened = SqliteStore::open(&path, Arc::new(SystemClock)).unwrap();
    assert_eq!(
        reopened.get_ticket(account.id, t.id).await.unwrap().subject,
        "kept"
    );
    assert_eq!(
        reopened.account_count().await.unwrap(),
        1,
        "migrations are not re-applied"
    );
}

mod routing {
    use std::sync::Arc;

    use super::acme;

    use jiff::SignedDuration;
    use switchboard_domain::{input::*, routing::*, *};
    use switchboard_store::{
        AvailabilityChange, SqliteStore,
        conformance::{new_ticket, new_user},
        prelude::*,
    };

    /// An e-mail channel with the given routing rule.
    async fn routed_channel(store: &SqliteStore, a: AccountId, rule: serde_json::Value) -> Channel {
        let input = NewChannel {
            kind: ChannelKind::Email,
            name: "E".to_owned().try_into().unwrap(),
            settings: Default::default(),
        };
        let ch = store.create_channel(a, input, "k".into()).await.unwrap();
        let routing: RoutingRule = serde_json::from_value(rule).unwrap();
        let patch = ChannelPatch {
            routing: Some(Some(routing)),
            ..Default::default()
        };
        store.update_channel(a, ch.id, patch).await.unwrap()
    }

    /// A waiting ticket, a user away until a time, the server restarted in
    /// between: the durable job still brings her back and drains the queue.
    #[tokio::test]
    async fn scheduled_work_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.db");
        let clock = Arc::new(FixedClock::new("2026-11-23T09:00:00Z".parse().unwrap()));
        let store = SqliteStore::open(&path, clock.clone()).unwrap();
        let (account, _) = acme(&store).await;
        let a = account.id;
        let ana = store
            .create_user(a, new_user("Ana", "ana@acme.example", Role::Agent))
            .await
            .unwrap();
        let away = ManualAvailability {
            status: ManualStatus::Away,
            until: Some("2026-11-23T10:00:00Z".parse().unwrap()),
        };
        store
            .change_availability(a, ana.id, AvailabilityChange::Manual(Some(away)))
            .await
            .unwrap();
        let ch = routed_channel(&store, a, serde_json::json!({"assign_to": "users_and_teams", "users": [ana.id], "waiting_queue": true}),).await;
        let mut input = new_ticket("waits");
        input.channel_id = Some(ch.id);
        let t = store
            .create_ticket(a, input, None, Actor::System)
            .await
            .unwrap()
            .value;
        assert_eq!(t.owner.user_id, None);
        store.close();
        drop(store);

        clock.advance(SignedDuration::from_mins(61));
        let reopened = SqliteStore::open(&path, clock.clone()).unwrap();
        assert!(
            reopened.run_due_jobs().await.unwrap() >= 1,
            "the job was kept on disk"
        );
        assert_eq!(
            reopened.get_ticket(a, t.id).await.unwrap().owner.user_id,
            Some(ana.id)
        );
        assert_eq!(
            reopened.counter_drift(a).await.unwrap(),
            Vec::<String>::new()
        );
    }

    /// Loads count tickets assigned in the last 30 days only: after 30 days
    /// the scheduler takes the ticket out of the load, and the counters still
    /// match a full recount.
    #[tokio::test]
    async fn loads_forget_tickets_assigned_more_than_30_days_ago() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(FixedClock::new("2026-11-01T09:00:00Z".parse().unwrap()));
        let store = SqliteStore::open(&dir.path().join("test.db"), clock.clone()).unwrap();
        let (account, _) = acme(&store).await;
        let a = account.id;
        let ana = store
            .create_user(a, new_user("Ana", "ana@acme.example", Role::Agent))
            .await
            .unwrap();
        let bob = store
            .create_user(a, new_user("Bob", "bob@acme.example", Role::Agent))
            .await
            .unwrap();
        let ch = routed_channel(
            &store,
            a,
            serde_json::json!({"assign_to": "users_and_teams", "users": [ana.id, bob.id]}),
        )
        .await;
        let create = || {
            let mut input = new_ticket("t");
            input.channel_id = Some(ch.id);
            store.create_ticket(a, input, None, Actor::System)
        };
        let first = create().await.unwrap().value.owner.user_id.unwrap();
        clock.advance(SignedDuration::from_hours(24 * 31));
        store.run_due_jobs().await.unwrap();
        assert_eq!(store.counter_drift(a).await.unwrap(), Vec::<String>::new());
        // The old ticket is still open but no longer counts in the load.
        let second = create().await.unwrap().value;
        let log = store.routing_log(a, second.id).await.unwrap();
        let load_of_first = log[0]
            .explanation
            .candidates
            .iter()
            .find(|c| c.user_id == first)
            .unwrap()
            .load;
        assert_eq!(
            load_of_first, 0,
            "a ticket assigned 31 days ago is not in the load"
        );
        let open = store
            .list_tickets(
                a,
                first,
                switchboard_store::TicketQuery {
                    view: Some(switchboard_store::View::Mine),
                    limit: 10,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(open.items.len(), 1, "it is still open and still hers");
        assert_eq!(store.counter_drift(a).await.unwrap(), Vec::<String>::new());
    }
}
