//! Workflows on PostgreSQL: the same statements as `sqlite::workflows`
//! (see there), with two differences. The enabled workflows are read per
//! change (several nodes write them, so a node keeps no copy), and the
//! workflow making a change (the loop guard) travels in a task-local.
//!
//! Every caller of [`after_change`] holds the account's routing lock, so
//! two changes to one ticket cannot both see "not enrolled" and enroll it
//! twice.

use std::collections::HashMap;

use jiff::Timestamp;
use serde_json::{Map, Value};
use sqlx::PgConnection;
use switchboard_domain::notifications::NotifyEvent;
use switchboard_domain::outbox::OutboxTopic;
use switchboard_domain::routing::OfficeHours;
use switchboard_domain::workflows::{self as wf, execution, *};
use switchboard_domain::*;

use super::account_settings::{self, COLUMNS, workflow};
use super::{OrNotFound, backend, directory, outbox, routing_state, rows, writes};
use crate::{Result, StoreError};

/// How many open tickets one scan write sets timers for.
const SCAN_BATCH: i64 = 256;

tokio::task_local! {
    /// The workflow whose step is making the current change.
    static CAUSE: Option<WorkflowId>;
}

/// Runs `f` as a change made by workflow `cause`.
pub(super) async fn caused_by<F: std::future::Future>(cause: WorkflowId, f: F) -> F::Output {
    CAUSE.scope(Some(cause), f).await
}

pub(super) async fn get(
    c: &mut PgConnection,
    account: AccountId,
    id: WorkflowId,
) -> Result<Workflow> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM workflows WHERE id = $1 AND account_id = $2"
    ))
    .bind(id.0)
    .bind(account.0)
    .fetch_optional(&mut *c)
    .await
    .or_not_found("workflow")?;
    workflow(&row)
}

pub(super) async fn list(c: &mut PgConnection, account: AccountId) -> Result<Vec<Workflow>> {
    let found = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM workflows WHERE account_id = $1 ORDER BY id"
    ))
    .bind(account.0)
    .fetch_all(&mut *c)
    .await?;
    rows::all(found, workflow)
}

pub(super) async fn create(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    spec: WorkflowSpec,
) -> Result<Workflow> {
    let secrets: Map<String, Value> = wf::secrets(&spec.actions)
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO workflows (account_id, spec, secrets, enabled, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
    )
    .bind(account.0)
    .bind(rows::to_json(&spec)?)
    .bind(rows::to_json(&secrets)?)
    .bind(spec.enabled)
    .bind(rows::ms(now))
    .fetch_one(&mut *c)
    .await?;
    saved(c, now, account, &spec).await?;
    get(c, account, WorkflowId(id)).await
}

/// See `sqlite::workflows::saved`.
async fn saved(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    spec: &WorkflowSpec,
) -> Result<()> {
    routing_state::settings_changed(c, account).await?;
    if spec.enabled && spec.triggers.iter().any(|t| t.kind().is_timed()) {
        writes::unschedule(c, account, JobKind::WorkflowScan, 0).await?;
        writes::schedule(c, account, JobKind::WorkflowScan, 0, now).await?;
    }
    Ok(())
}

pub(super) async fn replace(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    id: WorkflowId,
    spec: WorkflowSpec,
) -> Result<Workflow> {
    let stored: String = sqlx::query_scalar(
        "SELECT secrets FROM workflows WHERE id = $1 AND account_id = $2 FOR UPDATE",
    )
    .bind(id.0)
    .bind(account.0)
    .fetch_optional(&mut *c)
    .await
    .or_not_found("workflow")?;
    let stored: Map<String, Value> = serde_json::from_str(&stored).map_err(backend)?;
    let secrets = wf::merged_secrets(stored, &spec);
    sqlx::query(
        "UPDATE workflows SET spec = $1, secrets = $2, enabled = $3, updated_at = $4 WHERE id = $5 AND account_id = $6",
    )
    .bind(rows::to_json(&spec)?)
    .bind(rows::to_json(&secrets)?)
    .bind(spec.enabled)
    .bind(rows::ms(now))
    .bind(id.0)
    .bind(account.0)
    .execute(&mut *c)
    .await?;
    saved(c, now, account, &spec).await?;
    get(c, account, id).await
}

pub(super) async fn delete(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    id: WorkflowId,
) -> Result<()> {
    let n = sqlx::query("DELETE FROM workflows WHERE id = $1 AND account_id = $2")
        .bind(id.0)
        .bind(account.0)
        .execute(&mut *c)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(StoreError::NotFound("workflow"));
    }
    routing_state::settings_changed(c, account).await?;
    sqlx::query(
        "UPDATE workflow_enrollments SET state = 'cancelled', updated_at = $1, waiting_until = NULL
         WHERE workflow_id = $2 AND state IN ('running', 'waiting')",
    )
    .bind(rows::ms(now))
    .bind(id.0)
    .execute(&mut *c)
    .await?;
    sqlx::query("DELETE FROM workflow_rotations WHERE workflow_id = $1")
        .bind(id.0)
        .execute(&mut *c)
        .await?;
    Ok(())
}

pub(super) async fn secret(
    c: &mut PgConnection,
    account: AccountId,
    id: WorkflowId,
    action: &str,
) -> Result<Option<String>> {
    let stored: String =
        sqlx::query_scalar("SELECT secrets FROM workflows WHERE id = $1 AND account_id = $2")
            .bind(id.0)
            .bind(account.0)
            .fetch_optional(&mut *c)
            .await
            .or_not_found("workflow")?;
    let stored: Map<String, Value> = serde_json::from_str(&stored).map_err(backend)?;
    Ok(stored
        .get(action)
        .and_then(Value::as_str)
        .map(str::to_owned))
}

// ---- Facts -----------------------------------------------------------

pub(super) async fn prior(
    c: &mut PgConnection,
    account: AccountId,
    ticket: TicketId,
) -> Result<Vec<Prior>> {
    let found = sqlx::query(
        "SELECT workflow_id, trigger, state, due_at FROM workflow_enrollments WHERE ticket_id = $1 AND account_id = $2",
    )
    .bind(ticket.0)
    .bind(account.0)
    .fetch_all(&mut *c)
    .await?;
    rows::all(found, |r| {
        let state: EnrollmentState = rows::parsed(r, 2)?;
        Ok(Prior {
            workflow_id: WorkflowId(rows::get(r, 0)?),
            trigger: rows::parsed(r, 1)?,
            active: state.is_active(),
            due_at: rows::opt_ts(r, 3)?,
        })
    })
}

/// See `sqlite::workflows::Loaded`.
pub(super) struct Loaded {
    pub contact: Option<Contact>,
    pub hours: HashMap<HoursOf, OfficeHours>,
}

pub(super) async fn load(
    c: &mut PgConnection,
    account: AccountId,
    t: &Ticket,
    wfs: &[Workflow],
) -> Result<Loaded> {
    let contact = match t.contact_id {
        Some(id) => match directory::get_contact(c, account, id).await {
            Ok(contact) => Some(contact),
            Err(StoreError::NotFound(_)) => None,
            Err(e) => return Err(e),
        },
        None => None,
    };
    let mut hours = HashMap::new();
    for of in wfs.iter().flat_map(|w| wf::hours_read(&w.spec)) {
        let (table, id) = match of {
            HoursOf::Team(t) => ("teams", t.0),
            HoursOf::Channel(ch) => ("channels", ch.0),
        };
        let found: Option<Option<String>> = sqlx::query_scalar(&format!(
            "SELECT office_hours FROM {table} WHERE id = $1 AND account_id = $2"
        ))
        .bind(id)
        .bind(account.0)
        .fetch_optional(&mut *c)
        .await?;
        if let Some(Some(text)) = found {
            hours.insert(of, serde_json::from_str(&text).map_err(backend)?);
        }
    }
    Ok(Loaded { contact, hours })
}

async fn timeline(c: &mut PgConnection, account: AccountId, ticket: TicketId) -> Result<Timeline> {
    let r = sqlx::query(
        "SELECT max(CASE WHEN kind = 'reply' THEN created_at END), max(CASE WHEN kind = 'inbound' THEN created_at END)
         FROM messages WHERE ticket_id = $1 AND account_id = $2",
    )
    .bind(ticket.0)
    .bind(account.0)
    .fetch_one(&mut *c)
    .await?;
    Ok(Timeline {
        last_reply_at: rows::opt_ts(&r, 0)?,
        last_inbound_at: rows::opt_ts(&r, 1)?,
    })
}

fn has_timed(wfs: &[Workflow]) -> bool {
    wfs.iter()
        .any(|w| w.spec.triggers.iter().any(|t| t.kind().is_timed()))
}

// ---- Enrollment --------------------------------------------------------

/// See `sqlite::workflows::after_change`. The caller holds the account's
/// routing lock.
pub(super) async fn after_change(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    t: &Ticket,
    change: &Change<'_>,
) -> Result<()> {
    let kept = account_settings::get(c, account).await?;
    let wfs: &[Workflow] = &kept.workflows;
    if wfs.is_empty() {
        return Ok(());
    }
    let cause = CAUSE.try_with(|c| *c).ok().flatten();
    let fires = wfs.iter().any(|w| {
        Some(w.id) != cause
            && w.spec
                .triggers
                .iter()
                .any(|tr| execution::fired(tr, t, change))
    });
    let timed = has_timed(wfs);
    if !fires && !timed {
        return Ok(());
    }
    let mut prior = prior(c, account, t.id).await?;
    let loaded = load(c, account, t, wfs).await?;
    let facts = Facts {
        ticket: t,
        before: change.before,
        contact: loaded.contact.as_ref(),
        office_hours: &loaded.hours,
    };
    if fires {
        for (id, kind) in execution::to_enroll(wfs, change, &facts, &prior, cause) {
            let w = wfs.iter().find(|w| w.id == id).expect("listed");
            enroll(c, now, account, w, t.id, kind, None).await?;
            prior.push(Prior {
                workflow_id: id,
                trigger: kind,
                active: !w.spec.actions.is_empty(),
                due_at: None,
            });
        }
    }
    if timed {
        set_timer(c, now, account, wfs, &facts, &prior).await?;
    }
    Ok(())
}

async fn set_timer(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    wfs: &[Workflow],
    facts: &Facts<'_>,
    prior: &[Prior],
) -> Result<()> {
    let line = timeline(c, account, facts.ticket.id).await?;
    let check = execution::timed(wfs, facts, &line, prior, now);
    let subject = facts.ticket.id.0;
    match (check.enroll.is_empty(), check.next) {
        (false, _) => writes::schedule(c, account, JobKind::WorkflowTimer, subject, now).await,
        (true, Some(at)) => writes::schedule(c, account, JobKind::WorkflowTimer, subject, at).await,
        (true, None) => writes::unschedule(c, account, JobKind::WorkflowTimer, subject).await,
    }
}

pub(super) async fn enroll(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    w: &Workflow,
    ticket: TicketId,
    kind: TriggerKind,
    due: Option<Timestamp>,
) -> Result<EnrollmentId> {
    let (state, cursor) = if w.spec.actions.is_empty() {
        (EnrollmentState::Done, None)
    } else {
        (EnrollmentState::Running, Some(rows::to_json(&vec![0u32])?))
    };
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO workflow_enrollments (account_id, workflow_id, ticket_id, trigger, due_at, state, cursor, seq, started_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $8) RETURNING id",
    )
    .bind(account.0)
    .bind(w.id.0)
    .bind(ticket.0)
    .bind(kind.as_str())
    .bind(due.map(rows::ms))
    .bind(state.as_str())
    .bind(cursor)
    .bind(rows::ms(now))
    .fetch_one(&mut *c)
    .await?;
    let id = EnrollmentId(id);
    if state == EnrollmentState::Running {
        let topic = OutboxTopic::WorkflowStep {
            enrollment_id: id,
            seq: 0,
        };
        outbox::enqueue(c, now, account, &topic).await?;
    }
    Ok(id)
}

/// See `sqlite::workflows::enroll_by_hand`. The caller holds the account's
/// routing lock.
pub(super) async fn enroll_by_hand(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    id: WorkflowId,
    ticket: TicketId,
) -> Result<Enrollment> {
    let w = get(c, account, id).await?;
    writes::get(c, account, ticket).await?;
    let prior = prior(c, account, ticket).await?;
    if !execution::may_enroll(&w, TriggerKind::Manual, &prior, None) {
        return Err(StoreError::Conflict {
            field: "ticket_id",
            message: "the ticket is already enrolled in this workflow".into(),
        });
    }
    let e = enroll(c, now, account, &w, ticket, TriggerKind::Manual, None).await?;
    enrollments(c, account, ticket)
        .await?
        .into_iter()
        .find(|x| x.id == e)
        .ok_or(StoreError::NotFound("enrollment"))
}

/// See `sqlite::workflows::run_timer`. The caller holds the account's
/// routing lock.
pub(super) async fn run_timer(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    ticket: TicketId,
) -> Result<()> {
    let t = match writes::get(c, account, ticket).await {
        Ok(t) => t,
        Err(StoreError::NotFound(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    let kept = account_settings::get(c, account).await?;
    let wfs: &[Workflow] = &kept.workflows;
    let prior = prior(c, account, ticket).await?;
    let loaded = load(c, account, &t, wfs).await?;
    let facts = Facts {
        ticket: &t,
        before: None,
        contact: loaded.contact.as_ref(),
        office_hours: &loaded.hours,
    };
    let line = timeline(c, account, ticket).await?;
    let check = execution::timed(wfs, &facts, &line, &prior, now);
    for (id, kind, due) in &check.enroll {
        let w = wfs.iter().find(|w| w.id == *id).expect("listed");
        enroll(c, now, account, w, ticket, *kind, Some(*due)).await?;
        if *kind == TriggerKind::NoFirstReply {
            let event = NotifyEvent::FirstReplyOverdue;
            super::notifications::raise(c, now, account, &t, Actor::System, &event).await?;
        }
    }
    if let Some(at) = check.next {
        writes::schedule(c, account, JobKind::WorkflowTimer, ticket.0, at).await?;
    }
    Ok(())
}

/// See `sqlite::workflows::run_scan`.
pub(super) async fn run_scan(
    c: &mut PgConnection,
    now: Timestamp,
    account: AccountId,
    after: i64,
) -> Result<()> {
    let kept = account_settings::get(c, account).await?;
    let wfs: &[Workflow] = &kept.workflows;
    if !has_timed(wfs) {
        return Ok(());
    }
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM tickets WHERE account_id = $1 AND status = 'open' AND id > $2 ORDER BY id LIMIT $3",
    )
    .bind(account.0)
    .bind(after)
    .bind(SCAN_BATCH)
    .fetch_all(&mut *c)
    .await?;
    for id in &ids {
        let t = writes::get(c, account, TicketId(*id)).await?;
        let prior = prior(c, account, t.id).await?;
        let loaded = load(c, account, &t, wfs).await?;
        let facts = Facts {
            ticket: &t,
            before: None,
            contact: loaded.contact.as_ref(),
            office_hours: &loaded.hours,
        };
        set_timer(c, now, account, wfs, &facts, &prior).await?;
    }
    if ids.len() as i64 == SCAN_BATCH {
        let last = *ids.last().expect("a full batch");
        writes::schedule(c, account, JobKind::WorkflowScan, last, now).await?;
    }
    Ok(())
}

/// A ticket's enrollments and their steps, oldest first.
pub(super) async fn enrollments(
    c: &mut PgConnection,
    account: AccountId,
    ticket: TicketId,
) -> Result<Vec<Enrollment>> {
    let found = sqlx::query(
        "SELECT id, workflow_id, ticket_id, trigger, state, cursor, waiting_until, error, started_at, updated_at
         FROM workflow_enrollments WHERE ticket_id = $1 AND account_id = $2 ORDER BY id",
    )
    .bind(ticket.0)
    .bind(account.0)
    .fetch_all(&mut *c)
    .await?;
    let mut list = rows::all(found, |r| {
        let cursor: Option<Cursor> = rows::json_opt(r, 5)?;
        Ok(Enrollment {
            id: EnrollmentId(rows::get(r, 0)?),
            workflow_id: WorkflowId(rows::get(r, 1)?),
            ticket_id: TicketId(rows::get(r, 2)?),
            trigger: rows::parsed(r, 3)?,
            state: rows::parsed(r, 4)?,
            next_step: cursor.map(|at| execution::path(&at)),
            waiting_until: rows::opt_ts(r, 6)?,
            error: rows::get(r, 7)?,
            started_at: rows::ts(rows::get(r, 8)?),
            updated_at: rows::ts(rows::get(r, 9)?),
            steps: Vec::new(),
        })
    })?;
    for e in &mut list {
        let found = sqlx::query(
            "SELECT at, record FROM workflow_steps WHERE enrollment_id = $1 ORDER BY id",
        )
        .bind(e.id.0)
        .fetch_all(&mut *c)
        .await?;
        e.steps = rows::all(found, |r| {
            Ok(EnrollmentStep {
                at: rows::ts(rows::get(r, 0)?),
                record: rows::json(r, 1)?,
            })
        })?;
    }
    Ok(list)
}
