//! Routing on SQLite: counters, snapshots for the engine, applying its
//! decisions, the waiting queue, availability changes and the scheduler.
//!
//! Everything here runs on the writer thread inside the batch transaction,
//! so a decision's snapshot and its application are atomic: two tickets
//! routed "at once" are routed one after the other, each seeing the other's
//! load.

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use switchboard_domain::{notifications::NotifyEvent, routing::*, *};

use super::{routing_state, rows, writes};
use crate::{Result, RoutingRecord};

/// The most waiting tickets one write routes (see [`drain_waiting`]).
pub const DRAIN_BATCH: usize = 64;

/// The stored settings and time zone of a user.
pub fn availability_settings(
    c: &Connection,
    account: AccountId,
    user: UserId,
) -> Result<(AvailabilitySettings, TimeZoneName)> {
    use super::OrNotFound;
    c.prepare_cached("SELECT availability, time_zone FROM users WHERE id = ?1 AND account_id = ?2")?
        .query_row(params![user.0, account.0], |r| {
            Ok((rows::json(r, 0)?, rows::value(r, 1)?))
        })
        .or_not_found("user")
}

/// The contact's owner and whether the ticket's visitor token is known on
/// the contact; only contact-owner rules read them.
fn contact_facts(
    c: &Connection,
    account: AccountId,
    t: &Ticket,
    rule: &RoutingRule,
) -> Result<(Option<UserId>, bool)> {
    if rule.assign_to != AssignTo::ContactOwner {
        return Ok((None, false));
    }
    let Some(contact_id) = t.contact_id else {
        return Ok((None, false));
    };
    let owner = c
        .prepare_cached("SELECT owner_user_id FROM contacts WHERE id = ?1 AND account_id = ?2")?
        .query_row(params![contact_id.0, account.0], |r| {
            r.get::<_, Option<i64>>(0)
        })
        .optional()?
        .flatten()
        .map(UserId);
    let visitor_known = match t.properties.get("visitor_token").and_then(|v| v.as_str()) {
        Some(token) => c
            .prepare_cached("SELECT 1 FROM contact_visitor_tokens WHERE account_id = ?1 AND token = ?2 AND contact_id = ?3")?
            .query_row(params![account.0, token, contact_id.0], |_| Ok(()))
            .optional()?
            .is_some(),
        None => false,
    };
    Ok((owner, visitor_known))
}

/// Whom to ring for ticket `id` ([`RoutingState::ring_order`]). It reads
/// the kept routing state, which lives on the writer thread, so it runs
/// there, though it writes nothing.
pub fn ring_order(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    id: TicketId,
) -> Result<Vec<UserId>> {
    let t = writes::get(c, account, id)?;
    let Some(channel) = t.channel_id else {
        return Ok(Vec::new());
    };
    let found = routing_state::with(c, account, |s| {
        s.channel(channel).map(|ch| (ch.kind, ch.rule.clone()))
    })?;
    let Some((kind, Some(rule))) = found else {
        return Ok(Vec::new());
    };
    let (contact, visitor_known) = contact_facts(c, account, &t, &rule)?;
    let facts = TicketFacts::of(&t, kind, contact, visitor_known, now);
    routing_state::with(c, account, |s| {
        s.ring_order(&rule, channel, &facts, t.owner.user_id, now)
    })
}

/// A decision taken for a ticket, and the writes that carry it out.
pub(super) struct Routed {
    channel: ChannelId,
    decision: Decision,
    /// What the decision changes ([`effects`]).
    pub effects: Effects,
    trigger: RoutingTrigger,
}

/// Asks the engine what to do with `t` (which need not be stored yet: a new
/// ticket is decided before it is inserted, so it is written once, with its
/// owner). `None` when its channel has no rule.
///
/// The candidates come from the account's kept routing state
/// ([`routing_state`]), not from SQL: a decision reads no row per candidate.
pub(super) fn decide_for(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    t: &Ticket,
    trigger: RoutingTrigger,
    rng: &mut dyn RandomSource,
) -> Result<Option<Routed>> {
    let Some(channel) = t.channel_id else {
        return Ok(None);
    };
    let found = routing_state::with(c, account, |s| {
        s.channel(channel).map(|ch| (ch.kind, ch.rule.clone()))
    })?;
    let Some((kind, Some(rule))) = found else {
        return Ok(None);
    };
    let (contact, visitor_known) = contact_facts(c, account, t, &rule)?;
    let facts = TicketFacts::of(t, kind, contact, visitor_known, now);
    let decision = routing_state::with(c, account, |s| {
        s.with_snapshot(&rule, channel, contact, now, |snapshot| {
            decide(&rule, &facts, snapshot, rng)
        })
    })?;
    let effects = effects(&rule, &decision, trigger, t.created_at);
    Ok(Some(Routed {
        channel,
        decision,
        effects,
        trigger,
    }))
}

/// The writes of `routed` other than the owner and the waiting flag (which
/// the caller has written with the ticket): the round-robin position, the
/// relaxation job, the stored explanation and the notification.
pub(super) fn apply_rest(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    t: &Ticket,
    routed: Routed,
) -> Result<Outcome> {
    let outcome = routed.decision.outcome();
    let effects = &routed.effects;
    if let Some((user, cycle)) = effects.round_robin {
        c.prepare_cached(
            "INSERT INTO round_robin (account_id, channel_id, user_id, last_cycle) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (channel_id, user_id) DO UPDATE SET last_cycle = ?4",
        )?
        .execute(params![account.0, routed.channel.0, user.0, cycle as i64])?;
        c.prepare_cached("UPDATE channels SET rr_cycle = ?1 WHERE id = ?2 AND account_id = ?3")?
            .execute(params![cycle as i64, routed.channel.0, account.0])?;
        routing_state::if_loaded(account, |s| {
            s.round_robin_served(routed.channel, user, cycle)
        });
    }
    if let Some(at) = effects.relax_at {
        writes::schedule(c, account, JobKind::Relax, t.id.0, at)?;
    }
    if effects.record {
        c.prepare_cached("INSERT INTO routing_decisions (account_id, ticket_id, at, trigger, explanation) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![account.0, t.id.0, rows::ms(now), routed.trigger.as_str(), routed.decision.explanation.to_stored()])?;
    }
    if let Some(user) = effects.notify {
        let event = NotifyEvent::Assigned { user_id: user };
        super::notifications::raise(c, now, account, t, Actor::System, &event)?;
    }
    Ok(outcome)
}

/// Routes the stored ticket `t` again by its channel's rule, if it has one;
/// applies and records the decision. Returns the outcome, or `None` when no
/// rule applies. (A new ticket is routed by `tickets::create`, before it is
/// inserted.)
pub fn route(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    t: &mut Ticket,
    trigger: RoutingTrigger,
    rng: &mut dyn RandomSource,
) -> Result<Option<Outcome>> {
    let Some(routed) = decide_for(c, now, account, t, trigger, rng)? else {
        // The rule is gone: nothing to wait for any more.
        c.prepare_cached("UPDATE tickets SET waiting = 0 WHERE id = ?1 AND waiting = 1")?
            .execute([t.id.0])?;
        return Ok(None);
    };
    if let Some(to) = routed.effects.owner {
        writes::move_owner_checked(c, account, t, to, now, Actor::System, OwnerReason::Routing)?;
        t.updated_at = now;
        writes::save(c, now, account, t)?;
    }
    c.prepare_cached("UPDATE tickets SET waiting = ?1 WHERE id = ?2 AND account_id = ?3")?
        .execute(params![routed.effects.waiting, t.id.0, account.0])?;
    apply_rest(c, now, account, t, routed).map(Some)
}

/// Routes again the account's waiting tickets, highest priority then
/// oldest first, at most [`DRAIN_BATCH`] of them after skipping the first
/// `skip` (still waiting from an earlier batch of the same drain). If more
/// wait, a [`JobKind::DrainWaiting`] job due now goes on with the rest, in
/// a write of its own: a long queue never holds the writer (and every other
/// write) for more than one batch. Returns how many were assigned.
pub fn drain_waiting(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    skip: usize,
    rng: &mut dyn RandomSource,
) -> Result<usize> {
    let ids: Vec<i64> = c
        .prepare_cached(
            "SELECT id FROM tickets WHERE account_id = ?1 AND waiting = 1 AND status = 'open' AND owner_user_id IS NULL
             ORDER BY CASE priority WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END, created_at, id
             LIMIT ?2 OFFSET ?3",
        )?
        .query_map(params![account.0, DRAIN_BATCH as i64 + 1, skip as i64], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut assigned = 0;
    for id in ids.iter().take(DRAIN_BATCH) {
        let mut t = writes::get(c, account, TicketId(*id))?;
        if let Some(Outcome::Assign { .. } | Outcome::Team { .. }) =
            route(c, now, account, &mut t, RoutingTrigger::WaitingQueue, rng)?
        {
            assigned += 1;
        }
    }
    if ids.len() > DRAIN_BATCH {
        // Those left waiting stay ahead of the rest in the queue's order.
        let skip = skip + DRAIN_BATCH - assigned;
        writes::schedule(c, account, JobKind::DrainWaiting, skip as i64, now)?;
    }
    Ok(assigned)
}

/// When a user becomes away, their open tickets without a public reply go
/// back through routing, for channels whose rule asks for it.
pub fn rebalance_away(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    user: UserId,
    rng: &mut dyn RandomSource,
) -> Result<usize> {
    let ids: Vec<i64> = c
        .prepare_cached(
            "SELECT t.id FROM tickets t JOIN channels ch ON ch.id = t.channel_id
             WHERE t.account_id = ?1 AND t.owner_user_id = ?2 AND t.status = 'open' AND t.first_reply_at IS NULL
               AND json_extract(ch.routing, '$.rebalance_on_away') = 1
             ORDER BY t.id",
        )?
        .query_map(params![account.0, user.0], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for id in &ids {
        let mut t = writes::get(c, account, TicketId(*id))?;
        let to = Owner {
            user_id: None,
            team_id: t.owner.team_id,
        };
        writes::move_owner_checked(
            c,
            account,
            &mut t,
            to,
            now,
            Actor::System,
            OwnerReason::RebalanceOnAway,
        )?;
        t.updated_at = now;
        writes::save(c, now, account, &t)?;
        route(
            c,
            now,
            account,
            &mut t,
            RoutingTrigger::RebalanceOnAway,
            rng,
        )?;
    }
    Ok(ids.len())
}

/// After a user's availability settings changed (or a transition came due):
/// schedules the next transition, rebalances if they just became away, and
/// drains the waiting queue if they are available.
pub fn availability_changed(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    user: UserId,
    was_available: bool,
    rng: &mut dyn RandomSource,
) -> Result<Availability> {
    let (settings, tz) = availability_settings(c, account, user)?;
    let availability = settings.at(&tz.zone(), now);
    let next = Transition::new(was_available, availability);
    match next.next_check {
        Some(at) => writes::schedule(c, account, JobKind::Availability, user.0, at)?,
        None => writes::unschedule(c, account, JobKind::Availability, user.0)?,
    }
    if next.drain_queue {
        drain_waiting(c, now, account, 0, rng)?;
    }
    if next.rebalance {
        rebalance_away(c, now, account, user, rng)?;
    }
    Ok(availability)
}

/// Runs the jobs due at `now`, at most `limit` of them; returns how many ran.
pub fn run_due_jobs(
    c: &Connection,
    now: Timestamp,
    limit: usize,
    rng: &mut dyn RandomSource,
) -> Result<usize> {
    let due: Vec<(i64, i64, String, i64)> = c
        .prepare_cached("SELECT id, account_id, kind, subject_id FROM jobs WHERE run_at <= ?1 ORDER BY run_at, id LIMIT ?2")?
        .query_map(params![rows::ms(now), limit as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (id, account, kind, subject) in &due {
        c.prepare_cached("DELETE FROM jobs WHERE id = ?1")?
            .execute([id])?;
        let account = AccountId(*account);
        let Ok(kind) = kind.parse::<JobKind>() else {
            tracing::warn!(kind, "unknown job kind; dropped");
            continue;
        };
        match kind {
            JobKind::Availability => {
                let user = UserId(*subject);
                let (settings, tz) = availability_settings(c, account, user)?;
                let was = settings.available_just_before(&tz.zone(), now);
                availability_changed(c, now, account, user, was, rng)?;
            }
            JobKind::Relax => {
                let mut t = writes::get(c, account, TicketId(*subject))?;
                if t.status == Status::Open && t.owner.user_id.is_none() {
                    route(
                        c,
                        now,
                        account,
                        &mut t,
                        RoutingTrigger::SkillRelaxation,
                        rng,
                    )?;
                }
            }
            JobKind::LoadExpiry => expire_load(c, now, account)?,
            JobKind::DrainWaiting => {
                drain_waiting(c, now, account, *subject as usize, rng)?;
            }
            JobKind::NotifyDigest => {
                super::notifications::digest(c, now, account, UserId(*subject))?;
            }
            JobKind::WorkflowTimer => {
                super::workflows::run_timer(c, now, account, TicketId(*subject))?;
            }
            JobKind::WorkflowScan => super::workflows::run_scan(c, now, account, *subject)?,
        }
    }
    Ok(due.len())
}

/// Recounts the account's tickets whose assignment left the load window
/// (at most [`jobs::LOAD_EXPIRY_BATCH`]) and schedules the job again for
/// the oldest assignment still counted.
fn expire_load(c: &Connection, now: Timestamp, account: AccountId) -> Result<()> {
    let cutoff = rows::ms(now - LOAD_WINDOW);
    let ids: Vec<i64> = c
        .prepare_cached(
            "SELECT id FROM tickets WHERE account_id = ?1 AND load_counted = 1 AND assigned_at <= ?2
             ORDER BY assigned_at LIMIT ?3",
        )?
        .query_map(params![account.0, cutoff, jobs::LOAD_EXPIRY_BATCH as i64], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for id in ids {
        // Saving recomputes whether the ticket still counts.
        let t = writes::get(c, account, TicketId(id))?;
        writes::save(c, now, account, &t)?;
    }
    let oldest: Option<i64> = c
        .prepare_cached(
            "SELECT min(assigned_at) FROM tickets WHERE account_id = ?1 AND load_counted = 1",
        )?
        .query_row([account.0], |r| r.get(0))?;
    if let Some(oldest) = oldest {
        writes::schedule(
            c,
            account,
            JobKind::LoadExpiry,
            account.0,
            rows::ts(oldest) + LOAD_WINDOW,
        )?;
    }
    Ok(())
}

/// The routing decisions made for a ticket, oldest first.
pub fn log(c: &Connection, account: AccountId, ticket: TicketId) -> Result<Vec<RoutingRecord>> {
    writes::get(c, account, ticket)?;
    let mut stmt = c.prepare_cached("SELECT at, trigger, explanation FROM routing_decisions WHERE ticket_id = ?1 AND account_id = ?2 ORDER BY id")?;
    let items = stmt
        .query_map(params![ticket.0, account.0], |r| {
            Ok(RoutingRecord {
                at: rows::ts(r.get(0)?),
                trigger: rows::parsed(r, 1)?,
                explanation: rows::explanation(r, 2)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(items)
}

/// Differences between the maintained counters and a full recount.
pub fn counter_drift(c: &Connection, now: Timestamp, account: AccountId) -> Result<Vec<String>> {
    let since = rows::ms(now - LOAD_WINDOW);
    let mut stmt = c.prepare(
        "WITH actual AS (
            SELECT owner_user_id AS user_id, type, count(*) AS open_count,
                   sum(CASE WHEN assigned_at > ?2 THEN 1 ELSE 0 END) AS load_count
            FROM tickets WHERE account_id = ?1 AND status = 'open' AND owner_user_id IS NOT NULL
            GROUP BY owner_user_id, type)
         SELECT coalesce(a.user_id, k.user_id), coalesce(a.type, k.type),
                coalesce(k.open_count, 0), coalesce(a.open_count, 0), coalesce(k.load_count, 0), coalesce(a.load_count, 0)
         FROM actual a FULL OUTER JOIN (SELECT * FROM user_ticket_counts WHERE account_id = ?1) k
           ON a.user_id = k.user_id AND a.type = k.type",
    )?;
    let rows = stmt.query_map(params![account.0, since], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, i64>(5)?,
        ))
    })?;
    let mut drift = Vec::new();
    for row in rows {
        let (user, ty, open_k, open_a, load_k, load_a) = row?;
        if open_k != open_a || load_k != load_a {
            drift.push(format!("user {user} {ty}: open {open_k} (recount {open_a}), load {load_k} (recount {load_a})"));
        }
    }
    Ok(drift)
}
