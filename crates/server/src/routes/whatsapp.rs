//! (being written)

use axum::Router;
use switchboard_domain::{Channel, Message, Ticket};

use crate::{AppState, outbound::DeliveryError};

/// The routes of this area.
pub fn router() -> Router<AppState> {
    Router::new()
}

/// Sends an agent's reply through the WhatsApp Cloud API.
pub async fn deliver(
    state: &AppState,
    channel: &Channel,
    ticket: &Ticket,
    message: &Message,
) -> Result<(), DeliveryError> {
    let _ = (state, channel, ticket, message);
    Err(DeliveryError(
        "WhatsApp delivery is not configured in this build".into(),
    ))
}
