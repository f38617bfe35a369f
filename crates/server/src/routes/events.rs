//! `GET /api/v1/events`: every change to the caller's account's tickets, live,
//! as Server-Sent Events, whichever node made it.
//!
//! Each event is named by its kind (`created`, `assigned`, `replied`,
//! `message`, `closed`, `status_changed`, `updated`) and carries a
//! [`TicketEvent`] as JSON. A client that falls too far behind gets one
//! `lagged` event with the number of events it missed, and should re-read
//! what it shows.

use std::{convert::Infallible, time::Duration};

use axum::{
    Router,
    extract::State,
    response::sse::{Event, KeepAlive, Sse},
    routing::get,
};
use futures_util::Stream;
use switchboard_store::TicketEvent;
use tokio::sync::broadcast::error::RecvError;

use crate::{AppState, auth::Caller};

/// The routes of this area.
pub fn router() -> Router<AppState> {
    Router::new().route("/events", get(events))
}

/// The caller's account's ticket events, as they are committed.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "events",
    responses(
        (status = 200, description = "A stream of `text/event-stream` events, each a TicketEvent in JSON", body = TicketEvent, content_type = "text/event-stream"),
        (status = 401, description = "No valid token", body = crate::problem::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let account = caller.0.account_id;
    let receiver = state.store.subscribe();
    let stream = futures_util::stream::unfold(receiver, move |mut receiver| async move {
        loop {
            let event = match receiver.recv().await {
                // Only the caller's account: events of other accounts pass
                // through every node's channel but are never sent here.
                Ok(e) if e.account_id == account => {
                    match Event::default().event(&e.kind).json_data(&e) {
                        Ok(event) => event,
                        Err(_) => continue,
                    }
                }
                Ok(_) => continue,
                Err(RecvError::Lagged(missed)) => {
                    Event::default().event("lagged").data(missed.to_string())
                }
                Err(RecvError::Closed) => return None,
            };
            return Some((Ok(event), receiver));
        }
    });
    // Ends when the server shuts down (graceful shutdown waits for it).
    let stream = futures_util::StreamExt::take_until(stream, state.stopping());
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
