//! Tickets: create (idempotently), list views, read, change, assign by hand,
//! add messages, read the history. Every role may triage and reply.

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, put},
};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use switchboard_domain::{input::*, *};
use switchboard_store::{Idempotency, NewMessage, Page, TicketQuery, View};

use super::directory::page_limit;
use crate::{
    AppState,
    auth::Caller,
    extract::{Json, Path, Query, parse_json},
    problem::{ApiError, Problem},
};

type Reply<T> = Result<axum::Json<T>, ApiError>;

/// The routes of this area.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tickets", get(list_tickets).post(create_ticket))
        .route("/tickets/{id}", get(get_ticket).patch(update_ticket))
        .route("/tickets/{id}/owner", put(set_owner))
        .route(
            "/tickets/{id}/messages",
            get(list_messages).post(add_message),
        )
        .route("/tickets/{id}/history", get(history))
}

/// Longest accepted `Idempotency-Key`.
const MAX_IDEMPOTENCY_KEY: usize = 255;

fn idempotency(headers: &HeaderMap, body: &[u8]) -> Result<Option<Idempotency>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY)
        .ok_or_else(|| ApiError::BadRequest {
            field: Some("Idempotency-Key".into()),
            detail: format!("the Idempotency-Key header must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"),
        })?;
    Ok(Some(Idempotency {
        key: key.to_owned(),
        fingerprint: hex::encode(Sha256::digest(body)),
    }))
}

/// Creates a ticket. With an `Idempotency-Key` header, a retry with the same
/// key and body returns the original ticket (with `Idempotent-Replayed: true`)
/// instead of creating a second one; the same key with another body is a 409.
#[utoipa::path(post, path = "/api/v1/tickets", tag = "tickets", request_body = NewTicket,
    params(("Idempotency-Key" = Option<String>, Header, max_length = 255, pattern = r"^[\t\x20-\x7e]*[\x21-\x7e][\t\x20-\x7e]*$", description = "Makes retries safe: 1 to 255 visible ASCII characters")),
    responses((status = 201, body = Ticket), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub(crate) async fn create_ticket(
    State(s): State<AppState>,
    Caller(me): Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let input: NewTicket = parse_json(&headers, &body)?;
    let key = idempotency(&headers, &body)?;
    let created = s
        .store
        .create_ticket(me.account_id, input, key, me.actor())
        .await?;
    metrics::counter!("switchboard_tickets_created_total").increment(u64::from(created.created));
    let mut response = (StatusCode::CREATED, axum::Json(created.value)).into_response();
    if !created.created {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// Filters of the ticket list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TicketParams {
    /// `unassigned`, `mine`, `team_unassigned`, `team_open`, `open` or `closed`.
    pub view: Option<View>,
    /// Only this channel's tickets.
    pub channel: Option<ChannelId>,
    /// Only this type: `calls`, `message`, `email_other`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub ticket_type: Option<TicketType>,
    /// Only tickets owned by this user.
    pub owner: Option<UserId>,
    /// Only tickets owned by this team.
    pub team: Option<TeamId>,
    /// Only this priority.
    pub priority: Option<Priority>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<i64>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/tickets", tag = "tickets", params(TicketParams),
    responses((status = 200, body = Page<Ticket>), (status = 400, body = Problem)))]
pub(crate) async fn list_tickets(
    State(s): State<AppState>,
    Caller(me): Caller,
    Query(p): Query<TicketParams>,
) -> Reply<Page<Ticket>> {
    let query = TicketQuery {
        view: p.view,
        channel_id: p.channel,
        ticket_type: p.ticket_type,
        owner_user_id: p.owner,
        team_id: p.team,
        priority: p.priority,
        cursor: p.cursor,
        limit: page_limit(p.limit)?,
    };
    Ok(axum::Json(
        s.store
            .list_tickets(me.account_id, me.user_id, query)
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/tickets/{id}", tag = "tickets", params(("id" = i64, Path, description = "Its id")),
    responses((status = 200, body = Ticket), (status = 404, body = Problem)))]
pub(crate) async fn get_ticket(
    State(s): State<AppState>,
    Caller(me): Caller,
    Path(id): Path<TicketId>,
) -> Reply<Ticket> {
    Ok(axum::Json(s.store.get_ticket(me.account_id, id).await?))
}

#[utoipa::path(patch, path = "/api/v1/tickets/{id}", tag = "tickets", params(("id" = i64, Path, description = "Its id")), request_body = TicketPatch,
    responses((status = 200, body = Ticket), (status = 422, body = Problem)))]
pub(crate) async fn update_ticket(
    State(s): State<AppState>,
    Caller(me): Caller,
    Path(id): Path<TicketId>,
    Json(patch): Json<TicketPatch>,
) -> Reply<Ticket> {
    Ok(axum::Json(
        s.store
            .update_ticket(me.account_id, id, patch, me.actor())
            .await?,
    ))
}

/// Assigns (`{user_id}`), gives to a team (`{team_id}`), both, or unassigns
/// (`{}`). A user alone keeps the ticket's team if they belong to it and
/// otherwise takes their main team; a team alone clears the owner user.
#[utoipa::path(put, path = "/api/v1/tickets/{id}/owner", tag = "tickets", params(("id" = i64, Path, description = "Its id")), request_body = OwnerRequest,
    responses((status = 200, body = Ticket), (status = 422, body = Problem)))]
pub(crate) async fn set_owner(
    State(s): State<AppState>,
    Caller(me): Caller,
    Path(id): Path<TicketId>,
    Json(req): Json<OwnerRequest>,
) -> Reply<Ticket> {
    let requested = Owner {
        user_id: req.user_id,
        team_id: req.team_id,
    };
    Ok(axum::Json(
        s.store
            .set_owner(me.account_id, id, requested, me.actor())
            .await?,
    ))
}

/// Body of `PUT /tickets/{id}/owner`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OwnerRequest {
    /// The new owner user.
    pub user_id: Option<UserId>,
    /// The new owner team.
    pub team_id: Option<TeamId>,
}

/// What an agent can add to a conversation through the API.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentMessageKind {
    /// A public reply to the customer.
    Reply,
    /// An internal note.
    Note,
}

/// Body of `POST /tickets/{id}/messages`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageRequest {
    /// `reply` or `note`.
    pub kind: AgentMessageKind,
    /// The text; not blank.
    #[schema(pattern = r"\S")]
    pub body: String,
}

/// Adds a reply or a note. A reply to a ticket with no owner makes the
/// replier its owner; the response is the message and the ticket after it.
/// A reply on an e-mail or WhatsApp ticket is sent out afterwards by the
/// outbox dispatcher (see `GET /api/v1/outbox`): the answer comes as soon as
/// the reply is committed.
#[utoipa::path(post, path = "/api/v1/tickets/{id}/messages", tag = "tickets", params(("id" = i64, Path, description = "Its id")), request_body = MessageRequest,
    responses((status = 201, body = MessageAdded), (status = 422, body = Problem)))]
pub(crate) async fn add_message(
    State(s): State<AppState>,
    Caller(me): Caller,
    Path(id): Path<TicketId>,
    Json(req): Json<MessageRequest>,
) -> Result<(StatusCode, axum::Json<MessageAdded>), ApiError> {
    if req.body.trim().is_empty() {
        return Err(ApiError::invalid("body", "a message needs some text"));
    }
    let kind = match req.kind {
        AgentMessageKind::Reply => MessageKind::Reply,
        AgentMessageKind::Note => MessageKind::Note,
    };
    // A reply goes back out through the ticket's channel.
    let channel = match kind {
        MessageKind::Reply => {
            let ticket = s.store.get_ticket(me.account_id, id).await?;
            match ticket.channel_id {
                Some(c) => Some(s.store.get_channel(me.account_id, c).await?),
                None => None,
            }
            .map(|c| (c, ticket))
        }
        _ => None,
    };
    let message = NewMessage {
        kind,
        author: me.actor(),
        body: req.body,
        external_id: channel
            .as_ref()
            .and_then(|(c, t)| crate::outbound::external_id_for_reply(c, t)),
    };
    // The store writes the delivery's outbox row with the reply, in one
    // transaction; the dispatcher sends it. The agent does not wait for the
    // relay or the Graph API, and a crash after this commit loses nothing.
    let (message, ticket) = s.store.add_message(me.account_id, id, message).await?;
    if channel.is_some() {
        s.wake_dispatcher();
    }
    Ok((
        StatusCode::CREATED,
        axum::Json(MessageAdded { message, ticket }),
    ))
}

/// A message just added and the ticket after it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct MessageAdded {
    /// The new message.
    pub message: Message,
    /// The ticket, with its owner and stage after the message.
    pub ticket: Ticket,
}

#[utoipa::path(get, path = "/api/v1/tickets/{id}/messages", tag = "tickets", params(("id" = i64, Path, description = "Its id")),
    responses((status = 200, body = Page<Message>)))]
pub(crate) async fn list_messages(
    State(s): State<AppState>,
    Caller(me): Caller,
    Path(id): Path<TicketId>,
) -> Reply<Page<Message>> {
    let items = s.store.list_messages(me.account_id, id).await?;
    Ok(axum::Json(Page {
        items,
        next_cursor: None,
    }))
}

#[utoipa::path(get, path = "/api/v1/tickets/{id}/history", tag = "tickets", params(("id" = i64, Path, description = "Its id")),
    responses((status = 200, body = Page<HistoryEntry>)))]
pub(crate) async fn history(
    State(s): State<AppState>,
    Caller(me): Caller,
    Path(id): Path<TicketId>,
) -> Reply<Page<HistoryEntry>> {
    let items = s.store.history(me.account_id, id).await?;
    Ok(axum::Json(Page {
        items,
        next_cursor: None,
    }))
}
