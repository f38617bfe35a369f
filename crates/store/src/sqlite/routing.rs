//! Routing on SQLite: counters, snapshots for the engine, applying its
//! decisions, the waiting queue, availability changes and the scheduler.
//!
//! Everything here runs on the writer thread inside the batch transaction,
//! so a decision's snapshot and its application are atomic: two tickets
//! routed "at once" are routed one after the other, each seeing the other's
//! load.

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};
use switchboard_domain::{routing::*, *};

use super::{rows, tickets};
use crate::{Result, RoutingRecord};

/// Loads count tickets assigned in the last 30 days.
pub const LOAD_WINDOW: SignedDuration = SignedDuration::from_hours(24 * 30);

fn bump(
    c: &Connection,
    account: AccountId,
    user: i64,
    ty: &str,
    open: i64,
    load: i64,
) -> Result<()> {
    if open == 0 && load == 0 {
        return Ok(());
    }
    c.prepare_cached(
        "INSERT INTO user_ticket_counts (account_id, user_id, type, open_count, load_count) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (user_id, type) DO UPDATE SET open_count = open_count + ?4, load_count = load_count + ?5",
    )?
    .execute(params![account.0, user, ty, open, load])?;
    Ok(())
}

/// Moves the owners' counters from the ticket's stored state to `t`'s, and
/// returns whether `t` counts in its owner's load. Called by every save.
pub fn adjust_counters(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    t: &Ticket,
) -> Result<bool> {
    let (old_owner, old_status, old_counted): (Option<i64>, String, bool) = c
        .prepare_cached("SELECT owner_user_id, status, load_counted FROM tickets WHERE id = ?1 AND account_id = ?2")?
        .query_row(params![t.id.0, account.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    let ty = t.ticket_type.as_str();
    let new_open = t.status == Status::Open && t.owner.user_id.is_some();
    let new_counted = new_open
        && t.assigned_at
            .is_some_and(|a| now.duration_since(a) < LOAD_WINDOW);
    if let Some(old) = old_owner {
        bump(
            c,
            account,
            old,
            ty,
            -i64::from(old_status == "open"),
            -i64::from(old_counted),
        )?;
    }
    if let Some(new) = t.owner.user_id {
        bump(
            c,
            account,
            new.0,
            ty,
            i64::from(new_open),
            i64::from(new_counted),
        )?;
    }
    let key = format!("load:{}", t.id);
    match (new_counted, t.assigned_at) {
        (true, Some(at)) => schedule(c, account, "load_expiry", &key, t.id.0, at + LOAD_WINDOW)?,
        _ => unschedule(c, &key)?,
    }
    Ok(new_counted)
}

/// Schedules (or moves) the job `key`.
pub fn schedule(
    c: &Connection,
    account: AccountId,
    kind: &str,
    key: &str,
    subject: i64,
    at: Timestamp,
) -> Result<()> {
    // Rounded up: a job must never run before its instant, or it would find
    // nothing changed and reschedule itself at the same millisecond.
    let run_at = rows::ms(at) + i64::from(at.subsec_nanosecond() % 1_000_000 != 0);
    c.prepare_cached(
        "INSERT INTO jobs (account_id, run_at, kind, key, subject_id) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (key) DO UPDATE SET run_at = ?2",
    )?
    .execute(params![account.0, run_at, kind, key, subject])?;
    Ok(())
}

fn unschedule(c: &Connection, key: &str) -> Result<()> {
    c.prepare_cached("DELETE FROM jobs WHERE key = ?1")?
        .execute([key])?;
    Ok(())
}

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

fn load_candidate(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    channel: ChannelId,
    rule: &RoutingRule,
    user: UserId,
) -> Result<Option<Candidate>> {
    let row = c
        .prepare_cached(
            "SELECT deactivated, help_desk_seat, time_zone, availability, capacity, last_assigned_at,
                (SELECT team_id FROM team_members WHERE user_id = u.id AND main = 1)
             FROM users u WHERE id = ?1 AND account_id = ?2",
        )?
        .query_row(params![user.0, account.0], |r| {
            let settings: AvailabilitySettings = rows::json(r, 3)?;
            let tz: TimeZoneName = rows::value(r, 2)?;
            Ok(Candidate {
                user_id: user,
                deactivated: r.get(0)?,
                seated: r.get(1)?,
                availability: settings.at(&tz.zone(), now),
                skills: SkillMask::default(),
                capacity: rows::json(r, 4)?,
                open: TypeCounts::default(),
                load: TypeCounts::default(),
                last_assigned_at: r.get::<_, Option<i64>>(5)?.map(rows::ts),
                rr_last_cycle: 0,
                main_team_id: r.get::<_, Option<i64>>(6)?.map(TeamId),
            })
        })
        .optional()?;
    let Some(mut cand) = row else { return Ok(None) };
    let mut skills = c.prepare_cached("SELECT skill_id FROM user_skills WHERE user_id = ?1")?;
    let has: Vec<SkillId> = skills
        .query_map([user.0], |r| r.get(0).map(SkillId))?
        .collect::<rusqlite::Result<_>>()?;
    cand.skills = rule.skill_mask(&has);
    let mut counts = c.prepare_cached(
        "SELECT type, open_count, load_count FROM user_ticket_counts WHERE user_id = ?1",
    )?;
    for row in counts.query_map([user.0], |r| {
        Ok((
            rows::parsed::<TicketType>(r, 0)?,
            r.get::<_, u32>(1)?,
            r.get::<_, u32>(2)?,
        ))
    })? {
        let (ty, open, load) = row?;
        *cand.open.get_mut(ty) = open;
        *cand.load.get_mut(ty) = load;
    }
    cand.rr_last_cycle = c
        .prepare_cached(
            "SELECT last_cycle FROM round_robin WHERE channel_id = ?1 AND user_id = ?2",
        )?
        .query_row(params![channel.0, user.0], |r| r.get::<_, i64>(0))
        .optional()?
        .unwrap_or(0) as u64;
    Ok(Some(cand))
}

fn load_snapshot(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    channel: ChannelId,
    rule: &RoutingRule,
    extra: Option<UserId>,
) -> Result<Snapshot> {
    let (users, teams) = rule.named();
    let mut ids: BTreeSet<UserId> = users.into_iter().chain(extra).collect();
    let mut infos = Vec::new();
    for team in teams {
        let mut main_members = Vec::new();
        let mut secondary_members = Vec::new();
        let mut seated = 0;
        let mut stmt = c.prepare_cached(
            "SELECT m.user_id, m.main, u.help_desk_seat = 1 AND u.deactivated = 0
             FROM team_members m JOIN users u ON u.id = m.user_id WHERE m.team_id = ?1 AND m.account_id = ?2",
        )?;
        for row in stmt.query_map(params![team.0, account.0], |r| {
            Ok((
                UserId(r.get(0)?),
                r.get::<_, bool>(1)?,
                r.get::<_, bool>(2)?,
            ))
        })? {
            let (user, main, is_seated) = row?;
            seated += u32::from(is_seated);
            ids.insert(user);
            if main {
                main_members.push(user)
            } else {
                secondary_members.push(user)
            }
        }
        infos.push(TeamInfo {
            id: team,
            seated_members: seated,
            main_members,
            secondary_members,
        });
    }
    let mut candidates = Vec::with_capacity(ids.len());
    for user in ids {
        candidates.extend(load_candidate(c, now, account, channel, rule, user)?);
    }
    let rr_cycle = c
        .prepare_cached("SELECT rr_cycle FROM channels WHERE id = ?1")?
        .query_row([channel.0], |r| r.get::<_, i64>(0))? as u64;
    let mut skill_names = BTreeMap::new();
    for rule in &rule.skills {
        let name: Option<String> = c
            .prepare_cached("SELECT name FROM skills WHERE id = ?1 AND account_id = ?2")?
            .query_row(params![rule.skill_id.0, account.0], |r| r.get(0))
            .optional()?;
        skill_names.insert(
            rule.skill_id,
            name.unwrap_or_else(|| format!("skill {}", rule.skill_id)),
        );
    }
    Ok(Snapshot {
        candidates,
        teams: infos,
        rr_cycle,
        skill_names,
    })
}

/// Routes `t` by its channel's rule, if it has one; applies and records the
/// decision. Returns the outcome, or `None` when no rule applies.
pub fn route(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    t: &mut Ticket,
    trigger: &str,
    rng: &mut dyn RandomSource,
) -> Result<Option<Outcome>> {
    let Some(channel) = t.channel_id else {
        return Ok(None);
    };
    let (kind, routing): (ChannelKind, Option<String>) = c
        .prepare_cached("SELECT kind, routing FROM channels WHERE id = ?1 AND account_id = ?2")?
        .query_row(params![channel.0, account.0], |r| {
            Ok((rows::parsed(r, 0)?, r.get(1)?))
        })?;
    let Some(rule) = routing.and_then(|r| serde_json::from_str::<RoutingRule>(&r).ok()) else {
        // The rule is gone: nothing to wait for any more. (A new ticket
        // never waits, so creation skips the write.)
        if trigger != "created" {
            c.prepare_cached("UPDATE tickets SET waiting = 0 WHERE id = ?1 AND waiting = 1")?
                .execute([t.id.0])?;
        }
        return Ok(None);
    };
    let contact = match t.contact_id {
        Some(id) => c
            .prepare_cached("SELECT owner_user_id FROM contacts WHERE id = ?1 AND account_id = ?2")?
            .query_row(params![id.0, account.0], |r| r.get::<_, Option<i64>>(0))
            .optional()?
            .flatten()
            .map(UserId),
        None => None,
    };
    let visitor_known = match (t.properties.get("visitor_token").and_then(|v| v.as_str()), t.contact_id) {
        (Some(token), Some(contact_id)) => c
            .prepare_cached("SELECT 1 FROM contact_visitor_tokens WHERE account_id = ?1 AND token = ?2 AND contact_id = ?3")?
            .query_row(params![account.0, token, contact_id.0], |_| Ok(()))
            .optional()?
            .is_some(),
        _ => false,
    };
    let snapshot = load_snapshot(c, now, account, channel, &rule, contact)?;
    let facts = TicketFacts {
        ticket_type: t.ticket_type,
        properties: &t.properties,
        contact_owner: contact,
        needs_visitor: matches!(kind, ChannelKind::Form | ChannelKind::Chat),
        visitor_known,
        waited_seconds: now.duration_since(t.created_at).as_secs().max(0) as u64,
    };
    let decision = decide(&rule, &facts, &snapshot, rng);
    let outcome = decision.outcome();
    let to = match outcome {
        Outcome::Assign { user_id, team_id } => Some(Owner {
            user_id: Some(user_id),
            team_id,
        }),
        Outcome::Team { team_id } => Some(Owner {
            user_id: None,
            team_id: Some(team_id),
        }),
        Outcome::Unassigned => None,
    };
    if let Some(to) = to {
        tickets::move_owner(c, account, t, to, now, Actor::System, "routing")?;
        t.updated_at = now;
        tickets::save(c, now, account, t)?;
    }
    if let (Some(cycle), Outcome::Assign { user_id, .. }) = (decision.rr_cycle, outcome) {
        c.prepare_cached(
            "INSERT INTO round_robin (account_id, channel_id, user_id, last_cycle) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (channel_id, user_id) DO UPDATE SET last_cycle = ?4",
        )?
        .execute(params![account.0, channel.0, user_id.0, cycle as i64])?;
        c.prepare_cached("UPDATE channels SET rr_cycle = ?1 WHERE id = ?2")?
            .execute(params![cycle as i64, channel.0])?;
    }
    let waiting =
        outcome == Outcome::Unassigned && rule.waiting_queue && rule.assign_to != AssignTo::Nobody;
    c.prepare_cached("UPDATE tickets SET waiting = ?1 WHERE id = ?2")?
        .execute(params![waiting, t.id.0])?;
    if let Some(after) = decision.relax_at_seconds {
        let at = t.created_at + SignedDuration::from_secs(after as i64);
        schedule(c, account, "relax", &format!("relax:{}", t.id), t.id.0, at)?;
    }
    // A queue re-route that changed nothing is not worth a row (the queue
    // may be re-tried often); every decision that assigned is kept.
    let unchanged = trigger == "waiting_queue" && outcome == Outcome::Unassigned;
    if !unchanged {
        c.prepare_cached("INSERT INTO routing_decisions (account_id, ticket_id, at, trigger, explanation) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![account.0, t.id.0, rows::ms(now), trigger, serde_json::to_string(&decision.explanation).map_err(super::backend)?])?;
    }
    if let Outcome::Assign { user_id, .. } = outcome {
        let kind = if decision.notify_owner {
            "assigned_while_away"
        } else {
            "assigned"
        };
        notify(c, now, account, user_id, t.id, kind)?;
    }
    Ok(Some(outcome))
}

/// Tells `user` about `ticket`.
pub fn notify(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    user: UserId,
    ticket: TicketId,
    kind: &str,
) -> Result<()> {
    c.prepare_cached("INSERT INTO notifications (account_id, user_id, ticket_id, kind, at) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![account.0, user.0, ticket.0, kind, rows::ms(now)])?;
    Ok(())
}

/// A user's latest notifications, newest first.
pub fn notifications(
    c: &Connection,
    account: AccountId,
    user: UserId,
    limit: u32,
) -> Result<Vec<Notification>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, ticket_id, kind, at FROM notifications WHERE user_id = ?1 AND account_id = ?2 ORDER BY id DESC LIMIT ?3",
    )?;
    let items = stmt
        .query_map(params![user.0, account.0, limit], |r| {
            Ok(Notification {
                id: r.get(0)?,
                ticket_id: TicketId(r.get(1)?),
                kind: r.get(2)?,
                at: rows::ts(r.get(3)?),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(items)
}

/// Routes again every waiting ticket of the account, highest priority then
/// oldest first. Returns how many were assigned.
pub fn drain_waiting(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    rng: &mut dyn RandomSource,
) -> Result<usize> {
    let ids: Vec<i64> = c
        .prepare_cached(
            "SELECT id FROM tickets WHERE account_id = ?1 AND waiting = 1 AND status = 'open' AND owner_user_id IS NULL
             ORDER BY CASE priority WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END, created_at, id
             LIMIT 500",
        )?
        .query_map([account.0], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut assigned = 0;
    for id in ids {
        let mut t = tickets::get(c, account, TicketId(id))?;
        if let Some(Outcome::Assign { .. } | Outcome::Team { .. }) =
            route(c, now, account, &mut t, "waiting_queue", rng)?
        {
            assigned += 1;
        }
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
        let mut t = tickets::get(c, account, TicketId(*id))?;
        let to = Owner {
            user_id: None,
            team_id: t.owner.team_id,
        };
        tickets::move_owner(
            c,
            account,
            &mut t,
            to,
            now,
            Actor::System,
            "rebalance_on_away",
        )?;
        t.updated_at = now;
        tickets::save(c, now, account, &t)?;
        route(c, now, account, &mut t, "rebalance_on_away", rng)?;
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
    let key = format!("availability:{user}");
    match availability.until() {
        Some(at) => schedule(c, account, "availability", &key, user.0, at)?,
        None => unschedule(c, &key)?,
    }
    match (was_available, availability.is_available()) {
        (_, true) => {
            drain_waiting(c, now, account, rng)?;
        }
        // Only the change to away rebalances, not every later re-check.
        (true, false) => {
            rebalance_away(c, now, account, user, rng)?;
        }
        (false, false) => {}
    }
    Ok(availability)
}

/// Runs every job due at `now`; returns how many ran.
pub fn run_due_jobs(c: &Connection, now: Timestamp, rng: &mut dyn RandomSource) -> Result<usize> {
    let due: Vec<(i64, i64, String, i64)> = c
        .prepare_cached("SELECT id, account_id, kind, subject_id FROM jobs WHERE run_at <= ?1 ORDER BY run_at, id LIMIT 500")?
        .query_map([rows::ms(now)], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (id, account, kind, subject) in &due {
        c.prepare_cached("DELETE FROM jobs WHERE id = ?1")?
            .execute([id])?;
        let account = AccountId(*account);
        match kind.as_str() {
            "availability" => {
                let user = UserId(*subject);
                let (settings, tz) = availability_settings(c, account, user)?;
                // What it was just before this transition.
                let was = settings
                    .at(&tz.zone(), now - SignedDuration::from_millis(1))
                    .is_available();
                availability_changed(c, now, account, user, was, rng)?;
            }
            "relax" => {
                let mut t = tickets::get(c, account, TicketId(*subject))?;
                if t.status == Status::Open && t.owner.user_id.is_none() {
                    route(c, now, account, &mut t, "skill_relaxation", rng)?;
                }
            }
            "load_expiry" => {
                // Saving recomputes whether the ticket still counts.
                let t = tickets::get(c, account, TicketId(*subject))?;
                tickets::save(c, now, account, &t)?;
            }
            other => tracing::warn!(kind = other, "unknown job kind; dropped"),
        }
    }
    Ok(due.len())
}

/// The routing decisions made for a ticket, oldest first.
pub fn log(c: &Connection, account: AccountId, ticket: TicketId) -> Result<Vec<RoutingRecord>> {
    tickets::get(c, account, ticket)?;
    let mut stmt = c.prepare_cached("SELECT at, trigger, explanation FROM routing_decisions WHERE ticket_id = ?1 AND account_id = ?2 ORDER BY id")?;
    let items = stmt
        .query_map(params![ticket.0, account.0], |r| {
            Ok(RoutingRecord {
                at: rows::ts(r.get(0)?),
                trigger: r.get(1)?,
                explanation: rows::json(r, 2)?,
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
