//! Live chat, the visitor's side, on a `chat` channel: start a conversation,
//! send messages, list them (to catch up after a reconnect), and receive the
//! agents' replies live as Server-Sent Events. Agents answer from the
//! ordinary ticket API; a conversation *is* a ticket (type `message`).
//!
//! | route | |
//! |---|---|
//! | `GET /chat/widget.js` | the embeddable widget (plain JavaScript) |
//! | `POST /chat/{key}/conversations` | `{message, name?, email?, client_id?}` → `201 {conversation_id, visitor_token, status, message}` |
//! | `GET /chat/{key}/conversations/{id}/messages?after=ID` | `{conversation_id, status, items}` |
//! | `POST /chat/{key}/conversations/{id}/messages` | `{message, client_id?}` → `201 {message}` |
//! | `GET /chat/{key}/conversations/{id}/events?after=ID` | `text/event-stream`: `message` and `status` events |
//!
//! **Visitor identity.** A visitor is a random id (32 hex digits). The
//! server hands out a *signed visitor token*, `<id>.<signature>`, the
//! signature being HMAC-SHA256 over the channel and the id, keyed by the
//! channel's `settings.secrets.visitor_signing_key`. That key is created
//! (32 random bytes) on the channel's first conversation and stored with
//! the channel's other secrets, so it survives restarts and is the same on
//! every node; the API shows it as `(set)`, and an admin may set or rotate
//! it (rotation signs every visitor out: their next message starts a new
//! conversation). Two nodes starting a channel's very first conversations
//! at the same instant could each store a key, the later winning; the
//! loser's visitor would then be refused and start over, which is safe.
//!
//! The token travels in the `X-Visitor-Token` header (the widget keeps it in
//! the customer site's `localStorage`), in a `visitor_token` query parameter
//! (`EventSource` cannot send headers), or in the `sb_visitor` cookie that
//! the server sets on its own origin (`HttpOnly`, `SameSite=Lax`, path
//! `/chat/{key}`), which serves pages on the same site as Switchboard. A
//! conversation belongs to the visitor who started it: a missing or forged
//! token is `401`, another visitor's conversation `404`.
//!
//! The ticket keeps the visitor id (never the signature) as its
//! `visitor_token` property, which is how a contact that carries the same
//! value in its `visitor_tokens` becomes the ticket's contact, and what
//! contact-owner routing requires on chat. The widget also writes the id to
//! a first-party `sb_visitor` cookie on the customer's site, so a form on
//! that site names the same visitor.
//!
//! **Assignment.** The chatflow's "assign to" toggle is the channel's
//! routing rule: with a rule the conversation is routed like any ticket;
//! without one (or with `assign_to: nobody`) it waits in Unassigned.
//!
//! **Limits.** Every request counts against the rate limits (60 a minute
//! per client IP, 1,200 per channel, or `settings.rate_limit`), bodies are
//! at most 64 KiB, and `settings.allowed_origins` restricts the pages that
//! may call, as for forms.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    convert::Infallible,
    sync::Arc,
    time::Duration,
};

use axum::{
    Extension, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, FromRequest, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
    routing::{get, post},
};
use futures_util::Stream;
use serde_json::{Map, Value, json};
use switchboard_channels::forms::first_line_subject;
use switchboard_domain::{input::*, *};
use switchboard_store::TicketEvent;
use tokio::sync::broadcast::{Receiver, error::RecvError};

use super::forms::{Cors, VISITOR_COOKIE, public_channel};
use crate::{
    AppState,
    extract::{Path, Query},
    inbound::{self, Inbound},
    problem::{ApiError, Problem},
    ratelimit::{ClientIp, Limits, RateLimiter},
};

/// Largest accepted request body.
const MAX_BODY: usize = 64 * 1024;
/// Limits when `settings.rate_limit` does not set them: a conversation is
/// many small requests, so more than a form's.
pub const DEFAULT_LIMITS: Limits = Limits {
    per_ip_per_minute: 60,
    per_channel_per_minute: 1_200,
};
/// The header a script sends the visitor token in.
const TOKEN_HEADER: &str = "x-visitor-token";

pub mod request;
pub mod visitor;
mod wire;

use request::external_id;
use visitor::{conversation, ensure_key, issue, presented, verify, visitor};
pub use wire::{
    ChatMessage, ChatSender, Messages, ReadParams, SendRequest, Sent, StartRequest, Started,
};

/// The chat routes' own state.
#[derive(Debug, Default)]
pub(crate) struct ChatState {
    limiter: RateLimiter,
    /// Serialises creating a channel's signing key within this process.
    key_lock: tokio::sync::Mutex<()>,
}

/// The routes of this area.
pub fn router() -> Router<AppState> {
    let conversation = "/chat/{channel_key}/conversations/{id}";
    Router::new()
        .route("/chat/widget.js", get(widget))
        .route(
            "/chat/{channel_key}/conversations",
            post(start).options(start_preflight),
        )
        .route(
            &format!("{conversation}/messages"),
            get(list).post(send).options(messages_preflight),
        )
        .route(
            &format!("{conversation}/events"),
            get(events).options(events_preflight),
        )
        .layer(Extension(Arc::new(ChatState::default())))
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

/// `GET /chat/widget.js`: the widget, embedded with
/// `<script src=".../chat/widget.js" data-channel="KEY" async></script>`.
#[utoipa::path(get, path = "/chat/widget.js", tag = "public",
    responses((status = 200, description = "The widget", content_type = "text/javascript", body = String)))]
pub(crate) async fn widget() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        include_str!("../../static/widget.js"),
    )
        .into_response()
}

/// The CORS preflight of every chat route.
async fn preflight(
    state: &AppState,
    key: String,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let (_, channel) = public_channel(state, key, ChannelKind::Chat).await?;
    Ok(Cors::check(&channel, headers)?.preflight("GET, POST, OPTIONS"))
}

/// `OPTIONS /chat/{channel_key}/conversations`: the CORS preflight.
#[utoipa::path(options, path = "/chat/{channel_key}/conversations", tag = "public",
    params(("channel_key" = String, Path, description = "The chat channel's key"), ("Origin" = Option<String>, Header, description = "The calling page; checked against `settings.allowed_origins`")),
    responses(
        (status = 204, description = "Allowed: the CORS headers say what may be sent"),
        (status = 403, description = "Origin not allowed", body = Problem),
    ))]
pub(crate) async fn start_preflight(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    preflight(&state, key, &headers).await
}

/// `OPTIONS /chat/{channel_key}/conversations/{id}/messages`: the CORS preflight.
#[utoipa::path(options, path = "/chat/{channel_key}/conversations/{id}/messages", tag = "public",
    params(("channel_key" = String, Path, description = "The chat channel's key"), ("id" = i64, Path, description = "The conversation"), ("Origin" = Option<String>, Header, description = "The calling page; checked against `settings.allowed_origins`")),
    responses(
        (status = 204, description = "Allowed: the CORS headers say what may be sent"),
        (status = 403, description = "Origin not allowed", body = Problem),
    ))]
pub(crate) async fn messages_preflight(
    State(state): State<AppState>,
    Path((key, _conversation)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    preflight(&state, key, &headers).await
}

/// `OPTIONS /chat/{channel_key}/conversations/{id}/events`: the CORS preflight.
#[utoipa::path(options, path = "/chat/{channel_key}/conversations/{id}/events", tag = "public",
    params(("channel_key" = String, Path, description = "The chat channel's key"), ("id" = i64, Path, description = "The conversation"), ("Origin" = Option<String>, Header, description = "The calling page; checked against `settings.allowed_origins`")),
    responses(
        (status = 204, description = "Allowed: the CORS headers say what may be sent"),
        (status = 403, description = "Origin not allowed", body = Problem),
    ))]
pub(crate) async fn events_preflight(
    State(state): State<AppState>,
    Path((key, _conversation)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    preflight(&state, key, &headers).await
}

/// Turns stored messages into what the visitor may see: their own messages
/// and public replies, never internal notes. Agent names are looked up once
/// per user (`names` is the cache).
async fn visible(
    state: &AppState,
    account: AccountId,
    messages: Vec<Message>,
    names: &mut HashMap<UserId, Option<String>>,
) -> Vec<ChatMessage> {
    let mut out = Vec::new();
    for m in messages {
        let from = match m.kind {
            MessageKind::Inbound => ChatSender::Visitor,
            MessageKind::Reply => ChatSender::Agent,
            MessageKind::Note => continue,
        };
        let author_name = match m.author {
            Actor::User { user_id } if from == ChatSender::Agent => match names.get(&user_id) {
                Some(known) => known.clone(),
                None => {
                    // A deleted or unreadable user just shows no name.
                    let user = state.store.get_user(account, user_id).await.ok();
                    let name = user.map(|u| u.name.to_string());
                    names.insert(user_id, name.clone());
                    name
                }
            },
            _ => None,
        };
        out.push(ChatMessage {
            id: m.id,
            from,
            body: m.body,
            author_name,
            created_at: m.created_at,
        });
    }
    out
}

/// Looks the channel up, checks CORS and the rate limits, and runs `then`;
/// CORS headers go on every answer from there on, errors included.
async fn guarded<F, Fut>(
    state: &AppState,
    chat: &ChatState,
    key: String,
    client: Option<std::net::IpAddr>,
    headers: &HeaderMap,
    then: F,
) -> Response
where
    F: FnOnce(AccountId, Channel) -> Fut,
    Fut: std::future::Future<Output = Result<Response, ApiError>>,
{
    let (account, channel) = match public_channel(state, key, ChannelKind::Chat).await {
        Ok(found) => found,
        Err(e) => return e.into_response(),
    };
    let cors = match Cors::check(&channel, headers) {
        Ok(cors) => cors,
        Err(e) => return e.into_response(),
    };
    let result = async {
        let limits = Limits::from_settings(&channel.settings, DEFAULT_LIMITS)?;
        chat.limiter.check(&channel.key, client, limits)?;
        then(account, channel).await
    }
    .await;
    cors.apply(result.unwrap_or_else(IntoResponse::into_response))
}

/// The stored message a received visitor message became (for a retried
/// send, the one stored the first time).
async fn stored_message(
    state: &AppState,
    account: AccountId,
    received: &inbound::Received,
    external_id: Option<String>,
) -> Result<Message, ApiError> {
    if let Some(m) = &received.message {
        return Ok(m.clone());
    }
    let gone = || ApiError::Internal("a duplicate chat message was not found again".into());
    let ext = external_id.ok_or_else(gone)?;
    let (ticket, id) = state
        .store
        .find_by_external_id(account, vec![ext])
        .await?
        .ok_or_else(gone)?;
    let messages = state.store.list_messages(account, ticket).await?;
    messages.into_iter().find(|m| m.id == id).ok_or_else(gone)
}

/// `POST /chat/{key}/conversations`: a new conversation (a ticket routed by
/// the channel's rule). A valid visitor token keeps the visitor; without one
/// (or with a stale one) a new visitor is issued.
#[utoipa::path(post, path = "/chat/{channel_key}/conversations", tag = "public",
    params(("channel_key" = String, Path, description = "The chat channel's key"), ("X-Visitor-Token" = Option<String>, Header, description = "The signed visitor token (or the `visitor_token` query parameter, or the `sb_visitor` cookie)"), ("Origin" = Option<String>, Header, description = "The calling page; checked against `settings.allowed_origins`")),
    request_body = StartRequest,
    responses(
        (status = 201, description = "Conversation started; the visitor token is also set as the `sb_visitor` cookie", body = Started),
        (status = 200, description = "The same `client_id` again: the conversation it started", body = Started),
        (status = 403, description = "Origin not allowed", body = Problem),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem),
    ))]
pub(crate) async fn start(
    State(state): State<AppState>,
    Extension(chat): Extension<Arc<ChatState>>,
    Path(key): Path<String>,
    ClientIp(client): ClientIp,
    request: Request,
) -> Response {
    let headers = request.headers().clone();
    let (s, c, h) = (state.clone(), chat.clone(), headers.clone());
    guarded(&s, &c, key, client, &h, move |account, channel| async move {
        let body = Bytes::from_request(request, &()).await?;
        let request::Start {
            text,
            email,
            name,
            client_id,
        } = request::parse_start(&headers, &body)?;
        let key = ensure_key(&state, &chat.key_lock, account, &channel).await?;
        let (visitor, token) = match presented(&headers, None)
            .and_then(|t| verify(&key, channel.id, &t).map(|v| (v, t)))
        {
            Some(known) => known,
            None => issue(&key, channel.id),
        };
        let ext = external_id(channel.id, &visitor, "start", client_id.as_deref())?;
        let mut properties = Map::new();
        if let (None, Some(name)) = (&email, &name) {
            // No address to make a contact of: keep the name for the agent.
            properties.insert("visitor_name".into(), Value::String(name.to_string()));
        }
        let received = inbound::receive(
            &state,
            account,
            &channel,
            Inbound {
                external_id: ext.clone(),
                contact: email.map(|email| ContactRef {
                    email: Some(email),
                    phone: None,
                    name,
                }),
                subject: first_line_subject(&text, "Chat conversation"),
                body: text,
                properties,
                visitor_token: Some(visitor),
                ..Inbound::default()
            },
        )
        .await?;
        let message = stored_message(&state, account, &received, ext).await?;
        let shown = visible(&state, account, vec![message], &mut HashMap::new()).await;
        metrics::counter!("switchboard_chat_conversations_total")
            .increment(u64::from(received.created));
        let status = if received.duplicate { StatusCode::OK } else { StatusCode::CREATED };
        let mut response = (
            status,
            axum::Json(Started {
                conversation_id: received.ticket.id,
                visitor_token: token.clone(),
                status: received.ticket.status,
                message: shown.into_iter().next(),
            }),
        )
            .into_response();
        let secure = headers
            .get("x-forwarded-proto")
            .is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https"));
        let cookie = format!(
            "{VISITOR_COOKIE}={token}; Path=/chat/{}; Max-Age=31536000; HttpOnly; SameSite=Lax{}",
            channel.key,
            if secure { "; Secure" } else { "" }
        );
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            response.headers_mut().insert(header::SET_COOKIE, v);
        }
        Ok(response)
    })
    .await
}

/// `GET /chat/{key}/conversations/{id}/messages`: the conversation so far
/// (or after `after`), for a first load and to catch up after a reconnect.
#[utoipa::path(get, path = "/chat/{channel_key}/conversations/{id}/messages", tag = "public",
    params(("channel_key" = String, Path, description = "The chat channel's key"), ("id" = i64, Path, description = "The conversation"), ReadParams, ("X-Visitor-Token" = Option<String>, Header, description = "The signed visitor token (or the `visitor_token` query parameter, or the `sb_visitor` cookie)"), ("Origin" = Option<String>, Header, description = "The calling page; checked against `settings.allowed_origins`")),
    responses(
        (status = 200, description = "The messages", body = Messages),
        (status = 401, description = "No valid visitor token", body = Problem),
        (status = 403, description = "Origin not allowed", body = Problem),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem),
    ))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(chat): Extension<Arc<ChatState>>,
    Path((key, id)): Path<(String, TicketId)>,
    Query(params): Query<ReadParams>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
) -> Response {
    let (s, c, h) = (state.clone(), chat.clone(), headers.clone());
    guarded(
        &s,
        &c,
        key,
        client,
        &h,
        move |account, channel| async move {
            let visitor = visitor(&channel, &headers, params.visitor_token.as_deref())?;
            let ticket = conversation(&state, account, &channel, &visitor, id).await?;
            let after = params.after.unwrap_or(0);
            let messages = state.store.list_messages(account, id).await?;
            let newer = messages.into_iter().filter(|m| m.id.0 > after).collect();
            let items = visible(&state, account, newer, &mut HashMap::new()).await;
            Ok(axum::Json(Messages {
                conversation_id: ticket.id,
                status: ticket.status,
                items,
            })
            .into_response())
        },
    )
    .await
}

/// `POST /chat/{key}/conversations/{id}/messages`: the visitor writes. With
/// a `client_id`, a retry returns the message stored the first time (`200`).
#[utoipa::path(post, path = "/chat/{channel_key}/conversations/{id}/messages", tag = "public",
    params(("channel_key" = String, Path, description = "The chat channel's key"), ("id" = i64, Path, description = "The conversation"), ("X-Visitor-Token" = Option<String>, Header, description = "The signed visitor token (or the `visitor_token` query parameter, or the `sb_visitor` cookie)"), ("Origin" = Option<String>, Header, description = "The calling page; checked against `settings.allowed_origins`")),
    request_body = SendRequest,
    responses(
        (status = 201, description = "Sent", body = Sent),
        (status = 200, description = "The same `client_id` again: the message it sent", body = Sent),
        (status = 401, description = "No valid visitor token", body = Problem),
        (status = 403, description = "Origin not allowed", body = Problem),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem),
    ))]
pub(crate) async fn send(
    State(state): State<AppState>,
    Extension(chat): Extension<Arc<ChatState>>,
    Path((key, id)): Path<(String, TicketId)>,
    ClientIp(client): ClientIp,
    request: Request,
) -> Response {
    let headers = request.headers().clone();
    let (s, c, h) = (state.clone(), chat.clone(), headers.clone());
    guarded(
        &s,
        &c,
        key,
        client,
        &h,
        move |account, channel| async move {
            let visitor = visitor(&channel, &headers, None)?;
            let ticket = conversation(&state, account, &channel, &visitor, id).await?;
            let body = Bytes::from_request(request, &()).await?;
            let (text, client_id) = request::parse_send(&headers, &body)?;
            let ext = external_id(
                channel.id,
                &visitor,
                &ticket.id.to_string(),
                client_id.as_deref(),
            )?;
            let received = inbound::receive(
                &state,
                account,
                &channel,
                Inbound {
                    external_id: ext.clone(),
                    ticket_hint: Some(ticket.id),
                    body: text,
                    visitor_token: Some(visitor),
                    ..Inbound::default()
                },
            )
            .await?;
            let message = stored_message(&state, account, &received, ext).await?;
            let shown = visible(&state, account, vec![message], &mut HashMap::new()).await;
            let status = if received.duplicate {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            Ok((
                status,
                axum::Json(Sent {
                    message: shown.into_iter().next(),
                }),
            )
                .into_response())
        },
    )
    .await
}

/// `GET /chat/{key}/conversations/{id}/events`: the conversation live.
/// Each `message` event (id = the message id) is a visitor message or an
/// agent's public reply as in the list; a `status` event says the
/// conversation was closed or reopened. With `Last-Event-ID` (sent by
/// `EventSource` on its own reconnects) or `after`, missed messages come
/// first. Notes never leave the server.
#[utoipa::path(get, path = "/chat/{channel_key}/conversations/{id}/events", tag = "public",
    params(("channel_key" = String, Path, description = "The chat channel's key"), ("id" = i64, Path, description = "The conversation"), ReadParams,
        ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this message id"), ("X-Visitor-Token" = Option<String>, Header, description = "The signed visitor token (or the `visitor_token` query parameter, or the `sb_visitor` cookie)"), ("Origin" = Option<String>, Header, description = "The calling page; checked against `settings.allowed_origins`")),
    responses(
        (status = 200, description = "Server-Sent Events: `message` (a ChatMessage) and `status` (`{\"status\"}`)", content_type = "text/event-stream", body = String),
        (status = 401, description = "No valid visitor token", body = Problem),
        (status = 403, description = "Origin not allowed", body = Problem),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem),
    ))]
pub(crate) async fn events(
    State(state): State<AppState>,
    Extension(chat): Extension<Arc<ChatState>>,
    Path((key, id)): Path<(String, TicketId)>,
    Query(params): Query<ReadParams>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
) -> Response {
    let (s, c, h) = (state.clone(), chat.clone(), headers.clone());
    guarded(
        &s,
        &c,
        key,
        client,
        &h,
        move |account, channel| async move {
            let visitor = visitor(&channel, &headers, params.visitor_token.as_deref())?;
            conversation(&state, account, &channel, &visitor, id).await?;
            let after = headers
                .get("last-event-id")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<i64>().ok())
                .or(params.after);
            // Subscribe before reading what exists, so nothing committed in
            // between is missed (it would only be seen twice, and `sent` drops
            // the second).
            let receiver = state.store.subscribe();
            let mut feed = Feed {
                state: state.clone(),
                account,
                ticket: id,
                receiver,
                pending: VecDeque::new(),
                sent: HashSet::new(),
                names: HashMap::new(),
            };
            let existing = state.store.list_messages(account, id).await?;
            feed.sent.extend(
                existing
                    .iter()
                    .filter(|m| after.is_none_or(|a| m.id.0 <= a))
                    .map(|m| m.id),
            );
            feed.refill(existing).await;
            // Ends when the server shuts down (graceful shutdown waits for it).
            let stream = futures_util::StreamExt::take_until(feed.into_stream(), state.stopping());
            Ok(Sse::new(stream)
                .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
                .into_response())
        },
    )
    .await
}

/// One visitor's live view of a conversation.
struct Feed {
    state: AppState,
    account: AccountId,
    ticket: TicketId,
    receiver: Receiver<TicketEvent>,
    /// Visible messages not sent yet, oldest first.
    pending: VecDeque<ChatMessage>,
    /// Every message already sent or known to the client. A set rather than
    /// the highest id: on PostgreSQL two messages may commit out of id order.
    sent: HashSet<MessageId>,
    names: HashMap<UserId, Option<String>>,
}

impl Feed {
    /// Queues the visible messages of `messages` not sent yet.
    async fn refill(&mut self, messages: Vec<Message>) {
        let unseen: Vec<Message> = messages
            .into_iter()
            .filter(|m| !self.sent.contains(&m.id))
            .collect();
        self.sent.extend(unseen.iter().map(|m| m.id));
        let shown = visible(&self.state, self.account, unseen, &mut self.names).await;
        self.pending.extend(shown);
    }

    /// Re-reads the conversation and queues what is new; `None` if the
    /// store failed (the stream then ends and the client reconnects).
    async fn catch_up(&mut self) -> Option<()> {
        match self
            .state
            .store
            .list_messages(self.account, self.ticket)
            .await
        {
            Ok(messages) => {
                self.refill(messages).await;
                Some(())
            }
            Err(e) => {
                tracing::warn!(ticket = %self.ticket, error = %e, "chat stream could not read messages");
                None
            }
        }
    }

    /// The next event for the visitor; `None` ends the stream.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(m) = self.pending.pop_front() {
                match Event::default()
                    .id(m.id.to_string())
                    .event("message")
                    .json_data(&m)
                {
                    Ok(event) => return Some(event),
                    Err(_) => continue,
                }
            }
            match self.receiver.recv().await {
                Ok(e) if e.account_id == self.account && e.ticket_id == self.ticket => {
                    match e.event {
                        HistoryEvent::MessageAdded {
                            kind: MessageKind::Note,
                            ..
                        } => {}
                        HistoryEvent::MessageAdded { .. } => self.catch_up().await?,
                        // Only open/closed matters to the visitor; stage
                        // moves (waiting on us, on them) are internal.
                        HistoryEvent::StatusChanged {
                            from_status,
                            to_status,
                            ..
                        } if from_status != to_status => {
                            return Event::default()
                                .event("status")
                                .json_data(json!({"status": to_status}))
                                .ok();
                        }
                        _ => {}
                    }
                }
                Ok(_) => {}
                // Events were dropped: whatever they were, re-reading the
                // conversation recovers the messages among them.
                Err(RecvError::Lagged(_)) => self.catch_up().await?,
                Err(RecvError::Closed) => return None,
            }
        }
    }

    fn into_stream(self) -> impl Stream<Item = Result<Event, Infallible>> {
        futures_util::stream::unfold(self, |mut feed| async move {
            feed.next().await.map(|event| (Ok(event), feed))
        })
    }
}
