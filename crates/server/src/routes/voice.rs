//! (being written)

use axum::Router;

use crate::AppState;

/// The routes of this area.
pub fn router() -> Router<AppState> {
    Router::new()
}
