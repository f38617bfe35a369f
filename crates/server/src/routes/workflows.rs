//! Ticket workflows: definitions (admins), templates, enrolling by hand,
//! dry runs, a ticket's enrollments, and the customer agent's handoff.
//!
//! - `GET/POST /workflows`, `GET/PATCH/DELETE /workflows/{id}`;
//! - `POST /workflows/templates/{name}`: a ready-made workflow from a small
//!   input (`reassign_for_customer_agent_handoff`,
//!   `reassign_without_first_reply`);
//! - `POST /workflows/{id}/enroll` and `POST /workflows/{id}/test` (what it
//!   would do for a ticket now, changing nothing);
//! - `GET /tickets/{id}/workflows`: the ticket's enrollments and steps
//!   (every user of the account);
//! - `POST /tickets/{id}/handoff`: the customer agent (or an integration
//!   standing in for it) hands the conversation to a user or team.
//!
//! Definitions are checked here, against the account's users, teams and
//! channels, with `switchboard_domain::workflows::prepare`: errors name the
//! field's path (`actions[2].targets.users[0]`).

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::{get, post},
};
use serde::{Deserialize, Serialize};
use switchboard_domain::{
    AccountId, Ticket, TicketId,
    workflows::{
        self, Enrollment, Known, StepRecord, Workflow, WorkflowId, WorkflowPatch, WorkflowSpec,
        WorkflowView,
        templates::{HandoffTemplate, NoFirstReplyTemplate, TemplateName},
    },
};
use switchboard_store::{Handoff, Page, Store};

use crate::{
    AppState,
    auth::Caller,
    extract::{Json, Path, parse_json},
    problem::{ApiError, Problem},
};

type Reply<T> = Result<axum::Json<T>, ApiError>;

/// The routes of this area.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/workflows", get(list).post(create))
        .route("/workflows/templates/{name}", post(from_template))
        .route("/workflows/{id}", get(show).patch(update).delete(remove))
        .route("/workflows/{id}/enroll", post(enroll))
        .route("/workflows/{id}/test", post(test))
        .route("/tickets/{id}/workflows", get(ticket_workflows))
        .route("/tickets/{id}/handoff", post(handoff))
}

/// The account's ids a definition may name.
async fn known(store: &dyn Store, account: AccountId) -> Result<Known, ApiError> {
    Ok(Known {
        users: store
            .list_users(account)
            .await?
            .into_iter()
            .map(|u| u.id)
            .collect(),
        teams: store
            .list_teams(account)
            .await?
            .into_iter()
            .map(|t| t.id)
            .collect(),
        channels: store
            .list_channels(account)
            .await?
            .into_iter()
            .map(|c| c.id)
            .collect(),
    })
}

async fn prepared(
    store: &dyn Store,
    account: AccountId,
    mut spec: WorkflowSpec,
) -> Result<WorkflowSpec, ApiError> {
    workflows::prepare(&mut spec, &known(store, account).await?)?;
    Ok(spec)
}

/// The account's workflows (admins).
#[utoipa::path(get, path = "/api/v1/workflows", tag = "workflows",
    responses((status = 200, body = Page<WorkflowView>), (status = 403, body = Problem)))]
pub(crate) async fn list(State(s): State<AppState>, caller: Caller) -> Reply<Page<Workflow>> {
    caller.require_admin()?;
    let items = s.store.list_workflows(caller.0.account_id).await?;
    Ok(axum::Json(Page {
        items,
        next_cursor: None,
    }))
}

/// Creates a workflow (admins). Rotate and webhook actions without an `id`
/// get one; a webhook's `secret` is kept apart and never served.
#[utoipa::path(post, path = "/api/v1/workflows", tag = "workflows", request_body = WorkflowSpec,
    responses((status = 201, body = WorkflowView), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub(crate) async fn create(
    State(s): State<AppState>,
    caller: Caller,
    Json(spec): Json<WorkflowSpec>,
) -> Result<(StatusCode, axum::Json<Workflow>), ApiError> {
    caller.require_admin()?;
    let account = caller.0.account_id;
    let spec = prepared(s.store.as_ref(), account, spec).await?;
    let created = s.store.create_workflow(account, spec).await?;
    Ok((StatusCode::CREATED, axum::Json(created)))
}

/// The input of a template: `HandoffTemplate` for
/// `reassign_for_customer_agent_handoff`, `NoFirstReplyTemplate` for
/// `reassign_without_first_reply` (the document's shape; the handler reads
/// the one its template takes).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum TemplateInput {
    /// For `reassign_for_customer_agent_handoff`.
    Handoff(HandoffTemplate),
    /// For `reassign_without_first_reply`.
    NoFirstReply(NoFirstReplyTemplate),
}

/// A workflow from a template (admins): `reassign_for_customer_agent_handoff`
/// takes `HandoffTemplate`, `reassign_without_first_reply` takes
/// `NoFirstReplyTemplate`.
#[utoipa::path(post, path = "/api/v1/workflows/templates/{name}", tag = "workflows",
    params(("name" = TemplateName, Path, description = "The template")),
    request_body = TemplateInput,
    responses((status = 201, body = WorkflowView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub(crate) async fn from_template(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, axum::Json<Workflow>), ApiError> {
    caller.require_admin()?;
    let name: TemplateName = name
        .parse()
        .map_err(|_| ApiError::NotFound(format!("no template named {name:?}")))?;
    let spec = match name {
        TemplateName::ReassignForCustomerAgentHandoff => {
            parse_json::<HandoffTemplate>(&headers, &body)?.build()?
        }
        TemplateName::ReassignWithoutFirstReply => {
            parse_json::<NoFirstReplyTemplate>(&headers, &body)?.build()?
        }
    };
    let account = caller.0.account_id;
    let spec = prepared(s.store.as_ref(), account, spec).await?;
    let created = s.store.create_workflow(account, spec).await?;
    Ok((StatusCode::CREATED, axum::Json(created)))
}

/// One workflow (admins).
#[utoipa::path(get, path = "/api/v1/workflows/{id}", tag = "workflows",
    params(("id" = i64, Path, description = "Its id")),
    responses((status = 200, body = WorkflowView), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn show(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<WorkflowId>,
) -> Reply<Workflow> {
    caller.require_admin()?;
    Ok(axum::Json(
        s.store.get_workflow(caller.0.account_id, id).await?,
    ))
}

/// Changes a workflow (admins); absent fields stay. Keep the `id` of a
/// rotate action to keep its rotation, and of a webhook to keep its secret.
#[utoipa::path(patch, path = "/api/v1/workflows/{id}", tag = "workflows",
    params(("id" = i64, Path, description = "Its id")), request_body = WorkflowPatch,
    responses((status = 200, body = WorkflowView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub(crate) async fn update(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<WorkflowId>,
    Json(patch): Json<WorkflowPatch>,
) -> Reply<Workflow> {
    caller.require_admin()?;
    let account = caller.0.account_id;
    let current = s.store.get_workflow(account, id).await?;
    let spec = prepared(s.store.as_ref(), account, patch.apply(current.spec)).await?;
    Ok(axum::Json(
        s.store.replace_workflow(account, id, spec).await?,
    ))
}

/// Deletes a workflow (admins); its running enrollments end `cancelled`.
#[utoipa::path(delete, path = "/api/v1/workflows/{id}", tag = "workflows",
    params(("id" = i64, Path, description = "Its id")),
    responses((status = 204, description = "Deleted"), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn remove(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<WorkflowId>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    s.store.delete_workflow(caller.0.account_id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The ticket a request is about.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketRef {
    /// The ticket.
    pub ticket_id: TicketId,
}

/// Enrolls a ticket by hand (admins); filters are not applied. 409 while
/// the ticket runs through this workflow already.
#[utoipa::path(post, path = "/api/v1/workflows/{id}/enroll", tag = "workflows",
    params(("id" = i64, Path, description = "Its id")), request_body = TicketRef,
    responses((status = 201, body = Enrollment), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub(crate) async fn enroll(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<WorkflowId>,
    Json(body): Json<TicketRef>,
) -> Result<(StatusCode, axum::Json<Enrollment>), ApiError> {
    caller.require_admin()?;
    let enrolled = s
        .store
        .enroll_ticket(caller.0.account_id, id, body.ticket_id)
        .await
        .map_err(ticket_field)?;
    s.wake_dispatcher();
    Ok((StatusCode::CREATED, axum::Json(enrolled)))
}

/// A missing ticket named in a body is the body's fault (422 naming the
/// field), not a missing route (404).
fn ticket_field(e: switchboard_store::StoreError) -> ApiError {
    match e {
        switchboard_store::StoreError::NotFound("ticket") => {
            ApiError::invalid("ticket_id", "no such ticket")
        }
        e => e.into(),
    }
}

/// What a dry run found.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DryRun {
    /// The steps the workflow would run now, in order (delays noted, not
    /// waited; a rotate names whom it would choose and why).
    pub steps: Vec<StepRecord>,
}

/// What the workflow would do for a ticket now (admins), changing nothing.
#[utoipa::path(post, path = "/api/v1/workflows/{id}/test", tag = "workflows",
    params(("id" = i64, Path, description = "Its id")), request_body = TicketRef,
    responses((status = 200, body = DryRun), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub(crate) async fn test(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<WorkflowId>,
    Json(body): Json<TicketRef>,
) -> Reply<DryRun> {
    caller.require_admin()?;
    let steps = s
        .store
        .test_workflow(caller.0.account_id, id, body.ticket_id)
        .await
        .map_err(ticket_field)?;
    Ok(axum::Json(DryRun { steps }))
}

/// A ticket's enrollments and the steps each ran (every user).
#[utoipa::path(get, path = "/api/v1/tickets/{id}/workflows", tag = "workflows",
    params(("id" = i64, Path, description = "Its id")),
    responses((status = 200, body = Page<Enrollment>), (status = 404, body = Problem)))]
pub(crate) async fn ticket_workflows(
    State(s): State<AppState>,
    Caller(me): Caller,
    Path(id): Path<TicketId>,
) -> Reply<Page<Enrollment>> {
    let items = s.store.ticket_enrollments(me.account_id, id).await?;
    Ok(axum::Json(Page {
        items,
        next_cursor: None,
    }))
}

/// The customer agent hands the conversation off (admins; the customer
/// agent calls the store directly): to the user and/or team given, if any;
/// they are told, and workflows triggered by a handoff enroll the ticket.
#[utoipa::path(post, path = "/api/v1/tickets/{id}/handoff", tag = "workflows",
    params(("id" = i64, Path, description = "Its id")), request_body = Handoff,
    responses((status = 200, body = Ticket), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub(crate) async fn handoff(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<TicketId>,
    Json(to): Json<Handoff>,
) -> Reply<Ticket> {
    caller.require_admin()?;
    let t = s.store.hand_off(caller.0.account_id, id, to).await?;
    s.wake_dispatcher();
    Ok(axum::Json(t))
}
