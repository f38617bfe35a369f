//! The baseline for the ticket-create benchmark (`benches/http_create.sh`):
//! a bare axum endpoint that parses the same JSON body into the same
//! `NewTicket` type and answers 201 with a ticket-shaped body, with no
//! authentication, storage or middleware. Comparing Switchboard against it
//! on the same machine in the same run shows what our work costs.
//!
//! Usage: `cargo run --release -p switchboard-server --example bare_endpoint -- 127.0.0.1:8091`

use std::sync::atomic::{AtomicI64, Ordering};

use axum::{Json, Router, http::StatusCode, routing::post};
use serde_json::{Value, json};
use switchboard_domain::input::NewTicket;

/// The same allocator as the `switchboard` binary, so the comparison is fair.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

static NEXT_ID: AtomicI64 = AtomicI64::new(1);

async fn create(Json(input): Json<NewTicket>) -> (StatusCode, Json<Value>) {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let now = jiff::Timestamp::now();
    (
        StatusCode::CREATED,
        Json(json!({
            "id": id, "subject": input.subject, "content": input.content, "channel_id": input.channel_id,
            "source": "api", "type": "email_other", "status": "open", "stage": "new", "priority": input.priority,
            "owner": {"user_id": null, "team_id": null}, "assigned_at": null, "contact_id": null,
            "properties": input.properties, "first_reply_at": null, "created_at": now, "updated_at": now, "closed_at": null,
        })),
    )
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8091".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "bare endpoint listening on http://{}",
        listener.local_addr()?
    );
    axum::serve(
        listener,
        Router::new().route("/api/v1/tickets", post(create)),
    )
    .await
}
