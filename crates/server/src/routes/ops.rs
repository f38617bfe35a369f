//! Operational endpoints: liveness, readiness, Prometheus metrics and the
//! OpenAPI document. They carry no account data and need no token.

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};

use crate::{AppState, openapi::ApiDoc};

/// The routes of this area (mounted at the root, except the OpenAPI document
/// which sits under `/api/v1`).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// The OpenAPI document route, for `/api/v1`.
pub fn openapi_router() -> Router<AppState> {
    use utoipa::OpenApi;
    let doc = ApiDoc::openapi();
    Router::new().route(
        "/openapi.json",
        get(move || async move { axum::Json(doc.clone()) }),
    )
}

/// Ready when the database answers.
async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    match s.store.account_count().await {
        Ok(_) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        s.metrics.render(),
    )
}
