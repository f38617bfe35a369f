//! Routing on PostgreSQL: counters, snapshots for the engine, applying its
//! decisions, the waiting queue, availability changes and the scheduler.
//!
//! # Why one lock per account
//!
//! On SQLite everything runs on one writer thread, so a decision's snapshot
//! and its application are atomic. Here several server nodes write at once,
//! and PostgreSQL runs at READ COMMITTED: without more, two tickets routed at
//! the same instant would both read the same loads and round-robin cycle and
//! both pick the same agent. So every write that can route, or move an
//! owner's counters, first takes the account's routing lock
//! ([`lock_account`], a transaction-level advisory lock). Decisions for one
//! account therefore run one after the other, whichever node makes them; and
//! because READ COMMITTED gives each *statement* a fresh snapshot, every
//! statement after the lock sees everything the previous holder committed
//! (PostgreSQL marks a transaction committed before it releases its locks).
//! The counters (`user_ticket_counts`), the round-robin state, `waiting` and
//! the jobs of an account are only written under its lock, which is what
//! keeps them exact without row locks or SERIALIZABLE.

use jiff::Timestamp;
use sqlx::{Connection, PgConnection};
use switchboard_domain::{notifications::NotifyEvent, routing::*, *};

use super::{OrNotFound, routing_state, rows, writes};
use crate::{Result, RoutingRecord};

/// The high bits of every routing lock key ("SB"), so the keys stay clear of
/// other advisory locks taken with a single 64-bit key (migrations).
const ROUTING_LOCK_CLASS: i64 = 0x5342_0000_0000_0000;

/// The advisory lock key of an account's routing lock.
fn lock_key(account: AccountId) -> i64 {
    ROUTING_LOCK_CLASS | account.0
}

/// Takes the account's routing lock until the transaction ends
/// (`pg_advisory_xact_lock`).
///
/// Waits for the current holder, on whichever node, to commit or roll back.
/// Take it before reading anything a routing decision or a counter update
/// depends on: a statement that ran before the lock may have seen state the
/// previous holder has since changed. Released only by the end of the
/// transaction, so a retried transaction takes it again from the start.
pub async fn lock_account(c: &mut PgConnection, account: AccountId) -> Result<()> {
    if routing_state::lock_held(lock_key(account)) {
        return Ok(());
    }
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(lock_key(account))
        .execute(&mut *c)
        .await?;
    routing_state::note_lock_held(lock_key(account));
    Ok(())
}

/// Takes the account's routing lock if nobody holds it; never waits.
async fn try_lock_account(c: &mut PgConnection, account: AccountId) -> Result<bool> {
    if routing_state::lock_held(lock_key(account)) {
        return Ok(true);
    }
    let got = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(lock_key(account))
        .fetch_one(&mut *c)
        .await?;
    if got {
        routing_state::note_lock_held(lock_key(account));
    }
    Ok(got)
}

/// The most waiting tickets one transaction routes (see [`drain_waiting`]).
pub const DRAIN_BATCH: usize = 64;

/// The stored settings and time zone of a user.
pub async fn availability_settings(
    c: &mut PgConnection,
    account: AccountId,
    user: UserId,
) -> Result<(AvailabilitySettings, TimeZoneName)> {
    let row =
        sqlx::query("SELECT availability, time_zone FROM users WHERE id = $1 AND account_id = $2")
            .bind(user.0)
            .bind(account.0)
            .fetch_optional(&mut *c)
            .await
            .or_not_found("user")?;
    Ok((rows::json(&row, 0)?, rows::value(&row, 1)?))
}

/// The contact's owner and whether the ticket's visitor token is known on
/// the contact; only contact-owner rules read them.
async fn contact_facts(
    c: &mut PgConnection,
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
    let owner = sqlx::query_scalar::<_, Option<i64>>(
        "SELECT owner_user_id FROM contacts WHERE id = $1 AND account_id = $2",
    )
    .bind(contact_id.0)
    .bind(account.0)
    .fetch_optional(&mut *c)
    .await?
    .flatten()
    .map(UserId);
    let visitor_known = match t.properties.get("visitor_token").and_then(|v| v.as_str()) {
        Some(token) => sqlx::query(
            "SELECT 1 FROM contact_visitor_tokens WHERE account_id = $1 AND token = $2 AND contact_id = $3",
        )
        .bind(account.0)
        .bind(token)
        .bind(contact_id.0)
        .fetch_optional(&mut *c)
        .await?
        .is_some(),
        None => false,
    };
    Ok((owner, visitor_known))
}

/// Whom to ring for ticket `id` ([`RoutingState::ring_order`]), from the
/// kept routing state. The caller holds the account's routing lock, so the
/// state is exact; nothing is written.
pub async fn ring_order(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    id: TicketId,
) -> Result<Vec<UserId>> {
    let t = writes::get(c, account, id).await?;
    let Some(channel) = t.channel_id else {
        return Ok(Vec::new());
    };
    let found = routing_state::with(c, account, |s| {
        s.channel(channel).map(|ch| (ch.kind, ch.rule.clone()))
    })
    .await?;
    let Some((kind, Some(rule))) = found else {
        return Ok(Vec::new());
    };
    let (contact, visitor_known) = contact_facts(c, account, &t, &rule).await?;
    let facts = TicketFacts::of(&t, kind, contact, visitor_known, now);
    routing_state::with(c, account, |s| {
        s.ring_order(&rule, channel, &facts, t.owner.user_id, now)
    })
    .await
}

/// A decision taken for a ticket, and the writes that carry it out.
pub(super) struct Routed {
    channel: ChannelId,
    decision: Decision,
    /// What the decision changes ([`effects`]).
    pub effects: Effects,
    trigger: RoutingTrigger,
}

impl Routed {
    /// The decision's stored record (trigger, explanation), for a caller
    /// that writes it itself (a create writes it in its ticket's insert):
    /// [`apply_rest`] then does not.
    pub fn take_record(&mut self) -> Option<(&'static str, String)> {
        if !std::mem::take(&mut self.effects.record) {
            return None;
        }
        Some((self.trigger.as_str(), self.decision.explanation.to_stored()))
    }
}

/// Asks the engine what to do with `t` (which need not be stored yet: a new
/// ticket is decided before it is inserted, so it is written once, with its
/// owner). `None` when its channel has no rule.
///
/// The caller holds the account's routing lock (see the module comment):
/// the state read here and the writes applying the decision are then one
/// step in the account's sequence of decisions. The candidates come from
/// the account's routing state ([`routing_state`]): one statement checks
/// the kept copy's version, none is issued per candidate.
pub(super) async fn decide_for(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    t: &Ticket,
    trigger: RoutingTrigger,
    rng: &mut (dyn RandomSource + Send),
) -> Result<Option<Routed>> {
    let Some(channel) = t.channel_id else {
        return Ok(None);
    };
    let found = routing_state::with(c, account, |s| {
        s.channel(channel).map(|ch| (ch.kind, ch.rule.clone()))
    })
    .await?;
    let Some((kind, Some(rule))) = found else {
        return Ok(None);
    };
    let (contact, visitor_known) = contact_facts(c, account, t, &rule).await?;
    let facts = TicketFacts::of(t, kind, contact, visitor_known, now);
    let decision = routing_state::with(c, account, |s| {
        s.with_snapshot(&rule, channel, contact, now, |snapshot| {
            decide(&rule, &facts, snapshot, &mut *rng)
        })
    })
    .await?;
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
pub(super) async fn apply_rest(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    t: &Ticket,
    routed: Routed,
) -> Result<Outcome> {
    let outcome = routed.decision.outcome();
    let effects = &routed.effects;
    let channel = routed.channel;
    if let Some((user, cycle)) = effects.round_robin {
        sqlx::query(
            "INSERT INTO round_robin (account_id, channel_id, user_id, last_cycle) VALUES ($1, $2, $3, $4)
             ON CONFLICT (channel_id, user_id) DO UPDATE SET last_cycle = EXCLUDED.last_cycle",
        )
        .bind(account.0)
        .bind(channel.0)
        .bind(user.0)
        .bind(cycle as i64)
        .execute(&mut *c)
        .await?;
        sqlx::query("UPDATE channels SET rr_cycle = $1 WHERE id = $2 AND account_id = $3")
            .bind(cycle as i64)
            .bind(channel.0)
            .bind(account.0)
            .execute(&mut *c)
            .await?;
        routing_state::changed(
            account,
            StateDelta::RoundRobin {
                channel,
                user,
                cycle,
            },
        );
    }
    if let Some(at) = effects.relax_at {
        writes::schedule(c, account, JobKind::Relax, t.id.0, at).await?;
    }
    if effects.record {
        sqlx::query(
            "INSERT INTO routing_decisions (account_id, ticket_id, at, trigger, explanation) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(account.0)
        .bind(t.id.0)
        .bind(rows::ms(now))
        .bind(routed.trigger.as_str())
        .bind(routed.decision.explanation.to_stored())
        .execute(&mut *c)
        .await?;
    }
    if let Some(user) = effects.notify {
        let event = NotifyEvent::Assigned { user_id: user };
        super::notifications::raise(c, now, account, t, Actor::System, &event).await?;
    }
    Ok(outcome)
}

/// Routes the stored ticket `t` again by its channel's rule, if it has one;
/// applies and records the decision. Returns the outcome, or `None` when no
/// rule applies. (A new ticket is routed by `tickets::create`, before it is
/// inserted.) The caller holds the account's routing lock.
pub async fn route(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    t: &mut Ticket,
    trigger: RoutingTrigger,
    rng: &mut (dyn RandomSource + Send),
) -> Result<Option<Outcome>> {
    let Some(routed) = decide_for(c, now, account, t, trigger, rng).await? else {
        // The rule is gone: nothing to wait for any more.
        sqlx::query(
            "UPDATE tickets SET waiting = 0 WHERE id = $1 AND account_id = $2 AND waiting = 1",
        )
        .bind(t.id.0)
        .bind(account.0)
        .execute(&mut *c)
        .await?;
        return Ok(None);
    };
    if let Some(to) = routed.effects.owner {
        writes::move_owner_checked(c, account, t, to, now, Actor::System, OwnerReason::Routing)
            .await?;
        t.updated_at = now;
        writes::save(c, now, account, t).await?;
    }
    sqlx::query("UPDATE tickets SET waiting = $1 WHERE id = $2 AND account_id = $3")
        .bind(i32::from(routed.effects.waiting))
        .bind(t.id.0)
        .bind(account.0)
        .execute(&mut *c)
        .await?;
    apply_rest(c, now, account, t, routed).await.map(Some)
}

/// Routes again the account's waiting tickets, highest priority then
/// oldest first, at most [`DRAIN_BATCH`] of them after skipping the first
/// `skip` (still waiting from an earlier batch of the same drain). If more
/// wait, a [`JobKind::DrainWaiting`] job due now goes on with the rest in a
/// transaction of its own, so the account's routing lock is never held for
/// long. The caller holds that lock. Returns how many were assigned.
pub async fn drain_waiting(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    skip: usize,
    rng: &mut (dyn RandomSource + Send),
) -> Result<usize> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM tickets WHERE account_id = $1 AND waiting = 1 AND status = 'open' AND owner_user_id IS NULL
         ORDER BY CASE priority WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END, created_at, id
         LIMIT $2 OFFSET $3",
    )
    .bind(account.0)
    .bind(DRAIN_BATCH as i64 + 1)
    .bind(skip as i64)
    .fetch_all(&mut *c)
    .await?;
    let mut assigned = 0;
    for id in ids.iter().take(DRAIN_BATCH) {
        let mut t = writes::get(c, account, TicketId(*id)).await?;
        if let Some(Outcome::Assign { .. } | Outcome::Team { .. }) =
            route(c, now, account, &mut t, RoutingTrigger::WaitingQueue, rng).await?
        {
            assigned += 1;
        }
    }
    if ids.len() > DRAIN_BATCH {
        // Those left waiting stay ahead of the rest in the queue's order.
        let skip = skip + DRAIN_BATCH - assigned;
        writes::schedule(c, account, JobKind::DrainWaiting, skip as i64, now).await?;
    }
    Ok(assigned)
}

/// When a user becomes away, their open tickets without a public reply go
/// back through routing, for channels whose rule asks for it.
async fn rebalance_away(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    user: UserId,
    rng: &mut (dyn RandomSource + Send),
) -> Result<usize> {
    // The rule's flag is read here rather than in SQL: `routing` is TEXT, and
    // a cast to jsonb failing on one row would abort the whole transaction.
    let found = sqlx::query(
        "SELECT t.id, ch.routing FROM tickets t JOIN channels ch ON ch.id = t.channel_id
         WHERE t.account_id = $1 AND t.owner_user_id = $2 AND t.status = 'open' AND t.first_reply_at IS NULL
           AND ch.routing IS NOT NULL
         ORDER BY t.id",
    )
    .bind(account.0)
    .bind(user.0)
    .fetch_all(&mut *c)
    .await?;
    let mut ids = Vec::new();
    for row in &found {
        let routing: String = rows::get(row, 1)?;
        let rule = serde_json::from_str::<serde_json::Value>(&routing).unwrap_or_default();
        // SQLite's `json_extract(...) = 1` is true for `true` and for `1`.
        let flag = &rule["rebalance_on_away"];
        if flag == true || flag.as_f64() == Some(1.0) {
            ids.push(rows::get::<i64>(row, 0)?);
        }
    }
    for id in &ids {
        let mut t = writes::get(c, account, TicketId(*id)).await?;
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
        )
        .await?;
        t.updated_at = now;
        writes::save(c, now, account, &t).await?;
        route(
            c,
            now,
            account,
            &mut t,
            RoutingTrigger::RebalanceOnAway,
            rng,
        )
        .await?;
    }
    Ok(ids.len())
}

/// After a user's availability settings changed (or a transition came due):
/// schedules the next transition, rebalances if they just became away, and
/// drains the waiting queue if they are available. Returns the user's
/// availability now. The caller holds the account's routing lock.
pub async fn availability_changed(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    user: UserId,
    was_available: bool,
    rng: &mut (dyn RandomSource + Send),
) -> Result<Availability> {
    let (settings, tz) = availability_settings(c, account, user).await?;
    let availability = settings.at(&tz.zone(), now);
    let next = Transition::new(was_available, availability);
    match next.next_check {
        Some(at) => writes::schedule(c, account, JobKind::Availability, user.0, at).await?,
        None => writes::unschedule(c, account, JobKind::Availability, user.0).await?,
    }
    if next.drain_queue {
        drain_waiting(c, now, account, 0, rng).await?;
    }
    if next.rebalance {
        rebalance_away(c, now, account, user, rng).await?;
    }
    Ok(availability)
}

/// A due job, claimed (its row locked) by this transaction.
struct Job {
    id: i64,
    account: AccountId,
    kind: String,
    subject: i64,
}

/// Claims the oldest due job (of `account`, if given) that no other
/// transaction has claimed: `FOR UPDATE SKIP LOCKED`, so concurrent
/// schedulers on several nodes each get a different job and never wait for
/// one another.
async fn claim_due(
    c: &mut PgConnection,
    now: Timestamp,
    account: Option<AccountId>,
) -> Result<Option<Job>> {
    const COLUMNS: &str = "SELECT id, account_id, kind, subject_id FROM jobs WHERE run_at <= $1";
    const TAIL: &str = "ORDER BY run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED";
    let row = match account {
        None => {
            sqlx::query(&format!("{COLUMNS} {TAIL}"))
                .bind(rows::ms(now))
                .fetch_optional(&mut *c)
                .await?
        }
        Some(account) => {
            sqlx::query(&format!("{COLUMNS} AND account_id = $2 {TAIL}"))
                .bind(rows::ms(now))
                .bind(account.0)
                .fetch_optional(&mut *c)
                .await?
        }
    };
    row.map(|r| {
        Ok(Job {
            id: rows::get(&r, 0)?,
            account: AccountId(rows::get(&r, 1)?),
            kind: rows::get(&r, 2)?,
            subject: rows::get(&r, 3)?,
        })
    })
    .transpose()
}

/// Claims one due job (FOR UPDATE SKIP LOCKED), runs it and deletes it;
/// `false` when no job is due. (Also `true`, without running anything, in
/// the rare case below where another node finished the account's due jobs
/// while we waited for its lock: the caller should look again.)
///
/// Exactly once across nodes: the job's row stays locked from the claim to
/// the commit (other schedulers skip it), and the delete commits with the
/// job's effects; if the transaction fails, the row comes back unlocked and
/// a later tick runs it.
///
/// The job runs under its account's routing lock, like any routing write.
/// But a writer holding that lock may be about to reschedule this very job
/// (`schedule`/`unschedule` of the same key) and would wait for our row
/// lock while we wait for its advisory lock: a deadlock. So the claim is
/// made in a savepoint and the lock only *tried*; if the account is busy the
/// savepoint is rolled back (releasing the row), we wait for the lock
/// holding no row, and then claim the account's oldest due job afresh.
pub async fn run_one_due_job(
    c: &mut PgConnection,
    now: Timestamp,
    rng: &mut (dyn RandomSource + Send),
) -> Result<bool> {
    let mut claim = Connection::begin(&mut *c).await?;
    let Some(job) = claim_due(&mut claim, now, None).await? else {
        claim.commit().await?;
        return Ok(false);
    };
    let job = if try_lock_account(&mut claim, job.account).await? {
        // Releasing the savepoint keeps both locks until the commit.
        claim.commit().await?;
        job
    } else {
        claim.rollback().await?;
        lock_account(c, job.account).await?;
        match claim_due(c, now, Some(job.account)).await? {
            Some(job) => job,
            // Another node ran (or a writer moved) the account's due jobs
            // while we waited. Other accounts' jobs may still be due:
            // report progress so the caller looks again, in a new
            // transaction that does not hold this lock.
            None => return Ok(true),
        }
    };
    // Deleted before it runs, as on SQLite: the job may schedule its own
    // successor under the same key, which must survive.
    sqlx::query("DELETE FROM jobs WHERE id = $1")
        .bind(job.id)
        .execute(&mut *c)
        .await?;
    let account = job.account;
    let Ok(kind) = job.kind.parse::<JobKind>() else {
        tracing::warn!(kind = job.kind, "unknown job kind; dropped");
        return Ok(true);
    };
    match kind {
        JobKind::Availability => {
            let user = UserId(job.subject);
            let (settings, tz) = availability_settings(c, account, user).await?;
            let was = settings.available_just_before(&tz.zone(), now);
            availability_changed(c, now, account, user, was, rng).await?;
        }
        JobKind::Relax => {
            let mut t = writes::get(c, account, TicketId(job.subject)).await?;
            if t.status == Status::Open && t.owner.user_id.is_none() {
                route(
                    c,
                    now,
                    account,
                    &mut t,
                    RoutingTrigger::SkillRelaxation,
                    rng,
                )
                .await?;
            }
        }
        JobKind::LoadExpiry => expire_load(c, now, account).await?,
        JobKind::DrainWaiting => {
            drain_waiting(c, now, account, job.subject as usize, rng).await?;
        }
        JobKind::NotifyDigest => {
            super::notifications::digest(c, now, account, UserId(job.subject)).await?;
        }
        JobKind::WorkflowTimer => {
            super::workflows::run_timer(c, now, account, TicketId(job.subject)).await?;
        }
        JobKind::WorkflowScan => {
            super::workflows::run_scan(c, now, account, job.subject).await?;
        }
    }
    Ok(true)
}

/// Recounts the account's tickets whose assignment left the load window
/// (at most [`jobs::LOAD_EXPIRY_BATCH`]) and schedules the job again for
/// the oldest assignment still counted. The caller holds the account's
/// routing lock.
async fn expire_load(c: &mut PgConnection, now: Timestamp, account: AccountId) -> Result<()> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM tickets WHERE account_id = $1 AND load_counted = 1 AND assigned_at <= $2
         ORDER BY assigned_at LIMIT $3",
    )
    .bind(account.0)
    .bind(rows::ms(now - LOAD_WINDOW))
    .bind(jobs::LOAD_EXPIRY_BATCH as i64)
    .fetch_all(&mut *c)
    .await?;
    for id in ids {
        // Saving recomputes whether the ticket still counts.
        let t = writes::get(c, account, TicketId(id)).await?;
        writes::save(c, now, account, &t).await?;
    }
    let oldest: Option<i64> = sqlx::query_scalar(
        "SELECT min(assigned_at) FROM tickets WHERE account_id = $1 AND load_counted = 1",
    )
    .bind(account.0)
    .fetch_one(&mut *c)
    .await?;
    if let Some(oldest) = oldest {
        writes::schedule(
            c,
            account,
            JobKind::LoadExpiry,
            account.0,
            rows::ts(oldest) + LOAD_WINDOW,
        )
        .await?;
    }
    Ok(())
}

/// The routing decisions made for a ticket, oldest first.
pub async fn log(
    c: &mut PgConnection,
    account: AccountId,
    ticket: TicketId,
) -> Result<Vec<RoutingRecord>> {
    writes::get(c, account, ticket).await?;
    let found = sqlx::query(
        "SELECT at, trigger, explanation FROM routing_decisions WHERE ticket_id = $1 AND account_id = $2 ORDER BY id",
    )
    .bind(ticket.0)
    .bind(account.0)
    .fetch_all(&mut *c)
    .await?;
    found
        .iter()
        .map(|r| {
            Ok(RoutingRecord {
                at: rows::ts(rows::get(r, 0)?),
                trigger: rows::parsed(r, 1)?,
                explanation: rows::explanation(r, 2)?,
            })
        })
        .collect()
}

/// Differences between the maintained counters and a full recount. One
/// statement, so both sides come from the same snapshot.
pub async fn counter_drift(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
) -> Result<Vec<String>> {
    let since = rows::ms(now - LOAD_WINDOW);
    let found: Vec<(i64, String, i64, i64, i64, i64)> = sqlx::query_as(
        "WITH actual AS (
            SELECT owner_user_id AS user_id, type, count(*) AS open_count,
                   sum(CASE WHEN assigned_at > $2 THEN 1 ELSE 0 END)::BIGINT AS load_count
            FROM tickets WHERE account_id = $1 AND status = 'open' AND owner_user_id IS NOT NULL
            GROUP BY owner_user_id, type)
         SELECT coalesce(a.user_id, k.user_id), coalesce(a.type, k.type),
                coalesce(k.open_count, 0), coalesce(a.open_count, 0), coalesce(k.load_count, 0), coalesce(a.load_count, 0)
         FROM actual a FULL OUTER JOIN (SELECT * FROM user_ticket_counts WHERE account_id = $1) k
           ON a.user_id = k.user_id AND a.type = k.type",
    )
    .bind(account.0)
    .bind(since)
    .fetch_all(&mut *c)
    .await?;
    let mut drift = Vec::new();
    for (user, ty, open_k, open_a, load_k, load_a) in found {
        if open_k != open_a || load_k != load_a {
            drift.push(format!(
                "user {user} {ty}: open {open_k} (recount {open_a}), load {load_k} (recount {load_a})"
            ));
        }
    }
    Ok(drift)
}
