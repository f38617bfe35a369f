//! Versioned migrations for PostgreSQL. Each file in `migrations/postgres`
//! runs once, in order, in one transaction with its row in
//! `schema_migrations`. Nodes starting at the same time take an advisory
//! lock first, so exactly one of them migrates and the others wait.

use sqlx::PgPool;

use super::backend;
use crate::Result;

/// The migrations, in order; the version after each is its position + 1.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/postgres/0001_initial.sql"),
    include_str!("../../migrations/postgres/0002_channels.sql"),
    include_str!("../../migrations/postgres/0003_outbox.sql"),
    include_str!("../../migrations/postgres/0004_events.sql"),
    include_str!("../../migrations/postgres/0005_routing_version.sql"),
    include_str!("../../migrations/postgres/0006_load_expiry_per_account.sql"),
    include_str!("../../migrations/postgres/0007_routing_deltas.sql"),
    include_str!("../../migrations/postgres/0008_notifications.sql"),
    include_str!("../../migrations/postgres/0009_workflows.sql"),
    include_str!("../../migrations/postgres/0010_settings_version.sql"),
];

/// The advisory lock key migrations hold ("sbmigrat" in ASCII).
const MIGRATION_LOCK: i64 = 0x7362_6d69_6772_6174;

/// Brings the database up to the latest version.
pub async fn migrate(pool: &PgPool) -> Result<()> {
    let mut tx = pool.begin().await.map_err(backend)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    let current: i64 =
        sqlx::query_scalar("SELECT coalesce(max(version), 0) FROM schema_migrations")
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        sqlx::raw_sql(sql)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        sqlx::query("INSERT INTO schema_migrations (version) VALUES ($1)")
            .bind(index as i64 + 1)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tracing::info!(version = index + 1, "applied PostgreSQL migration");
    }
    tx.commit().await.map_err(backend)?;
    Ok(())
}
