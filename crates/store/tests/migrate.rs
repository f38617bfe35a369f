//! `migrate-data`: an SQLite database with routed tickets, copied into an
//! empty PostgreSQL schema, reads back the same through the PostgreSQL
//! store, and new rows get fresh ids.

use std::sync::Arc;

use serde_json::json;
use switchboard_domain::{input::*, *};
use switchboard_store::{
    PgStore, SqliteStore,
    conformance::{new_ticket, new_user},
    migrate,
    postgres::testing::TestDatabase,
    prelude::*,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqlite_database_moves_to_postgres_whole() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("source.db");
    let sqlite = SqliteStore::open(&path, Arc::new(SystemClock)).unwrap();
    let (account, admin) = sqlite
        .create_account(
            "Acme".to_owned().try_into().unwrap(),
            new_user("Admin", "admin@acme.example", Role::SuperAdmin),
            "hash".into(),
        )
        .await
        .unwrap();
    let a = account.id;
    let mut agents = Vec::new();
    for i in 0..3 {
        let u = sqlite
            .create_user(
                a,
                new_user(
                    &format!("Agent {i}"),
                    &format!("agent{i}@acme.example"),
                    Role::Agent,
                ),
            )
            .await
            .unwrap();
        agents.push(u.id);
    }
    let channel = sqlite
        .create_channel(
            a,
            NewChannel {
                kind: ChannelKind::Email,
                name: "Inbox".to_owned().try_into().unwrap(),
                settings: Default::default(),
            },
            "key-1".into(),
        )
        .await
        .unwrap();
    let rule: routing::RoutingRule = serde_json::from_value(json!({
        "assign_to": "users_and_teams", "users": agents, "distribution": "round_robin"
    }))
    .unwrap();
    sqlite
        .update_channel(
            a,
            channel.id,
            ChannelPatch {
                routing: Some(Some(rule)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let actor = Actor::User { user_id: admin.id };
    let mut tickets = Vec::new();
    for i in 0..7 {
        let mut t = new_ticket(&format!("ticket {i}"));
        t.channel_id = Some(channel.id);
        tickets.push(sqlite.create_ticket(a, t, None, actor).await.unwrap().value);
    }
    sqlite.close();
    drop(sqlite);

    let copied = migrate::sqlite_to_postgres(&path, &db.url).await.unwrap();
    assert!(copied.contains(&("tickets", 7)), "{copied:?}");
    assert!(copied.contains(&("users", 4)), "{copied:?}");

    let pg = PgStore::connect(&db.url, Arc::new(SystemClock))
        .await
        .unwrap();
    for t in &tickets {
        assert_eq!(&pg.get_ticket(a, t.id).await.unwrap(), t);
        assert_eq!(pg.routing_log(a, t.id).await.unwrap().len(), 1);
        assert!(!pg.history(a, t.id).await.unwrap().is_empty());
    }
    assert_eq!(pg.list_users(a).await.unwrap().len(), 4);
    assert_eq!(pg.counter_drift(a).await.unwrap(), Vec::<String>::new());
    // Round robin carries on where SQLite left off (7 = 2 cycles + 1), and
    // the new ticket gets an id after the copied ones.
    let mut t = new_ticket("after the move");
    t.channel_id = Some(channel.id);
    let next = pg.create_ticket(a, t, None, actor).await.unwrap().value;
    assert!(next.id.0 > tickets.last().unwrap().id.0);
    let owners: Vec<_> = tickets
        .iter()
        .chain([&next])
        .filter_map(|t| t.owner.user_id)
        .collect();
    for agent in &agents {
        let n = owners.iter().filter(|o| *o == agent).count();
        assert!((2..=3).contains(&n), "{owners:?}");
    }
    assert_eq!(
        owners
            .iter()
            .filter(|o| **o == next.owner.user_id.unwrap())
            .count(),
        3
    );
    // A second migration into the same (now populated) target is refused.
    let again = migrate::sqlite_to_postgres(&path, &db.url).await;
    assert!(
        matches!(
            again,
            Err(switchboard_store::StoreError::Conflict { field: "to", .. })
        ),
        "{again:?}"
    );
}
