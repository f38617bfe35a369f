//! Ready-made workflows (`POST /api/v1/workflows/templates/{name}`): each
//! takes a small input and builds an ordinary [`WorkflowSpec`], which is
//! then checked and stored like any other.

use serde::Deserialize;
use utoipa::ToSchema;

use super::{
    actions::{Action, Branch, Targets},
    filters::{Condition, FilterGroup, Test},
    model::{Reenrollment, Trigger, TriggerKind, WorkflowSpec},
};
use crate::{DomainError, Name, TicketSource, routing::Distribution};

crate::model::wire_enum!(
    /// The templates there are.
    TemplateName {
        /// After the customer agent hands off, rotate among the people of
        /// the ticket's original channel.
        ReassignForCustomerAgentHandoff = "reassign_for_customer_agent_handoff",
        /// No public reply within a time after assignment: rotate to
        /// someone else available.
        ReassignWithoutFirstReply = "reassign_without_first_reply",
    }
);

/// One original channel's people, for the handoff template.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelTargets {
    /// The original channel (the ticket's source).
    pub original_channel: TicketSource,
    /// Whom its tickets rotate among.
    #[serde(flatten)]
    pub targets: Targets,
}

/// The input of `reassign_for_customer_agent_handoff`.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HandoffTemplate {
    /// The workflow's name (a default when absent).
    #[serde(default)]
    pub name: Option<Name>,
    /// Per original channel, whom to rotate among.
    pub channels: Vec<ChannelTargets>,
    /// How to rotate (default round robin).
    #[serde(default)]
    pub distribution: Option<Distribution>,
}

/// The input of `reassign_without_first_reply`.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoFirstReplyTemplate {
    /// The workflow's name (a default when absent).
    #[serde(default)]
    pub name: Option<Name>,
    /// How long after assignment without a public reply.
    pub after_seconds: u32,
    /// Whom to rotate among.
    pub targets: Targets,
    /// How to rotate (default round robin).
    #[serde(default)]
    pub distribution: Option<Distribution>,
}

fn name(given: Option<Name>, default: &str) -> Result<Name, DomainError> {
    match given {
        Some(n) => Ok(n),
        None => Name::try_from(default.to_owned()),
    }
}

impl HandoffTemplate {
    /// The workflow: enrolled by the handoff, one branch per original
    /// channel, each rotating among that channel's people.
    pub fn build(self) -> Result<WorkflowSpec, DomainError> {
        if self.channels.is_empty() {
            return Err(DomainError::invalid_at(
                "channels",
                "needs at least one channel",
            ));
        }
        let distribution = self.distribution.unwrap_or(Distribution::RoundRobin);
        let branches = self
            .channels
            .into_iter()
            .map(|c| Branch {
                name: c.original_channel.as_str().to_owned(),
                filters: vec![FilterGroup {
                    all: vec![Condition::OriginalChannel(Test::Equals {
                        value: c.original_channel,
                    })],
                }],
                actions: vec![Action::RotateOwner {
                    id: String::new(),
                    targets: c.targets,
                    distribution,
                    only_available: true,
                    only_if_unowned: false,
                    exclude_current_owner: false,
                }],
            })
            .collect();
        Ok(WorkflowSpec {
            name: name(self.name, "Reassign after the customer agent's handoff")?,
            enabled: true,
            triggers: vec![Trigger::CustomerAgentHandoff],
            filters: Vec::new(),
            reenrollment: Reenrollment {
                enabled: true,
                triggers: vec![TriggerKind::CustomerAgentHandoff],
            },
            actions: vec![Action::Branch {
                branches,
                default: Vec::new(),
            }],
        })
    }
}

impl NoFirstReplyTemplate {
    /// The workflow: enrolled when no public reply came `after_seconds`
    /// after assignment (again for each new assignment), rotating to
    /// someone other than the current owner.
    pub fn build(self) -> Result<WorkflowSpec, DomainError> {
        if self.after_seconds == 0 || self.after_seconds > super::MAX_SECONDS {
            let why = if self.after_seconds == 0 {
                "must be positive"
            } else {
                super::MAX_SECONDS_REASON
            };
            return Err(DomainError::invalid_at("after_seconds", why));
        }
        Ok(WorkflowSpec {
            name: name(self.name, "Reassign without a first reply")?,
            enabled: true,
            triggers: vec![Trigger::NoFirstReply {
                after_seconds: self.after_seconds,
            }],
            filters: Vec::new(),
            reenrollment: Reenrollment {
                enabled: true,
                triggers: vec![TriggerKind::NoFirstReply],
            },
            actions: vec![Action::RotateOwner {
                id: String::new(),
                targets: self.targets,
                distribution: self.distribution.unwrap_or(Distribution::RoundRobin),
                only_available: true,
                only_if_unowned: false,
                exclude_current_owner: true,
            }],
        })
    }
}
