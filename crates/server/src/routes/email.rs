//! Team e-mail. Mail arrives two ways and takes one path into
//! [`inbound::receive`]:
//!
//! - the SMTP listener (`crate::smtp`), for MX records or forwarding;
//! - `POST /api/v1/channels/{id}/inbound/email` with the raw RFC 5322
//!   message as the body, for providers that post incoming mail as MIME.
//!
//! [`receive_email`] is that path: loop detection (automated mail opens a
//! ticket marked `automated`, with the reason), the sender as contact,
//! threading by `In-Reply-To`/`References` (done by `inbound::receive` on
//! the external ids), then the `[#id]` subject token, then plus-addressing,
//! and the attachments. Everything is parsed and checked before the first
//! write, so a malformed message leaves nothing behind.
//!
//! Agent replies go out through `crate::outbound::email` (the dispatcher
//! sends them after the reply is committed), which also owns the channel's
//! address and relay settings.

use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use serde_json::{Map, Value, json};
use switchboard_channels::{ChannelError, email};
use switchboard_domain::{
    AccountId, Channel, ChannelId, ChannelKind, Message, Name, Ticket, input::ContactRef,
};
use switchboard_store::{NewAttachment, StoreError};

use crate::{
    AppState,
    auth::Caller,
    extract::Path,
    inbound::{self, Inbound, Received},
    outbound::email::channel_address,
    problem::{ApiError, Problem},
};

/// The largest message accepted, by SMTP (`552` beyond it) or HTTP (`413`).
pub const MAX_MESSAGE_BYTES: usize = 25 * 1024 * 1024;

/// The routes of this area.
pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/v1/channels/{id}/inbound/email",
        post(inbound_email).layer(DefaultBodyLimit::max(MAX_MESSAGE_BYTES)),
    )
}

/// The SMTP envelope of a message, when it came by SMTP.
#[derive(Debug, Clone, Default)]
pub struct Envelope {
    /// `MAIL FROM` (`Some("")` for the null sender `<>`).
    pub sender: Option<String>,
    /// The `RCPT TO` addresses that led to this channel.
    pub recipients: Vec<String>,
}

/// What an inbound message became (the body of the inbound route).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct EmailReceived {
    /// The ticket it opened or joined.
    pub ticket: Ticket,
    /// The stored message; `null` when it was a duplicate.
    pub message: Option<Message>,
    /// A new ticket was opened.
    pub created: bool,
    /// This Message-ID had been received before; nothing changed.
    pub duplicate: bool,
    /// Why the message counts as automated (no automatic answer is ever
    /// sent to it), or `null`.
    pub automated: Option<String>,
}

/// Receives a raw RFC 5322 message for an e-mail channel, as providers
/// that forward incoming mail post it. `201` when it opened a ticket, `200`
/// when it joined one or was a duplicate.
#[utoipa::path(post, path = "/api/v1/channels/{id}/inbound/email", tag = "channels",
    params(("id" = i64, Path)),
    request_body(content = String, content_type = "message/rfc822"),
    responses((status = 201, body = EmailReceived), (status = 200, body = EmailReceived),
        (status = 415, body = Problem), (status = 422, body = Problem)))]
pub(crate) async fn inbound_email(
    State(s): State<AppState>,
    Caller(me): Caller,
    Path(id): Path<ChannelId>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let channel = s.store.get_channel(me.account_id, id).await?;
    if channel.kind != ChannelKind::Email {
        return Err(ApiError::invalid(
            "id",
            format!(
                "channel {id} is a {} channel, not an e-mail one",
                channel.kind
            ),
        ));
    }
    let mime = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if !matches!(mime.as_deref(), Some("message/rfc822" | "text/plain")) {
        return Ok(unsupported_media_type());
    }
    let parsed = email::parse(&body?).map_err(channel_error)?;
    let (received, automated) =
        receive_email(&s, me.account_id, &channel, parsed, &Envelope::default()).await?;
    let status = if received.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = EmailReceived {
        ticket: received.ticket,
        message: received.message,
        created: received.created,
        duplicate: received.duplicate,
        automated,
    };
    Ok((status, axum::Json(body)).into_response())
}

/// A 415 naming the media types this route takes (the shared
/// `ApiError::UnsupportedMediaType` speaks of JSON).
fn unsupported_media_type() -> Response {
    let problem = Problem {
        kind: "urn:switchboard:problem:unsupported-media-type".into(),
        title: "Unsupported media type".into(),
        status: 415,
        detail: "expected a raw e-mail (Content-Type: message/rfc822 or text/plain)".into(),
        field: Some("Content-Type".into()),
    };
    let mut response = (StatusCode::UNSUPPORTED_MEDIA_TYPE, axum::Json(problem)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/problem+json"),
    );
    response
}

/// A malformed message as a 422 naming the field (`from`, `message`).
pub fn channel_error(e: ChannelError) -> ApiError {
    match e {
        ChannelError::Invalid { field, message } => ApiError::invalid(field, message),
        ChannelError::Signature(why) => ApiError::invalid("signature", why),
    }
}

/// Stores a parsed message on `channel`: a new ticket or a message on the
/// ticket it answers. Returns what happened and, for automated mail, why
/// it counts as such.
pub async fn receive_email(
    state: &AppState,
    account: AccountId,
    channel: &Channel,
    parsed: email::ParsedEmail,
    envelope: &Envelope,
) -> Result<(Received, Option<String>), ApiError> {
    let address = channel_address(channel);
    let automated = parsed.automated_reason(
        envelope.sender.as_deref(),
        address.and_then(email::domain_of),
    );
    let mut properties = Map::new();
    if let Some(reason) = &automated {
        properties.insert("automated".into(), Value::Bool(true));
        properties.insert("automated_reason".into(), json!(reason));
    }
    // After the headers (which `inbound::receive` tries first): the subject
    // token, then plus-addressing; a hint that names no ticket of this
    // account is skipped rather than opening a ticket in its stead.
    let recipients: Vec<&str> = if envelope.recipients.is_empty() {
        parsed.recipients.iter().map(String::as_str).collect()
    } else {
        envelope.recipients.iter().map(String::as_str).collect()
    };
    let candidates = [
        email::subject_ticket(&parsed.subject),
        address.and_then(|a| email::plus_ticket(recipients.iter().copied(), a)),
    ];
    let mut ticket_hint = None;
    for id in candidates.into_iter().flatten() {
        match state.store.get_ticket(account, id).await {
            Ok(_) => {
                ticket_hint = Some(id);
                break;
            }
            Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let contact = ContactRef {
        email: Some(parsed.from.address.clone()),
        phone: None,
        name: parsed
            .from
            .name
            .clone()
            .and_then(|n| Name::try_from(n).ok()),
    };
    let thread = parsed.thread_ids();
    let attachments = parsed
        .attachments
        .into_iter()
        .map(|a| NewAttachment {
            filename: a.filename,
            content_type: a.content_type,
            content: Some(a.content),
            provider_ref: None,
        })
        .collect();
    let inbound = Inbound {
        external_id: parsed.message_id,
        thread,
        ticket_hint,
        contact: Some(contact),
        subject: parsed.subject,
        body: parsed.text,
        properties,
        visitor_token: None,
        attachments,
    };
    let received = inbound::receive(state, account, channel, inbound).await?;
    if received.created {
        tracing::info!(ticket = %received.ticket.id, channel = %channel.id, automated = automated.as_deref(), "e-mail opened a ticket");
    }
    Ok((received, automated))
}
