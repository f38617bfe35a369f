//! A workflow's parts as they travel: triggers, re-enrollment, the record
//! and its inputs. Conditions are in [`super::filters`], actions in
//! [`super::actions`].

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{actions::Action, filters::FilterGroup};
use crate::Name;

/// A workflow's id.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(transparent)]
pub struct WorkflowId(pub i64);

impl std::fmt::Display for WorkflowId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// An enrollment's id (one ticket going through one workflow once).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(transparent)]
pub struct EnrollmentId(pub i64);

impl std::fmt::Display for EnrollmentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

crate::model::wire_enum!(
    /// What enrolled a ticket (an enrollment remembers it; re-enrollment is
    /// chosen per kind).
    TriggerKind {
        /// The ticket was created.
        TicketCreated = "ticket_created",
        /// A property changed (optionally to a value).
        PropertyChanged = "property_changed",
        /// The owner user or team changed.
        OwnerChanged = "owner_changed",
        /// The status or the pipeline stage changed.
        StatusChanged = "status_changed",
        /// The customer wrote (an inbound message).
        MessageReceived = "message_received",
        /// A public reply was sent.
        MessageSent = "message_sent",
        /// The customer agent handed the conversation to a person.
        CustomerAgentHandoff = "customer_agent_handoff",
        /// No public reply within a time after assignment.
        NoFirstReply = "no_first_reply",
        /// No customer answer within a time after our last reply.
        NoCustomerAnswer = "no_customer_answer",
        /// Open for longer than a time.
        OpenLongerThan = "open_longer_than",
        /// Enrolled by hand (`POST /workflows/{id}/enroll`).
        Manual = "manual",
    }
);

impl TriggerKind {
    /// Whether the scheduler evaluates it (rather than a change).
    pub fn is_timed(self) -> bool {
        matches!(
            self,
            Self::NoFirstReply | Self::NoCustomerAnswer | Self::OpenLongerThan
        )
    }
}

/// What enrolls a ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    /// The ticket was created.
    TicketCreated,
    /// A property changed; with `to`, only when it changed to that value.
    PropertyChanged {
        /// The property name.
        property: String,
        /// The value it must have changed to (any change when absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(value_type = Option<Object>)]
        to: Option<serde_json::Value>,
    },
    /// The owner user or team changed.
    OwnerChanged,
    /// The status or the pipeline stage changed.
    StatusChanged,
    /// The customer wrote.
    MessageReceived,
    /// A public reply was sent.
    MessageSent,
    /// The customer agent handed off to a person.
    CustomerAgentHandoff,
    /// No public reply `after_seconds` after the owner user was assigned.
    NoFirstReply {
        /// How long after assignment.
        after_seconds: u32,
    },
    /// No inbound message `after_seconds` after our last public reply.
    NoCustomerAnswer {
        /// How long after the reply.
        after_seconds: u32,
    },
    /// Still open `after_seconds` after creation.
    OpenLongerThan {
        /// How long after creation.
        after_seconds: u32,
    },
}

impl Trigger {
    /// Its kind.
    pub fn kind(&self) -> TriggerKind {
        match self {
            Self::TicketCreated => TriggerKind::TicketCreated,
            Self::PropertyChanged { .. } => TriggerKind::PropertyChanged,
            Self::OwnerChanged => TriggerKind::OwnerChanged,
            Self::StatusChanged => TriggerKind::StatusChanged,
            Self::MessageReceived => TriggerKind::MessageReceived,
            Self::MessageSent => TriggerKind::MessageSent,
            Self::CustomerAgentHandoff => TriggerKind::CustomerAgentHandoff,
            Self::NoFirstReply { .. } => TriggerKind::NoFirstReply,
            Self::NoCustomerAnswer { .. } => TriggerKind::NoCustomerAnswer,
            Self::OpenLongerThan { .. } => TriggerKind::OpenLongerThan,
        }
    }
}

/// Whether a ticket may enroll again after a first time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reenrollment {
    /// Off by default: a ticket enrolls once per workflow.
    #[serde(default)]
    pub enabled: bool,
    /// The triggers that may enroll it again (when enabled).
    #[serde(default)]
    pub triggers: Vec<TriggerKind>,
}

/// What a workflow is made of: `POST /api/v1/workflows` takes it, and a
/// stored workflow serves it (webhook secrets left out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowSpec {
    /// Display name.
    pub name: Name,
    /// Whether it enrolls tickets (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// What enrolls a ticket (any of them).
    #[serde(default)]
    pub triggers: Vec<Trigger>,
    /// Groups of conditions, any of which must hold (each group: all its
    /// conditions). None: every ticket.
    #[serde(default)]
    pub filters: Vec<FilterGroup>,
    /// Re-enrollment (off by default).
    #[serde(default)]
    pub reenrollment: Reenrollment,
    /// The steps, run in order.
    #[serde(default)]
    pub actions: Vec<Action>,
}

fn yes() -> bool {
    true
}

/// A change to a workflow (`PATCH /api/v1/workflows/{id}`); absent fields
/// stay. A webhook whose `secret` is absent keeps the stored one.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowPatch {
    /// New name.
    pub name: Option<Name>,
    /// Enable or disable.
    pub enabled: Option<bool>,
    /// New triggers.
    pub triggers: Option<Vec<Trigger>>,
    /// New filters.
    pub filters: Option<Vec<FilterGroup>>,
    /// New re-enrollment.
    pub reenrollment: Option<Reenrollment>,
    /// New actions (keep the `id`s of rotate actions to keep their rotation).
    pub actions: Option<Vec<Action>>,
}

impl WorkflowPatch {
    /// `spec` with the patch applied.
    pub fn apply(self, mut spec: WorkflowSpec) -> WorkflowSpec {
        if let Some(v) = self.name {
            spec.name = v;
        }
        if let Some(v) = self.enabled {
            spec.enabled = v;
        }
        if let Some(v) = self.triggers {
            spec.triggers = v;
        }
        if let Some(v) = self.filters {
            spec.filters = v;
        }
        if let Some(v) = self.reenrollment {
            spec.reenrollment = v;
        }
        if let Some(v) = self.actions {
            spec.actions = v;
        }
        spec
    }
}

/// A stored workflow. Served as its definition's fields beside `id`,
/// `created_at` and `updated_at` (documented as [`WorkflowView`]: the
/// definition's schema refuses unknown fields, so it cannot be extended).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Workflow {
    /// Its id.
    pub id: WorkflowId,
    /// Its definition.
    #[serde(flatten)]
    pub spec: WorkflowSpec,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

/// A stored workflow as served: [`Workflow`]'s JSON (documentation only).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = Workflow)]
pub struct WorkflowView {
    /// Its id.
    pub id: WorkflowId,
    /// Display name.
    pub name: Name,
    /// Whether it enrolls tickets.
    pub enabled: bool,
    /// What enrolls a ticket (any of them).
    pub triggers: Vec<Trigger>,
    /// Groups of conditions, any of which must hold.
    pub filters: Vec<FilterGroup>,
    /// Re-enrollment.
    pub reenrollment: Reenrollment,
    /// The steps, run in order (webhook secrets left out).
    pub actions: Vec<Action>,
    /// When it was created.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// When it last changed.
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

crate::model::wire_enum!(
    /// Where an enrollment stands.
    EnrollmentState {
        /// Its next step is queued to run now.
        Running = "running",
        /// Waiting for a delay (or for the hourly step cap) to pass.
        Waiting = "waiting",
        /// Every step ran.
        Done = "done",
        /// A step kept failing and was given up (see `error`).
        Failed = "failed",
        /// Its workflow was deleted while it ran.
        Cancelled = "cancelled",
    }
);

impl EnrollmentState {
    /// Whether it still runs (a ticket enrolls in a workflow at most once
    /// at a time).
    pub fn is_active(self) -> bool {
        matches!(self, Self::Running | Self::Waiting)
    }
}

/// One step an enrollment ran, as `GET /tickets/{id}/workflows` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EnrollmentStep {
    /// When it ran.
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// What it was and did.
    #[serde(flatten)]
    pub record: super::StepRecord,
}

/// One ticket's run through one workflow.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Enrollment {
    /// Its id.
    pub id: EnrollmentId,
    /// The workflow.
    pub workflow_id: WorkflowId,
    /// The ticket.
    pub ticket_id: crate::TicketId,
    /// What enrolled it.
    pub trigger: TriggerKind,
    /// Where it stands.
    pub state: EnrollmentState,
    /// The position of the next step (`2.1.0`), while it runs.
    pub next_step: Option<String>,
    /// When the next step runs, while it waits.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub waiting_until: Option<Timestamp>,
    /// Why it failed.
    pub error: Option<String>,
    /// When it enrolled.
    #[schema(value_type = String, format = DateTime)]
    pub started_at: Timestamp,
    /// When it last changed.
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    /// The steps it ran, in order.
    pub steps: Vec<EnrollmentStep>,
}
