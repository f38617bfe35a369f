//! The [`Workflows`] area of the store: stored workflows, enrollments and
//! their steps, and the step runner the outbox dispatcher calls.
//!
//! What a change enrolls, what a step does and when a time-based trigger
//! comes due are decided in `switchboard_domain::workflows`. Both backends
//! evaluate the triggers in the transaction of every ticket change (so an
//! enrollment and its first step's outbox row commit with the change that
//! caused them), and run each step in a transaction of its own that checks
//! the enrollment's step count first, so a step runs once however often
//! its outbox row is claimed.

use async_trait::async_trait;
use serde::Deserialize;
use switchboard_domain::{
    AccountId, TeamId, Ticket, TicketId, UserId,
    workflows::{Enrollment, EnrollmentId, StepRecord, Workflow, WorkflowId, WorkflowSpec},
};

use crate::Result;

/// Who the customer agent hands a conversation to (either, both, or
/// neither: then the ticket keeps its owner and only the trigger fires).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Handoff {
    /// The user it goes to.
    #[serde(default)]
    pub user_id: Option<UserId>,
    /// The team it goes to.
    #[serde(default)]
    pub team_id: Option<TeamId>,
}

/// Workflows: definitions, enrollments, steps.
#[async_trait]
pub trait Workflows: Send + Sync + 'static {
    /// Stores a workflow (checked by the caller with
    /// `switchboard_domain::workflows::prepare`). Time-based triggers start
    /// a scan that sets the timers of the account's open tickets.
    async fn create_workflow(&self, account: AccountId, spec: WorkflowSpec) -> Result<Workflow>;

    /// The account's workflows, by id.
    async fn list_workflows(&self, account: AccountId) -> Result<Vec<Workflow>>;

    /// One workflow.
    async fn get_workflow(&self, account: AccountId, id: WorkflowId) -> Result<Workflow>;

    /// Replaces a workflow's definition (the caller applied the patch and
    /// checked the result). A webhook action without a `secret` keeps the
    /// one stored under its id.
    async fn replace_workflow(
        &self,
        account: AccountId,
        id: WorkflowId,
        spec: WorkflowSpec,
    ) -> Result<Workflow>;

    /// Deletes a workflow; its running enrollments end `cancelled`.
    async fn delete_workflow(&self, account: AccountId, id: WorkflowId) -> Result<()>;

    /// Enrolls a ticket by hand (no filters); `Conflict` while an
    /// enrollment of it in this workflow runs.
    async fn enroll_ticket(
        &self,
        account: AccountId,
        id: WorkflowId,
        ticket: TicketId,
    ) -> Result<Enrollment>;

    /// What the workflow would do for the ticket now, changing nothing.
    async fn test_workflow(
        &self,
        account: AccountId,
        id: WorkflowId,
        ticket: TicketId,
    ) -> Result<Vec<StepRecord>>;

    /// A ticket's enrollments with their steps, oldest first.
    async fn ticket_enrollments(
        &self,
        account: AccountId,
        ticket: TicketId,
    ) -> Result<Vec<Enrollment>>;

    /// The customer agent hands the conversation off: the ticket goes to
    /// `to` (if given), the people it goes to are told, and the
    /// `customer_agent_handoff` trigger fires.
    async fn hand_off(&self, account: AccountId, ticket: TicketId, to: Handoff) -> Result<Ticket>;

    /// Runs the enrollment's steps from its current one, if it has run
    /// `seq` steps (else it ran already: nothing happens), until it waits,
    /// ends, or reaches `steps_per_hour` steps of its ticket in the last
    /// hour (then it waits for the window to move).
    async fn run_workflow_step(
        &self,
        account: AccountId,
        enrollment: EnrollmentId,
        seq: u32,
        steps_per_hour: u32,
    ) -> Result<()>;

    /// The step's outbox row was given up: the enrollment ends `failed`
    /// with `error`, recorded in the ticket's history.
    async fn fail_workflow_step(
        &self,
        account: AccountId,
        enrollment: EnrollmentId,
        seq: u32,
        error: String,
    ) -> Result<()>;

    /// The signing secret of a webhook action.
    async fn workflow_secret(
        &self,
        account: AccountId,
        id: WorkflowId,
        action_id: String,
    ) -> Result<Option<String>>;
}
