//! Routing explanations and user availability.

use axum::{
    Router,
    extract::State,
    http::StatusCode,
    routing::{get, post, put},
};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use switchboard_domain::{routing::*, *};
use switchboard_store::{AvailabilityChange, AvailabilityState, RoutingRecord};

use crate::{
    AppState,
    auth::Caller,
    extract::{Json, Path},
    problem::{ApiError, Problem},
};

type Reply<T> = Result<axum::Json<T>, ApiError>;

/// The routes of this area.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tickets/{id}/routing", get(explain))
        .route(
            "/users/{id}/availability",
            get(availability).put(set_availability),
        )
        .route("/users/{id}/working-hours", put(set_working_hours))
        .route("/users/{id}/out-of-office", post(add_out_of_office))
}

/// Every routing decision for a ticket and every owner change.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RoutingReport {
    /// Automatic decisions, oldest first: rule, candidates and verdicts, winner and why.
    pub decisions: Vec<RoutingRecord>,
    /// Every owner change (routing, manual, reply), oldest first.
    pub owner_changes: Vec<HistoryEntry>,
}

/// Explains who got the ticket and why (or why nobody did).
#[utoipa::path(get, path = "/api/v1/tickets/{id}/routing", tag = "routing", params(("id" = i64, Path, description = "Its id")),
    responses((status = 200, body = RoutingReport), (status = 404, body = Problem)))]
pub(crate) async fn explain(
    State(s): State<AppState>,
    Caller(me): Caller,
    Path(id): Path<TicketId>,
) -> Reply<RoutingReport> {
    let decisions = s.store.routing_log(me.account_id, id).await?;
    let owner_changes = s
        .store
        .history(me.account_id, id)
        .await?
        .into_iter()
        .filter(|h| matches!(h.event, HistoryEvent::OwnerChanged { .. }))
        .collect();
    Ok(axum::Json(RoutingReport {
        decisions,
        owner_changes,
    }))
}

/// Users manage their own availability; admins manage agents'; super
/// admins everyone's.
async fn may_manage(s: &AppState, caller: &Caller, user: UserId) -> Result<(), ApiError> {
    // Existence first, so another account's user is a 404.
    let target = s.store.get_user(caller.0.account_id, user).await?;
    if caller.0.user_id == user {
        return Ok(());
    }
    // Admins manage agents' availability; super admins everyone's.
    caller.require_can_manage(target.role)
}

#[utoipa::path(get, path = "/api/v1/users/{id}/availability", tag = "routing", params(("id" = i64, Path, description = "Its id")),
    responses((status = 200, body = AvailabilityState)))]
pub(crate) async fn availability(
    State(s): State<AppState>,
    Caller(me): Caller,
    Path(id): Path<UserId>,
) -> Reply<AvailabilityState> {
    Ok(axum::Json(s.store.availability(me.account_id, id).await?))
}

/// A manual status: `available`, `away`, or `auto` (clear it and follow the schedule).
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusRequest {
    /// Available until changed (or `until`).
    Available,
    /// Away until changed (or `until`).
    Away,
    /// Follow working hours and out-of-office again.
    Auto,
}

/// Body of `PUT /users/{id}/availability`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityRequest {
    /// The status.
    pub status: StatusRequest,
    /// When a manual status expires.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub until: Option<Timestamp>,
}

#[utoipa::path(put, path = "/api/v1/users/{id}/availability", tag = "routing", params(("id" = i64, Path, description = "Its id")), request_body = AvailabilityRequest,
    responses((status = 200, body = AvailabilityState), (status = 403, description = "The caller may not manage this user", body = Problem)))]
pub(crate) async fn set_availability(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<UserId>,
    Json(req): Json<AvailabilityRequest>,
) -> Reply<AvailabilityState> {
    may_manage(&s, &caller, id).await?;
    let manual = match req.status {
        StatusRequest::Available => Some(ManualAvailability {
            status: ManualStatus::Available,
            until: req.until,
        }),
        StatusRequest::Away => Some(ManualAvailability {
            status: ManualStatus::Away,
            until: req.until,
        }),
        StatusRequest::Auto if req.until.is_some() => {
            return Err(ApiError::invalid("until", "`auto` takes no `until`"));
        }
        StatusRequest::Auto => None,
    };
    Ok(axum::Json(
        s.store
            .change_availability(caller.0.account_id, id, AvailabilityChange::Manual(manual))
            .await?,
    ))
}

/// Body of `PUT /users/{id}/working-hours`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkingHoursRequest {
    /// Weekly shifts in the user's time zone; `null` means always available.
    pub shifts: Option<Vec<Shift>>,
}

#[utoipa::path(put, path = "/api/v1/users/{id}/working-hours", tag = "routing", params(("id" = i64, Path, description = "Its id")), request_body = WorkingHoursRequest,
    responses((status = 200, body = AvailabilityState), (status = 403, description = "The caller may not manage this user", body = Problem)))]
pub(crate) async fn set_working_hours(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<UserId>,
    Json(req): Json<WorkingHoursRequest>,
) -> Reply<AvailabilityState> {
    may_manage(&s, &caller, id).await?;
    let hours = req.shifts.map(WeeklyHours);
    if let Some(h) = &hours {
        h.validate()?;
    }
    Ok(axum::Json(
        s.store
            .change_availability(
                caller.0.account_id,
                id,
                AvailabilityChange::WorkingHours(hours),
            )
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/users/{id}/out-of-office", tag = "routing", params(("id" = i64, Path, description = "Its id")), request_body = OutOfOffice,
    responses((status = 201, body = AvailabilityState), (status = 403, description = "The caller may not manage this user", body = Problem)))]
pub(crate) async fn add_out_of_office(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<UserId>,
    Json(range): Json<OutOfOffice>,
) -> Result<(StatusCode, axum::Json<AvailabilityState>), ApiError> {
    may_manage(&s, &caller, id).await?;
    if range.end <= range.start {
        return Err(ApiError::invalid(
            "end",
            "an out-of-office range ends after it starts",
        ));
    }
    let state = s
        .store
        .change_availability(
            caller.0.account_id,
            id,
            AvailabilityChange::AddOutOfOffice(range),
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(state)))
}
