//! Workflows: triggers enroll a ticket, filters choose which, and a
//! sequence of actions runs for it, durably, one step at a time.
//!
//! - [`model`]: the workflow, its triggers and re-enrollment, its inputs;
//! - [`filters`]: typed conditions and their pure evaluation;
//! - [`actions`]: the steps, their checks against the account, and the
//!   rotate action over the routing engine;
//! - [`execution`]: which workflows a change (or the clock) enrolls, the
//!   hourly step cap, and the step machine;
//! - [`templates`]: ready-made workflows.
//!
//! Nothing here reads the store: the store loads the workflows, the ticket
//! and the kept routing state, calls these functions and carries out the
//! [`execution::Effect`]s they return in its transaction.

pub mod actions;
pub mod execution;
pub mod filters;
pub mod model;
pub mod templates;

pub use actions::{Action, Known, Rotation, Targets};
pub use execution::{Change, Cursor, Effect, Next, Plan, Prior, StepEnv, StepRecord, Timeline};
pub use filters::{Condition, Facts, FilterGroup, HoursOf, Test};
pub use model::*;

use crate::DomainError;

/// The longest time a trigger or a delay may name, in seconds: the
/// documented bound of a 32-bit signed integer (about 68 years).
pub const MAX_SECONDS: u32 = i32::MAX as u32;

pub(crate) const MAX_SECONDS_REASON: &str = "at most 2147483647 seconds";

/// Checks `spec` against the account's ids (`known`) and fills in missing
/// action ids. Errors name the path (`actions[2].targets.users[0]`).
pub fn prepare(spec: &mut WorkflowSpec, known: &Known) -> Result<(), DomainError> {
    for (i, t) in spec.triggers.iter().enumerate() {
        let at = format!("triggers[{i}]");
        match t {
            Trigger::PropertyChanged { property, .. } if property.trim().is_empty() => {
                return Err(DomainError::invalid_at(
                    format!("{at}.property"),
                    "a property name cannot be empty",
                ));
            }
            Trigger::NoFirstReply { after_seconds }
            | Trigger::NoCustomerAnswer { after_seconds }
            | Trigger::OpenLongerThan { after_seconds }
                if *after_seconds == 0 || *after_seconds > MAX_SECONDS =>
            {
                let why = if *after_seconds == 0 {
                    "must be positive"
                } else {
                    MAX_SECONDS_REASON
                };
                return Err(DomainError::invalid_at(format!("{at}.after_seconds"), why));
            }
            _ => {}
        }
    }
    filters::check(&spec.filters, "filters")?;
    for (i, c) in spec.filters.iter().flat_map(|g| &g.all).enumerate() {
        if let Some(HoursOf::Team(t)) = c.hours()
            && !known.teams.contains(&t)
        {
            return Err(DomainError::invalid_at(
                format!("filters.conditions[{i}].of.team"),
                format!("no such team: {t}"),
            ));
        }
    }
    actions::check_all(&mut spec.actions, "actions", known)
}

/// The webhook secrets of `actions`, by action id (they are stored apart
/// from the definition and never served).
pub fn secrets(actions: &[Action]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for a in actions {
        match a {
            Action::Webhook {
                id,
                secret: Some(s),
                ..
            } => out.push((id.clone(), s.clone())),
            Action::Branch { branches, default } => {
                for b in branches {
                    out.extend(secrets(&b.actions));
                }
                out.extend(secrets(default));
            }
            _ => {}
        }
    }
    out
}

/// The secrets after an edit: the new ones, and the stored ones of webhook
/// actions that are still there and came without one.
pub fn merged_secrets(
    stored: serde_json::Map<String, serde_json::Value>,
    spec: &WorkflowSpec,
) -> serde_json::Map<String, serde_json::Value> {
    let mut ids = Vec::new();
    collect_webhooks(&spec.actions, &mut ids);
    let mut out: serde_json::Map<String, serde_json::Value> = stored
        .into_iter()
        .filter(|(k, _)| ids.contains(k))
        .collect();
    for (k, v) in secrets(&spec.actions) {
        out.insert(k, serde_json::Value::String(v));
    }
    out
}

fn collect_webhooks(actions: &[Action], out: &mut Vec<String>) {
    for a in actions {
        match a {
            Action::Webhook { id, .. } => out.push(id.clone()),
            Action::Branch { branches, default } => {
                for b in branches {
                    collect_webhooks(&b.actions, out);
                }
                collect_webhooks(default, out);
            }
            _ => {}
        }
    }
}

/// Every office hours the workflow's conditions and delays read.
pub fn hours_read(spec: &WorkflowSpec) -> Vec<HoursOf> {
    fn of_groups(groups: &[FilterGroup], out: &mut Vec<HoursOf>) {
        out.extend(
            groups
                .iter()
                .flat_map(|g| &g.all)
                .filter_map(Condition::hours),
        );
    }
    fn of_actions(actions: &[Action], out: &mut Vec<HoursOf>) {
        for a in actions {
            match a {
                Action::Delay {
                    until_open: Some(of),
                    ..
                } => out.push(*of),
                Action::Branch { branches, default } => {
                    for b in branches {
                        of_groups(&b.filters, out);
                        of_actions(&b.actions, out);
                    }
                    of_actions(default, out);
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    of_groups(&spec.filters, &mut out);
    of_actions(&spec.actions, &mut out);
    out.sort_by_key(|h| match h {
        HoursOf::Team(t) => (0, t.0),
        HoursOf::Channel(c) => (1, c.0),
    });
    out.dedup();
    out
}

#[cfg(test)]
mod tests;
