//! Turning a channel's inbound message into a ticket or a message on one,
//! the same way for every channel: dedupe on the channel's external id, join
//! the thread it answers, or open a ticket (routed by the channel's rule).
//!
//! Each step is one store transaction, ordered so that a retry after a crash
//! anywhere in between converges on one ticket and one message: the ticket
//! is created with the external id as its idempotency key, and the message
//! carries the external id, which the store keeps unique per account.

pub mod email;

use serde_json::{Map, Value};
use switchboard_domain::{input::*, *};
use switchboard_store::{Idempotency, NewAttachment, NewMessage};

use crate::{AppState, problem::ApiError};

/// A message as a channel received it, parsed at the edge.
#[derive(Debug, Clone, Default)]
pub struct Inbound {
    /// The channel's id for it (Message-ID, wamid, CallSid): a second
    /// delivery with the same id changes nothing.
    pub external_id: Option<String>,
    /// Ids of earlier messages it answers (In-Reply-To, References), most
    /// relevant first.
    pub thread: Vec<String>,
    /// A ticket it names (a `[#123]` subject token, `support+123@`), tried
    /// after `thread`.
    pub ticket_hint: Option<TicketId>,
    /// The customer.
    pub contact: Option<ContactRef>,
    /// The subject of a new ticket.
    pub subject: String,
    /// The text.
    pub body: String,
    /// Properties of a new ticket (skill rules read them).
    pub properties: Map<String, Value>,
    /// A web visitor's token (forms, chat).
    pub visitor_token: Option<String>,
    /// Files that came with it.
    pub attachments: Vec<NewAttachment>,
}

/// What became of an inbound message.
#[derive(Debug, Clone)]
pub struct Received {
    /// The ticket it opened or joined.
    pub ticket: Ticket,
    /// The stored message (`None` for a duplicate).
    pub message: Option<Message>,
    /// A new ticket was opened.
    pub created: bool,
    /// It had been received before; nothing changed.
    pub duplicate: bool,
}

/// Stores `inbound` from `channel` of `account`.
pub async fn receive(
    state: &AppState,
    account: AccountId,
    channel: &Channel,
    inbound: Inbound,
) -> Result<Received, ApiError> {
    let store = &state.store;
    let duplicate = |ticket| Received {
        ticket,
        message: None,
        created: false,
        duplicate: true,
    };
    if let Some(ext) = &inbound.external_id
        && let Some((ticket, _)) = store
            .find_by_external_id(account, vec![ext.clone()])
            .await?
    {
        return Ok(duplicate(store.get_ticket(account, ticket).await?));
    }
    let mut existing = store
        .find_by_external_id(account, inbound.thread.clone())
        .await?
        .map(|(ticket, _)| ticket);
    if existing.is_none()
        && let Some(hint) = inbound.ticket_hint
        && store.get_ticket(account, hint).await.is_ok()
    {
        existing = Some(hint);
    }
    let (ticket_id, created) = match existing {
        Some(id) => (id, false),
        None => {
            let subject = Name::try_from(if inbound.subject.trim().is_empty() {
                format!("New {} conversation", channel.kind)
            } else {
                inbound.subject.chars().take(200).collect::<String>()
            })
            .map_err(|e| ApiError::invalid("subject", e.to_string()))?;
            let new = NewTicket {
                subject,
                content: inbound.body.clone(),
                channel_id: Some(channel.id),
                contact: inbound.contact.clone(),
                visitor_token: inbound.visitor_token.clone(),
                priority: Priority::Medium,
                properties: inbound.properties.clone(),
            };
            // Keyed on the external id: a retry after a crash between this
            // and the message below finds this ticket again.
            let idempotency = inbound.external_id.as_ref().map(|ext| Idempotency {
                key: format!("inbound:{}:{ext}", channel.id),
                fingerprint: ext.clone(),
            });
            let created = store
                .create_ticket(account, new, idempotency, Actor::System)
                .await?;
            (created.value.id, created.created)
        }
    };
    let message = NewMessage {
        kind: MessageKind::Inbound,
        author: Actor::System,
        body: inbound.body,
        external_id: inbound.external_id,
    };
    let (message, ticket) = match store.add_message(account, ticket_id, message).await {
        Ok(done) => done,
        // Delivered twice at the same moment: the other delivery won.
        Err(e) if e.is_duplicate() => {
            return Ok(duplicate(store.get_ticket(account, ticket_id).await?));
        }
        Err(e) => return Err(e.into()),
    };
    if !inbound.attachments.is_empty() {
        store
            .add_attachments(account, message.id, inbound.attachments)
            .await?;
    }
    Ok(Received {
        ticket,
        message: Some(message),
        created,
        duplicate: false,
    })
}
