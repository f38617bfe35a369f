//! Operational endpoints: liveness, readiness and Prometheus metrics (the
//! OpenAPI document is served by `crate::openapi`). They carry no account
//! data and need no token.

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};

use crate::AppState;

/// The routes of this area (mounted at the root).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
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
