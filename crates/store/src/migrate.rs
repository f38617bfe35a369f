//! `switchboard migrate-data`: copies an SQLite database into an empty
//! PostgreSQL database, table by table, in one PostgreSQL transaction.
//!
//! Both schemas have the same tables and columns (the PostgreSQL migration
//! is the SQLite schema after all its migrations), so rows are copied
//! column for column, ids included; identity sequences are then moved past
//! the highest copied id so new rows never collide. Either everything is
//! copied or nothing is (the transaction), and a target that already holds
//! accounts is refused rather than merged into.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, types::ValueRef};
use sqlx::{Connection as _, PgConnection};

use crate::{Result, StoreError, postgres::backend};

/// Tables in an order that satisfies every foreign key.
pub const TABLES: &[&str] = &[
    "accounts",
    "users",
    "teams",
    "team_members",
    "skills",
    "user_skills",
    "contacts",
    "contact_visitor_tokens",
    "channels",
    "tickets",
    "messages",
    "ticket_history",
    "idempotency_keys",
    "api_tokens",
    "user_ticket_counts",
    "round_robin",
    "routing_decisions",
    "jobs",
    "notifications",
    "notification_defaults",
    "notification_preferences",
    "notification_email",
    "attachments",
    "outbox",
];

/// Rows copied per table, in [`TABLES`] order.
pub type Copied = Vec<(&'static str, u64)>;

/// Copies the SQLite database at `from` into the PostgreSQL database at
/// `to` (migrating both to the latest schema first). The target must hold
/// no account.
pub async fn sqlite_to_postgres(from: &Path, to: &str) -> Result<Copied> {
    if !from.exists() {
        return Err(StoreError::Invalid(
            switchboard_domain::DomainError::invalid(
                "from",
                format!("no SQLite database at {}", from.display()),
            ),
        ));
    }
    {
        // Bring the source to the latest schema, so its columns match.
        let mut conn = Connection::open(from).map_err(backend)?;
        crate::sqlite::schema::migrate(&mut conn)?;
    }
    let source =
        Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(backend)?;
    // Migrate the target through the store, then copy on one connection.
    let store =
        crate::PgStore::connect(to, std::sync::Arc::new(switchboard_domain::SystemClock)).await?;
    store.close().await;
    let mut target = PgConnection::connect(to).await.map_err(backend)?;
    let mut tx = sqlx::Connection::begin(&mut target)
        .await
        .map_err(backend)?;
    let accounts: i64 = sqlx::query_scalar("SELECT count(*) FROM accounts")
        .fetch_one(&mut *tx)
        .await?;
    if accounts > 0 {
        return Err(StoreError::Conflict {
            field: "to",
            message: "the target database already holds accounts; migrate into an empty one".into(),
        });
    }
    let mut copied = Vec::new();
    for table in TABLES {
        let n = copy_table(&source, &mut tx, table).await?;
        copied.push((*table, n));
        tracing::info!(table, rows = n, "copied");
    }
    tx.commit().await.map_err(backend)?;
    Ok(copied)
}

/// Copies one table; returns the number of rows.
async fn copy_table(source: &Connection, target: &mut PgConnection, table: &str) -> Result<u64> {
    let columns: Vec<String> = source
        .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let list = columns.join(", ");
    let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
    let insert = format!(
        "INSERT INTO {table} ({list}) VALUES ({})",
        placeholders.join(", ")
    );
    let mut select = source.prepare(&format!("SELECT {list} FROM {table}"))?;
    let mut rows = select.query([])?;
    let mut n = 0;
    while let Some(row) = rows.next()? {
        let mut query = sqlx::query(&insert);
        for i in 0..columns.len() {
            // Integers go as BIGINT (PostgreSQL casts them on assignment to
            // INTEGER columns); NULL goes as a BIGINT NULL, which is
            // assignable to every column type of the schema.
            query = match row.get_ref(i)? {
                ValueRef::Null => query.bind(None::<i64>),
                ValueRef::Integer(v) => query.bind(v),
                ValueRef::Real(v) => query.bind(v),
                ValueRef::Text(t) => query.bind(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => query.bind(b.to_vec()),
            };
        }
        query.execute(&mut *target).await?;
        n += 1;
    }
    if columns.iter().any(|c| c == "id") {
        // New rows must get ids after the copied ones.
        sqlx::query(&format!(
            "SELECT setval(pg_get_serial_sequence('{table}', 'id'), coalesce(max(id), 0) + 1, false) FROM {table}"
        ))
        .execute(&mut *target)
        .await?;
    }
    Ok(n)
}
