//! Carrying agent replies back out through the ticket's channel.
//!
//! `routes::tickets::add_message` asks [`external_id_for_reply`] before it
//! stores a reply (an e-mail reply needs its `Message-ID` stored with it, so
//! the customer's answer threads back), then calls [`deliver`] once the
//! reply is committed. Delivery failures are logged and counted; the reply
//! stays stored, and the agent sees it in the ticket.

use switchboard_domain::{AccountId, Channel, ChannelKind, Message, Ticket};

use crate::{AppState, routes};

/// Why a reply could not be delivered (logged, never shown to clients).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DeliveryError(pub String);

/// The external id to store with a reply on `ticket`, if its channel needs
/// one before sending (e-mail: our `Message-ID`).
pub fn external_id_for_reply(channel: &Channel, ticket: &Ticket) -> Option<String> {
    match channel.kind {
        ChannelKind::Email => Some(routes::email::new_message_id(channel, ticket)),
        _ => None,
    }
}

/// Sends a stored reply out through its channel (e-mail, WhatsApp; chat
/// visitors get replies from their event stream). `channel` is the store's
/// record, secrets included.
pub async fn deliver(
    state: &AppState,
    account: AccountId,
    channel: &Channel,
    ticket: &Ticket,
    message: &Message,
) {
    let result = match channel.kind {
        ChannelKind::Email => {
            routes::email::deliver(state, account, channel, ticket, message).await
        }
        ChannelKind::Whatsapp => {
            routes::whatsapp::deliver(state, account, channel, ticket, message).await
        }
        _ => Ok(()),
    };
    match result {
        Ok(()) => metrics::counter!("switchboard_replies_delivered_total", "channel" => channel.kind.as_str()).increment(1),
        Err(e) => {
            metrics::counter!("switchboard_replies_failed_total", "channel" => channel.kind.as_str()).increment(1);
            tracing::warn!(ticket = %ticket.id, channel = %channel.id, error = %e, "reply not delivered");
        }
    }
}
