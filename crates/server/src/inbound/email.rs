//! E-mail intake: one path for mail however it arrives.
//!
//! The SMTP listener (`crate::smtp`) and `POST
//! /api/v1/channels/{id}/inbound/email` (`routes::email`) both parse the raw
//! RFC 5322 message and hand it to [`receive_email`]: loop detection
//! (automated mail opens a ticket marked `automated`, with the reason), the
//! sender as contact, threading by `In-Reply-To`/`References` (done by
//! [`super::receive`] on the external ids), then the `[#id]` subject token,
//! then plus-addressing, and the attachments. Everything is parsed and
//! checked before the first write, so a malformed message leaves nothing
//! behind.

use serde_json::{Map, Value, json};
use switchboard_channels::email;
use switchboard_domain::{AccountId, Channel, Name, input::ContactRef};
use switchboard_store::{NewAttachment, StoreError};

use super::{Inbound, Received};
use crate::{AppState, outbound::email::channel_address, problem::ApiError};

/// The largest message accepted, by SMTP (`552` beyond it) or HTTP (`413`).
pub const MAX_MESSAGE_BYTES: usize = 25 * 1024 * 1024;

/// The SMTP envelope of a message, when it came by SMTP.
#[derive(Debug, Clone, Default)]
pub struct Envelope {
    /// `MAIL FROM` (`Some("")` for the null sender `<>`).
    pub sender: Option<String>,
    /// The `RCPT TO` addresses that led to this channel.
    pub recipients: Vec<String>,
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
    let received = super::receive(state, account, channel, inbound).await?;
    if received.created {
        tracing::info!(ticket = %received.ticket.id, channel = %channel.id, automated = automated.as_deref(), "e-mail opened a ticket");
    }
    Ok((received, automated))
}
