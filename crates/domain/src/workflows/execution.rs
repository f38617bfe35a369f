//! Running workflows: which ones a change enrolls (triggers, filters,
//! re-enrollment, the loop guard), when time-based triggers come due, the
//! hourly step cap, and the step machine (what the step at an
//! enrollment's position does).

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use super::{
    actions::{Action, Rotation, render, rotate},
    filters::{Facts, matches, next_open},
    model::{EnrollmentState, Trigger, TriggerKind, Workflow, WorkflowId},
};
use crate::{
    HistoryEvent, MessageKind, Owner, Status, Ticket, UserId,
    input::TicketPatch,
    routing::{Explanation, RandomSource, RoutingState},
};

/// The default of the most workflow steps that run for one ticket in any
/// hour (across workflows); a step past it waits for the window to move.
pub const DEFAULT_STEPS_PER_TICKET_PER_HOUR: u32 = 100;

/// A change to a ticket, as workflow triggers see it.
#[derive(Debug, Clone, Copy)]
pub struct Change<'a> {
    /// The ticket before (`None` for a creation).
    pub before: Option<&'a Ticket>,
    /// The history lines the change made.
    pub events: &'a [HistoryEvent],
    /// The customer agent handed the conversation off.
    pub handoff: bool,
}

/// An earlier enrollment of a ticket in a workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct Prior {
    /// The workflow.
    pub workflow_id: WorkflowId,
    /// What enrolled it.
    pub trigger: TriggerKind,
    /// Whether it is still running.
    pub active: bool,
    /// For a time-based trigger: the instant it came due for.
    pub due_at: Option<Timestamp>,
}

/// Whether `trigger` fires for the change that made `t`.
pub fn fired(trigger: &Trigger, t: &Ticket, change: &Change<'_>) -> bool {
    let any = |f: &dyn Fn(&HistoryEvent) -> bool| change.events.iter().any(f);
    match trigger {
        Trigger::TicketCreated => change.before.is_none(),
        Trigger::PropertyChanged { property, to } => {
            let now = t.properties.get(property).filter(|v| !v.is_null());
            let was = change
                .before
                .and_then(|b| b.properties.get(property))
                .filter(|v| !v.is_null());
            change.before.is_some() && now != was && to.as_ref().is_none_or(|to| now == Some(to))
        }
        Trigger::OwnerChanged => any(&|e| matches!(e, HistoryEvent::OwnerChanged { .. })),
        Trigger::StatusChanged => any(&|e| matches!(e, HistoryEvent::StatusChanged { .. })),
        Trigger::MessageReceived => any(&|e| {
            matches!(
                e,
                HistoryEvent::MessageAdded {
                    kind: MessageKind::Inbound,
                    ..
                }
            )
        }),
        Trigger::MessageSent => any(&|e| {
            matches!(
                e,
                HistoryEvent::MessageAdded {
                    kind: MessageKind::Reply,
                    ..
                }
            )
        }),
        Trigger::CustomerAgentHandoff => change.handoff,
        Trigger::NoFirstReply { .. }
        | Trigger::NoCustomerAnswer { .. }
        | Trigger::OpenLongerThan { .. } => false,
    }
}

/// Whether workflow `wf` may enroll the ticket (whose earlier enrollments
/// are `prior`) for a trigger of `kind` (due at `due_at`, if timed): once
/// per workflow, unless re-enrollment is on for that kind; never while an
/// enrollment of it runs; a timed trigger never twice for one instant.
pub fn may_enroll(
    wf: &Workflow,
    kind: TriggerKind,
    prior: &[Prior],
    due_at: Option<Timestamp>,
) -> bool {
    let mine: Vec<&Prior> = prior.iter().filter(|p| p.workflow_id == wf.id).collect();
    if mine.is_empty() || kind == TriggerKind::Manual {
        return !mine.iter().any(|p| p.active);
    }
    let re = &wf.spec.reenrollment;
    re.enabled
        && re.triggers.contains(&kind)
        && !mine.iter().any(|p| p.active)
        && (due_at.is_none() || !mine.iter().any(|p| p.due_at == due_at))
}

/// The workflows a change enrolls, with the trigger that did. `cause` is
/// the workflow whose step made the change: it never enrolls the ticket
/// again (no loops). `facts_of` gives the filter facts.
pub fn to_enroll(
    workflows: &[Workflow],
    change: &Change<'_>,
    facts: &Facts<'_>,
    prior: &[Prior],
    cause: Option<WorkflowId>,
) -> Vec<(WorkflowId, TriggerKind)> {
    workflows
        .iter()
        .filter(|wf| wf.spec.enabled && Some(wf.id) != cause)
        .filter_map(|wf| {
            let kind = wf
                .spec
                .triggers
                .iter()
                .find(|t| fired(t, facts.ticket, change))?
                .kind();
            (may_enroll(wf, kind, prior, None) && matches(&wf.spec.filters, facts))
                .then_some((wf.id, kind))
        })
        .collect()
}

/// What time-based triggers read besides the ticket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timeline {
    /// The last public reply.
    pub last_reply_at: Option<Timestamp>,
    /// The last inbound message.
    pub last_inbound_at: Option<Timestamp>,
}

fn after(at: Timestamp, seconds: u32) -> Timestamp {
    at.saturating_add(SignedDuration::from_secs(i64::from(seconds)))
        .unwrap_or(Timestamp::MAX)
}

/// When a time-based trigger comes due for `t`, if it can: no first reply
/// X after assignment, no customer answer X after our last reply, open X
/// after creation. `None` for other triggers or when it cannot fire.
pub fn due_at(trigger: &Trigger, t: &Ticket, timeline: &Timeline) -> Option<Timestamp> {
    if t.status != Status::Open {
        return None;
    }
    match trigger {
        Trigger::NoFirstReply { after_seconds } => t
            .assigned_at
            .filter(|_| t.first_reply_at.is_none() && t.owner.user_id.is_some())
            .map(|at| after(at, *after_seconds)),
        Trigger::NoCustomerAnswer { after_seconds } => timeline
            .last_reply_at
            .filter(|r| timeline.last_inbound_at.is_none_or(|i| i < *r))
            .map(|at| after(at, *after_seconds)),
        Trigger::OpenLongerThan { after_seconds } => Some(after(t.created_at, *after_seconds)),
        _ => None,
    }
}

/// What the scheduler found for a ticket at `now`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TimedCheck {
    /// Workflows to enroll: id, trigger kind, the instant it was due for.
    pub enroll: Vec<(WorkflowId, TriggerKind, Timestamp)>,
    /// When to look again (the earliest trigger not yet due).
    pub next: Option<Timestamp>,
}

/// Evaluates every time-based trigger of `workflows` for `t` at `now`.
pub fn timed(
    workflows: &[Workflow],
    facts: &Facts<'_>,
    timeline: &Timeline,
    prior: &[Prior],
    now: Timestamp,
) -> TimedCheck {
    let mut out = TimedCheck::default();
    for wf in workflows.iter().filter(|wf| wf.spec.enabled) {
        for trigger in &wf.spec.triggers {
            let Some(due) = due_at(trigger, facts.ticket, timeline) else {
                continue;
            };
            if due > now {
                out.next = Some(out.next.map_or(due, |n| n.min(due)));
            } else if may_enroll(wf, trigger.kind(), prior, Some(due))
                && matches(&wf.spec.filters, facts)
                && !out.enroll.iter().any(|(id, ..)| *id == wf.id)
            {
                out.enroll.push((wf.id, trigger.kind(), due));
            }
        }
    }
    out
}

/// When the next step of a ticket may run, given the instants of the
/// steps it ran in the last hour: `None` if now, else when the oldest of
/// them leaves the hour.
pub fn cap_until(recent: &[Timestamp], cap: u32, now: Timestamp) -> Option<Timestamp> {
    let hour = SignedDuration::from_hours(1);
    let mut within: Vec<Timestamp> = recent
        .iter()
        .copied()
        .filter(|at| *at > now - hour)
        .collect();
    if (within.len() as u64) < u64::from(cap) {
        return None;
    }
    within.sort_unstable();
    let k = within.len() - cap as usize;
    Some(within[k] + hour)
}

/// A position in a workflow's actions: the index of a top-level action,
/// then (inside a branch) the branch taken and the index in it, and so on.
/// A branch index equal to the number of branches is the default branch.
pub type Cursor = Vec<u32>;

fn list_at<'a>(actions: &'a [Action], prefix: &[u32]) -> Option<&'a [Action]> {
    match prefix {
        [] => Some(actions),
        [i, b, rest @ ..] => match actions.get(*i as usize)? {
            Action::Branch { branches, default } => {
                let inner = match branches.get(*b as usize) {
                    Some(br) => &br.actions,
                    None if *b as usize == branches.len() => default,
                    None => return None,
                };
                list_at(inner, rest)
            }
            _ => None,
        },
        _ => None,
    }
}

/// The action at `at`, if the workflow still has one there (an edit can
/// shorten it; the enrollment then ends).
pub fn action_at<'a>(actions: &'a [Action], at: &[u32]) -> Option<&'a Action> {
    let (last, prefix) = at.split_last()?;
    list_at(actions, prefix)?.get(*last as usize)
}

/// The position after the action at `at` (leaving finished branches);
/// `None` when the workflow is done.
pub fn advance(actions: &[Action], at: &[u32]) -> Option<Cursor> {
    let mut at = at.to_vec();
    loop {
        let last = at.pop()?;
        let len = list_at(actions, &at)?.len();
        if (last as usize) + 1 < len {
            at.push(last + 1);
            return Some(at);
        }
        // Past the end of a branch: drop the branch index, go on after the
        // branch action itself.
        at.pop()?;
    }
}

/// The cursor as history and the API show it (`2.1.0`).
pub fn path(at: &[u32]) -> String {
    at.iter().map(u32::to_string).collect::<Vec<_>>().join(".")
}

/// What a step changes; the store carries each out in the step's
/// transaction.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Give the ticket this owner.
    Owner(Owner),
    /// Patch the ticket (property, priority, status, stage).
    Patch(TicketPatch),
    /// Add a message of this kind (a note, or a reply that the outbox sends).
    Message(MessageKind, String),
    /// Tell these users about the ticket.
    Notify(Vec<UserId>),
    /// POST `body` to `url`, signed with the secret of `action_id`.
    Webhook {
        /// The webhook action's id (its secret is stored under it).
        action_id: String,
        /// Where.
        url: String,
        /// The JSON body.
        body: Value,
    },
    /// Keep this rotation state for the rotate action `action_id`.
    Rotation {
        /// The rotate action's id.
        action_id: String,
        /// Its new state.
        rotation: Rotation,
    },
}

/// One step as recorded (history, the enrollment's steps, dry runs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StepRecord {
    /// Its position (`2.1.0`).
    pub step: String,
    /// The action's type.
    pub action: String,
    /// What it did, for a person.
    pub summary: String,
    /// For a rotate: the routing explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Box<Explanation>>,
}

/// Where an enrollment goes after a step.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Run the step at this position now.
    At(Cursor),
    /// Run the step at `then` at `until`.
    Wait {
        /// When.
        until: Timestamp,
        /// Which.
        then: Cursor,
    },
    /// The workflow is done for this ticket.
    Done,
}

/// A step: what it was, what it changes, what comes next.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The record (none when the position no longer exists).
    pub record: Option<StepRecord>,
    /// What to change.
    pub effects: Vec<Effect>,
    /// What comes next.
    pub next: Next,
}

/// What a step reads besides the workflow and the ticket's facts.
pub struct StepEnv<'a> {
    /// The account's kept routing state (rotate; team members for notify).
    pub routing: &'a mut RoutingState,
    /// The workflow's rotation states, by action id.
    pub rotations: &'a HashMap<String, Rotation>,
    /// Randomness for random rotation.
    pub rng: &'a mut dyn RandomSource,
    /// Now.
    pub now: Timestamp,
}

fn then(actions: &[Action], at: &[u32]) -> Next {
    advance(actions, at).map_or(Next::Done, Next::At)
}

/// The step of `wf` at `at` for the ticket of `facts`.
pub fn plan(wf: &Workflow, at: &[u32], facts: &Facts<'_>, env: &mut StepEnv<'_>) -> Plan {
    let actions = &wf.spec.actions;
    let Some(action) = action_at(actions, at) else {
        return Plan {
            record: None,
            effects: Vec::new(),
            next: Next::Done,
        };
    };
    let t = facts.ticket;
    let mut effects = Vec::new();
    let mut explanation = None;
    let mut next = then(actions, at);
    let summary = match action {
        Action::RotateOwner {
            id,
            targets,
            distribution,
            only_available,
            only_if_unowned,
            exclude_current_owner,
        } => {
            if *only_if_unowned && t.owner.user_id.is_some() {
                "skipped: the ticket has an owner".to_owned()
            } else {
                let mut rotation = env.rotations.get(id).cloned().unwrap_or_default();
                let rotated = rotate(
                    env.routing,
                    t,
                    targets,
                    *distribution,
                    *only_available,
                    *exclude_current_owner,
                    &rotation,
                    env.now,
                    env.rng,
                );
                if let Some((user, cycle)) = rotated
                    .owner
                    .and_then(|o| o.user_id)
                    .zip(rotated.decision.rr_cycle)
                {
                    rotation.served(user, cycle);
                    effects.push(Effect::Rotation {
                        action_id: id.clone(),
                        rotation,
                    });
                }
                let summary = rotated.decision.explanation.summary.clone();
                if let Some(owner) = rotated.owner {
                    effects.push(Effect::Owner(owner));
                }
                explanation = Some(Box::new(rotated.decision.explanation.for_storage()));
                summary
            }
        }
        Action::Assign { user_id, team_id } => {
            let to = Owner {
                user_id: user_id.or(if team_id.is_some() {
                    None
                } else {
                    t.owner.user_id
                }),
                team_id: team_id.or(t.owner.team_id),
            };
            effects.push(Effect::Owner(to));
            format!("assigned to user {user_id:?}, team {team_id:?}")
        }
        Action::Unassign => {
            effects.push(Effect::Owner(Owner {
                user_id: None,
                team_id: t.owner.team_id,
            }));
            "owner user removed".to_owned()
        }
        Action::SetProperty { name, value } => {
            let mut props = Map::new();
            props.insert(name.clone(), value.clone());
            effects.push(Effect::Patch(TicketPatch {
                properties: Some(props),
                ..TicketPatch::default()
            }));
            format!("property {name} set to {value}")
        }
        Action::SetPriority { value } => {
            effects.push(Effect::Patch(TicketPatch {
                priority: Some(*value),
                ..TicketPatch::default()
            }));
            format!("priority set to {value}")
        }
        Action::SetStatus { value } => {
            effects.push(Effect::Patch(TicketPatch {
                status: Some(*value),
                ..TicketPatch::default()
            }));
            format!("status set to {value}")
        }
        Action::SetStage { value } => {
            effects.push(Effect::Patch(TicketPatch {
                stage: Some(*value),
                ..TicketPatch::default()
            }));
            format!("stage set to {value}")
        }
        Action::AddNote { body } | Action::SendReply { body } => {
            let name = facts
                .contact
                .and_then(|c| c.name.as_ref())
                .map(|n| n.to_string());
            let text = render(body, t, name.as_deref());
            let kind = if matches!(action, Action::AddNote { .. }) {
                MessageKind::Note
            } else {
                MessageKind::Reply
            };
            effects.push(Effect::Message(kind, text));
            format!("{kind} added")
        }
        Action::Notify {
            users,
            owner,
            teams,
        } => {
            let mut who: Vec<UserId> = users.clone();
            who.extend(t.owner.user_id.filter(|_| *owner));
            for team in teams {
                who.extend(env.routing.team_members(*team));
            }
            who.sort_unstable();
            who.dedup();
            let summary = format!("{} user(s) notified", who.len());
            effects.push(Effect::Notify(who));
            summary
        }
        Action::Webhook { id, url, .. } => {
            effects.push(Effect::Webhook {
                action_id: id.clone(),
                url: url.clone(),
                body: json!({
                    "workflow_id": wf.id,
                    "workflow": wf.spec.name,
                    "step": path(at),
                    "ticket": t,
                }),
            });
            format!("POST {url} queued")
        }
        Action::Delay {
            seconds,
            until_open,
        } => {
            let until = match (seconds, until_open) {
                (Some(s), _) => Some(after(env.now, *s)),
                (None, Some(of)) => facts
                    .office_hours
                    .get(of)
                    .and_then(|h| next_open(h, env.now)),
                (None, None) => None,
            };
            match until {
                Some(until) if until > env.now => {
                    if let Next::At(then) = next {
                        next = Next::Wait { until, then };
                    }
                    format!("waiting until {until}")
                }
                Some(_) => "no wait: already open".to_owned(),
                None => "no wait: no office hours to wait for".to_owned(),
            }
        }
        Action::Branch { branches, .. } => {
            let taken = branches
                .iter()
                .position(|b| matches(&b.filters, facts))
                .unwrap_or(branches.len());
            let name = branches.get(taken).map_or("default", |b| b.name.as_str());
            let mut inside = at.to_vec();
            inside.extend([taken as u32, 0]);
            next = if action_at(actions, &inside).is_some() {
                Next::At(inside)
            } else {
                // An empty branch: go on after the branch.
                then(actions, at)
            };
            format!("branch {name} taken")
        }
    };
    Plan {
        record: Some(StepRecord {
            step: path(at),
            action: action.type_name().to_owned(),
            summary,
            explanation,
        }),
        effects,
        next,
    }
}

/// A dry run: every step the workflow would run for the ticket now, in
/// order (delays noted, not waited), changing nothing. `routing` should be
/// a copy: choosing warms its caches but must not count as an assignment.
pub fn dry_run(wf: &Workflow, facts: &Facts<'_>, env: &mut StepEnv<'_>) -> Vec<StepRecord> {
    let mut out = Vec::new();
    let mut at = if wf.spec.actions.is_empty() {
        None
    } else {
        Some(vec![0])
    };
    // Every step moves forward, so the walk ends; the bound is a guard.
    while let Some(cursor) = at.take()
        && out.len() < 1000
    {
        let plan = plan(wf, &cursor, facts, env);
        out.extend(plan.record);
        at = match plan.next {
            Next::At(c) | Next::Wait { then: c, .. } => Some(c),
            Next::Done => None,
        };
    }
    out
}

/// The most steps one run goes through before handing the rest to a new
/// outbox row (a long workflow never holds a write transaction for long).
pub const STEPS_PER_RUN: u32 = 32;

/// Where a run of an enrollment's steps stopped, and so how the
/// enrollment is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Its next step waits until then (a delay, or the hourly cap).
    Wait(Timestamp),
    /// The run reached [`STEPS_PER_RUN`]: the next step runs now, in a
    /// run of its own.
    More,
    /// The workflow is done for the ticket.
    Done,
}

impl Stop {
    /// Before the next step of a run that has run `ran` steps: stop if the
    /// ticket's steps of the last hour (`recent`) reached `cap`, or the run
    /// is long enough.
    pub fn before_step(recent: &[Timestamp], cap: u32, ran: u32, now: Timestamp) -> Option<Stop> {
        if let Some(until) = cap_until(recent, cap, now) {
            return Some(Stop::Wait(until));
        }
        (ran >= STEPS_PER_RUN).then_some(Stop::More)
    }

    /// After a step: the cursor of the next step and, if the run stops
    /// here, why (`None` for the cursor when the workflow is done).
    pub fn after_step(next: Next) -> (Option<Cursor>, Option<Stop>) {
        match next {
            Next::At(c) => (Some(c), None),
            Next::Wait { until, then } => (Some(then), Some(Stop::Wait(until))),
            Next::Done => (None, Some(Stop::Done)),
        }
    }

    /// How the enrollment is left: its state, and (unless done) when its
    /// next step's outbox row runs and the `waiting_until` it shows.
    pub fn parked(
        self,
        now: Timestamp,
    ) -> (EnrollmentState, Option<(Timestamp, Option<Timestamp>)>) {
        match self {
            Stop::Done => (EnrollmentState::Done, None),
            Stop::Wait(until) => (EnrollmentState::Waiting, Some((until, Some(until)))),
            Stop::More => (EnrollmentState::Running, Some((now, None))),
        }
    }
}
