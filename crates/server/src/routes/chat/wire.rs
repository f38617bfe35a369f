//! What the chat visitor API takes and answers, with their OpenAPI schemas.

use serde::{Deserialize, Serialize};
use switchboard_domain::{MessageId, Status, TicketId};
use utoipa::{IntoParams, ToSchema};

/// Who wrote a chat message, as the visitor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChatSender {
    /// The visitor.
    Visitor,
    /// An agent (a public reply).
    Agent,
}

/// A message as the visitor sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChatMessage {
    /// Its id; increases with time.
    pub id: MessageId,
    /// `visitor` or `agent`.
    pub from: ChatSender,
    /// The text.
    pub body: String,
    /// The agent's name, for agent messages written by a user.
    pub author_name: Option<String>,
    /// When it was written.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: jiff::Timestamp,
}

/// Body of `POST /chat/{key}/conversations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    /// The first message: some text, at most 10,000 characters.
    #[schema(max_length = 10000, pattern = r"\S")]
    pub message: String,
    /// The visitor's name.
    #[serde(default)]
    pub name: Option<String>,
    /// The visitor's e-mail address; makes them a contact.
    #[serde(default)]
    pub email: Option<String>,
    /// The client's own id for this message, so a retry adds nothing:
    /// 1 to 64 letters, digits, `-` or `_`.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub client_id: Option<String>,
}

/// Body of `POST /chat/{key}/conversations/{id}/messages`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    /// The message: some text, at most 10,000 characters.
    #[schema(max_length = 10000, pattern = r"\S")]
    pub message: String,
    /// The client's own id for this message, so a retry adds nothing.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub client_id: Option<String>,
}

/// Query of the visitor's reads.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReadParams {
    /// The token, for clients that cannot send a header (`EventSource`).
    pub visitor_token: Option<String>,
    /// Only messages after this id.
    pub after: Option<i64>,
}

/// A conversation just started (or found again by its `client_id`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Started {
    /// The conversation (its ticket's id).
    pub conversation_id: TicketId,
    /// The signed visitor token to send with every later request.
    pub visitor_token: String,
    /// `open` or `closed`.
    pub status: Status,
    /// The first message.
    pub message: Option<ChatMessage>,
}

/// A conversation's messages.
#[derive(Debug, Serialize, ToSchema)]
pub struct Messages {
    /// The conversation.
    pub conversation_id: TicketId,
    /// `open` or `closed`.
    pub status: Status,
    /// The messages after `after`, oldest first (never internal notes).
    pub items: Vec<ChatMessage>,
}

/// A message just sent (or found again by its `client_id`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Sent {
    /// The message.
    pub message: Option<ChatMessage>,
}
