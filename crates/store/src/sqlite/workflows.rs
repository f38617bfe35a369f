//! Workflows on SQLite: definitions, the triggers evaluated in every ticket
//! change's transaction (`after_change`) and the timers of time-based
//! triggers. What enrolls is decided by `switchboard_domain::workflows`;
//! this module loads the facts and writes the enrollments. The steps run
//! in `workflow_steps`, which calls down here (never the other way: ticket
//! changes call `after_change`, and steps make ticket changes). Same
//! statements as `postgres::workflows`.

use std::{cell::Cell, collections::HashMap, rc::Rc};

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};
use switchboard_domain::notifications::NotifyEvent;
use switchboard_domain::outbox::OutboxTopic;
use switchboard_domain::routing::OfficeHours;
use switchboard_domain::workflows::{self as wf, execution, *};
use switchboard_domain::*;

use super::{OrNotFound, backend, directory, kept, outbox, rows, writes};
use crate::{Result, StoreError};

/// How many open tickets one scan write sets timers for.
const SCAN_BATCH: i64 = 256;

thread_local! {
    /// The workflow whose step is making the current change: it never
    /// enrolls the ticket again (no loops).
    static CAUSE: Cell<Option<WorkflowId>> = const { Cell::new(None) };
}

/// Runs `f` as a change made by workflow `cause`.
pub(super) fn caused_by<T>(cause: WorkflowId, f: impl FnOnce() -> T) -> T {
    let outer = CAUSE.with(|c| c.replace(Some(cause)));
    let out = f();
    CAUSE.with(|c| c.set(outer));
    out
}

const COLUMNS: &str = "id, spec, created_at, updated_at";

fn workflow(r: &rusqlite::Row<'_>) -> rusqlite::Result<Workflow> {
    Ok(Workflow {
        id: WorkflowId(r.get(0)?),
        spec: rows::json(r, 1)?,
        created_at: rows::ts(r.get(2)?),
        updated_at: rows::ts(r.get(3)?),
    })
}

fn enabled(c: &Connection, account: AccountId) -> Result<Rc<Vec<Workflow>>> {
    if let Some(list) = kept::workflows(account) {
        return Ok(list);
    }
    let list: Vec<Workflow> = c
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM workflows WHERE account_id = ?1 AND enabled = 1 ORDER BY id"
        ))?
        .query_map([account.0], workflow)?
        .collect::<rusqlite::Result<_>>()?;
    let list = Rc::new(list);
    kept::keep_workflows(account, list.clone());
    Ok(list)
}

pub(super) fn get(c: &Connection, account: AccountId, id: WorkflowId) -> Result<Workflow> {
    c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM workflows WHERE id = ?1 AND account_id = ?2"
    ))?
    .query_row(params![id.0, account.0], workflow)
    .or_not_found("workflow")
}

pub(super) fn list(c: &Connection, account: AccountId) -> Result<Vec<Workflow>> {
    Ok(c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM workflows WHERE account_id = ?1 ORDER BY id"
    ))?
    .query_map([account.0], workflow)?
    .collect::<rusqlite::Result<_>>()?)
}

pub(super) fn json(v: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(v).map_err(backend)
}

pub(super) fn create(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    spec: WorkflowSpec,
) -> Result<Workflow> {
    let secrets: Map<String, Value> = wf::secrets(&spec.actions)
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    c.prepare_cached(
        "INSERT INTO workflows (account_id, spec, secrets, enabled, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    )?
    .execute(params![account.0, json(&spec)?, json(&secrets)?, spec.enabled, rows::ms(now)])?;
    let id = WorkflowId(c.last_insert_rowid());
    saved(c, now, account, &spec)?;
    get(c, account, id)
}

/// After a workflow is saved: the kept list is stale, and time-based
/// triggers need the open tickets' timers set (a scan, in batches).
fn saved(c: &Connection, now: Timestamp, account: AccountId, spec: &WorkflowSpec) -> Result<()> {
    kept::forget_workflows(account);
    if spec.enabled && spec.triggers.iter().any(|t| t.kind().is_timed()) {
        // From the start, even if a scan was under way.
        writes::unschedule(c, account, JobKind::WorkflowScan, 0)?;
        writes::schedule(c, account, JobKind::WorkflowScan, 0, now)?;
    }
    Ok(())
}

pub(super) fn replace(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    id: WorkflowId,
    spec: WorkflowSpec,
) -> Result<Workflow> {
    let stored: String = c
        .prepare_cached("SELECT secrets FROM workflows WHERE id = ?1 AND account_id = ?2")?
        .query_row(params![id.0, account.0], |r| r.get(0))
        .or_not_found("workflow")?;
    let stored: Map<String, Value> = serde_json::from_str(&stored).map_err(backend)?;
    let secrets = wf::merged_secrets(stored, &spec);
    c.prepare_cached(
        "UPDATE workflows SET spec = ?1, secrets = ?2, enabled = ?3, updated_at = ?4 WHERE id = ?5 AND account_id = ?6",
    )?
    .execute(params![json(&spec)?, json(&secrets)?, spec.enabled, rows::ms(now), id.0, account.0])?;
    saved(c, now, account, &spec)?;
    get(c, account, id)
}

pub(super) fn delete(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    id: WorkflowId,
) -> Result<()> {
    let n = c
        .prepare_cached("DELETE FROM workflows WHERE id = ?1 AND account_id = ?2")?
        .execute(params![id.0, account.0])?;
    if n == 0 {
        return Err(StoreError::NotFound("workflow"));
    }
    c.prepare_cached(
        "UPDATE workflow_enrollments SET state = 'cancelled', updated_at = ?1, waiting_until = NULL
         WHERE workflow_id = ?2 AND state IN ('running', 'waiting')",
    )?
    .execute(params![rows::ms(now), id.0])?;
    c.prepare_cached("DELETE FROM workflow_rotations WHERE workflow_id = ?1")?
        .execute([id.0])?;
    kept::forget_workflows(account);
    Ok(())
}

pub(super) fn secret(
    c: &Connection,
    account: AccountId,
    id: WorkflowId,
    action: &str,
) -> Result<Option<String>> {
    let stored: String = c
        .prepare_cached("SELECT secrets FROM workflows WHERE id = ?1 AND account_id = ?2")?
        .query_row(params![id.0, account.0], |r| r.get(0))
        .or_not_found("workflow")?;
    let stored: Map<String, Value> = serde_json::from_str(&stored).map_err(backend)?;
    Ok(stored
        .get(action)
        .and_then(Value::as_str)
        .map(str::to_owned))
}

// ---- Facts -----------------------------------------------------------

pub(super) fn prior(c: &Connection, account: AccountId, ticket: TicketId) -> Result<Vec<Prior>> {
    Ok(c
        .prepare_cached(
            "SELECT workflow_id, trigger, state, due_at FROM workflow_enrollments WHERE ticket_id = ?1 AND account_id = ?2",
        )?
        .query_map(params![ticket.0, account.0], |r| {
            let state: EnrollmentState = rows::parsed(r, 2)?;
            Ok(Prior {
                workflow_id: WorkflowId(r.get(0)?),
                trigger: rows::parsed(r, 1)?,
                active: state.is_active(),
                due_at: r.get::<_, Option<i64>>(3)?.map(rows::ts),
            })
        })?
        .collect::<rusqlite::Result<_>>()?)
}

/// What filters read besides the ticket: its contact and the office hours
/// the workflows name.
pub(super) struct Loaded {
    pub contact: Option<Contact>,
    pub hours: HashMap<HoursOf, OfficeHours>,
}

pub(super) fn load(
    c: &Connection,
    account: AccountId,
    t: &Ticket,
    wfs: &[Workflow],
) -> Result<Loaded> {
    let contact = match t.contact_id {
        Some(id) => match directory::get_contact(c, account, id) {
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
        let found: Option<Option<String>> = c
            .prepare_cached(&format!(
                "SELECT office_hours FROM {table} WHERE id = ?1 AND account_id = ?2"
            ))?
            .query_row(params![id, account.0], |r| r.get(0))
            .optional()?;
        if let Some(Some(text)) = found {
            hours.insert(of, serde_json::from_str(&text).map_err(backend)?);
        }
    }
    Ok(Loaded { contact, hours })
}

fn timeline(c: &Connection, account: AccountId, ticket: TicketId) -> Result<Timeline> {
    Ok(c
        .prepare_cached(
            "SELECT max(CASE WHEN kind = 'reply' THEN created_at END), max(CASE WHEN kind = 'inbound' THEN created_at END)
             FROM messages WHERE ticket_id = ?1 AND account_id = ?2",
        )?
        .query_row(params![ticket.0, account.0], |r| {
            Ok(Timeline {
                last_reply_at: r.get::<_, Option<i64>>(0)?.map(rows::ts),
                last_inbound_at: r.get::<_, Option<i64>>(1)?.map(rows::ts),
            })
        })?)
}

fn has_timed(wfs: &[Workflow]) -> bool {
    wfs.iter()
        .any(|w| w.spec.triggers.iter().any(|t| t.kind().is_timed()))
}

// ---- Enrollment --------------------------------------------------------

/// Evaluates the account's workflows' triggers for a change to `t`, in the
/// change's transaction: enrolls the ticket where a trigger fired and the
/// filters hold, and moves the ticket's timer for time-based triggers.
pub(super) fn after_change(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    t: &Ticket,
    change: &Change<'_>,
) -> Result<()> {
    let wfs = enabled(c, account)?;
    if wfs.is_empty() {
        return Ok(());
    }
    let cause = CAUSE.with(Cell::get);
    let fires = wfs.iter().any(|w| {
        Some(w.id) != cause
            && w.spec
                .triggers
                .iter()
                .any(|tr| execution::fired(tr, t, change))
    });
    let timed = has_timed(&wfs);
    if !fires && !timed {
        return Ok(());
    }
    let mut prior = prior(c, account, t.id)?;
    let loaded = load(c, account, t, &wfs)?;
    let facts = Facts {
        ticket: t,
        before: change.before,
        contact: loaded.contact.as_ref(),
        office_hours: &loaded.hours,
    };
    if fires {
        for (id, kind) in execution::to_enroll(&wfs, change, &facts, &prior, cause) {
            let w = wfs.iter().find(|w| w.id == id).expect("listed");
            enroll(c, now, account, w, t.id, kind, None)?;
            prior.push(Prior {
                workflow_id: id,
                trigger: kind,
                active: !w.spec.actions.is_empty(),
                due_at: None,
            });
        }
    }
    if timed {
        set_timer(c, now, account, &wfs, &facts, &prior)?;
    }
    Ok(())
}

/// Moves the ticket's timer to its earliest time-based trigger (now, if
/// one is due already: the timer job enrolls it).
fn set_timer(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    wfs: &[Workflow],
    facts: &Facts<'_>,
    prior: &[Prior],
) -> Result<()> {
    let line = timeline(c, account, facts.ticket.id)?;
    let check = execution::timed(wfs, facts, &line, prior, now);
    let subject = facts.ticket.id.0;
    match (check.enroll.is_empty(), check.next) {
        (false, _) => writes::schedule(c, account, JobKind::WorkflowTimer, subject, now),
        (true, Some(at)) => writes::schedule(c, account, JobKind::WorkflowTimer, subject, at),
        (true, None) => writes::unschedule(c, account, JobKind::WorkflowTimer, subject),
    }
}

pub(super) fn enroll(
    c: &Connection,
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
        (EnrollmentState::Running, Some(json(&vec![0u32])?))
    };
    c.prepare_cached(
        "INSERT INTO workflow_enrollments (account_id, workflow_id, ticket_id, trigger, due_at, state, cursor, seq, started_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8, ?8)",
    )?
    .execute(params![
        account.0,
        w.id.0,
        ticket.0,
        kind.as_str(),
        due.map(rows::ms),
        state.as_str(),
        cursor,
        rows::ms(now),
    ])?;
    let id = EnrollmentId(c.last_insert_rowid());
    if state == EnrollmentState::Running {
        let topic = OutboxTopic::WorkflowStep {
            enrollment_id: id,
            seq: 0,
        };
        outbox::enqueue(c, now, account, &topic)?;
    }
    Ok(id)
}

/// `POST /workflows/{id}/enroll`.
pub(super) fn enroll_by_hand(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    id: WorkflowId,
    ticket: TicketId,
) -> Result<Enrollment> {
    let w = get(c, account, id)?;
    writes::get(c, account, ticket)?;
    let prior = prior(c, account, ticket)?;
    if !execution::may_enroll(&w, TriggerKind::Manual, &prior, None) {
        return Err(StoreError::Conflict {
            field: "ticket_id",
            message: "the ticket is already enrolled in this workflow".into(),
        });
    }
    let e = enroll(c, now, account, &w, ticket, TriggerKind::Manual, None)?;
    enrollments(c, account, ticket)?
        .into_iter()
        .find(|x| x.id == e)
        .ok_or(StoreError::NotFound("enrollment"))
}

/// The timer job of a ticket: enrolls it in the workflows whose
/// time-based trigger came due, and sets the timer for the next one.
pub(super) fn run_timer(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    ticket: TicketId,
) -> Result<()> {
    let t = match writes::get(c, account, ticket) {
        Ok(t) => t,
        Err(StoreError::NotFound(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    let wfs = enabled(c, account)?;
    let prior = prior(c, account, ticket)?;
    let loaded = load(c, account, &t, &wfs)?;
    let facts = Facts {
        ticket: &t,
        before: None,
        contact: loaded.contact.as_ref(),
        office_hours: &loaded.hours,
    };
    let line = timeline(c, account, ticket)?;
    let check = execution::timed(&wfs, &facts, &line, &prior, now);
    for (id, kind, due) in &check.enroll {
        let w = wfs.iter().find(|w| w.id == *id).expect("listed");
        enroll(c, now, account, w, ticket, *kind, Some(*due))?;
        if *kind == TriggerKind::NoFirstReply {
            super::notifications::raise(
                c,
                now,
                account,
                &t,
                Actor::System,
                &NotifyEvent::FirstReplyOverdue,
            )?;
        }
    }
    if let Some(at) = check.next {
        writes::schedule(c, account, JobKind::WorkflowTimer, ticket.0, at)?;
    }
    Ok(())
}

/// The scan job: sets the timers of the next batch of open tickets after
/// ticket id `after`, and goes on in a write of its own if more are left.
pub(super) fn run_scan(
    c: &Connection,
    now: Timestamp,
    account: AccountId,
    after: i64,
) -> Result<()> {
    let wfs = enabled(c, account)?;
    if !has_timed(&wfs) {
        return Ok(());
    }
    let ids: Vec<i64> = c
        .prepare_cached(
            "SELECT id FROM tickets WHERE account_id = ?1 AND status = 'open' AND id > ?2 ORDER BY id LIMIT ?3",
        )?
        .query_map(params![account.0, after, SCAN_BATCH], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for id in &ids {
        let t = writes::get(c, account, TicketId(*id))?;
        let prior = prior(c, account, t.id)?;
        let loaded = load(c, account, &t, &wfs)?;
        let facts = Facts {
            ticket: &t,
            before: None,
            contact: loaded.contact.as_ref(),
            office_hours: &loaded.hours,
        };
        set_timer(c, now, account, &wfs, &facts, &prior)?;
    }
    if ids.len() as i64 == SCAN_BATCH {
        let last = *ids.last().expect("a full batch");
        writes::schedule(c, account, JobKind::WorkflowScan, last, now)?;
    }
    Ok(())
}

/// A ticket's enrollments and their steps, oldest first.
pub(super) fn enrollments(
    c: &Connection,
    account: AccountId,
    ticket: TicketId,
) -> Result<Vec<Enrollment>> {
    let mut list: Vec<Enrollment> = c
        .prepare_cached(
            "SELECT id, workflow_id, ticket_id, trigger, state, cursor, waiting_until, error, started_at, updated_at
             FROM workflow_enrollments WHERE ticket_id = ?1 AND account_id = ?2 ORDER BY id",
        )?
        .query_map(params![ticket.0, account.0], |r| {
            let cursor: Option<Cursor> = rows::json_opt(r, 5)?;
            Ok(Enrollment {
                id: EnrollmentId(r.get(0)?),
                workflow_id: WorkflowId(r.get(1)?),
                ticket_id: TicketId(r.get(2)?),
                trigger: rows::parsed(r, 3)?,
                state: rows::parsed(r, 4)?,
                next_step: cursor.map(|at| execution::path(&at)),
                waiting_until: r.get::<_, Option<i64>>(6)?.map(rows::ts),
                error: r.get(7)?,
                started_at: rows::ts(r.get(8)?),
                updated_at: rows::ts(r.get(9)?),
                steps: Vec::new(),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut stmt = c.prepare_cached(
        "SELECT at, record FROM workflow_steps WHERE enrollment_id = ?1 ORDER BY id",
    )?;
    for e in &mut list {
        e.steps = stmt
            .query_map([e.id.0], |r| {
                Ok(EnrollmentStep {
                    at: rows::ts(r.get(0)?),
                    record: rows::json(r, 1)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
    }
    Ok(list)
}
