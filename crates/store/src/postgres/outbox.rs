//! The transactional outbox on PostgreSQL, shared by every node.
//!
//! Claims are one `UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP
//! LOCKED)`: two nodes claiming at the same instant skip each other's rows
//! instead of waiting, and the claim moves `run_at` to the end of a lease in
//! the same statement, so once it commits no node sees the row as due until
//! the lease runs out. A node that dies mid-run therefore gives the row back
//! by itself; the attempt counter, bumped by every claim, fences off a slow
//! runner whose lease ran out (its outcome no longer matches the row).

use std::time::Duration;

use jiff::Timestamp;
use sqlx::{PgConnection, PgPool, postgres::PgRow};
use switchboard_domain::{AccountId, MessageId, outbox::*};

use super::{OrNotFound, backend, rows};
use crate::{OutboxOutcome, Result, StoreError};

const COLUMNS: &str =
    "id, account_id, topic, payload, state, attempts, run_at, last_error, created_at, updated_at";

/// Writes an outbox row for `topic`, due now. Called inside the write
/// transaction of the change that asks for it, so the two commit together.
pub(super) async fn enqueue(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    topic: &OutboxTopic,
) -> Result<()> {
    enqueue_at(c, now, now, account, topic).await
}

/// [`enqueue`] for a row not to run before `run_at` (a workflow's delay).
pub(super) async fn enqueue_at(
    c: &mut PgConnection,
    now: Timestamp,
    run_at: Timestamp,
    account: AccountId,
    topic: &OutboxTopic,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO outbox (account_id, topic, payload, state, attempts, run_at, created_at, updated_at)
         VALUES ($1, $2, $3, 'pending', 0, $5, $4, $4)",
    )
    .bind(account.0)
    .bind(topic.name())
    .bind(serde_json::to_string(topic).map_err(backend)?)
    .bind(rows::ms(now))
    .bind(rows::ms(run_at))
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// A row, or the id and reason of a payload that could not be read (a topic
/// this version does not know).
fn entry(r: &PgRow) -> Result<std::result::Result<OutboxEntry, (i64, String)>> {
    let id: i64 = rows::get(r, "id")?;
    let topic = match rows::json::<OutboxTopic>(r, "payload") {
        Ok(t) => t,
        Err(e) => return Ok(Err((id, e.to_string()))),
    };
    Ok(Ok(OutboxEntry {
        id,
        account_id: AccountId(rows::get(r, "account_id")?),
        topic,
        state: rows::parsed(r, "state")?,
        attempts: rows::get::<i32>(r, "attempts")?.max(0) as u32,
        run_at: rows::ts(rows::get(r, "run_at")?),
        last_error: rows::get(r, "last_error")?,
        created_at: rows::ts(rows::get(r, "created_at")?),
        updated_at: rows::ts(rows::get(r, "updated_at")?),
    }))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The attempt count as stored (INTEGER).
fn attempts(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

pub(super) async fn claim(
    pool: &PgPool,
    now: Timestamp,
    limit: u32,
    lease: Duration,
) -> Result<Vec<OutboxEntry>> {
    let lease_end = rows::ms(now).saturating_add(millis(lease));
    let sql = format!(
        "UPDATE outbox SET run_at = $1, attempts = attempts + 1, updated_at = $2
         WHERE id IN (SELECT id FROM outbox WHERE state = 'pending' AND run_at <= $2
                      ORDER BY run_at, id LIMIT $3 FOR UPDATE SKIP LOCKED)
         RETURNING {COLUMNS}"
    );
    let claimed = sqlx::query(&sql)
        .bind(lease_end)
        .bind(rows::ms(now))
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?;
    let mut out = Vec::with_capacity(claimed.len());
    for row in &claimed {
        match entry(row)? {
            Ok(e) => out.push(e),
            // Written by a newer version, or damaged: failing it is better
            // than having it come back at every lease.
            Err((id, why)) => {
                sqlx::query(
                    "UPDATE outbox SET state = 'failed', last_error = $1, updated_at = $2 WHERE id = $3",
                )
                .bind(format!("unreadable payload: {why}"))
                .bind(rows::ms(now))
                .bind(id)
                .execute(pool)
                .await?;
            }
        }
    }
    out.sort_by_key(|e| (e.run_at, e.id));
    Ok(out)
}

pub(super) async fn complete(
    pool: &PgPool,
    now: Timestamp,
    id: i64,
    attempt: u32,
    outcome: OutboxOutcome,
) -> Result<bool> {
    let now_ms = rows::ms(now);
    // `attempts = $n` and `state = 'pending'`: only the claim that ran may
    // record its outcome (see `Outbox::complete_outbox`).
    let done = match outcome {
        OutboxOutcome::Done => {
            sqlx::query(
                "UPDATE outbox SET state = 'done', updated_at = $1
                 WHERE id = $2 AND attempts = $3 AND state = 'pending'",
            )
            .bind(now_ms)
            .bind(id)
            .bind(attempts(attempt))
            .execute(pool)
            .await?
        }
        OutboxOutcome::Retry { after, error } => {
            sqlx::query(
                "UPDATE outbox SET run_at = $1, last_error = $2, updated_at = $3
                 WHERE id = $4 AND attempts = $5 AND state = 'pending'",
            )
            .bind(now_ms.saturating_add(millis(after)))
            .bind(error)
            .bind(now_ms)
            .bind(id)
            .bind(attempts(attempt))
            .execute(pool)
            .await?
        }
        OutboxOutcome::Failed { error } => {
            sqlx::query(
                "UPDATE outbox SET state = 'failed', last_error = $1, updated_at = $2
                 WHERE id = $3 AND attempts = $4 AND state = 'pending'",
            )
            .bind(error)
            .bind(now_ms)
            .bind(id)
            .bind(attempts(attempt))
            .execute(pool)
            .await?
        }
    };
    Ok(done.rows_affected() > 0)
}

pub(super) async fn list(
    c: &mut PgConnection,
    account: AccountId,
    state: Option<OutboxState>,
    limit: u32,
) -> Result<Vec<OutboxEntry>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM outbox WHERE account_id = $1 AND ($2::text IS NULL OR state = $2)
         ORDER BY id DESC LIMIT $3"
    );
    let found = sqlx::query(&sql)
        .bind(account.0)
        .bind(state.map(OutboxState::as_str))
        .bind(i64::from(limit))
        .fetch_all(&mut *c)
        .await?;
    let mut out = Vec::with_capacity(found.len());
    for row in &found {
        // An unreadable row is listed by nobody until the dispatcher fails it.
        if let Ok(e) = entry(row)? {
            out.push(e);
        }
    }
    Ok(out)
}

pub(super) async fn retry(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    id: i64,
) -> Result<OutboxEntry> {
    let changed = sqlx::query(
        "UPDATE outbox SET state = 'pending', attempts = 0, run_at = $1, updated_at = $1
         WHERE id = $2 AND account_id = $3 AND state = 'failed'",
    )
    .bind(rows::ms(now))
    .bind(id)
    .bind(account.0)
    .execute(&mut *c)
    .await?
    .rows_affected();
    let sql = format!("SELECT {COLUMNS} FROM outbox WHERE id = $1 AND account_id = $2");
    let row = sqlx::query(&sql)
        .bind(id)
        .bind(account.0)
        .fetch_optional(&mut *c)
        .await
        .or_not_found("outbox row")?;
    let row = entry(&row)?
        .map_err(|(_, why)| StoreError::Backend(format!("unreadable outbox row: {why}").into()))?;
    if changed == 0 {
        return Err(StoreError::not_retryable(row.state));
    }
    Ok(row)
}

pub(super) async fn count(pool: &PgPool, state: OutboxState) -> Result<u64> {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE state = $1")
        .bind(state.as_str())
        .fetch_one(pool)
        .await?;
    Ok(n as u64)
}

pub(super) async fn set_external_id(
    c: &mut PgConnection,
    account: AccountId,
    message: MessageId,
    external_id: &str,
) -> Result<bool> {
    let current: Option<Option<String>> =
        sqlx::query_scalar("SELECT external_id FROM messages WHERE id = $1 AND account_id = $2")
            .bind(message.0)
            .bind(account.0)
            .fetch_optional(&mut *c)
            .await?;
    match current {
        None => Err(StoreError::NotFound("message")),
        Some(Some(_)) => Ok(false),
        Some(None) => {
            let done = sqlx::query(
                "UPDATE messages SET external_id = $1 WHERE id = $2 AND account_id = $3 AND external_id IS NULL",
            )
            .bind(external_id)
            .bind(message.0)
            .bind(account.0)
            .execute(&mut *c)
            .await
            .map_err(|e| super::unique(e, "external_id", "a message with this external id exists"))?;
            Ok(done.rows_affected() > 0)
        }
    }
}
