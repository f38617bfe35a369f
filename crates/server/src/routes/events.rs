//! `GET /api/v1/events`: every change to the caller's account's tickets, as
//! Server-Sent Events, whichever node made it, resumable with
//! `Last-Event-ID`.
//!
//! The stream reads the durable event sequence (`switchboard_store::
//! EventLog`), not the in-process channel: each event's SSE `id` is its
//! sequence number, and a client reconnecting (to any node) with
//! `Last-Event-ID: n` gets every event of its account numbered after `n`,
//! then live ones. The in-process channel (fed by the SQLite writer, or by
//! PostgreSQL's LISTEN after the numbers are assigned) only wakes the
//! stream up; a stream also re-reads every [`POLL`], so events whose
//! wake-up was lost (a LISTEN connection down, a lagging receiver) still
//! arrive, a little later.
//!
//! Each event is named by its kind (`created`, `assigned`, `replied`,
//! `message`, `closed`, `status_changed`, `updated`) and carries a
//! [`TicketEvent`] as JSON. A client resuming from a number whose events
//! retention has deleted (or that was never handed out) gets one `reset`
//! event, `{"latest": n}` with `id` `n`: it should re-read what it shows;
//! the stream goes on from there.

use std::{collections::VecDeque, convert::Infallible, sync::Arc, time::Duration};

use axum::{
    Router,
    extract::State,
    http::HeaderMap,
    response::sse::{Event, KeepAlive, Sse},
    routing::get,
};
use futures_util::Stream;
use switchboard_domain::AccountId;
use switchboard_store::{EventsSince, Store, TicketEvent};
use tokio::sync::broadcast::{self, error::RecvError};

use crate::{AppState, auth::Caller};

/// Events read per query.
const BATCH: u32 = 200;

/// How often a stream re-reads without a wake-up.
pub const POLL: Duration = Duration::from_secs(2);

/// The routes of this area.
pub fn router() -> Router<AppState> {
    Router::new().route("/events", get(events))
}

/// The caller's account's ticket events, as they are committed.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "events",
    params(("Last-Event-ID" = Option<i64>, Header,
        description = "Resume after this event (its SSE id); without it, the stream starts with the next change")),
    responses(
        (status = 200, description = "A stream of `text/event-stream` events, each a TicketEvent in JSON with its sequence number as `id`; `reset` when the events after Last-Event-ID are gone", body = TicketEvent, content_type = "text/event-stream"),
        (status = 401, description = "No valid token", body = crate::problem::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    // Subscribed before the starting point is read, so nothing committed
    // in between goes unnoticed.
    let wake = state.store.subscribe();
    let after = match headers.get("last-event-id") {
        // Unreadable: -1 is before anything kept, so the client is reset.
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<i64>().ok())
            .unwrap_or(-1),
        None => match state.store.latest_event_seq().await {
            Ok(latest) => latest,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the event sequence");
                -1
            }
        },
    };
    let cursor = Cursor {
        store: state.store.clone(),
        account: caller.0.account_id,
        after,
        queued: VecDeque::new(),
        wake,
    };
    let stream = futures_util::stream::unfold(cursor, |mut c| async move {
        let event = c.next().await?;
        Some((Ok(event), c))
    });
    // Ends when the server shuts down (graceful shutdown waits for it).
    let stream = futures_util::StreamExt::take_until(stream, state.stopping());
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// Where one client's stream stands.
struct Cursor {
    store: Arc<dyn Store>,
    account: AccountId,
    /// The last sequence number sent (or the starting point).
    after: i64,
    /// Read but not yet sent.
    queued: VecDeque<Event>,
    wake: broadcast::Receiver<TicketEvent>,
}

impl Cursor {
    /// The next event to send, waiting as long as it takes.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.queued.pop_front() {
                return Some(event);
            }
            match self
                .store
                .events_since(self.account, self.after, BATCH)
                .await
            {
                Ok(EventsSince::Reset { latest }) => {
                    self.after = latest;
                    let data = serde_json::json!({ "latest": latest });
                    return Some(
                        Event::default()
                            .event("reset")
                            .id(latest.to_string())
                            .data(data.to_string()),
                    );
                }
                Ok(EventsSince::Events(batch)) if !batch.is_empty() => {
                    for e in batch {
                        self.after = e.seq;
                        match Event::default()
                            .event(&e.event.kind)
                            .id(e.seq.to_string())
                            .json_data(&e.event)
                        {
                            Ok(event) => self.queued.push_back(event),
                            Err(err) => {
                                tracing::warn!(seq = e.seq, error = %err, "event not serialisable")
                            }
                        }
                    }
                }
                Ok(_) => self.wait().await,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read events; retrying");
                    tokio::time::sleep(POLL).await;
                }
            }
        }
    }

    /// Until a wake-up for this account (or any missed wake-up), or [`POLL`].
    async fn wait(&mut self) {
        let deadline = tokio::time::Instant::now() + POLL;
        loop {
            match tokio::time::timeout_at(deadline, self.wake.recv()).await {
                Err(_) => return,
                Ok(Ok(e)) if e.account_id != self.account => continue,
                // Ours, or some were missed (lagged): read.
                Ok(Ok(_) | Err(RecvError::Lagged(_))) => return,
                Ok(Err(RecvError::Closed)) => {
                    tokio::time::sleep_until(deadline).await;
                    return;
                }
            }
        }
    }
}
