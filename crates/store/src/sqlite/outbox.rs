//! The transactional outbox on SQLite. Every write (enqueue, claim, outcome,
//! manual retry) runs on the writer thread, so a claim cannot race another
//! claim: the single writer serialises them, and the lease only matters
//! across a crash and restart.

use std::time::Duration;

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row, params};
use switchboard_domain::{AccountId, MessageId, outbox::*};

use super::{OrNotFound, backend, rows};
use crate::{OutboxOutcome, Result, StoreError};

const COLUMNS: &str =
    "id, account_id, topic, payload, state, attempts, run_at, last_error, created_at, updated_at";

/// Writes an outbox row for `topic`, due now. Called inside the write
/// transaction of the change that asks for it, so the two commit together.
pub(super) fn enqueue(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    topic: &OutboxTopic,
) -> Result<()> {
    enqueue_at(c, now, now, account, topic)
}

/// [`enqueue`] for a row not to run before `run_at` (a workflow's delay).
pub(super) fn enqueue_at(
    c: &Connection,
    now: Timestamp,
    run_at: Timestamp,
    account: AccountId,
    topic: &OutboxTopic,
) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO outbox (account_id, topic, payload, state, attempts, run_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, 'pending', 0, ?5, ?4, ?4)",
    )?
    .execute(params![
        account.0,
        topic.name(),
        serde_json::to_string(topic).map_err(backend)?,
        rows::ms(now),
        rows::ms(run_at),
    ])?;
    Ok(())
}

/// A row, or the payload that could not be read (a topic this version does
/// not know).
fn entry(r: &Row<'_>) -> rusqlite::Result<std::result::Result<OutboxEntry, (i64, String)>> {
    let id: i64 = r.get(0)?;
    let topic = match rows::json::<OutboxTopic>(r, 3) {
        Ok(t) => t,
        Err(e) => return Ok(Err((id, e.to_string()))),
    };
    Ok(Ok(OutboxEntry {
        id,
        account_id: AccountId(r.get(1)?),
        topic,
        state: rows::parsed(r, 4)?,
        attempts: r.get(5)?,
        run_at: rows::ts(r.get(6)?),
        last_error: r.get(7)?,
        created_at: rows::ts(r.get(8)?),
        updated_at: rows::ts(r.get(9)?),
    }))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub(super) fn claim(
    c: &Connection,
    now: Timestamp,
    limit: u32,
    lease: Duration,
) -> Result<Vec<OutboxEntry>> {
    let lease_end = rows::ms(now).saturating_add(millis(lease));
    let sql = format!(
        "UPDATE outbox SET run_at = ?1, attempts = attempts + 1, updated_at = ?2
         WHERE id IN (SELECT id FROM outbox WHERE state = 'pending' AND run_at <= ?2 ORDER BY run_at, id LIMIT ?3)
         RETURNING {COLUMNS}"
    );
    let claimed = c
        .prepare_cached(&sql)?
        .query_map(params![lease_end, rows::ms(now), limit], entry)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut out = Vec::with_capacity(claimed.len());
    for row in claimed {
        match row {
            Ok(e) => out.push(e),
            // Written by a newer version, or damaged: failing it is better
            // than having it block every claim.
            Err((id, why)) => {
                c.prepare_cached(
                    "UPDATE outbox SET state = 'failed', last_error = ?1, updated_at = ?2 WHERE id = ?3",
                )?
                .execute(params![format!("unreadable payload: {why}"), rows::ms(now), id])?;
            }
        }
    }
    out.sort_by_key(|e| (e.run_at, e.id));
    Ok(out)
}

pub(super) fn complete(
    c: &Connection,
    now: Timestamp,
    id: i64,
    attempt: u32,
    outcome: OutboxOutcome,
) -> Result<bool> {
    let now_ms = rows::ms(now);
    // `attempts = ?` and `state = 'pending'`: only the claim that ran may
    // record its outcome (see `Outbox::complete_outbox`).
    let changed = match outcome {
        OutboxOutcome::Done => c
            .prepare_cached(
                "UPDATE outbox SET state = 'done', updated_at = ?1
                 WHERE id = ?2 AND attempts = ?3 AND state = 'pending'",
            )?
            .execute(params![now_ms, id, attempt])?,
        OutboxOutcome::Retry { after, error } => c
            .prepare_cached(
                "UPDATE outbox SET run_at = ?1, last_error = ?2, updated_at = ?3
                 WHERE id = ?4 AND attempts = ?5 AND state = 'pending'",
            )?
            .execute(params![
                now_ms.saturating_add(millis(after)),
                error,
                now_ms,
                id,
                attempt
            ])?,
        OutboxOutcome::Failed { error } => c
            .prepare_cached(
                "UPDATE outbox SET state = 'failed', last_error = ?1, updated_at = ?2
                 WHERE id = ?3 AND attempts = ?4 AND state = 'pending'",
            )?
            .execute(params![error, now_ms, id, attempt])?,
    };
    Ok(changed > 0)
}

pub(super) fn list(
    c: &Connection,
    account: AccountId,
    state: Option<OutboxState>,
    limit: u32,
) -> Result<Vec<OutboxEntry>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM outbox WHERE account_id = ?1 AND (?2 IS NULL OR state = ?2)
         ORDER BY id DESC LIMIT ?3"
    );
    let found = c
        .prepare_cached(&sql)?
        .query_map(
            params![account.0, state.map(OutboxState::as_str), limit],
            entry,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    // An unreadable row is listed by nobody until the dispatcher fails it.
    Ok(found.into_iter().filter_map(|r| r.ok()).collect())
}

fn get(c: &Connection, account: AccountId, id: i64) -> Result<OutboxEntry> {
    let sql = format!("SELECT {COLUMNS} FROM outbox WHERE id = ?1 AND account_id = ?2");
    c.prepare_cached(&sql)?
        .query_row(params![id, account.0], entry)
        .or_not_found("outbox row")?
        .map_err(|(_, why)| StoreError::Backend(format!("unreadable outbox row: {why}").into()))
}

pub(super) fn retry(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    id: i64,
) -> Result<OutboxEntry> {
    let changed = c
        .prepare_cached(
            "UPDATE outbox SET state = 'pending', attempts = 0, run_at = ?1, updated_at = ?1
             WHERE id = ?2 AND account_id = ?3 AND state = 'failed'",
        )?
        .execute(params![rows::ms(now), id, account.0])?;
    let row = get(c, account, id)?;
    if changed == 0 {
        return Err(StoreError::not_retryable(row.state));
    }
    Ok(row)
}

pub(super) fn count(c: &Connection, state: OutboxState) -> Result<u64> {
    let n: i64 = c
        .prepare_cached("SELECT count(*) FROM outbox WHERE state = ?1")?
        .query_row([state.as_str()], |r| r.get(0))?;
    Ok(n as u64)
}

pub(super) fn set_external_id(
    c: &Connection,
    account: AccountId,
    message: MessageId,
    external_id: &str,
) -> Result<bool> {
    let exists: Option<Option<String>> = c
        .prepare_cached("SELECT external_id FROM messages WHERE id = ?1 AND account_id = ?2")?
        .query_row(params![message.0, account.0], |r| r.get(0))
        .optional()?;
    match exists {
        None => Err(StoreError::NotFound("message")),
        Some(Some(_)) => Ok(false),
        Some(None) => {
            c.prepare_cached(
                "UPDATE messages SET external_id = ?1 WHERE id = ?2 AND account_id = ?3 AND external_id IS NULL",
            )?
            .execute(params![external_id, message.0, account.0])
            .map_err(|e| super::unique(e, "external_id", "a message with this external id exists"))?;
            Ok(true)
        }
    }
}
