//! Channel adapters: each provider's wire format parsed at the edge into
//! plain types the server hands to the store. No I/O here: the server owns
//! sockets and HTTP; these modules own bytes, headers and signatures.
//!
//! - [`email`]: RFC 5322 messages (mail-parser), threading keys, loop
//!   detection, reply headers;
//! - [`whatsapp`]: Cloud API webhooks (verification, `X-Hub-Signature-256`,
//!   messages and statuses) and the reply body;
//! - [`voice`]: Twilio-compatible voice webhooks (`X-Twilio-Signature`) and
//!   TwiML;
//! - [`forms`]: form submissions and their field mapping.

pub mod email;
pub mod forms;
pub mod voice;
pub mod whatsapp;

/// Why a channel's input was refused. `field` names what was wrong, for the
/// problem body.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The input is malformed or incomplete.
    #[error("{field}: {message}")]
    Invalid {
        /// The field (or header, or parameter) at fault.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// A signature is missing or does not match.
    #[error("bad signature: {0}")]
    Signature(String),
}

impl ChannelError {
    /// An [`ChannelError::Invalid`] on `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}
