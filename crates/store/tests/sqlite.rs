//! The store conformance suite and SQLite-specific checks, on a real
//! SQLite file in a temporary directory.

use std::sync::Arc;

use switchboard_domain::SystemClock;
use switchboard_store::{
    SqliteStore, Store,
    conformance::{Fixture, new_ticket, new_user},
};

async fn fresh() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("test.db"), Arc::new(SystemClock)).unwrap();
    Fixture {
        store: Arc::new(store),
        guard: Box::new(dir),
    }
}

switchboard_store::conformance_tests!(fresh());

#[tokio::test]
async fn committed_writes_survive_closing_and_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.db");
    let store = SqliteStore::open(&path, Arc::new(SystemClock)).unwrap();
    let (account, admin) = store
        .create_account(
            "acme".to_owned().try_into().unwrap(),
            new_user("A", "a@acme.example", switchboard_domain::Role::Agent),
            "h".into(),
        )
        .await
        .unwrap();
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
