//! The outbox, for admins: what is waiting to be sent, what was sent, what
//! failed and why, and a manual retry for a failed row (say, once the relay
//! is fixed). Only the caller's account's rows exist here: another
//! account's row is a 404, like a missing one.

use axum::{Router, extract::State, routing::get, routing::post};
use serde::Deserialize;
use switchboard_store::{OutboxEntry, OutboxState, Page};

use super::directory::page_limit;
use crate::{
    AppState,
    auth::Caller,
    extract::{Path, Query},
    problem::{ApiError, Problem},
};

/// The routes of this area.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/outbox", get(list_outbox))
        .route("/outbox/{id}/retry", post(retry_outbox))
}

/// Filters of the outbox list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct OutboxParams {
    /// `pending`, `done` or `failed`; every state when absent.
    pub state: Option<OutboxState>,
    /// How many rows, newest first: 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// The account's outbox rows, newest first: each with its topic (what it
/// does, e.g. `{"topic": "deliver_reply", "ticket_id", "message_id"}`), its
/// state, attempts, last error and times. Admins only.
#[utoipa::path(get, path = "/api/v1/outbox", tag = "outbox", params(OutboxParams),
    responses((status = 200, body = Page<OutboxEntry>), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub(crate) async fn list_outbox(
    State(s): State<AppState>,
    caller: Caller,
    Query(p): Query<OutboxParams>,
) -> Result<axum::Json<Page<OutboxEntry>>, ApiError> {
    caller.require_admin()?;
    let limit = page_limit(p.limit)?;
    let items = s
        .store
        .list_outbox(caller.0.account_id, p.state, limit)
        .await?;
    Ok(axum::Json(Page {
        items,
        next_cursor: None,
    }))
}

/// Puts a `failed` row back to `pending`, due now, with a fresh series of
/// attempts; the dispatcher runs it at once. `409` if the row is not
/// failed. Admins only.
#[utoipa::path(post, path = "/api/v1/outbox/{id}/retry", tag = "outbox", params(("id" = i64, Path, description = "Its id")),
    responses((status = 200, body = OutboxEntry), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub(crate) async fn retry_outbox(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<axum::Json<OutboxEntry>, ApiError> {
    caller.require_admin()?;
    let row = s.store.retry_outbox(caller.0.account_id, id).await?;
    tracing::info!(row = id, user = %caller.0.user_id, "outbox row retried by hand");
    s.wake_dispatcher();
    Ok(axum::Json(row))
}
