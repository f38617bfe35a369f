//! Carrying agent replies back out through the ticket's channel.
//!
//! Nothing here runs in a request. `routes::tickets::add_message` asks
//! [`external_id_for_reply`] before it stores a reply (an e-mail reply needs
//! its `Message-ID` fixed before it is first sent, so every resend carries
//! the same one and the customer's answer threads back); the store writes a
//! `deliver_reply` outbox row in the reply's transaction; and the
//! dispatcher (`crate::dispatcher`) later calls [`Deliver::deliver`] on
//! [`Outbound`], which picks the channel's sender:
//!
//! - [`email`]: the channel's SMTP relay (lettre);
//! - [`whatsapp`]: the Graph API of the WhatsApp Cloud API.
//!
//! [`notify`] e-mails notifications through the account's relay with the
//! same SMTP client; [`webhook`] POSTs workflow webhooks, signed.
//!
//! Routes import this module, never the reverse.

pub mod email;
pub mod notify;
pub mod webhook;
pub mod whatsapp;

use async_trait::async_trait;
use switchboard_domain::{AccountId, Channel, ChannelKind, Message, Ticket};
use switchboard_store::Store;

/// Why a reply could not be delivered (stored on the outbox row and shown
/// to admins: never put a secret in one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Trying again will not help (a 5xx from the relay, a missing setting,
    /// the WhatsApp window closed): the row fails at once.
    #[error("{0}")]
    Permanent(String),
    /// It may work later (the relay is unreachable or answered 4xx, the
    /// Graph API is overloaded): the row is retried with backoff.
    #[error("{0}")]
    Transient(String),
}

impl DeliveryError {
    /// Whether a retry may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_))
    }
}

/// What a successful delivery learned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivered {
    /// The provider's id for the sent message (a WhatsApp wamid), to be
    /// stored on the reply.
    pub external_id: Option<String>,
}

/// Sends one stored reply out. Implemented per channel kind, and by
/// [`Outbound`], which dispatches on the channel's kind.
#[async_trait]
pub trait Deliver: Send + Sync + 'static {
    /// Sends `message` (a reply on `ticket`) through `channel` (the store's
    /// record, secrets included). `store` is for reading what the message
    /// needs (the contact, the conversation).
    async fn deliver(
        &self,
        store: &dyn Store,
        account: AccountId,
        channel: &Channel,
        ticket: &Ticket,
        message: &Message,
    ) -> Result<Delivered, DeliveryError>;
}

/// Every channel's sender, chosen by the channel's kind.
#[derive(Debug, Clone, Copy, Default)]
pub struct Outbound;

#[async_trait]
impl Deliver for Outbound {
    async fn deliver(
        &self,
        store: &dyn Store,
        account: AccountId,
        channel: &Channel,
        ticket: &Ticket,
        message: &Message,
    ) -> Result<Delivered, DeliveryError> {
        match channel.kind {
            ChannelKind::Email => {
                email::EmailSender
                    .deliver(store, account, channel, ticket, message)
                    .await
            }
            ChannelKind::Whatsapp => {
                whatsapp::WhatsappSender
                    .deliver(store, account, channel, ticket, message)
                    .await
            }
            other => Err(DeliveryError::Permanent(format!(
                "{other} channels do not send replies out"
            ))),
        }
    }
}

/// The external id to store with a reply on `ticket`, if its channel needs
/// one before sending (e-mail: our `Message-ID`).
pub fn external_id_for_reply(channel: &Channel, ticket: &Ticket) -> Option<String> {
    match channel.kind {
        ChannelKind::Email => Some(email::new_message_id(channel, ticket)),
        _ => None,
    }
}
