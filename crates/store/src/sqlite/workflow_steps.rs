//! Workflow steps on SQLite: the step runner the outbox dispatcher calls,
//! the customer agent's handoff, dry runs, and the store's [`Workflows`]
//! implementation. What a step does is decided by
//! `switchboard_domain::workflows::execution::plan`; this module carries
//! out its effects through the ordinary ticket writes. Same statements as
//! `postgres::workflow_steps`.
//!
//! [`Workflows`]: crate::Workflows

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};
use switchboard_domain::notifications::NotifyEvent;
use switchboard_domain::outbox::OutboxTopic;
use switchboard_domain::routing::RandomSource;
use switchboard_domain::workflows::{execution, execution::Stop, *};
use switchboard_domain::*;

use super::workflows::{
    after_change, caused_by, create, delete, enroll_by_hand, enrollments, get, json, list, load,
    replace, secret,
};
use super::{outbox, routing_state, rows, writes};
use crate::{NewMessage, Result, StoreError, workflows::Handoff};

struct Row {
    workflow_id: WorkflowId,
    ticket_id: TicketId,
    state: EnrollmentState,
    cursor: Option<Cursor>,
    seq: u32,
}

fn row(c: &Connection, account: AccountId, id: EnrollmentId) -> Result<Option<Row>> {
    Ok(c
        .prepare_cached(
            "SELECT workflow_id, ticket_id, state, cursor, seq FROM workflow_enrollments WHERE id = ?1 AND account_id = ?2",
        )?
        .query_row(params![id.0, account.0], |r| {
            Ok(Row {
                workflow_id: WorkflowId(r.get(0)?),
                ticket_id: TicketId(r.get(1)?),
                state: rows::parsed(r, 2)?,
                cursor: rows::json_opt(r, 3)?,
                seq: r.get(4)?,
            })
        })
        .optional()?)
}

fn rotations(c: &Connection, id: WorkflowId) -> Result<HashMap<String, Rotation>> {
    let mut out = HashMap::new();
    let mut stmt =
        c.prepare_cached("SELECT action_id, state FROM workflow_rotations WHERE workflow_id = ?1")?;
    let mut found = stmt.query([id.0])?;
    while let Some(r) = found.next()? {
        out.insert(r.get(0)?, rows::json(r, 1)?);
    }
    Ok(out)
}

/// Runs the enrollment's steps (see `Workflows::run_workflow_step`).
pub(super) fn run_step(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    id: EnrollmentId,
    seq: u32,
    cap: u32,
    rng: &mut dyn RandomSource,
) -> Result<()> {
    let Some(e) = row(c, account, id)? else {
        return Ok(());
    };
    if e.seq != seq || !e.state.is_active() {
        // Ran already (a second claim of the same row), or ended.
        return Ok(());
    }
    let w = match get(c, account, e.workflow_id) {
        Ok(w) => w,
        Err(StoreError::NotFound(_)) => {
            return finish(c, now, id, EnrollmentState::Cancelled, None, seq);
        }
        Err(err) => return Err(err),
    };
    let mut cursor = e.cursor.unwrap_or_else(|| vec![0]);
    let mut seq = seq;
    let mut ran = 0;
    let hour = SignedDuration::from_hours(1);
    let stop = loop {
        let recent: Vec<Timestamp> = c
            .prepare_cached("SELECT at FROM workflow_steps WHERE ticket_id = ?1 AND at > ?2")?
            .query_map(params![e.ticket_id.0, rows::ms(now - hour)], |r| {
                r.get::<_, i64>(0).map(rows::ts)
            })?
            .collect::<rusqlite::Result<_>>()?;
        if let Some(stop) = Stop::before_step(&recent, cap, ran, now) {
            break stop;
        }
        let before = writes::get(c, account, e.ticket_id)?;
        let loaded = load(c, account, &before, std::slice::from_ref(&w))?;
        let rotations = rotations(c, w.id)?;
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
        })?;
        if let Some(record) = &plan.record {
            record_step(c, now, account, &w, id, before.id, record)?;
        }
        apply(c, now, account, &w, &before, plan.effects, rng)?;
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
        return finish(c, now, id, EnrollmentState::Done, None, seq);
    };
    c.prepare_cached(
        "UPDATE workflow_enrollments SET state = ?1, cursor = ?2, seq = ?3, waiting_until = ?4, updated_at = ?5 WHERE id = ?6",
    )?
    .execute(params![state.as_str(), json(&cursor)?, seq, waiting.map(rows::ms), rows::ms(now), id.0])?;
    let topic = OutboxTopic::WorkflowStep {
        enrollment_id: id,
        seq,
    };
    outbox::enqueue_at(c, now, run_at, account, &topic)
}

fn finish(
    c: &Connection,
    now: Timestamp,
    id: EnrollmentId,
    state: EnrollmentState,
    error: Option<&str>,
    seq: u32,
) -> Result<()> {
    c.prepare_cached(
        "UPDATE workflow_enrollments SET state = ?1, cursor = NULL, seq = ?2, waiting_until = NULL, error = ?3, updated_at = ?4 WHERE id = ?5",
    )?
    .execute(params![state.as_str(), seq, error, rows::ms(now), id.0])?;
    Ok(())
}

fn record_step(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    w: &Workflow,
    id: EnrollmentId,
    ticket: TicketId,
    record: &StepRecord,
) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO workflow_steps (account_id, enrollment_id, ticket_id, at, record) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![account.0, id.0, ticket.0, rows::ms(now), json(record)?])?;
    let event = HistoryEvent::WorkflowStep {
        workflow_id: w.id,
        enrollment_id: id,
        step: record.step.clone(),
        action: record.action.clone(),
        summary: record.summary.clone(),
        explanation: record.explanation.clone(),
    };
    writes::record(c, account, ticket, now, Actor::System, &event)
}

/// Carries out a step's effects on the ticket, then lets the change enroll
/// the ticket in other workflows (never in `w`: no loops).
fn apply(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    w: &Workflow,
    before: &Ticket,
    effects: Vec<Effect>,
    rng: &mut dyn RandomSource,
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
                )?;
                if let Some(event) = ticket::owner_changed(from, t.owner, OwnerReason::Workflow) {
                    events.push(event);
                    owner_moved(c, now, account, &mut t, from, rng)?;
                }
            }
            Effect::Patch(patch) => {
                let patched = ticket::patch(&mut t, patch, now)?;
                for event in &patched.history {
                    writes::record(c, account, t.id, now, Actor::System, event)?;
                }
                writes::save(c, now, account, &t)?;
                events.extend(patched.history);
                if patched.closed {
                    super::routing::drain_waiting(c, now, account, 0, rng)?;
                    t = writes::get(c, account, t.id)?;
                }
            }
            Effect::Message(kind, body) => {
                let m = NewMessage {
                    kind,
                    author: Actor::System,
                    body,
                    external_id: None,
                };
                // Its own change (the message) enrolls others, not `w`.
                let (_, after) = caused_by(w.id, || {
                    super::tickets::add_message(c, now, account, t.id, m)
                })?;
                t = after;
            }
            Effect::Notify(users) => {
                let event = NotifyEvent::Workflow { users };
                super::notifications::raise(c, now, account, &t, Actor::System, &event)?;
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
                outbox::enqueue(c, now, account, &topic)?;
            }
            Effect::Rotation {
                action_id,
                rotation,
            } => {
                c.prepare_cached(
                    "INSERT INTO workflow_rotations (workflow_id, action_id, state) VALUES (?1, ?2, ?3)
                     ON CONFLICT (workflow_id, action_id) DO UPDATE SET state = ?3",
                )?
                .execute(params![w.id.0, action_id, json(&rotation)?])?;
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
    caused_by(w.id, || after_change(c, now, account, &t, &change))
}

/// After an owner move by a workflow or a handoff: saved, out of the
/// waiting queue, the new owner told.
fn owner_moved(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    t: &mut Ticket,
    from: Owner,
    rng: &mut dyn RandomSource,
) -> Result<()> {
    t.updated_at = now;
    writes::save(c, now, account, t)?;
    c.prepare_cached("UPDATE tickets SET waiting = 0 WHERE id = ?1 AND account_id = ?2")?
        .execute(params![t.id.0, account.0])?;
    if let Some(user) = ticket::told_of_assignment(from, t.owner, Actor::System) {
        let event = NotifyEvent::Assigned { user_id: user };
        super::notifications::raise(c, now, account, t, Actor::System, &event)?;
    }
    // The former owner may have capacity for a waiting ticket now.
    super::routing::drain_waiting(c, now, account, 0, rng)?;
    *t = writes::get(c, account, t.id)?;
    Ok(())
}

/// `Workflows::fail_workflow_step`.
pub(super) fn fail_step(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    id: EnrollmentId,
    seq: u32,
    error: &str,
) -> Result<()> {
    let Some(e) = row(c, account, id)? else {
        return Ok(());
    };
    if e.seq != seq || !e.state.is_active() {
        return Ok(());
    }
    let at = e.cursor.unwrap_or_default();
    let action = get(c, account, e.workflow_id)
        .ok()
        .and_then(|w| execution::action_at(&w.spec.actions, &at).map(|a| a.type_name()))
        .unwrap_or("unknown");
    let record = StepRecord {
        step: execution::path(&at),
        action: action.to_owned(),
        summary: format!("failed: {error}"),
        explanation: None,
    };
    c.prepare_cached(
        "INSERT INTO workflow_steps (account_id, enrollment_id, ticket_id, at, record) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![account.0, id.0, e.ticket_id.0, rows::ms(now), json(&record)?])?;
    let event = HistoryEvent::WorkflowStep {
        workflow_id: e.workflow_id,
        enrollment_id: id,
        step: record.step,
        action: record.action,
        summary: record.summary,
        explanation: None,
    };
    writes::record(c, account, e.ticket_id, now, Actor::System, &event)?;
    finish(c, now, id, EnrollmentState::Failed, Some(error), seq)
}

/// `Workflows::hand_off`.
pub(super) fn hand_off(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    ticket: TicketId,
    to: Handoff,
    rng: &mut dyn RandomSource,
) -> Result<Ticket> {
    let before = writes::get(c, account, ticket)?;
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
        )?;
        if let Some(event) = ticket::owner_changed(from, t.owner, OwnerReason::Handoff) {
            events.push(event);
            t.updated_at = now;
            writes::save(c, now, account, &t)?;
            c.prepare_cached("UPDATE tickets SET waiting = 0 WHERE id = ?1 AND account_id = ?2")?
                .execute(params![t.id.0, account.0])?;
            super::routing::drain_waiting(c, now, account, 0, rng)?;
            t = writes::get(c, account, t.id)?;
        }
    }
    let event = NotifyEvent::HandedOff {
        user_id: to.user_id,
        team_id: to.team_id,
    };
    super::notifications::raise(c, now, account, &t, Actor::System, &event)?;
    let change = Change {
        before: Some(&before),
        events: &events,
        handoff: true,
    };
    after_change(c, now, account, &t, &change)?;
    Ok(t)
}

/// `Workflows::test_workflow`: the steps over a copy of the routing state.
pub(super) fn dry_run(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    id: WorkflowId,
    ticket: TicketId,
    rng: &mut dyn RandomSource,
) -> Result<Vec<StepRecord>> {
    let w = get(c, account, id)?;
    let t = writes::get(c, account, ticket)?;
    let loaded = load(c, account, &t, std::slice::from_ref(&w))?;
    let rotations = rotations(c, w.id)?;
    let mut routing = routing_state::with(c, account, |s| s.clone())?;
    let facts = Facts {
        ticket: &t,
        before: None,
        contact: loaded.contact.as_ref(),
        office_hours: &loaded.hours,
    };
    let mut env = StepEnv {
        routing: &mut routing,
        rotations: &rotations,
        rng,
        now,
    };
    Ok(execution::dry_run(&w, &facts, &mut env))
}

#[async_trait::async_trait]
impl crate::Workflows for super::SqliteStore {
    async fn create_workflow(&self, account: AccountId, spec: WorkflowSpec) -> Result<Workflow> {
        self.write(move |c, now| create(c, now, account, spec))
            .await
    }

    async fn list_workflows(&self, account: AccountId) -> Result<Vec<Workflow>> {
        self.read(move |c| list(c, account)).await
    }

    async fn get_workflow(&self, account: AccountId, id: WorkflowId) -> Result<Workflow> {
        self.read(move |c| get(c, account, id)).await
    }

    async fn replace_workflow(
        &self,
        account: AccountId,
        id: WorkflowId,
        spec: WorkflowSpec,
    ) -> Result<Workflow> {
        self.write(move |c, now| replace(c, now, account, id, spec))
            .await
    }

    async fn delete_workflow(&self, account: AccountId, id: WorkflowId) -> Result<()> {
        self.write(move |c, now| delete(c, now, account, id)).await
    }

    async fn enroll_ticket(
        &self,
        account: AccountId,
        id: WorkflowId,
        ticket: TicketId,
    ) -> Result<Enrollment> {
        self.write(move |c, now| enroll_by_hand(c, now, account, id, ticket))
            .await
    }

    async fn test_workflow(
        &self,
        account: AccountId,
        id: WorkflowId,
        ticket: TicketId,
    ) -> Result<Vec<StepRecord>> {
        // On the writer: the kept routing state lives there (nothing is
        // written; the rotate chooses over a copy).
        self.write_routed(move |c, now, rng| dry_run(c, now, account, id, ticket, rng))
            .await
    }

    async fn ticket_enrollments(
        &self,
        account: AccountId,
        ticket: TicketId,
    ) -> Result<Vec<Enrollment>> {
        self.read(move |c| {
            writes::get(c, account, ticket)?;
            enrollments(c, account, ticket)
        })
        .await
    }

    async fn hand_off(&self, account: AccountId, ticket: TicketId, to: Handoff) -> Result<Ticket> {
        self.write_routed(move |c, now, rng| hand_off(c, now, account, ticket, to, rng))
            .await
    }

    async fn run_workflow_step(
        &self,
        account: AccountId,
        enrollment: EnrollmentId,
        seq: u32,
        steps_per_hour: u32,
    ) -> Result<()> {
        self.write_routed(move |c, now, rng| {
            run_step(c, now, account, enrollment, seq, steps_per_hour, rng)
        })
        .await
    }

    async fn fail_workflow_step(
        &self,
        account: AccountId,
        enrollment: EnrollmentId,
        seq: u32,
        error: String,
    ) -> Result<()> {
        self.write(move |c, now| fail_step(c, now, account, enrollment, seq, &error))
            .await
    }

    async fn workflow_secret(
        &self,
        account: AccountId,
        id: WorkflowId,
        action_id: String,
    ) -> Result<Option<String>> {
        self.read(move |c| secret(c, account, id, &action_id)).await
    }
}
