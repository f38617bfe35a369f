use std::collections::HashMap;

use jiff::Timestamp;
use serde_json::json;

use super::{execution::*, *};
use crate::{
    routing::{AvailabilitySettings, Capacity, RandomSource, RoutingState, UserState},
    *,
};

struct Zero;
impl RandomSource for Zero {
    fn below(&mut self, _n: usize) -> usize {
        0
    }
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn ticket() -> Ticket {
    Ticket {
        id: TicketId(7),
        subject: "Printer on fire".into(),
        content: String::new(),
        channel_id: Some(ChannelId(3)),
        source: TicketSource::Email,
        ticket_type: TicketType::EmailOther,
        status: Status::Open,
        stage: Stage::New,
        priority: Priority::High,
        owner: Owner::default(),
        assigned_at: None,
        contact_id: None,
        properties: serde_json::from_value(json!({"language": "French", "amount": 12})).unwrap(),
        first_reply_at: None,
        created_at: ts("2026-03-02T10:00:00Z"),
        updated_at: ts("2026-03-02T10:00:00Z"),
        closed_at: None,
    }
}

fn workflow(id: i64, spec: serde_json::Value) -> Workflow {
    let mut spec: WorkflowSpec = serde_json::from_value(spec).unwrap();
    let known = Known {
        users: (1..=5).map(UserId).collect(),
        teams: [TeamId(1)].into(),
        channels: [ChannelId(3)].into(),
    };
    prepare(&mut spec, &known).unwrap();
    Workflow {
        id: WorkflowId(id),
        spec,
        created_at: ts("2026-03-01T00:00:00Z"),
        updated_at: ts("2026-03-01T00:00:00Z"),
    }
}

fn facts<'a>(t: &'a Ticket, hours: &'a HashMap<HoursOf, routing::OfficeHours>) -> Facts<'a> {
    Facts {
        ticket: t,
        before: None,
        contact: None,
        office_hours: hours,
    }
}

fn routing_state(users: &[i64]) -> RoutingState {
    let mut s = RoutingState::default();
    for u in users {
        s.insert_user(
            UserId(*u),
            UserState::new(
                false,
                true,
                jiff::tz::TimeZone::UTC,
                AvailabilitySettings::default(),
                Capacity::default(),
            ),
        );
    }
    s
}

#[test]
fn a_bad_reference_names_its_path() {
    let mut spec: WorkflowSpec = serde_json::from_value(json!({
        "name": "w",
        "actions": [
            {"type": "unassign"},
            {"type": "set_priority", "value": "low"},
            {"type": "rotate_owner", "targets": {"users": [99]}}
        ]
    }))
    .unwrap();
    let err = prepare(&mut spec, &Known::default()).unwrap_err();
    assert!(
        matches!(&err, DomainError::InvalidAt { field, .. } if field == "actions[2].targets.users[0]"),
        "{err:?}"
    );
    let nested: Result<WorkflowSpec, _> = serde_json::from_value(json!({
        "name": "w", "actions": [{"type": "set_priority", "value": "loud"}]
    }));
    assert!(nested.is_err());
}

#[test]
fn filters_are_or_of_and_groups() {
    let hours = HashMap::new();
    let t = ticket();
    let groups: Vec<FilterGroup> = serde_json::from_value(json!([
        {"all": [
            {"field": "priority", "op": "equals", "value": "low"}
        ]},
        {"all": [
            {"field": "original_channel", "op": "in", "values": ["email", "form"]},
            {"field": "property", "name": "language", "op": "equals", "value": "french"},
            {"field": "property", "name": "amount", "op": "greater_than", "value": 10},
            {"field": "owner", "op": "is_not_set"}
        ]}
    ]))
    .unwrap();
    assert!(filters::matches(&groups, &facts(&t, &hours)));
    let mut t2 = t.clone();
    t2.owner.user_id = Some(UserId(1));
    assert!(!filters::matches(&groups, &facts(&t2, &hours)));
    // changed_to needs the value before to differ.
    let c: Condition =
        serde_json::from_value(json!({"field": "priority", "op": "changed_to", "value": "high"}))
            .unwrap();
    let mut before = t.clone();
    before.priority = Priority::Low;
    let f = Facts {
        before: Some(&before),
        ..facts(&t, &hours)
    };
    assert!(c.holds(&f));
    assert!(!c.holds(&Facts {
        before: Some(&t),
        ..f
    }));
}

#[test]
fn a_workflows_own_change_does_not_enroll_it_again() {
    let hours = HashMap::new();
    let wf = workflow(
        1,
        json!({"name": "w", "triggers": [{"kind": "owner_changed"}],
               "actions": [{"type": "assign", "user_id": 1}]}),
    );
    let t = ticket();
    let events = [HistoryEvent::OwnerChanged {
        from: Owner::default(),
        to: t.owner,
        reason: OwnerReason::Manual,
    }];
    let change = Change {
        before: Some(&t),
        events: &events,
        handoff: false,
    };
    let f = facts(&t, &hours);
    let all = std::slice::from_ref(&wf);
    assert_eq!(
        execution::to_enroll(all, &change, &f, &[], None),
        vec![(WorkflowId(1), TriggerKind::OwnerChanged)]
    );
    assert!(execution::to_enroll(all, &change, &f, &[], Some(WorkflowId(1))).is_empty());
    // Once per workflow by default.
    let prior = [Prior {
        workflow_id: WorkflowId(1),
        trigger: TriggerKind::OwnerChanged,
        active: false,
        due_at: None,
    }];
    assert!(execution::to_enroll(all, &change, &f, &prior, None).is_empty());
}

#[test]
fn branches_delays_and_steps_follow_the_cursor() {
    let hours = HashMap::new();
    let wf = workflow(
        1,
        json!({"name": "w", "actions": [
            {"type": "branch", "branches": [
                {"name": "chat", "filters": [{"all": [{"field": "original_channel", "op": "equals", "value": "chat"}]}],
                 "actions": [{"type": "unassign"}]},
                {"name": "mail", "filters": [{"all": [{"field": "original_channel", "op": "equals", "value": "email"}]}],
                 "actions": [{"type": "delay", "seconds": 60}, {"type": "set_priority", "value": "low"}]}
            ]},
            {"type": "add_note", "body": "done with {{ticket.subject}}"}
        ]}),
    );
    let t = ticket();
    let mut state = routing_state(&[]);
    let rotations = HashMap::new();
    let now = ts("2026-03-02T10:00:00Z");
    let mut rng = Zero;
    let mut env = StepEnv {
        routing: &mut state,
        rotations: &rotations,
        rng: &mut rng,
        now,
    };
    let f = facts(&t, &hours);
    let p = plan(&wf, &[0], &f, &mut env);
    assert_eq!(p.next, Next::At(vec![0, 1, 0]));
    assert_eq!(p.record.unwrap().summary, "branch mail taken");
    let p = plan(&wf, &[0, 1, 0], &f, &mut env);
    assert_eq!(
        p.next,
        Next::Wait {
            until: ts("2026-03-02T10:01:00Z"),
            then: vec![0, 1, 1]
        }
    );
    let p = plan(&wf, &[0, 1, 1], &f, &mut env);
    assert_eq!(p.next, Next::At(vec![1]));
    let p = plan(&wf, &[1], &f, &mut env);
    assert!(
        matches!(&p.effects[0], Effect::Message(MessageKind::Note, b) if b == "done with Printer on fire")
    );
    assert_eq!(p.next, Next::Done);
    let dry = dry_run(&wf, &f, &mut env);
    let steps: Vec<&str> = dry.iter().map(|r| r.step.as_str()).collect();
    assert_eq!(steps, ["0", "0.1.0", "0.1.1", "1"]);
}

#[test]
fn rotation_uses_its_own_round_robin_state() {
    let hours = HashMap::new();
    let wf = workflow(
        1,
        json!({"name": "w", "actions": [
            {"type": "rotate_owner", "targets": {"users": [1, 2, 3]}}
        ]}),
    );
    let Action::RotateOwner { id, .. } = &wf.spec.actions[0] else {
        panic!()
    };
    assert_eq!(id, "a1", "an id is filled in");
    let t = ticket();
    let mut state = routing_state(&[1, 2, 3]);
    let mut rotations = HashMap::new();
    let mut rng = Zero;
    let mut chosen = Vec::new();
    for _ in 0..4 {
        let mut env = StepEnv {
            routing: &mut state,
            rotations: &rotations,
            rng: &mut rng,
            now: ts("2026-03-02T10:00:00Z"),
        };
        let p = plan(&wf, &[0], &facts(&t, &hours), &mut env);
        for e in p.effects {
            match e {
                Effect::Owner(o) => chosen.push(o.user_id.unwrap().0),
                Effect::Rotation {
                    action_id,
                    rotation,
                } => {
                    rotations.insert(action_id, rotation);
                }
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(chosen, [1, 2, 3, 1]);
}

#[test]
fn time_based_triggers_and_the_step_cap() {
    let hours = HashMap::new();
    let wf = workflow(
        1,
        json!({"name": "w", "triggers": [{"kind": "no_first_reply", "after_seconds": 600}],
               "reenrollment": {"enabled": true, "triggers": ["no_first_reply"]},
               "actions": [{"type": "unassign"}]}),
    );
    let mut t = ticket();
    t.owner.user_id = Some(UserId(1));
    t.assigned_at = Some(ts("2026-03-02T10:00:00Z"));
    let all = std::slice::from_ref(&wf);
    let early = timed(
        all,
        &facts(&t, &hours),
        &Timeline::default(),
        &[],
        ts("2026-03-02T10:05:00Z"),
    );
    assert!(early.enroll.is_empty());
    assert_eq!(early.next, Some(ts("2026-03-02T10:10:00Z")));
    let due = timed(
        all,
        &facts(&t, &hours),
        &Timeline::default(),
        &[],
        ts("2026-03-02T10:10:00Z"),
    );
    assert_eq!(due.enroll.len(), 1);
    let prior = [Prior {
        workflow_id: WorkflowId(1),
        trigger: TriggerKind::NoFirstReply,
        active: false,
        due_at: Some(ts("2026-03-02T10:10:00Z")),
    }];
    let again = timed(
        all,
        &facts(&t, &hours),
        &Timeline::default(),
        &prior,
        ts("2026-03-02T10:11:00Z"),
    );
    assert!(again.enroll.is_empty(), "not twice for one assignment");

    let now = ts("2026-03-02T12:00:00Z");
    let recent = [ts("2026-03-02T11:10:00Z"), ts("2026-03-02T11:20:00Z")];
    assert_eq!(cap_until(&recent, 3, now), None);
    assert_eq!(cap_until(&recent, 2, now), Some(ts("2026-03-02T12:10:00Z")));
}

#[test]
fn templates_build_checked_workflows() {
    let t: templates::HandoffTemplate = serde_json::from_value(json!({
        "channels": [{"original_channel": "chat", "users": [1, 2]},
                     {"original_channel": "email", "teams": [1]}]
    }))
    .unwrap();
    let wf = workflow(1, serde_json::to_value(t.build().unwrap()).unwrap());
    assert_eq!(wf.spec.triggers, [Trigger::CustomerAgentHandoff]);
    let Action::Branch { branches, .. } = &wf.spec.actions[0] else {
        panic!()
    };
    assert_eq!(branches.len(), 2);
}

#[test]
fn times_past_the_documented_bound_are_refused_naming_the_field() {
    let mut spec: WorkflowSpec = serde_json::from_value(serde_json::json!({
        "name": "Late", "triggers": [{"kind": "open_longer_than", "after_seconds": 2147483648u64}]
    }))
    .unwrap();
    let err = prepare(&mut spec, &Known::default()).unwrap_err();
    assert!(
        err.to_string().contains("triggers[0].after_seconds"),
        "{err}"
    );
    let mut spec: WorkflowSpec = serde_json::from_value(serde_json::json!({
        "name": "Late", "actions": [{"type": "delay", "seconds": 2147483648u64}]
    }))
    .unwrap();
    let err = prepare(&mut spec, &Known::default()).unwrap_err();
    assert!(err.to_string().contains("actions[0].seconds"), "{err}");
    let ok: WorkflowSpec = serde_json::from_value(serde_json::json!({
        "name": "Late", "actions": [{"type": "delay", "seconds": 2147483647u64}]
    }))
    .unwrap();
    assert!(prepare(&mut ok.clone(), &Known::default()).is_ok());
}

#[test]
fn a_run_stops_at_the_cap_after_a_batch_and_where_the_step_says() {
    let now: Timestamp = "2026-12-01T09:00:00Z".parse().unwrap();
    let recent = [now - jiff::SignedDuration::from_mins(10); 3];
    let until = now + jiff::SignedDuration::from_mins(50);
    assert_eq!(
        Stop::before_step(&recent, 3, 0, now),
        Some(Stop::Wait(until))
    );
    assert_eq!(Stop::before_step(&recent, 4, 0, now), None);
    assert_eq!(
        Stop::before_step(&[], 4, STEPS_PER_RUN, now),
        Some(Stop::More)
    );
    assert_eq!(Stop::after_step(Next::At(vec![1])), (Some(vec![1]), None));
    assert_eq!(
        Stop::after_step(Next::Wait {
            until,
            then: vec![2]
        }),
        (Some(vec![2]), Some(Stop::Wait(until)))
    );
    assert_eq!(Stop::after_step(Next::Done), (None, Some(Stop::Done)));
    assert_eq!(Stop::Done.parked(now), (EnrollmentState::Done, None));
    assert_eq!(
        Stop::Wait(until).parked(now),
        (EnrollmentState::Waiting, Some((until, Some(until))))
    );
    assert_eq!(
        Stop::More.parked(now),
        (EnrollmentState::Running, Some((now, None)))
    );
}
