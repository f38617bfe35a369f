//! The durable event sequence on SQLite.
//!
//! Events are appended by `tickets::record` inside the writer's batch. The
//! single writer commits batches one after the other, and a batch becomes
//! visible to readers all at once (WAL), so row ids are already in commit
//! order: the `seq` primary key is the sequence number, and a reader that
//! asks for `seq > last` can never miss a row committed later with a
//! smaller number. A job rolled back to its savepoint takes its rows (and
//! the AUTOINCREMENT counter) with it.

use std::time::Duration;

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use switchboard_domain::AccountId;

use super::{backend, rows};
use crate::{EventsSince, Result, SequencedEvent, TicketEvent};

/// Appends `event` in the current write transaction.
pub(super) fn append(c: &Connection, event: &TicketEvent) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO events (account_id, ticket_id, at, payload) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        event.account_id.0,
        event.ticket_id.0,
        rows::ms(event.at),
        serde_json::to_string(event).map_err(backend)?,
    ])?;
    Ok(())
}

pub(super) fn latest(c: &Connection) -> Result<i64> {
    // The AUTOINCREMENT counter, which survives the deletion of every row.
    Ok(
        c.prepare_cached("SELECT seq FROM sqlite_sequence WHERE name = 'events'")?
            .query_row([], |r| r.get::<_, i64>(0))
            .optional()?
            .unwrap_or(0),
    )
}

pub(super) fn since(
    c: &Connection,
    account: AccountId,
    after: i64,
    limit: u32,
) -> Result<EventsSince> {
    let purged: i64 = c
        .prepare_cached("SELECT purged_through FROM event_log WHERE id = 1")?
        .query_row([], |r| r.get(0))?;
    let latest = latest(c)?;
    if after < purged || after > latest {
        return Ok(EventsSince::Reset { latest });
    }
    let mut stmt = c.prepare_cached(
        "SELECT seq, payload FROM events WHERE account_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
    )?;
    let found = stmt
        .query_map(params![account.0, after, limit], |r| {
            Ok(SequencedEvent {
                seq: r.get(0)?,
                event: rows::json(r, 1)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(EventsSince::Events(found))
}

/// Deletes the events older than `retention` (a prefix of the sequence, so
/// `purged_through` is exact) and outbox rows done that long ago.
pub(super) fn purge(c: &Connection, now: Timestamp, retention: Duration) -> Result<u64> {
    let cutoff =
        rows::ms(now).saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
    let through: Option<i64> = c
        .prepare_cached("SELECT max(seq) FROM events WHERE at < ?1")?
        .query_row([cutoff], |r| r.get(0))?;
    c.prepare_cached("DELETE FROM outbox WHERE state = 'done' AND updated_at < ?1")?
        .execute([cutoff])?;
    let Some(through) = through else {
        return Ok(0);
    };
    let deleted = c
        .prepare_cached("DELETE FROM events WHERE seq <= ?1")?
        .execute([through])?;
    c.prepare_cached("UPDATE event_log SET purged_through = max(purged_through, ?1) WHERE id = 1")?
        .execute([through])?;
    Ok(deleted as u64)
}
