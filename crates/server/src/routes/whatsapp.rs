//! WhatsApp Business (Cloud API): the webhook Meta calls. Replies go back
//! through the Graph API from `crate::outbound::whatsapp`.
//!
//! - `GET /webhooks/whatsapp/{channel_key}`: Meta's subscription check; the
//!   `hub.verify_token` must equal the channel's `settings.secrets.verify_token`.
//! - `POST /webhooks/whatsapp/{channel_key}`: notifications, signed with the
//!   app secret (`settings.secrets.app_secret`). The signature is checked on
//!   the raw bytes before anything is parsed; a bad one is a 401 and nothing
//!   is stored. Each customer message goes through [`inbound::receive`]
//!   (deduplicated on its `wamid`), and the 200 is only sent once every
//!   message is committed: Meta retries anything else for about a day, and
//!   the `wamid` makes the retry harmless.
//!
//! A conversation stays on one ticket: a message joins the thread it quotes,
//! else the newest open ticket of the same sender on this channel (found by
//! the `whatsapp_wa_id` property every WhatsApp ticket carries), else opens
//! a ticket routed by the channel's rule.
//!
//! Delivery statuses name the reply by the `wamid` the dispatcher stored on
//! it after sending, so a failure note lands on the exact reply's ticket.

use std::collections::HashMap;

use axum::{
    Router,
    body::Bytes,
    extract::{State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::Value;
use switchboard_channels::{
    ChannelError,
    whatsapp::{self, DeliveryStatus, InboundMessage, StatusUpdate},
};
use switchboard_domain::{
    AccountId, Actor, Channel, ChannelKind, MessageKind, Name, TicketId, UserId, channel_settings,
    input::ContactRef,
};
use switchboard_store::{NewAttachment, NewMessage, TicketQuery, View};

use crate::{
    AppState,
    extract::{Path, Query},
    inbound::{self, Inbound},
    problem::{ApiError, Problem},
};

/// The ticket property holding the sender's WhatsApp id; it is how the next
/// message of the conversation finds the ticket.
const WA_ID_PROPERTY: &str = "whatsapp_wa_id";

/// How many of the channel's newest open tickets are searched for the
/// sender's conversation.
const OPEN_TICKETS_SEARCHED: u32 = 200;

/// The routes of this area.
pub fn router() -> Router<AppState> {
    Router::new().route(
        "/webhooks/whatsapp/{channel_key}",
        get(verify_subscription).post(notification),
    )
}

/// The WhatsApp channel with this key, and its account. Another kind of
/// channel is not found, exactly like a missing one.
async fn whatsapp_channel(state: &AppState, key: String) -> Result<(AccountId, Channel), ApiError> {
    if key.contains('\0') {
        return Err(ApiError::NotFound("channel".into()));
    }
    let (account, channel) = state.store.channel_by_key(key).await?;
    if channel.kind != ChannelKind::Whatsapp {
        return Err(ApiError::NotFound("channel".into()));
    }
    Ok((account, channel))
}

fn refused(channel: &Channel, e: &ChannelError) -> ApiError {
    metrics::counter!("switchboard_webhooks_refused_total", "channel" => "whatsapp").increment(1);
    tracing::warn!(channel = %channel.id, error = %e, "WhatsApp webhook refused");
    ApiError::Unauthorized
}

/// The channel's typed settings; settings stored before they were checked
/// and that do not parse are refused like a missing secret.
fn typed(channel: &Channel) -> Result<channel_settings::WhatsappSettings, ApiError> {
    channel_settings::whatsapp(&channel.settings).map_err(|e| {
        tracing::warn!(channel = %channel.id, error = %e, "WhatsApp channel settings do not parse");
        ApiError::forbidden("this channel's settings are not valid")
    })
}

/// Meta's subscription check: the challenge as plain text, or 403.
#[utoipa::path(get, path = "/webhooks/whatsapp/{channel_key}", tag = "public",
    params(
        ("channel_key" = String, Path, description = "The WhatsApp channel's key"),
        ("hub.mode" = Option<String>, Query, description = "`subscribe`"),
        ("hub.verify_token" = Option<String>, Query, description = "Must equal the channel's `settings.secrets.verify_token`"),
        ("hub.challenge" = Option<String>, Query, description = "Echoed back when the check passes"),
    ),
    responses(
        (status = 200, description = "The challenge, echoed", content_type = "text/plain", body = String),
        (status = 403, description = "The check does not match this channel", body = Problem),
    ))]
pub(crate) async fn verify_subscription(
    State(s): State<AppState>,
    Path(key): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (_, channel) = whatsapp_channel(&s, key).await?;
    let settings = typed(&channel)?;
    let expected = settings.verify_token.as_deref().unwrap_or_default();
    let param = |name: &str| query.get(name).map(String::as_str);
    match whatsapp::verify_subscription(
        param("hub.mode"),
        param("hub.verify_token"),
        param("hub.challenge"),
        expected,
    ) {
        Ok(challenge) => Ok((
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            challenge,
        )
            .into_response()),
        Err(e) => {
            tracing::warn!(channel = %channel.id, error = %e, "WhatsApp verification refused");
            Err(ApiError::forbidden(
                "the verification request does not match this channel",
            ))
        }
    }
}

/// A notification: verified, then every message stored and every status
/// recorded before the 200.
#[utoipa::path(post, path = "/webhooks/whatsapp/{channel_key}", tag = "public",
    params(
        ("channel_key" = String, Path, description = "The WhatsApp channel's key"),
        ("X-Hub-Signature-256" = String, Header, description = "`sha256=` and the hex HMAC-SHA256 of the raw body, keyed by the channel's `settings.secrets.app_secret`"),
    ),
    request_body(content = Object, content_type = "application/json", description = "A WhatsApp Cloud API webhook notification"),
    responses(
        (status = 200, description = "Every message stored and every status recorded"),
        (status = 401, description = "Missing or bad signature; nothing was stored", body = Problem),
        (status = 403, description = "The channel's settings are not valid", body = Problem),
    ))]
pub(crate) async fn notification(
    State(s): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let (account, channel) = whatsapp_channel(&s, key).await?;
    let body = body?;
    let signature = headers
        .get(whatsapp::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok());
    let settings = typed(&channel)?;
    let app_secret = settings.app_secret.as_deref().unwrap_or_default();
    whatsapp::verify_signature(app_secret, signature, &body).map_err(|e| refused(&channel, &e))?;
    let notification = whatsapp::parse(&body).map_err(|e| match e {
        ChannelError::Invalid { field, message } => ApiError::invalid(field, message),
        ChannelError::Signature(_) => refused(&channel, &e),
    })?;
    for message in notification.messages {
        receive_message(&s, account, &channel, message).await?;
    }
    for status in notification.statuses {
        record_status(&s, account, &channel, status).await?;
    }
    for error in notification.errors {
        tracing::warn!(channel = %channel.id, %error, "WhatsApp reported an error");
    }
    Ok(StatusCode::OK)
}

/// Stores one customer message on its conversation's ticket.
async fn receive_message(
    state: &AppState,
    account: AccountId,
    channel: &Channel,
    message: InboundMessage,
) -> Result<(), ApiError> {
    let phone = message.phone();
    if phone.is_none() {
        tracing::warn!(channel = %channel.id, wa_id = %message.wa_id, "WhatsApp sender is not an E.164 number; stored without contact");
    }
    let name = message
        .profile_name
        .clone()
        .and_then(|n| Name::try_from(n).ok());
    let who = match (&message.profile_name, &phone) {
        (Some(n), Some(p)) => format!("{n} ({p})"),
        (Some(n), None) => n.clone(),
        (None, Some(p)) => p.to_string(),
        (None, None) => message.wa_id.clone(),
    };
    let subject = match message.kind.as_str() {
        "text" => first_line(&message.text, 80),
        _ => String::new(),
    };
    let subject = if subject.is_empty() {
        format!("WhatsApp from {who}")
    } else {
        subject
    };
    let hint = open_conversation(state, account, channel, &message.wa_id).await?;
    let mut properties = message.properties;
    properties.insert(WA_ID_PROPERTY.into(), Value::String(message.wa_id.clone()));
    let attachments = message
        .media
        .map(|m| NewAttachment {
            filename: m.filename,
            content_type: m.mime_type,
            content: None,
            provider_ref: Some(m.id),
        })
        .into_iter()
        .collect();
    let received = inbound::receive(
        state,
        account,
        channel,
        Inbound {
            external_id: Some(message.id.clone()),
            thread: message.context_id.into_iter().collect(),
            ticket_hint: hint,
            contact: phone.map(|p| ContactRef {
                email: None,
                phone: Some(p),
                name,
            }),
            subject,
            body: message.text,
            properties,
            visitor_token: None,
            attachments,
        },
    )
    .await?;
    metrics::counter!("switchboard_inbound_messages_total", "channel" => "whatsapp", "duplicate" => if received.duplicate { "true" } else { "false" })
        .increment(1);
    tracing::debug!(channel = %channel.id, ticket = %received.ticket.id, wamid = %message.id,
        created = received.created, duplicate = received.duplicate, "WhatsApp message received");
    Ok(())
}

/// The first line of `text`, cut to `max` characters.
fn first_line(text: &str, max: usize) -> String {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let line = line.trim();
    if line.chars().count() <= max {
        line.to_owned()
    } else {
        let cut: String = line.chars().take(max - 1).collect();
        format!("{}…", cut.trim_end())
    }
}

/// The newest open ticket of this channel with `wa_id`'s conversation.
/// Only the newest [`OPEN_TICKETS_SEARCHED`] open tickets are looked at:
/// a conversation older than that opens a new ticket, which is the better
/// failure than scanning every open ticket on every message.
async fn open_conversation(
    state: &AppState,
    account: AccountId,
    channel: &Channel,
    wa_id: &str,
) -> Result<Option<TicketId>, ApiError> {
    let page = state
        .store
        .list_tickets(
            account,
            // The `open` view does not depend on the caller.
            UserId(0),
            TicketQuery {
                view: Some(View::Open),
                channel_id: Some(channel.id),
                limit: OPEN_TICKETS_SEARCHED,
                ..Default::default()
            },
        )
        .await?;
    Ok(page
        .items
        .iter()
        .find(|t| t.properties.get(WA_ID_PROPERTY).and_then(Value::as_str) == Some(wa_id))
        .map(|t| t.id))
}

/// Records a delivery status: counted, logged, and a failure becomes an
/// internal note on the conversation's ticket so the agent knows the
/// customer did not get the reply.
async fn record_status(
    state: &AppState,
    account: AccountId,
    channel: &Channel,
    status: StatusUpdate,
) -> Result<(), ApiError> {
    metrics::counter!("switchboard_whatsapp_statuses_total", "status" => status.status.as_str())
        .increment(1);
    if status.status != DeliveryStatus::Failed {
        tracing::debug!(channel = %channel.id, wamid = %status.id, status = status.status.as_str(), "WhatsApp status");
        return Ok(());
    }
    let errors = if status.errors.is_empty() {
        "no reason given".to_owned()
    } else {
        status.errors.join("; ")
    };
    tracing::warn!(channel = %channel.id, wamid = %status.id, %errors, "WhatsApp message not delivered");
    // The ticket of the message itself if we know its wamid, else the
    // recipient's open conversation.
    let mut ticket = state
        .store
        .find_by_external_id(account, vec![status.id.clone()])
        .await?
        .map(|(t, _)| t);
    if ticket.is_none()
        && let Some(recipient) = &status.recipient_id
    {
        ticket = open_conversation(state, account, channel, recipient).await?;
    }
    let Some(ticket) = ticket else {
        return Ok(());
    };
    let note = NewMessage {
        kind: MessageKind::Note,
        author: Actor::System,
        body: format!("WhatsApp could not deliver message {}: {errors}", status.id),
        // Keyed on the failed message: a redelivered status adds no second note.
        external_id: Some(format!("whatsapp-failed:{}", status.id)),
    };
    match state.store.add_message(account, ticket, note).await {
        Ok(_) => Ok(()),
        // Redelivered: the note is already there.
        Err(e) if e.is_duplicate() => Ok(()),
        Err(e) => Err(e.into()),
    }
}
