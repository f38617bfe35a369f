//! (being written)

use axum::Router;
use switchboard_domain::{Channel, Message, Ticket};

use crate::{AppState, outbound::DeliveryError};

/// The routes of this area.
pub fn router() -> Router<AppState> {
    Router::new()
}

/// A new `Message-ID` for a reply on `ticket` (stored with the reply, so the
/// customer's answer threads back).
pub fn new_message_id(channel: &Channel, ticket: &Ticket) -> String {
    let _ = channel;
    format!(
        "<sb.{}.{}@switchboard.invalid>",
        ticket.id,
        jiff::Timestamp::now().as_nanosecond()
    )
}

/// Sends an agent's reply by e-mail.
pub async fn deliver(
    state: &AppState,
    channel: &Channel,
    ticket: &Ticket,
    message: &Message,
) -> Result<(), DeliveryError> {
    let _ = (state, channel, ticket, message);
    Err(DeliveryError(
        "e-mail delivery is not configured in this build".into(),
    ))
}
