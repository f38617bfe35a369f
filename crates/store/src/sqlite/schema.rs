//! Versioned migrations. Each file in `migrations/sqlite` runs once, in
//! order, inside one transaction with the bump of `PRAGMA user_version`.

use rusqlite::Connection;

use super::backend;
use crate::Result;

/// The migrations, in order; the version after each is its position + 1.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/0001_foundation.sql"),
    include_str!("../../migrations/sqlite/0002_routing.sql"),
    include_str!("../../migrations/sqlite/0003_notifications.sql"),
    include_str!("../../migrations/sqlite/0004_channels.sql"),
    include_str!("../../migrations/sqlite/0005_outbox.sql"),
    include_str!("../../migrations/sqlite/0006_events.sql"),
    include_str!("../../migrations/sqlite/0007_history_is_the_event_sequence.sql"),
    include_str!("../../migrations/sqlite/0008_load_expiry_per_account.sql"),
    include_str!("../../migrations/sqlite/0009_notifications.sql"),
    include_str!("../../migrations/sqlite/0010_workflows.sql"),
];

/// Brings the database up to the latest version.
pub fn migrate(conn: &mut Connection) -> Result<()> {
    let current: usize = conn
        .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
        .map_err(backend)? as usize;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction().map_err(backend)?;
        tx.execute_batch(sql).map_err(backend)?;
        tx.pragma_update(None, "user_version", (index + 1) as i64)
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
        tracing::info!(version = index + 1, "applied SQLite migration");
    }
    Ok(())
}
