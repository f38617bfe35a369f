//! What a chat visitor sends, parsed and checked without I/O: the bodies of
//! `POST /chat/{key}/conversations` and `POST .../messages`, the message
//! text, and the client's idempotency id. The handlers in the parent module
//! call these; the fuzz targets do too.

use axum::http::HeaderMap;
use switchboard_domain::{ChannelId, EmailAddress, Name};

pub use super::wire::{SendRequest, StartRequest};
use crate::{extract::parse_json, problem::ApiError};

/// Longest message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 10_000;

/// A conversation start, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Start {
    /// The message text (see [`message_text`]).
    pub text: String,
    /// The visitor's address, when given.
    pub email: Option<EmailAddress>,
    /// The visitor's name, when given.
    pub name: Option<Name>,
    /// The client's id for the message, unchecked (see [`external_id`]).
    pub client_id: Option<String>,
}

/// Parses and checks the body of a conversation start.
pub fn parse_start(headers: &HeaderMap, body: &[u8]) -> Result<Start, ApiError> {
    let input: StartRequest = parse_json(headers, body)?;
    let text = message_text(&input.message)?;
    let present = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let email = present(input.email)
        .map(EmailAddress::try_from)
        .transpose()
        .map_err(|e| ApiError::invalid("email", e.to_string()))?;
    let name = present(input.name)
        .map(Name::try_from)
        .transpose()
        .map_err(|e| ApiError::invalid("name", e.to_string()))?;
    Ok(Start {
        text,
        email,
        name,
        client_id: input.client_id,
    })
}

/// Parses and checks the body of a visitor's message: its text and the
/// client's id for it (unchecked, see [`external_id`]).
pub fn parse_send(headers: &HeaderMap, body: &[u8]) -> Result<(String, Option<String>), ApiError> {
    let input: SendRequest = parse_json(headers, body)?;
    Ok((message_text(&input.message)?, input.client_id))
}

/// A message's text: trimmed, not empty, not too long.
pub fn message_text(text: &str) -> Result<String, ApiError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ApiError::invalid("message", "a message needs some text"));
    }
    if text.chars().count() > MAX_MESSAGE_CHARS {
        return Err(ApiError::invalid(
            "message",
            format!("at most {MAX_MESSAGE_CHARS} characters"),
        ));
    }
    Ok(text.to_owned())
}

/// The external id of a visitor's message, from the client's id for it, so
/// a retried send stores one message. Scoped by channel and visitor, so no
/// one can collide with (or probe) anyone else's ids.
pub fn external_id(
    channel: ChannelId,
    visitor: &str,
    scope: &str,
    client_id: Option<&str>,
) -> Result<Option<String>, ApiError> {
    let Some(id) = client_id else { return Ok(None) };
    let valid = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
    if !valid {
        return Err(ApiError::invalid(
            "client_id",
            "1 to 64 letters, digits, '-' or '_'",
        ));
    }
    Ok(Some(format!("chat:{channel}:{visitor}:{scope}:{id}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_are_scoped_and_checked() {
        assert_eq!(
            external_id(ChannelId(7), "v", "12", Some("abc-1"))
                .unwrap()
                .as_deref(),
            Some("chat:7:v:12:abc-1")
        );
        assert_eq!(external_id(ChannelId(7), "v", "12", None).unwrap(), None);
        assert!(external_id(ChannelId(7), "v", "12", Some("a b")).is_err());
    }
}
