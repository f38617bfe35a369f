//! The writes every change is made of, below both the ticket operations
//! (`tickets`) and routing (`routing`): a ticket read and saved (its owners'
//! counters moved with it), an owner moved, a history line recorded (with
//! its event), a job scheduled. Both call down here; this
//! module calls neither, so there is no circle between them.

use jiff::Timestamp;
use rusqlite::{Connection, params};
use switchboard_domain::{jobs, routing::*, *};

use super::{OrNotFound, directory, routing_state, rows};
use crate::Result;

pub(super) fn record(
    c: &Connection,
    account: AccountId,
    ticket: TicketId,
    at: Timestamp,
    actor: Actor,
    event: &HistoryEvent,
) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO ticket_history (account_id, ticket_id, at, actor, event) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        account.0,
        ticket.0,
        rows::ms(at),
        serde_json::to_string(&actor).map_err(super::backend)?,
        serde_json::to_string(event).map_err(super::backend)?,
    ])?;
    // The row is the durable event too (its id is the event's number, see
    // `events`); published by the writer once the batch commits (never if
    // it rolls back) as a wake-up for live streams.
    super::writer::publish(crate::TicketEvent::new(account, ticket, at, actor, event));
    Ok(())
}

pub(super) fn get(c: &Connection, account: AccountId, id: TicketId) -> Result<Ticket> {
    let sql = format!(
        "SELECT {} FROM tickets WHERE id = ?1 AND account_id = ?2",
        rows::TICKET_COLUMNS
    );
    c.prepare_cached(&sql)?
        .query_row(params![id.0, account.0], rows::ticket)
        .or_not_found("ticket")
}

/// Writes every mutable column of `t` back, and keeps the owners' open and
/// load counters in step with the change (see `routing::adjust_counters`).
pub(super) fn save(c: &Connection, now: Timestamp, account: AccountId, t: &Ticket) -> Result<()> {
    let load_counted = adjust_counters(c, now, account, t)?;
    c.prepare_cached(
        "UPDATE tickets SET subject = ?1, content = ?2, status = ?3, stage = ?4, priority = ?5, owner_user_id = ?6,
            owner_team_id = ?7, assigned_at = ?8, contact_id = ?9, properties = ?10, first_reply_at = ?11,
            updated_at = ?12, closed_at = ?13, load_counted = ?16
         WHERE id = ?14 AND account_id = ?15",
    )?
    .execute(params![
        t.subject,
        t.content,
        t.status.as_str(),
        t.stage.as_str(),
        t.priority.as_str(),
        t.owner.user_id.map(|u| u.0),
        t.owner.team_id.map(|u| u.0),
        t.assigned_at.map(rows::ms),
        t.contact_id.map(|u| u.0),
        serde_json::to_string(&t.properties).map_err(super::backend)?,
        t.first_reply_at.map(rows::ms),
        rows::ms(t.updated_at),
        t.closed_at.map(rows::ms),
        t.id.0,
        account.0,
        load_counted,
    ])?;
    Ok(())
}

/// Gives the ticket a new owner and records why, after checking that the
/// owner user and team belong to the account.
pub(super) fn move_owner(
    c: &Connection,
    account: AccountId,
    t: &mut Ticket,
    to: Owner,
    now: Timestamp,
    actor: Actor,
    reason: OwnerReason,
) -> Result<()> {
    if let Some(user) = to.user_id {
        directory::ensure_exists(c, "users", account, user.0, "user_id")?;
    }
    if let Some(team) = to.team_id {
        directory::ensure_exists(c, "teams", account, team.0, "team_id")?;
    }
    move_owner_checked(c, account, t, to, now, actor, reason)
}

/// [`move_owner`] for an owner known to belong to the account (routing
/// picks from the account's own routing state).
pub(super) fn move_owner_checked(
    c: &Connection,
    account: AccountId,
    t: &mut Ticket,
    to: Owner,
    now: Timestamp,
    actor: Actor,
    reason: OwnerReason,
) -> Result<()> {
    let Some(moved) = ticket::move_owner(t, to, now, reason) else {
        return Ok(());
    };
    if let Some(user) = moved.assigned {
        assigned(c, account, user, now)?;
    }
    record(c, account, t.id, now, actor, &moved.event)
}

/// `user` was just given a ticket: round robin and load balancing break
/// ties by the longest wait since.
pub(super) fn assigned(
    c: &Connection,
    account: AccountId,
    user: UserId,
    now: Timestamp,
) -> Result<()> {
    c.prepare_cached("UPDATE users SET last_assigned_at = ?1 WHERE id = ?2 AND account_id = ?3")?
        .execute(params![rows::ms(now), user.0, account.0])?;
    routing_state::if_loaded(account, |s| s.assigned(user, now));
    Ok(())
}

/// Adds a counter delta to the stored counters and to the kept state.
pub(super) fn bump(c: &Connection, account: AccountId, d: &CounterDelta) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO user_ticket_counts (account_id, user_id, type, open_count, load_count) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (user_id, type) DO UPDATE SET open_count = open_count + ?4, load_count = load_count + ?5",
    )?
    .execute(params![account.0, d.user.0, d.ticket_type.as_str(), d.open, d.load])?;
    routing_state::if_loaded(account, |s| {
        s.counts_changed(d.user, d.ticket_type, d.open, d.load)
    });
    Ok(())
}

/// Moves the owners' counters from the ticket's stored state to `t`'s
/// ([`counter_moves`]), and returns whether `t` counts in its owner's load.
/// Called by every save.
pub(super) fn adjust_counters(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    t: &Ticket,
) -> Result<bool> {
    let old = c
        .prepare_cached("SELECT owner_user_id, status, load_counted FROM tickets WHERE id = ?1 AND account_id = ?2")?
        .query_row(params![t.id.0, account.0], |r| {
            Ok(Counted {
                owner: r.get::<_, Option<i64>>(0)?.map(UserId),
                open: r.get::<_, String>(1)? == "open",
                in_load: r.get(2)?,
            })
        })?;
    let moves = counter_moves(old, t, now);
    apply_counter_moves(c, account, &moves)?;
    Ok(moves.in_load)
}

/// Carries out `moves`: the counter deltas and the account's load-expiry
/// job.
pub(super) fn apply_counter_moves(
    c: &Connection,
    account: AccountId,
    moves: &CounterMoves,
) -> Result<()> {
    for d in &moves.deltas {
        bump(c, account, d)?;
    }
    // The account's load-expiry job comes due at its oldest counted
    // assignment's expiry; a later one never moves it. (A ticket that stops
    // counting leaves it alone: when it comes due it finds the next one.)
    if let Some(at) = moves.expires_at {
        schedule_by(c, account, JobKind::LoadExpiry, account.0, at)?;
    }
    Ok(())
}

/// Schedules the job of `kind` for `subject` at `at`, or earlier if it is
/// already due earlier: a job that stands for several instants runs at the
/// first. (No row is written when it stays where it is.)
pub(super) fn schedule_by(
    c: &Connection,
    account: AccountId,
    kind: JobKind,
    subject: i64,
    at: Timestamp,
) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO jobs (account_id, run_at, kind, key, subject_id) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (key) DO UPDATE SET run_at = ?2 WHERE ?2 < jobs.run_at",
    )?
    .execute(params![
        account.0,
        jobs::run_at_ms(at),
        kind.as_str(),
        kind.key(account, subject),
        subject
    ])?;
    Ok(())
}

/// Schedules (or moves) the job of `kind` for `subject`.
pub(super) fn schedule(
    c: &Connection,
    account: AccountId,
    kind: JobKind,
    subject: i64,
    at: Timestamp,
) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO jobs (account_id, run_at, kind, key, subject_id) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (key) DO UPDATE SET run_at = ?2",
    )?
    .execute(params![
        account.0,
        jobs::run_at_ms(at),
        kind.as_str(),
        kind.key(account, subject),
        subject
    ])?;
    Ok(())
}

pub(super) fn unschedule(
    c: &Connection,
    account: AccountId,
    kind: JobKind,
    subject: i64,
) -> Result<()> {
    c.prepare_cached("DELETE FROM jobs WHERE key = ?1")?
        .execute([kind.key(account, subject)])?;
    Ok(())
}
