//! Operational endpoints: liveness, readiness, Prometheus metrics and the
//! OpenAPI document. They carry no account data and need no token.

use std::sync::OnceLock;

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};

use crate::{AppState, openapi::ApiDoc};

/// The routes of this area (mounted at the root, except the OpenAPI document
/// which sits under `/api/v1`).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// The OpenAPI document route, for `/api/v1`.
pub fn openapi_router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(openapi_json))
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "public",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object)))]
pub(crate) async fn openapi_json() -> axum::Json<utoipa::openapi::OpenApi> {
    use utoipa::OpenApi;
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    axum::Json(DOC.get_or_init(ApiDoc::openapi).clone())
}

/// Alive: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "public",
    responses((status = 200, description = "`ok`", content_type = "text/plain", body = String)))]
pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the database answers.
#[utoipa::path(get, path = "/readyz", tag = "public",
    responses(
        (status = 200, description = "`ready`", content_type = "text/plain", body = String),
        (status = 503, description = "The database does not answer", content_type = "text/plain", body = String),
    ))]
pub(crate) async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    match s.store.account_count().await {
        Ok(_) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}

/// Prometheus metrics, in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "public",
    responses((status = 200, description = "Metrics", content_type = "text/plain", body = String)))]
pub(crate) async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        s.metrics.render(),
    )
}
