//! E-mail replies through the channel's SMTP relay (lettre).
//!
//! Threaded with `In-Reply-To`/`References` and the `[#id]` subject token,
//! under the Message-ID stored with the reply ([`new_message_id`]), so the
//! customer's answer comes back to the same ticket, and a resend after a
//! crash (the outbox delivers at least once) carries the same Message-ID,
//! which receivers deduplicate on.
//!
//! Channel settings read here: `address` (the channel's mailbox),
//! `smtp_relay: {"host", "port", "tls": "none"|"starttls"|"tls"}` and
//! `secrets.smtp_username` / `secrets.smtp_password`.

use std::time::Duration;

use async_trait::async_trait;
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Tokio1Executor,
    transport::smtp::{authentication::Credentials, extension::ClientId},
};
use serde_json::Value;
use switchboard_channels::email;
use switchboard_domain::{
    AccountId, Actor, Channel, Message, MessageKind, Name, Ticket,
    channel_settings::{self, SmtpTls},
};
use switchboard_store::Store;

use super::{Deliver, Delivered, DeliveryError};

/// How long the relay may take to answer any one SMTP command. The
/// dispatcher also bounds each whole attempt.
const RELAY_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends replies by e-mail.
#[derive(Debug, Clone, Copy, Default)]
pub struct EmailSender;

/// The channel's own address (`settings.address`), if set.
pub fn channel_address(channel: &Channel) -> Option<&str> {
    channel
        .settings
        .get("address")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|a| !a.is_empty())
}

/// A new `Message-ID` for a reply on `ticket` (stored with the reply, so the
/// customer's answer threads back), on the channel address's domain.
pub fn new_message_id(channel: &Channel, ticket: &Ticket) -> String {
    let domain = channel_address(channel)
        .and_then(email::domain_of)
        .unwrap_or("switchboard.invalid");
    let unique = format!(
        "{:x}.{:016x}",
        jiff::Timestamp::now().as_nanosecond(),
        rand::random::<u64>()
    );
    email::message_id(ticket.id, &unique, domain)
}

/// Sends an agent's reply by e-mail: From the channel's address, To the
/// ticket's contact, through the channel's SMTP relay. A reply written by
/// Switchboard itself (not by a user) is automatic: it carries
/// `Auto-Submitted: auto-replied` and is never sent to a ticket opened by
/// automated mail.
#[async_trait]
impl Deliver for EmailSender {
    async fn deliver(
        &self,
        store: &dyn Store,
        account: AccountId,
        channel: &Channel,
        ticket: &Ticket,
        message: &Message,
    ) -> Result<Delivered, DeliveryError> {
        if message.kind != MessageKind::Reply {
            return Ok(Delivered::default());
        }
        let automatic = !matches!(message.author, Actor::User { .. });
        if automatic && ticket.properties.get("automated") == Some(&Value::Bool(true)) {
            let reason = ticket
                .properties
                .get("automated_reason")
                .and_then(Value::as_str)
                .unwrap_or("automated mail");
            return Err(DeliveryError::Permanent(format!(
                "no automatic e-mail to an automated sender ({reason})"
            )));
        }
        let failed = |what: &str, e: &dyn std::fmt::Display| {
            DeliveryError::Transient(format!("{what}: {e}"))
        };
        let from = channel_address(channel).ok_or_else(|| {
            DeliveryError::Permanent("the channel has no settings.address".into())
        })?;
        let contact_id = ticket.contact_id.ok_or_else(|| {
            DeliveryError::Permanent("the ticket has no contact to write to".into())
        })?;
        let contact = store
            .get_contact(account, contact_id)
            .await
            .map_err(|e| failed("contact", &e))?;
        let to = contact.email.ok_or_else(|| {
            DeliveryError::Permanent(format!("contact {contact_id} has no e-mail address"))
        })?;
        let conversation = store
            .list_messages(account, ticket.id)
            .await
            .map_err(|e| failed("conversation", &e))?;
        let (in_reply_to, references) = email::reply_threading(&conversation);
        let message_id = message
            .external_id
            .clone()
            .unwrap_or_else(|| new_message_id(channel, ticket));
        let reply = email::Reply {
            from,
            from_name: Some(channel.name.as_str()),
            to: to.as_str(),
            to_name: contact.name.as_ref().map(Name::as_str),
            subject: email::reply_subject(&ticket.subject, ticket.id),
            message_id: &message_id,
            in_reply_to,
            references,
            body: &message.body,
            automatic,
        };
        let built = email::build_reply(&reply)
            .map_err(|e| DeliveryError::Permanent(format!("reply: {e}")))?;
        let transport = relay_transport(channel)?;
        transport.send(built).await.map_err(relay_error)?;
        tracing::info!(ticket = %ticket.id, message = %message.id, %message_id, "reply e-mailed");
        Ok(Delivered::default())
    }
}

/// A relay's refusal: a 5xx is permanent, anything else (unreachable, a
/// timeout, a 4xx "try later") may pass on a later attempt. lettre's errors
/// name the reply code and text, never the credentials.
pub(crate) fn relay_error(e: lettre::transport::smtp::Error) -> DeliveryError {
    if e.is_permanent() {
        DeliveryError::Permanent(format!("relay: {e}"))
    } else {
        DeliveryError::Transient(format!("relay: {e}"))
    }
}

/// How to reach the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Security {
    /// Plain SMTP (a relay on localhost, tests).
    Plain,
    /// Plain, upgraded with STARTTLS (port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    Implicit,
}

/// The SMTP client for the channel's `smtp_relay` settings and secrets
/// ([`channel_settings::EmailSettings`]).
fn relay_transport(channel: &Channel) -> Result<AsyncSmtpTransport<Tokio1Executor>, DeliveryError> {
    // Settings stored before they were checked may still not parse.
    let settings = channel_settings::email(&channel.settings)
        .map_err(|e| DeliveryError::Permanent(e.to_string()))?;
    transport(&settings, "the channel has no settings.smtp_relay")
}

/// The SMTP client for typed relay settings (a channel's, or the account's
/// notification relay); `missing` is the error when no relay is set.
pub(crate) fn transport(
    settings: &channel_settings::EmailSettings,
    missing: &str,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, DeliveryError> {
    let relay = settings
        .smtp_relay
        .as_ref()
        .ok_or_else(|| DeliveryError::Permanent(missing.into()))?;
    let host = relay.host.as_str();
    let tls = match relay.tls {
        SmtpTls::None => Security::Plain,
        SmtpTls::Starttls => Security::StartTls,
        SmtpTls::Tls => Security::Implicit,
    };
    let port = relay.port_or_default();
    let tls_error =
        |e: lettre::transport::smtp::Error| DeliveryError::Permanent(format!("relay TLS: {e}"));
    let mut builder = match tls {
        Security::Plain => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
        Security::StartTls => {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host).map_err(tls_error)?
        }
        Security::Implicit => {
            AsyncSmtpTransport::<Tokio1Executor>::relay(host).map_err(tls_error)?
        }
    }
    .port(port)
    .timeout(Some(RELAY_TIMEOUT));
    // Greet the relay with the sender's domain rather than this machine's
    // host name, which relays often refuse when it does not resolve.
    if let Some(domain) = settings.address.as_deref().and_then(email::domain_of) {
        builder = builder.hello_name(ClientId::Domain(domain.to_owned()));
    }
    if let (Some(user), Some(password)) = (&settings.smtp_username, &settings.smtp_password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    Ok(builder.build())
}
