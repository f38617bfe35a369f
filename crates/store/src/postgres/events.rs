//! The durable event sequence on PostgreSQL, shared by every node.
//!
//! `writes::record` inserts each event with `seq` NULL inside the writing
//! transaction, and notifies the nodes (`pg_notify`, delivered at commit),
//! in the statement that writes the history line. Identity ids are handed out
//! at insert time but become visible at commit time, so a reader reading
//! `id > last` could pass over a row that commits late. Readers therefore
//! only see numbered rows, and numbers are handed out by [`assign`]: under a
//! transaction-level advisory lock (one assigner at a time, on any node), it
//! numbers every committed unnumbered row in id order, continuing from
//! `event_log.last_seq`, and commits. A number is thus visible only once
//! every smaller number is: `seq > last` cannot skip.
//!
//! Every node runs [`sequencer`]: it assigns when a notification arrives
//! (then forwards the notified events to local subscribers, so a stream woken
//! by one finds it numbered) and at least every second, which also numbers
//! rows whose notification was missed (a dropped LISTEN connection) or whose
//! writer died right after committing.

use std::time::Duration;

use jiff::Timestamp;
use sqlx::{PgConnection, PgPool, Row};
use switchboard_domain::AccountId;
use tokio::sync::{broadcast, mpsc};

use super::{backend, rows};
use crate::{EventsSince, Result, SequencedEvent, TicketEvent};

/// The class id (first key) of the assigner's lock, in the two-key form of
/// `pg_advisory_xact_lock`, whose key space does not overlap the one-key
/// form of the routing locks ("SE").
const SEQUENCE_LOCK_CLASS: i32 = 0x5345;

/// Rows numbered per assigner transaction.
const ASSIGN_BATCH: i64 = 5000;

/// How often each node assigns without being notified.
const ASSIGN_EVERY: Duration = Duration::from_secs(1);

/// Numbers every committed unnumbered event; returns how many.
pub(super) async fn assign(pool: &PgPool) -> Result<u64> {
    // Cheap check first, without the lock: an idle system takes no lock.
    // A row being numbered by another assigner still reads as unnumbered
    // here, so this never wrongly skips.
    let pending: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM events WHERE seq IS NULL)")
            .fetch_one(pool)
            .await?;
    if !pending {
        return Ok(0);
    }
    let mut total = 0;
    loop {
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1, 0)")
            .bind(SEQUENCE_LOCK_CLASS)
            .execute(&mut *tx)
            .await?;
        // At READ COMMITTED each statement sees what committed before it
        // began, and these begin after the lock: the previous assigner's
        // numbers and counter are visible.
        let base: i64 = sqlx::query_scalar("SELECT last_seq FROM event_log WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        let numbered = sqlx::query(
            "UPDATE events e SET seq = $1 + p.n
             FROM (SELECT id, row_number() OVER (ORDER BY id) AS n
                   FROM events WHERE seq IS NULL ORDER BY id LIMIT $2) p
             WHERE e.id = p.id",
        )
        .bind(base)
        .bind(ASSIGN_BATCH)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("UPDATE event_log SET last_seq = last_seq + $1 WHERE id = 1")
            .bind(numbered as i64)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        total += numbered;
        if numbered < ASSIGN_BATCH as u64 {
            return Ok(total);
        }
    }
}

/// Numbers events as their notifications arrive (and every second), then
/// hands the notified events to this node's subscribers. Ends when the
/// listener does (the store was closed).
pub(super) async fn sequencer(
    pool: PgPool,
    mut notified: mpsc::UnboundedReceiver<TicketEvent>,
    subscribers: broadcast::Sender<TicketEvent>,
) {
    let mut tick = tokio::time::interval(ASSIGN_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let mut batch = Vec::new();
        tokio::select! {
            event = notified.recv() => match event {
                Some(e) => batch.push(e),
                None => return,
            },
            _ = tick.tick() => {}
        }
        // Everything that queued meanwhile goes with this assignment.
        while let Ok(e) = notified.try_recv() {
            batch.push(e);
        }
        if let Err(e) = assign(&pool).await {
            if pool.is_closed() {
                return;
            }
            // The next tick tries again; subscribers are woken regardless
            // and re-read when the numbers are there.
            tracing::warn!(error = %e, "cannot number events");
        }
        for event in batch {
            // No subscriber is not an error.
            let _ = subscribers.send(event);
        }
    }
}

pub(super) async fn latest(c: &mut PgConnection) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT last_seq FROM event_log WHERE id = 1")
            .fetch_one(&mut *c)
            .await?,
    )
}

pub(super) async fn since(
    c: &mut PgConnection,
    account: AccountId,
    after: i64,
    limit: u32,
) -> Result<EventsSince> {
    let row = sqlx::query("SELECT last_seq, purged_through FROM event_log WHERE id = 1")
        .fetch_one(&mut *c)
        .await?;
    let latest: i64 = rows::get(&row, "last_seq")?;
    let purged: i64 = rows::get(&row, "purged_through")?;
    if after < purged || after > latest {
        return Ok(EventsSince::Reset { latest });
    }
    let found = sqlx::query(
        "SELECT seq, payload FROM events WHERE account_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
    )
    .bind(account.0)
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(&mut *c)
    .await?;
    let events = found
        .iter()
        .map(|r| {
            Ok(SequencedEvent {
                seq: r.try_get("seq").map_err(backend)?,
                event: rows::json(r, "payload")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(EventsSince::Events(events))
}

/// Deletes numbered events older than `retention` (a prefix of the
/// sequence, so `purged_through` is exact) and outbox rows done that long
/// ago.
pub(super) async fn purge(
    c: &mut PgConnection,
    now: Timestamp,
    retention: Duration,
) -> Result<u64> {
    let cutoff =
        rows::ms(now).saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
    sqlx::query("DELETE FROM outbox WHERE state = 'done' AND updated_at < $1")
        .bind(cutoff)
        .execute(&mut *c)
        .await?;
    let through: Option<i64> =
        sqlx::query_scalar("SELECT max(seq) FROM events WHERE seq IS NOT NULL AND at < $1")
            .bind(cutoff)
            .fetch_one(&mut *c)
            .await?;
    let Some(through) = through else {
        return Ok(0);
    };
    let deleted = sqlx::query("DELETE FROM events WHERE seq <= $1")
        .bind(through)
        .execute(&mut *c)
        .await?
        .rows_affected();
    sqlx::query("UPDATE event_log SET purged_through = greatest(purged_through, $1) WHERE id = 1")
        .bind(through)
        .execute(&mut *c)
        .await?;
    Ok(deleted)
}
