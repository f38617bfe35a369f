//! Workflow steps on PostgreSQL: the same statements as
//! `sqlite::workflow_steps` (see there). Each run takes the account's
//! routing lock first (a step may move the owner, and rotates read the
//! kept routing state), then locks the enrollment's row, so two nodes
//! claiming the same outbox row run its step once: the second finds the
//! step count moved and does nothing.
//!
//! [`Workflows`]: crate::Workflows

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};
use sqlx::PgConnection;
use switchboard_domain::notifications::NotifyEvent;
use switchboard_domain::outbox::OutboxTopic;
use switchboard_domain::routing::RandomSource;
use switchboard_domain::workflows::{execution, execution::Stop, *};
use switchboard_domain::*;

use super::workflows::{
    after_change, caused_by, create, delete, enroll_by_hand, enrollments, get, list, load, replace,
    secret,
};
use super::{outbox, routing, routing_state, rows, writes};
use crate::{NewMessage, Result, StoreError, workflows::Handoff};

struct Row {
    workflow_id: WorkflowId,
    ticket_id: TicketId,
    state: EnrollmentState,
    cursor: Option<Cursor>,
    seq: u32,
}

async fn row(c: &mut PgConnection, account: AccountId, id: EnrollmentId) -> Result<Option<Row>> {
    let found = sqlx::query(
        "SELECT workflow_id, ticket_id, state, cursor, seq FROM workflow_enrollments WHERE id = $1 AND account_id = $2 FOR UPDATE",
    )
    .bind(id.0)
    .bind(account.0)
    .fetch_optional(&mut *c)
    .await?;
    found
        .map(|r| {
            Ok(Row {
                workflow_id: WorkflowId(rows::get(&r, 0)?),
                ticket_id: TicketId(rows::get(&r, 1)?),
                state: rows::parsed(&r, 2)?,
                cursor: rows::json_opt(&r, 3)?,
                seq: rows::get::<i32>(&r, 4)? as u32,
            })
        })
        .transpose()
}

async fn rotations(c: &mut PgConnection, id: WorkflowId) -> Result<HashMap<String, Rotation>> {
    let found =
        sqlx::query("SELECT action_id, state FROM workflow_rotations WHERE workflow_id = $1")
            .bind(id.0)
            .fetch_all(&mut *c)
            .await?;
    let mut out = HashMap::new();
    for r in &found {
        out.insert(rows::get(r, 0)?, rows::json(r, 1)?);
    }
    Ok(out)
}

/// See `sqlite::workflow_steps::run_step`. The caller holds the account's
/// routing lock.
async fn run_step(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    id: EnrollmentId,
    seq: u32,
    cap: u32,
    rng: &mut (dyn RandomSource + Send),
) -> Result<()> {
    let Some(e) = row(c, account, id).await? else {
        return Ok(());
    };
    if e.seq != seq || !e.state.is_active() {
        return Ok(());
    }
    let w = match get(c, account, e.workflow_id).await {
        Ok(w) => w,
        Err(StoreError::NotFound(_)) => {
            return finish(c, now, id, EnrollmentState::Cancelled, None, seq).await;
        }
        Err(err) => return Err(err),
    };
    let mut cursor = e.cursor.unwrap_or_else(|| vec![0]);
    let mut seq = seq;
    let mut ran = 0;
    let hour = SignedDuration::from_hours(1);
    let stop = loop {
        let recent: Vec<i64> =
            sqlx::query_scalar("SELECT at FROM workflow_steps WHERE ticket_id = $1 AND at > $2")
                .bind(e.ticket_id.0)
                .bind(rows::ms(now - hour))
                .fetch_all(&mut *c)
                .await?;
        let recent: Vec<Timestamp> = recent.into_iter().map(rows::ts).collect();
        if let Some(stop) = Stop::before_step(&recent, cap, ran, now) {
            break stop;
        }
        let before = writes::get(c, account, e.ticket_id).await?;
        let loaded = load(c, account, &before, std::slice::from_ref(&w)).await?;
        let rotations = rotations(c, w.id).await?;
        let facts = Facts {
            ticket: &before,
            before: None,
            contact: loaded.contact.as_ref(),
            office_hours: &loaded.hours,
        };
        let plan = routing_state::with(c, account, |s| {
            let mut env = StepEnv {
                routing: s,
                rotations: &rotations,
                rng: &mut *rng,
                now,
            };
            execution::plan(&w, &cursor, &facts, &mut env)
        })
        .await?;
        if let Some(record) = &plan.record {
            record_step(c, now, account, &w, id, before.id, record).await?;
        }
        apply(c, now, account, &w, &before, plan.effects, rng).await?;
        seq += 1;
        ran += 1;
        let (next, stop) = Stop::after_step(plan.next);
        if let Some(next) = next {
            cursor = next;
        }
        if let Some(stop) = stop {
            break stop;
        }
    };
    let (state, Some((run_at, waiting))) = stop.parked(now) else {
        return finish(c, now, id, EnrollmentState::Done, None, seq).await;
    };
    sqlx::query(
        "UPDATE workflow_enrollments SET state = $1, cursor = $2, seq = $3, waiting_until = $4, updated_at = $5 WHERE id = $6",
    )
    .bind(state.as_str())
    .bind(rows::to_json(&cursor)?)
    .bind(seq as i32)
    .bind(waiting.map(rows::ms))
    .bind(rows::ms(now))
    .bind(id.0)
    .execute(&mut *c)
    .await?;
    let topic = OutboxTopic::WorkflowStep {
        enrollment_id: id,
        seq,
    };
    outbox::enqueue_at(c, now, run_at, account, &topic).await
}

async fn finish(
    c: &mut PgConnection,
    now: Timestamp,
    id: EnrollmentId,
    state: EnrollmentState,
    error: Option<&str>,
    seq: u32,
) -> Result<()> {
    sqlx::query(
        "UPDATE workflow_enrollments SET state = $1, cursor = NULL, seq = $2, waiting_until = NULL, error = $3, updated_at = $4 WHERE id = $5",
    )
    .bind(state.as_str())
    .bind(seq as i32)
    .bind(error)
    .bind(rows::ms(now))
    .bind(id.0)
    .execute(&mut *c)
    .await?;
    Ok(())
}

async fn record_step(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    w: &Workflow,
    id: EnrollmentId,
    ticket: TicketId,
    record: &StepRecord,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO workflow_steps (account_id, enrollment_id, ticket_id, at, record) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(account.0)
    .bind(id.0)
    .bind(ticket.0)
    .bind(rows::ms(now))
    .bind(rows::to_json(record)?)
    .execute(&mut *c)
    .await?;
    let event = HistoryEvent::WorkflowStep {
        workflow_id: w.id,
        enrollment_id: id,
        step: record.step.clone(),
        action: record.action.clone(),
        summary: record.summary.clone(),
        explanation: record.explanation.clone(),
    };
    writes::record(c, account, ticket, now, Actor::System, &event).await
}

/// See `sqlite::workflow_steps::apply`.
async fn apply(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    w: &Workflow,
    before: &Ticket,
    effects: Vec<Effect>,
    rng: &mut (dyn RandomSource + Send),
) -> Result<()> {
    let mut t = before.clone();
    let mut events = Vec::new();
    for effect in effects {
        match effect {
            Effect::Owner(to) => {
                let from = t.owner;
                writes::move_owner(
                    c,
                    account,
                    &mut t,
                    to,
                    now,
                    Actor::System,
                    OwnerReason::Workflow,
                )
                .await?;
                if let Some(event) = ticket::owner_changed(from, t.owner, OwnerReason::Workflow) {
                    events.push(event);
                    owner_moved(c, now, account, &mut t, from, rng).await?;
                }
            }
            Effect::Patch(patch) => {
                let patched = ticket::patch(&mut t, patch, now)?;
                for event in &patched.history {
                    writes::record(c, account, t.id, now, Actor::System, event).await?;
                }
                writes::save(c, now, account, &t).await?;
                events.extend(patched.history);
                if patched.closed {
                    routing::drain_waiting(c, now, account, 0, rng).await?;
                    t = writes::get(c, account, t.id).await?;
                }
            }
            Effect::Message(kind, body) => {
                let m = NewMessage {
                    kind,
                    author: Actor::System,
                    body,
                    external_id: None,
                };
                let (_, after) =
                    caused_by(w.id, super::tickets::add_message(c, now, account, t.id, m)).await?;
                t = after;
            }
            Effect::Notify(users) => {
                let event = NotifyEvent::Workflow { users };
                super::notifications::raise(c, now, account, &t, Actor::System, &event).await?;
            }
            Effect::Webhook {
                action_id,
                url,
                body,
            } => {
                let topic = OutboxTopic::WorkflowWebhook {
                    workflow_id: w.id,
                    action_id,
                    url,
                    body,
                };
                outbox::enqueue(c, now, account, &topic).await?;
            }
            Effect::Rotation {
                action_id,
                rotation,
            } => {
                sqlx::query(
                    "INSERT INTO workflow_rotations (workflow_id, action_id, state) VALUES ($1, $2, $3)
                     ON CONFLICT (workflow_id, action_id) DO UPDATE SET state = EXCLUDED.state",
                )
                .bind(w.id.0)
                .bind(action_id)
                .bind(rows::to_json(&rotation)?)
                .execute(&mut *c)
                .await?;
            }
        }
    }
    if events.is_empty() {
        return Ok(());
    }
    let change = Change {
        before: Some(before),
        events: &events,
        handoff: false,
    };
    caused_by(w.id, after_change(c, now, account, &t, &change)).await
}

/// See `sqlite::workflow_steps::owner_moved`.
async fn owner_moved(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    t: &mut Ticket,
    from: Owner,
    rng: &mut (dyn RandomSource + Send),
) -> Result<()> {
    t.updated_at = now;
    writes::save(c, now, account, t).await?;
    sqlx::query("UPDATE tickets SET waiting = 0 WHERE id = $1 AND account_id = $2")
        .bind(t.id.0)
        .bind(account.0)
        .execute(&mut *c)
        .await?;
    if let Some(user) = ticket::told_of_assignment(from, t.owner, Actor::System) {
        let event = NotifyEvent::Assigned { user_id: user };
        super::notifications::raise(c, now, account, t, Actor::System, &event).await?;
    }
    routing::drain_waiting(c, now, account, 0, rng).await?;
    *t = writes::get(c, account, t.id).await?;
    Ok(())
}

/// See `sqlite::workflow_steps::fail_step`.
async fn fail_step(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    id: EnrollmentId,
    seq: u32,
    error: &str,
) -> Result<()> {
    let Some(e) = row(c, account, id).await? else {
        return Ok(());
    };
    if e.seq != seq || !e.state.is_active() {
        return Ok(());
    }
    let at = e.cursor.unwrap_or_default();
    let action = match get(c, account, e.workflow_id).await {
        Ok(w) => execution::action_at(&w.spec.actions, &at).map_or("unknown", |a| a.type_name()),
        Err(_) => "unknown",
    };
    let record = StepRecord {
        step: execution::path(&at),
        action: action.to_owned(),
        summary: format!("failed: {error}"),
        explanation: None,
    };
    sqlx::query(
        "INSERT INTO workflow_steps (account_id, enrollment_id, ticket_id, at, record) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(account.0)
    .bind(id.0)
    .bind(e.ticket_id.0)
    .bind(rows::ms(now))
    .bind(rows::to_json(&record)?)
    .execute(&mut *c)
    .await?;
    let event = HistoryEvent::WorkflowStep {
        workflow_id: e.workflow_id,
        enrollment_id: id,
        step: record.step,
        action: record.action,
        summary: record.summary,
        explanation: None,
    };
    writes::record(c, account, e.ticket_id, now, Actor::System, &event).await?;
    finish(c, now, id, EnrollmentState::Failed, Some(error), seq).await
}

/// See `sqlite::workflow_steps::hand_off`. The caller holds the account's
/// routing lock.
async fn hand_off(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    ticket: TicketId,
    to: Handoff,
    rng: &mut (dyn RandomSource + Send),
) -> Result<Ticket> {
    let before = writes::get(c, account, ticket).await?;
    let mut t = before.clone();
    let mut events = Vec::new();
    if to.user_id.is_some() || to.team_id.is_some() {
        let owner = Owner {
            user_id: to.user_id,
            team_id: to.team_id.or(t.owner.team_id),
        };
        let from = t.owner;
        writes::move_owner(
            c,
            account,
            &mut t,
            owner,
            now,
            Actor::System,
            OwnerReason::Handoff,
        )
        .await?;
        if let Some(event) = ticket::owner_changed(from, t.owner, OwnerReason::Handoff) {
            events.push(event);
            t.updated_at = now;
            writes::save(c, now, account, &t).await?;
            sqlx::query("UPDATE tickets SET waiting = 0 WHERE id = $1 AND account_id = $2")
                .bind(t.id.0)
                .bind(account.0)
                .execute(&mut *c)
                .await?;
            routing::drain_waiting(c, now, account, 0, rng).await?;
            t = writes::get(c, account, t.id).await?;
        }
    }
    let event = NotifyEvent::HandedOff {
        user_id: to.user_id,
        team_id: to.team_id,
    };
    super::notifications::raise(c, now, account, &t, Actor::System, &event).await?;
    let change = Change {
        before: Some(&before),
        events: &events,
        handoff: true,
    };
    after_change(c, now, account, &t, &change).await?;
    Ok(t)
}

/// See `sqlite::workflow_steps::dry_run`. The caller holds the account's
/// routing lock (the kept state is read under it).
async fn dry_run(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    id: WorkflowId,
    ticket: TicketId,
    rng: &mut (dyn RandomSource + Send),
) -> Result<Vec<StepRecord>> {
    let w = get(c, account, id).await?;
    let t = writes::get(c, account, ticket).await?;
    let loaded = load(c, account, &t, std::slice::from_ref(&w)).await?;
    let rotations = rotations(c, w.id).await?;
    let mut copy = routing_state::with(c, account, |s| s.clone()).await?;
    let facts = Facts {
        ticket: &t,
        before: None,
        contact: loaded.contact.as_ref(),
        office_hours: &loaded.hours,
    };
    let mut env = StepEnv {
        routing: &mut copy,
        rotations: &rotations,
        rng,
        now,
    };
    Ok(execution::dry_run(&w, &facts, &mut env))
}

#[async_trait::async_trait]
impl crate::Workflows for super::PgStore {
    async fn create_workflow(&self, account: AccountId, spec: WorkflowSpec) -> Result<Workflow> {
        transaction!(self, |c, now| create(c, now, account, spec.clone()).await)
    }

    async fn list_workflows(&self, account: AccountId) -> Result<Vec<Workflow>> {
        let mut c = self.pool.acquire().await?;
        list(&mut c, account).await
    }

    async fn get_workflow(&self, account: AccountId, id: WorkflowId) -> Result<Workflow> {
        let mut c = self.pool.acquire().await?;
        get(&mut c, account, id).await
    }

    async fn replace_workflow(
        &self,
        account: AccountId,
        id: WorkflowId,
        spec: WorkflowSpec,
    ) -> Result<Workflow> {
        transaction!(self, |c, now| replace(c, now, account, id, spec.clone())
            .await)
    }

    async fn delete_workflow(&self, account: AccountId, id: WorkflowId) -> Result<()> {
        transaction!(self, |c, now| delete(c, now, account, id).await)
    }

    async fn enroll_ticket(
        &self,
        account: AccountId,
        id: WorkflowId,
        ticket: TicketId,
    ) -> Result<Enrollment> {
        transaction!(self, |c, now| {
            routing::lock_account(c, account).await?;
            enroll_by_hand(c, now, account, id, ticket).await
        })
    }

    async fn test_workflow(
        &self,
        account: AccountId,
        id: WorkflowId,
        ticket: TicketId,
    ) -> Result<Vec<StepRecord>> {
        transaction!(self, |c, now| {
            routing::lock_account(c, account).await?;
            dry_run(c, now, account, id, ticket, &mut self.rng()).await
        })
    }

    async fn ticket_enrollments(
        &self,
        account: AccountId,
        ticket: TicketId,
    ) -> Result<Vec<Enrollment>> {
        let mut c = self.pool.acquire().await?;
        writes::get(&mut c, account, ticket).await?;
        enrollments(&mut c, account, ticket).await
    }

    async fn hand_off(&self, account: AccountId, ticket: TicketId, to: Handoff) -> Result<Ticket> {
        transaction!(self, |c, now| {
            routing::lock_account(c, account).await?;
            hand_off(c, now, account, ticket, to, &mut self.rng()).await
        })
    }

    async fn run_workflow_step(
        &self,
        account: AccountId,
        enrollment: EnrollmentId,
        seq: u32,
        steps_per_hour: u32,
    ) -> Result<()> {
        transaction!(self, |c, now| {
            routing::lock_account(c, account).await?;
            run_step(
                c,
                now,
                account,
                enrollment,
                seq,
                steps_per_hour,
                &mut self.rng(),
            )
            .await
        })
    }

    async fn fail_workflow_step(
        &self,
        account: AccountId,
        enrollment: EnrollmentId,
        seq: u32,
        error: String,
    ) -> Result<()> {
        transaction!(self, |c, now| {
            fail_step(c, now, account, enrollment, seq, &error).await
        })
    }

    async fn workflow_secret(
        &self,
        account: AccountId,
        id: WorkflowId,
        action_id: String,
    ) -> Result<Option<String>> {
        let mut c = self.pool.acquire().await?;
        secret(&mut c, account, id, &action_id).await
    }
}
