//! The writes every change is made of, below both the ticket operations
//! (`tickets`) and routing (`routing`): a ticket read and saved (its owners'
//! counters moved with it), an owner moved, a history line recorded (with
//! its event), a job scheduled. Both call down here; this
//! module calls neither, so there is no circle between them.

use jiff::Timestamp;
use sqlx::PgConnection;
use switchboard_domain::{jobs, routing::*, *};

use super::{OrNotFound, backend, directory, routing_state, rows};
use crate::{Result, TicketEvent};

/// Records one history line of `ticket`, with its durable event and the
/// wake-up for live streams.
pub(super) async fn record(
    c: &mut PgConnection,
    account: AccountId,
    ticket: TicketId,
    at: Timestamp,
    actor: Actor,
    event: &HistoryEvent,
) -> Result<()> {
    record_lines(c, account, ticket, at, &[(actor, event)]).await
}

/// Records history lines of `ticket`, in order, each with its durable
/// event (numbered after commit, see `events`) and its wake-up for live
/// streams: one round trip for them all, as data-modifying CTEs run
/// whether or not the query reads them. A routed create writes two lines
/// under the account's routing lock, so each round trip saved here is time
/// the lock is not held.
pub(super) async fn record_lines(
    c: &mut PgConnection,
    account: AccountId,
    ticket: TicketId,
    at: Timestamp,
    lines: &[(Actor, &HistoryEvent)],
) -> Result<()> {
    let mut actors = Vec::with_capacity(lines.len());
    let mut events = Vec::with_capacity(lines.len());
    let mut payloads = Vec::with_capacity(lines.len());
    for (actor, event) in lines {
        let event = TicketEvent::new(account, ticket, at, *actor, event);
        payloads.push(serde_json::to_string(&event).map_err(backend)?);
        actors.push(serde_json::to_string(actor).map_err(backend)?);
        events.push(serde_json::to_string(&event.event).map_err(backend)?);
    }
    // `WITH ORDINALITY ... ORDER BY n`: ids (the history's order, the
    // events' numbering) follow the lines' order.
    sqlx::query(
        "WITH line AS (
             INSERT INTO ticket_history (account_id, ticket_id, at, actor, event)
             SELECT $1, $2, $3, x.actor, x.event
             FROM unnest($4::text[], $5::text[]) WITH ORDINALITY AS x(actor, event, n) ORDER BY x.n
         ), durable AS (
             INSERT INTO events (account_id, ticket_id, at, payload)
             SELECT $1, $2, $3, y.payload FROM unnest($6::text[]) WITH ORDINALITY AS y(payload, n) ORDER BY y.n
         )
         SELECT pg_notify($7 || current_schema(), z.payload)
         FROM unnest($6::text[]) WITH ORDINALITY AS z(payload, n) ORDER BY z.n",
    )
    .bind(account.0)
    .bind(ticket.0)
    .bind(rows::ms(at))
    .bind(actors)
    .bind(events)
    .bind(payloads)
    .bind(super::EVENTS_CHANNEL)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// One ticket.
pub(super) async fn get(c: &mut PgConnection, account: AccountId, id: TicketId) -> Result<Ticket> {
    let sql = format!(
        "SELECT {} FROM tickets WHERE id = $1 AND account_id = $2",
        rows::TICKET_COLUMNS
    );
    let row = sqlx::query(&sql)
        .bind(id.0)
        .bind(account.0)
        .fetch_optional(&mut *c)
        .await
        .or_not_found("ticket")?;
    rows::ticket(&row)
}

/// Writes every mutable column of `t` back, and keeps the owners' open and
/// load counters in step with the change (see `routing::adjust_counters`).
/// The caller holds the account's routing lock.
pub(super) async fn save(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    t: &Ticket,
) -> Result<()> {
    let load_counted = adjust_counters(c, now, account, t).await?;
    sqlx::query(
        "UPDATE tickets SET subject = $1, content = $2, status = $3, stage = $4, priority = $5, owner_user_id = $6,
            owner_team_id = $7, assigned_at = $8, contact_id = $9, properties = $10, first_reply_at = $11,
            updated_at = $12, closed_at = $13, load_counted = $16
         WHERE id = $14 AND account_id = $15",
    )
    .bind(&t.subject)
    .bind(&t.content)
    .bind(t.status.as_str())
    .bind(t.stage.as_str())
    .bind(t.priority.as_str())
    .bind(t.owner.user_id.map(|u| u.0))
    .bind(t.owner.team_id.map(|u| u.0))
    .bind(t.assigned_at.map(rows::ms))
    .bind(t.contact_id.map(|u| u.0))
    .bind(serde_json::to_string(&t.properties).map_err(backend)?)
    .bind(t.first_reply_at.map(rows::ms))
    .bind(rows::ms(t.updated_at))
    .bind(t.closed_at.map(rows::ms))
    .bind(t.id.0)
    .bind(account.0)
    .bind(i32::from(load_counted))
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Gives the ticket a new owner and records why, after checking that the
/// owner user and team belong to the account.
pub(super) async fn move_owner(
    c: &mut PgConnection,
    account: AccountId,
    t: &mut Ticket,
    to: Owner,
    now: Timestamp,
    actor: Actor,
    reason: OwnerReason,
) -> Result<()> {
    if let Some(user) = to.user_id {
        directory::ensure_exists(c, "users", account, user.0, "user_id").await?;
    }
    if let Some(team) = to.team_id {
        directory::ensure_exists(c, "teams", account, team.0, "team_id").await?;
    }
    move_owner_checked(c, account, t, to, now, actor, reason).await
}

/// [`move_owner`] for an owner known to belong to the account (routing
/// picks from the account's own routing state).
pub(super) async fn move_owner_checked(
    c: &mut PgConnection,
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
        assigned(c, account, user, now).await?;
    }
    record(c, account, t.id, now, actor, &moved.event).await
}

/// `user` was just given a ticket: round robin and load balancing break
/// ties by the longest wait since.
pub(super) async fn assigned(
    c: &mut PgConnection,
    account: AccountId,
    user: UserId,
    now: Timestamp,
) -> Result<()> {
    let deferred = routing_state::shared(|s| {
        let latest = s.deferred.assigned.entry(user).or_insert(now);
        *latest = (*latest).max(now);
    });
    if deferred.is_none() {
        sqlx::query("UPDATE users SET last_assigned_at = $1 WHERE id = $2 AND account_id = $3")
            .bind(rows::ms(now))
            .bind(user.0)
            .bind(account.0)
            .execute(&mut *c)
            .await?;
    }
    routing_state::changed(account, StateDelta::Assigned { user, at: now });
    Ok(())
}

/// Adds a counter delta to the stored counters and to the kept state.
pub(super) async fn bump(c: &mut PgConnection, account: AccountId, d: &CounterDelta) -> Result<()> {
    let deferred = routing_state::shared(|s| {
        let sum = s
            .deferred
            .counts
            .entry((d.user, d.ticket_type))
            .or_default();
        *sum = (sum.0 + d.open, sum.1 + d.load);
    });
    if deferred.is_some() {
        routing_state::changed(account, StateDelta::Counts(*d));
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO user_ticket_counts (account_id, user_id, type, open_count, load_count) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (user_id, type) DO UPDATE
         SET open_count = user_ticket_counts.open_count + EXCLUDED.open_count,
             load_count = user_ticket_counts.load_count + EXCLUDED.load_count",
    )
    .bind(account.0)
    .bind(d.user.0)
    .bind(d.ticket_type.as_str())
    .bind(d.open)
    .bind(d.load)
    .execute(&mut *c)
    .await?;
    routing_state::changed(account, StateDelta::Counts(*d));
    Ok(())
}

/// Moves the owners' counters from the ticket's stored state to `t`'s
/// ([`counter_moves`]), and returns whether `t` counts in its owner's load.
/// Called by every save.
///
/// Reads the stored state without a row lock: every caller holds the
/// account's routing lock, and every write that changes a ticket's owner or
/// status does too, so the stored state cannot change under us.
pub(super) async fn adjust_counters(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    t: &Ticket,
) -> Result<bool> {
    let row = sqlx::query(
        "SELECT owner_user_id, status, load_counted FROM tickets WHERE id = $1 AND account_id = $2",
    )
    .bind(t.id.0)
    .bind(account.0)
    .fetch_one(&mut *c)
    .await?;
    let old = Counted {
        owner: rows::get::<Option<i64>>(&row, 0)?.map(UserId),
        open: rows::get::<String>(&row, 1)? == "open",
        in_load: rows::flag(&row, 2)?,
    };
    let moves = counter_moves(old, t, now);
    apply_counter_moves(c, account, &moves).await?;
    Ok(moves.in_load)
}

/// Carries out `moves`: the counter deltas and the account's load-expiry
/// job.
pub(super) async fn apply_counter_moves(
    c: &mut PgConnection,
    account: AccountId,
    moves: &CounterMoves,
) -> Result<()> {
    for d in &moves.deltas {
        bump(c, account, d).await?;
    }
    // The account's load-expiry job comes due at its oldest counted
    // assignment's expiry; a later one never moves it. (A ticket that stops
    // counting leaves it alone: when it comes due it finds the next one.)
    if let Some(at) = moves.expires_at {
        schedule_by(c, account, JobKind::LoadExpiry, account.0, at).await?;
    }
    Ok(())
}

/// Schedules the job of `kind` for `subject` at `at`, or earlier if it is
/// already due earlier: a job that stands for several instants runs at the
/// first. (No row is written when it stays where it is.)
pub(super) async fn schedule_by(
    c: &mut PgConnection,
    account: AccountId,
    kind: JobKind,
    subject: i64,
    at: Timestamp,
) -> Result<()> {
    let key = kind.key(account, subject);
    // In a batch, the first create's request stands for the later ones'.
    let asked = routing_state::shared(|s| match s.scheduled_by.get(&key) {
        Some(earlier) if *earlier <= at => true,
        _ => {
            s.scheduled_by.insert(key.clone(), at);
            false
        }
    });
    if asked == Some(true) {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO jobs (account_id, run_at, kind, key, subject_id) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (key) DO UPDATE SET run_at = EXCLUDED.run_at WHERE EXCLUDED.run_at < jobs.run_at",
    )
    .bind(account.0)
    .bind(jobs::run_at_ms(at))
    .bind(kind.as_str())
    .bind(kind.key(account, subject))
    .bind(subject)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Schedules (or moves) the job of `kind` for `subject`.
pub(super) async fn schedule(
    c: &mut PgConnection,
    account: AccountId,
    kind: JobKind,
    subject: i64,
    at: Timestamp,
) -> Result<()> {
    routing_state::shared(|s| s.scheduled_by.remove(&kind.key(account, subject)));
    sqlx::query(
        "INSERT INTO jobs (account_id, run_at, kind, key, subject_id) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (key) DO UPDATE SET run_at = EXCLUDED.run_at",
    )
    .bind(account.0)
    .bind(jobs::run_at_ms(at))
    .bind(kind.as_str())
    .bind(kind.key(account, subject))
    .bind(subject)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Drops the job of `kind` for `subject`, if scheduled.
pub(super) async fn unschedule(
    c: &mut PgConnection,
    account: AccountId,
    kind: JobKind,
    subject: i64,
) -> Result<()> {
    routing_state::shared(|s| s.scheduled_by.remove(&kind.key(account, subject)));
    sqlx::query("DELETE FROM jobs WHERE key = $1")
        .bind(kind.key(account, subject))
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Writes what a batch of creates deferred ([`routing_state::Deferred`]):
/// two statements for the whole batch, just before its commit.
pub(super) async fn flush_deferred(
    c: &mut PgConnection,
    account: AccountId,
    deferred: routing_state::Deferred,
) -> Result<()> {
    if !deferred.assigned.is_empty() {
        let (users, at): (Vec<i64>, Vec<i64>) = deferred
            .assigned
            .iter()
            .map(|(u, at)| (u.0, rows::ms(*at)))
            .unzip();
        sqlx::query(
            "UPDATE users AS u SET last_assigned_at = v.at
             FROM unnest($1::bigint[], $2::bigint[]) AS v(id, at)
             WHERE u.id = v.id AND u.account_id = $3",
        )
        .bind(users)
        .bind(at)
        .bind(account.0)
        .execute(&mut *c)
        .await?;
    }
    if !deferred.counts.is_empty() {
        let mut users = Vec::new();
        let mut types = Vec::new();
        let mut open = Vec::new();
        let mut load = Vec::new();
        for ((user, ticket_type), (o, l)) in &deferred.counts {
            users.push(user.0);
            types.push(ticket_type.as_str());
            open.push(*o);
            load.push(*l);
        }
        sqlx::query(
            "INSERT INTO user_ticket_counts (account_id, user_id, type, open_count, load_count)
             SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::bigint[], $5::bigint[])
             ON CONFLICT (user_id, type) DO UPDATE
             SET open_count = user_ticket_counts.open_count + EXCLUDED.open_count,
                 load_count = user_ticket_counts.load_count + EXCLUDED.load_count",
        )
        .bind(account.0)
        .bind(users)
        .bind(types)
        .bind(open)
        .bind(load)
        .execute(&mut *c)
        .await?;
    }
    Ok(())
}
