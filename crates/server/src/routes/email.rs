//! Team e-mail over HTTP: `POST /api/v1/channels/{id}/inbound/email` takes
//! the raw RFC 5322 message as the body, for providers that post incoming
//! mail as MIME, and hands it to the one e-mail intake path,
//! [`inbound::email::receive_email`], which the SMTP listener (`crate::smtp`)
//! uses too.
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
use switchboard_channels::{ChannelError, email};
use switchboard_domain::{ChannelId, ChannelKind, Message, Ticket};

use crate::{
    AppState,
    auth::Caller,
    extract::Path,
    inbound::email::{Envelope, MAX_MESSAGE_BYTES, receive_email},
    problem::{ApiError, Problem},
};

/// The routes of this area.
pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/v1/channels/{id}/inbound/email",
        post(inbound_email).layer(DefaultBodyLimit::max(MAX_MESSAGE_BYTES)),
    )
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
    request_body(description = "The raw message", content((String = "message/rfc822"), (String = "text/plain"))),
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
