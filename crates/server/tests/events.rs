//! `GET /api/v1/events` over real HTTP on both backends: sequence numbers
//! as SSE ids, resuming with `Last-Event-ID` gets exactly the missed events
//! of the caller's account in order, and a number older than retention gets
//! `reset`.

#[macro_use]
mod common;

use std::{sync::Arc, time::Duration};

use common::{TestApp, spawn_app, spawn_app_with_clock};
use jiff::SignedDuration;
use serde_json::{Value, json};
use switchboard_domain::FixedClock;

/// One server-sent event.
#[derive(Debug, Clone)]
struct Sse {
    id: Option<i64>,
    event: String,
    data: Value,
}

/// An open event stream and what it has buffered.
struct Stream {
    response: reqwest::Response,
    buffer: String,
}

impl Stream {
    async fn open(app: &TestApp, token: &str, last_event_id: Option<&str>) -> Self {
        let mut req = app
            .client
            .get(format!("{}/api/v1/events", app.base))
            .bearer_auth(token);
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id);
        }
        let response = req.send().await.unwrap();
        assert_eq!(response.status(), 200);
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (keep-alive comments skipped), within 10 s.
    async fn next(&mut self) -> Sse {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut sse = Sse {
                    id: None,
                    event: String::new(),
                    data: Value::Null,
                };
                let mut any = false;
                for line in block.lines() {
                    let field = |name: &str| {
                        line.strip_prefix(name)
                            .map(|v| v.strip_prefix(' ').unwrap_or(v).to_owned())
                    };
                    if let Some(v) = field("id:") {
                        sse.id = v.parse().ok();
                        any = true;
                    } else if let Some(v) = field("event:") {
                        sse.event = v;
                        any = true;
                    } else if let Some(v) = field("data:") {
                        sse.data = serde_json::from_str(&v).unwrap();
                        any = true;
                    }
                }
                if any {
                    return sse;
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.response.chunk())
                .await
                .expect("an event within 10 s")
                .unwrap()
                .expect("the stream stays open");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

async fn reconnecting_with_last_event_id_gets_exactly_the_missed_events() {
    let app = spawn_app().await;
    let mut live = Stream::open(&app, &app.admin, None).await;
    let first = app.ticket(&app.admin, "Seen live").await;
    let seen = live.next().await;
    assert_eq!(seen.event, "created");
    assert_eq!(seen.data["ticket_id"], first["id"]);
    let last = seen.id.expect("every event has an id");
    drop(live);

    // While the client is away: changes here, and in another account.
    let (_, _, other) = switchboard_server::setup::create_account(
        app.store.as_ref(),
        "Globex",
        "G",
        "g@globex.example",
    )
    .await
    .unwrap();
    let second = app.ticket(&app.admin, "Missed").await;
    app.ticket(&other, "Not ours").await;
    let path = format!("/api/v1/tickets/{}/messages", second["id"]);
    let (status, _) = app
        .post(
            &path,
            &app.admin,
            json!({"kind": "note", "body": "Checked"}),
        )
        .await;
    assert_eq!(status, 201);

    let mut resumed = Stream::open(&app, &app.admin, Some(&last.to_string())).await;
    let a = resumed.next().await;
    let b = resumed.next().await;
    assert_eq!((a.event.as_str(), b.event.as_str()), ("created", "message"));
    assert_eq!(a.data["ticket_id"], second["id"]);
    assert_eq!(b.data["ticket_id"], second["id"]);
    let (ia, ib) = (a.id.unwrap(), b.id.unwrap());
    assert!(last < ia && ia < ib, "{last} {ia} {ib}");
    // Then live ones, continuing the sequence.
    let third = app.ticket(&app.admin, "Live again").await;
    let c = resumed.next().await;
    assert_eq!(c.data["ticket_id"], third["id"], "nothing else in between");
    assert!(c.id.unwrap() > ib);
}

async fn an_id_older_than_retention_gets_reset() {
    let clock = Arc::new(FixedClock::new("2026-03-01T10:00:00Z".parse().unwrap()));
    let app = spawn_app_with_clock(clock.clone()).await;
    let mut live = Stream::open(&app, &app.admin, None).await;
    app.ticket(&app.admin, "Old").await;
    let old = live.next().await.id.unwrap();
    drop(live);
    clock.advance(SignedDuration::from_hours(8 * 24));
    let purged = app
        .store
        .purge_events(Duration::from_secs(7 * 86_400))
        .await
        .unwrap();
    assert!(purged >= 1);
    let kept = app.ticket(&app.admin, "Kept").await;

    // From before the purged event: reset, then the stream goes on.
    let mut stale = Stream::open(&app, &app.admin, Some(&(old - 1).to_string())).await;
    let reset = stale.next().await;
    assert_eq!(reset.event, "reset", "{reset:?}");
    let latest = reset.id.unwrap();
    assert_eq!(reset.data["latest"], json!(latest));
    let after = app.ticket(&app.admin, "After the reset").await;
    // (On PostgreSQL "Kept" may be numbered after the reset was decided;
    // then it comes first, after `latest` like everything else.)
    loop {
        let next = stale.next().await;
        assert!(next.id.unwrap() > latest, "{next:?}");
        if next.data["ticket_id"] == after["id"] {
            break;
        }
        assert_eq!(next.data["ticket_id"], kept["id"], "{next:?}");
    }

    // From the purged event itself nothing was lost: no reset.
    let mut fine = Stream::open(&app, &app.admin, Some(&old.to_string())).await;
    let first = fine.next().await;
    assert_eq!(first.event, "created");
    assert_eq!(first.data["ticket_id"], kept["id"]);

    // An id that is not a number, or that was never handed out: reset.
    for bad in ["soon", "999999999"] {
        let mut s = Stream::open(&app, &app.admin, Some(bad)).await;
        assert_eq!(s.next().await.event, "reset", "{bad}");
    }
}

on_both_backends!(
    reconnecting_with_last_event_id_gets_exactly_the_missed_events,
    an_id_older_than_retention_gets_reset,
);
