//! Workflows: a change enrolls in its own transaction, each step runs once
//! however often its outbox row is run, a workflow's own change never
//! enrolls it again, delays wait in the outbox, time-based triggers come
//! due through the scheduler, rotations keep their state, and the hourly
//! step cap holds.

use std::time::Duration;

use serde_json::json;
use switchboard_domain::{
    outbox::OutboxTopic,
    workflows::{EnrollmentState, WorkflowSpec},
    *,
};

use super::{Fixture, account, agent, by, ticket};
use crate::{OutboxOutcome, Store};

fn spec(v: serde_json::Value) -> WorkflowSpec {
    serde_json::from_value(v).expect("a valid workflow")
}

/// Runs every due workflow-step row (each twice, as a second claim after a
/// lost outcome would), until none is due. Returns how many rows ran.
async fn run_steps(store: &dyn Store, cap: u32) -> usize {
    let mut ran = 0;
    loop {
        let rows = store
            .claim_outbox(100, Duration::from_secs(30))
            .await
            .unwrap();
        let steps: Vec<_> = rows
            .iter()
            .filter_map(|r| match r.topic {
                OutboxTopic::WorkflowStep { enrollment_id, seq } => {
                    Some((r.account_id, enrollment_id, seq))
                }
                _ => None,
            })
            .collect();
        for r in &rows {
            store
                .complete_outbox(r.id, r.attempts, OutboxOutcome::Done)
                .await
                .unwrap();
        }
        if steps.is_empty() {
            return ran;
        }
        for (a, e, seq) in steps {
            store.run_workflow_step(a, e, seq, cap).await.unwrap();
            store.run_workflow_step(a, e, seq, cap).await.unwrap();
            ran += 1;
        }
    }
}

fn step_lines(history: &[HistoryEntry]) -> Vec<String> {
    history
        .iter()
        .filter_map(|h| match &h.event {
            HistoryEvent::WorkflowStep { action, .. } => Some(action.clone()),
            _ => None,
        })
        .collect()
}

pub async fn a_change_enrolls_once_and_each_step_runs_once(store: &dyn Store) {
    let (a, admin) = account(store, "acme").await;
    let wf = store
        .create_workflow(
            a,
            spec(json!({"name": "Triage", "triggers": [{"kind": "ticket_created"}, {"kind": "status_changed"}],
                "actions": [{"type": "set_priority", "value": "high"},
                            {"type": "add_note", "body": "Seen {{ticket.subject}}"}]})),
        )
        .await
        .unwrap();
    let t = ticket(store, a, &admin, "Refund").await;
    let enrolled = store.ticket_enrollments(a, t.id).await.unwrap();
    assert_eq!(enrolled.len(), 1, "{enrolled:?}");
    assert_eq!(enrolled[0].workflow_id, wf.id);
    assert_eq!(enrolled[0].state, EnrollmentState::Running);
    assert_eq!(
        run_steps(store, 100).await,
        1,
        "one run goes through both steps"
    );
    let t = store.get_ticket(a, t.id).await.unwrap();
    assert_eq!(t.priority, Priority::High);
    let notes: Vec<_> = store
        .list_messages(a, t.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.kind == MessageKind::Note)
        .collect();
    assert_eq!(notes.len(), 1, "the note is added once: {notes:?}");
    assert_eq!(notes[0].body, "Seen Refund");
    let history = store.history(a, t.id).await.unwrap();
    assert_eq!(step_lines(&history), ["set_priority", "add_note"]);
    let enrolled = store.ticket_enrollments(a, t.id).await.unwrap();
    assert_eq!(enrolled[0].state, EnrollmentState::Done);
    assert_eq!(enrolled[0].steps.len(), 2);
    // Re-enrollment is off: a status change does not enroll it again.
    let patch = input::TicketPatch {
        status: Some(Status::Closed),
        ..Default::default()
    };
    store
        .update_ticket(a, t.id, patch, by(&admin))
        .await
        .unwrap();
    assert_eq!(store.ticket_enrollments(a, t.id).await.unwrap().len(), 1);
}

pub async fn a_workflows_own_change_never_enrolls_it_again(store: &dyn Store) {
    let (a, admin) = account(store, "acme").await;
    let ana = agent(store, a, "Ana").await;
    let bob = agent(store, a, "Bob").await;
    store
        .create_workflow(
            a,
            spec(
                json!({"name": "Ping-pong", "triggers": [{"kind": "owner_changed"}],
                "reenrollment": {"enabled": true, "triggers": ["owner_changed"]},
                "actions": [{"type": "assign", "user_id": bob.id}]}),
            ),
        )
        .await
        .unwrap();
    let t = ticket(store, a, &admin, "Loop").await;
    let to = Owner {
        user_id: Some(ana.id),
        team_id: None,
    };
    store.set_owner(a, t.id, to, by(&admin)).await.unwrap();
    run_steps(store, 100).await;
    let t = store.get_ticket(a, t.id).await.unwrap();
    assert_eq!(t.owner.user_id, Some(bob.id));
    let enrolled = store.ticket_enrollments(a, t.id).await.unwrap();
    assert_eq!(enrolled.len(), 1, "its own owner change: {enrolled:?}");
    assert_eq!(enrolled[0].state, EnrollmentState::Done);
}

pub async fn delays_wait_and_time_based_triggers_come_due(f: &Fixture) {
    let store = f.store.as_ref();
    let (a, admin) = account(store, "acme").await;
    let ana = agent(store, a, "Ana").await;
    store
        .create_workflow(
            a,
            spec(
                json!({"name": "Later", "triggers": [{"kind": "ticket_created"}],
                "actions": [{"type": "delay", "seconds": 60},
                            {"type": "set_priority", "value": "urgent"}]}),
            ),
        )
        .await
        .unwrap();
    store
        .create_workflow(
            a,
            spec(json!({"name": "Overdue", "triggers": [{"kind": "no_first_reply", "after_seconds": 300}],
                "actions": [{"type": "set_property", "name": "overdue", "value": true}]})),
        )
        .await
        .unwrap();
    let t = ticket(store, a, &admin, "Slow").await;
    let to = Owner {
        user_id: Some(ana.id),
        team_id: None,
    };
    store.set_owner(a, t.id, to, by(&admin)).await.unwrap();
    run_steps(store, 100).await;
    let e = &store.ticket_enrollments(a, t.id).await.unwrap()[0];
    assert_eq!(e.state, EnrollmentState::Waiting, "{e:?}");
    assert_eq!(e.next_step.as_deref(), Some("1"));
    assert_eq!(run_steps(store, 100).await, 0, "not due yet");
    f.clock.advance(jiff::SignedDuration::from_secs(61));
    assert_eq!(run_steps(store, 100).await, 1);
    let t = store.get_ticket(a, t.id).await.unwrap();
    assert_eq!(t.priority, Priority::Urgent);
    // No reply 300 s after the assignment: the timer enrolls the ticket.
    store.run_due_jobs().await.unwrap();
    assert_eq!(store.ticket_enrollments(a, t.id).await.unwrap().len(), 1);
    f.clock.advance(jiff::SignedDuration::from_secs(300));
    store.run_due_jobs().await.unwrap();
    run_steps(store, 100).await;
    let enrolled = store.ticket_enrollments(a, t.id).await.unwrap();
    assert_eq!(enrolled.len(), 2, "{enrolled:?}");
    assert_eq!(enrolled[1].trigger, workflows::TriggerKind::NoFirstReply);
    let t = store.get_ticket(a, t.id).await.unwrap();
    assert_eq!(t.properties.get("overdue"), Some(&json!(true)));
    // Once per workflow: later ticks enroll nothing more.
    f.clock.advance(jiff::SignedDuration::from_secs(3600));
    store.run_due_jobs().await.unwrap();
    assert_eq!(store.ticket_enrollments(a, t.id).await.unwrap().len(), 2);
}

pub async fn rotations_take_turns_and_the_step_cap_holds(store: &dyn Store) {
    let (a, admin) = account(store, "acme").await;
    let mut users = Vec::new();
    for n in ["Ana", "Bob", "Cy"] {
        users.push(agent(store, a, n).await.id);
    }
    store
        .create_workflow(
            a,
            spec(
                json!({"name": "Rotate", "triggers": [{"kind": "ticket_created"}],
                "actions": [{"type": "rotate_owner", "targets": {"users": users}}]}),
            ),
        )
        .await
        .unwrap();
    let mut tickets = Vec::new();
    for i in 0..6 {
        tickets.push(ticket(store, a, &admin, &format!("T{i}")).await.id);
    }
    run_steps(store, 100).await;
    let mut counts = std::collections::BTreeMap::new();
    for id in &tickets {
        let t = store.get_ticket(a, *id).await.unwrap();
        *counts.entry(t.owner.user_id.expect("rotated")).or_insert(0) += 1;
        let history = store.history(a, *id).await.unwrap();
        assert!(
            history.iter().any(|h| matches!(
                &h.event,
                HistoryEvent::WorkflowStep {
                    explanation: Some(_),
                    ..
                }
            )),
            "a rotate records its explanation"
        );
    }
    assert_eq!(
        counts.values().copied().collect::<Vec<_>>(),
        [2, 2, 2],
        "{counts:?}"
    );

    // The cap: five steps, three an hour.
    store
        .create_workflow(
            a,
            spec(
                json!({"name": "Busy", "triggers": [{"kind": "status_changed"}],
                "actions": [{"type": "add_note", "body": "1"}, {"type": "add_note", "body": "2"},
                            {"type": "add_note", "body": "3"}, {"type": "add_note", "body": "4"},
                            {"type": "add_note", "body": "5"}]}),
            ),
        )
        .await
        .unwrap();
    let t = ticket(store, a, &admin, "Busy").await;
    run_steps(store, 100).await;
    let patch = input::TicketPatch {
        status: Some(Status::Closed),
        ..Default::default()
    };
    store
        .update_ticket(a, t.id, patch, by(&admin))
        .await
        .unwrap();
    // The rotate ran one step for this ticket already: two more fit.
    run_steps(store, 3).await;
    let busy = store
        .ticket_enrollments(a, t.id)
        .await
        .unwrap()
        .into_iter()
        .last()
        .unwrap();
    assert_eq!(busy.state, EnrollmentState::Waiting, "{busy:?}");
    assert_eq!(busy.steps.len(), 2);
    assert!(busy.waiting_until.is_some());
}
