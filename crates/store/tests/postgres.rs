//! The store conformance suite on PostgreSQL: the same cases as on SQLite,
//! each in a fresh schema of the test server (see
//! `switchboard_store::postgres::testing`).

use std::sync::Arc;

use switchboard_domain::SystemClock;
use switchboard_store::{PgStore, conformance::Fixture, postgres::testing::TestDatabase};

async fn fresh() -> Option<Fixture> {
    let db = TestDatabase::create().await?;
    let store = PgStore::connect(&db.url, Arc::new(SystemClock))
        .await
        .expect("connect to the test schema");
    Some(Fixture {
        store: Arc::new(store),
        guard: Box::new(db),
    })
}

switchboard_store::conformance_tests!(fresh());
