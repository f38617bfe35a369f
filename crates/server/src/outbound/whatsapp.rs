//! WhatsApp replies through the Graph API of the WhatsApp Cloud API.
//!
//! Replies are free-form text, which WhatsApp only allows within 24 hours of
//! the customer's last message; after that a template is required and the
//! reply is refused (a permanent failure) rather than sent to fail. A sent
//! reply's `wamid` is returned so the dispatcher stores it on the reply: a
//! retry after a success sees it and sends nothing, and delivery statuses
//! find the exact reply.

use std::{sync::OnceLock, time::Duration};

use async_trait::async_trait;
use switchboard_channels::whatsapp;
use switchboard_domain::{AccountId, Channel, Message, MessageKind, Ticket, channel_settings};
use switchboard_store::{Store, StoreError};

use super::{Deliver, Delivered, DeliveryError};

/// Sends replies through the Graph API.
#[derive(Debug, Clone, Copy, Default)]
pub struct WhatsappSender;

/// The HTTP client for the Graph API, shared so connections are reused.
fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            // Only fails if the TLS backend cannot initialise, which
            // `Client::new` would report the same way.
            .unwrap_or_else(|_| reqwest::Client::new())
    })
}

fn store_failed(e: StoreError) -> DeliveryError {
    DeliveryError::Transient(format!("could not read the ticket: {e}"))
}

/// Sends an agent's reply through the WhatsApp Cloud API, quoting the
/// customer's last message. Refused (not sent) outside the 24-hour window.
#[async_trait]
impl Deliver for WhatsappSender {
    async fn deliver(
        &self,
        store: &dyn Store,
        account: AccountId,
        channel: &Channel,
        ticket: &Ticket,
        message: &Message,
    ) -> Result<Delivered, DeliveryError> {
        // Settings stored before they were checked may still not parse.
        let settings = channel_settings::whatsapp(&channel.settings)
            .map_err(|e| DeliveryError::Permanent(e.to_string()))?;
        let phone_number_id = settings.phone_number_id.ok_or_else(|| {
            DeliveryError::Permanent("settings.phone_number_id is not set".into())
        })?;
        let token = settings.access_token.ok_or_else(|| {
            DeliveryError::Permanent("settings.secrets.access_token is not set".into())
        })?;
        let token = token.as_str();
        let base = settings
            .graph_base_url
            .unwrap_or_else(|| whatsapp::DEFAULT_GRAPH_BASE_URL.into());
        let version = settings
            .api_version
            .unwrap_or_else(|| whatsapp::DEFAULT_API_VERSION.into());

        let contact = match ticket.contact_id {
            Some(id) => Some(store.get_contact(account, id).await.map_err(store_failed)?),
            None => None,
        };
        let to = contact.and_then(|c| c.phone).ok_or_else(|| {
            DeliveryError::Permanent("the ticket's contact has no phone number".into())
        })?;
        let messages = store
            .list_messages(account, ticket.id)
            .await
            .map_err(store_failed)?;
        let last_inbound = messages
            .iter()
            .filter(|m| m.kind == MessageKind::Inbound && m.id != message.id)
            .max_by_key(|m| (m.created_at, m.id))
            .ok_or_else(|| {
                DeliveryError::Permanent(
                    "the customer never wrote on WhatsApp: a template message is required".into(),
                )
            })?;
        if !whatsapp::reply_window_open(last_inbound.created_at, message.created_at) {
            return Err(DeliveryError::Permanent(format!(
                "the customer's last message is more than 24 hours old ({}): WhatsApp only accepts \
             a template message now",
                last_inbound.created_at
            )));
        }
        if message.body.chars().count() > whatsapp::MAX_TEXT_LEN {
            return Err(DeliveryError::Permanent(format!(
                "WhatsApp text messages are limited to {} characters",
                whatsapp::MAX_TEXT_LEN
            )));
        }
        let url = whatsapp::reply_url(&base, &version, &phone_number_id);
        let body = whatsapp::reply_body(
            to.as_str(),
            &message.body,
            last_inbound.external_id.as_deref(),
        );
        let response = client()
            .post(&url)
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .map_err(|e| DeliveryError::Transient(format!("Graph API unreachable: {e}")))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| DeliveryError::Transient(format!("Graph API answer unreadable: {e}")))?;
        if !status.is_success() {
            let why = whatsapp::error_message(&bytes).unwrap_or_else(|| "no explanation".into());
            let why = format!("Graph API answered {status}: {why}");
            // Throttled or failing on Meta's side: later. Anything else 4xx is
            // about this message or this channel's settings.
            return Err(
                if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                    DeliveryError::Transient(why)
                } else {
                    DeliveryError::Permanent(why)
                },
            );
        }
        match whatsapp::sent_message_id(&bytes) {
            Ok(wamid) => {
                tracing::info!(ticket = %ticket.id, message = %message.id, %wamid, "WhatsApp reply sent");
                Ok(Delivered {
                    external_id: Some(wamid),
                })
            }
            // Accepted all the same; only the id for status updates is missing.
            Err(e) => {
                tracing::warn!(ticket = %ticket.id, error = %e, "WhatsApp reply sent without a message id");
                Ok(Delivered::default())
            }
        }
    }
}
