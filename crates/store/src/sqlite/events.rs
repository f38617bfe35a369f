//! The durable event sequence on SQLite: the ticket history itself.
//!
//! Each history line is an event and its row id is the event's number. The
//! single writer commits batches one after the other, and a batch becomes
//! visible to readers all at once (WAL), so row ids are already in commit
//! order: a reader that asks for `id > last` can never miss a row committed
//! later with a smaller number. History rows are never deleted, so a number
//! is never handed out twice (a job rolled back to its savepoint takes its
//! rows with it, but they were never seen). Retention deletes nothing: it
//! moves `event_log.purged_through`, and a client resuming from before it is
//! told to re-read, as on PostgreSQL.

use std::time::Duration;

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use switchboard_domain::{AccountId, TicketId};

use super::rows;
use crate::{EventsSince, Result, SequencedEvent, TicketEvent};

pub(super) fn latest(c: &Connection) -> Result<i64> {
    Ok(
        c.prepare_cached("SELECT coalesce(max(id), 0) FROM ticket_history")?
            .query_row([], |r| r.get::<_, i64>(0))?,
    )
}

fn purged_through(c: &Connection) -> Result<i64> {
    Ok(
        c.prepare_cached("SELECT purged_through FROM event_log WHERE id = 1")?
            .query_row([], |r| r.get(0))?,
    )
}

pub(super) fn since(
    c: &Connection,
    account: AccountId,
    after: i64,
    limit: u32,
) -> Result<EventsSince> {
    let purged = purged_through(c)?;
    let latest = latest(c)?;
    if after < purged || after > latest {
        return Ok(EventsSince::Reset { latest });
    }
    let mut stmt = c.prepare_cached(
        "SELECT id, ticket_id, at, actor, event FROM ticket_history
         WHERE id > ?2 AND account_id = ?1 ORDER BY id LIMIT ?3",
    )?;
    let found = stmt
        .query_map(params![account.0, after, limit], |r| {
            Ok(SequencedEvent {
                seq: r.get(0)?,
                event: TicketEvent::new(
                    account,
                    TicketId(r.get(1)?),
                    rows::ts(r.get(2)?),
                    rows::json(r, 3)?,
                    &rows::json(r, 4)?,
                ),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(EventsSince::Events(found))
}

/// Moves `purged_through` to the last event older than `retention`, and
/// deletes the outbox rows done that long ago. Returns how many events
/// passed out of retention.
pub(super) fn purge(c: &Connection, now: Timestamp, retention: Duration) -> Result<u64> {
    let cutoff =
        rows::ms(now).saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
    c.prepare_cached("DELETE FROM outbox WHERE state = 'done' AND updated_at < ?1")?
        .execute([cutoff])?;
    let purged = purged_through(c)?;
    let through = last_before(c, purged, latest(c)?, cutoff)?;
    if through <= purged {
        return Ok(0);
    }
    c.prepare_cached("UPDATE event_log SET purged_through = ?1 WHERE id = 1")?
        .execute([through])?;
    Ok((through - purged) as u64)
}

/// The last history id in `(low, high]` written before `cutoff` (or `low`).
/// The writer stamps lines with its clock as it commits them in id order,
/// so `at` grows with the id and a binary search over the primary key finds
/// it in a few dozen lookups, without an index on `at`.
fn last_before(c: &Connection, mut low: i64, mut high: i64, cutoff: i64) -> Result<i64> {
    let mut at_or_after =
        c.prepare_cached("SELECT id, at FROM ticket_history WHERE id >= ?1 ORDER BY id LIMIT 1")?;
    // Invariant: every line up to `low` is older than the cutoff; none
    // after `high` is.
    while low < high {
        let mid = low + (high - low + 1) / 2;
        let found: Option<(i64, i64)> = at_or_after
            .query_row([mid], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        match found {
            Some((id, at)) if at < cutoff => low = id.min(high),
            _ => high = mid - 1,
        }
    }
    Ok(low)
}
