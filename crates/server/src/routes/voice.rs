//! Phone calls through Twilio-compatible voice webhooks. Every request is
//! checked against `X-Twilio-Signature` (keyed by the channel's
//! `settings.secrets.auth_token`) before anything is stored; a bad one is a
//! 401 problem.
//!
//! - `POST /webhooks/twilio/{key}/voice`: a call comes in. It becomes a
//!   `calls` ticket through [`inbound::receive`], keyed on its `CallSid`, so
//!   a retried webhook finds the same ticket. During the channel's office
//!   hours (none set: always open) the answer rings, in parallel, up to ten
//!   users the routing engine finds eligible for the call under the
//!   channel's rule ([`switchboard_store::Store::ring_order`]: seated,
//!   active, available if the rule wants it, with the skills and capacity
//!   it needs; the routed owner first), each through the client identity
//!   or number in `settings.voice_identities`; otherwise the caller hears
//!   the voicemail greeting and may leave a message.
//! - `.../answered`: each rung leg's `answered` event; the user who picked
//!   up becomes the ticket's owner while the call is still going.
//! - `.../dial-status`: the `<Dial>` ended. Answered: the answering user
//!   (when the request names their leg) becomes the owner and the call ends
//!   normally. Busy, no answer, failed: voicemail.
//! - `.../recording` and `.../recording-status`: the voicemail. Either one
//!   adds it to the call's ticket as a message with the recording attached
//!   by URL; the recording's id keeps the second from adding it again.
//!
//! The URL a signature covers is the channel's `settings.public_url` (the
//! scheme and host Twilio calls, such as `https://sb.example.com`) plus the
//! request's path and query; without it, `http://` and the Host header.

use std::collections::HashMap;

use axum::{
    Router,
    body::Bytes,
    extract::{OriginalUri, State, rejection::BytesRejection},
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
    routing::post,
};
use serde_json::Value;
use switchboard_channels::{
    ChannelError,
    voice::{self, DialTarget, Params},
};
use switchboard_domain::{
    AccountId, Actor, Channel, ChannelKind, E164, MessageKind, Name, Owner, Ticket, UserId,
    input::ContactRef,
};
use switchboard_store::{NewAttachment, NewMessage};

use crate::{
    AppState,
    extract::Path,
    inbound::{self, Inbound},
    problem::{ApiError, Problem},
};

/// The routes of this area.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhooks/twilio/{channel_key}/voice", post(incoming_call))
        .route(
            "/webhooks/twilio/{channel_key}/answered",
            post(leg_answered),
        )
        .route(
            "/webhooks/twilio/{channel_key}/dial-status",
            post(dial_status),
        )
        .route("/webhooks/twilio/{channel_key}/recording", post(recording))
        .route(
            "/webhooks/twilio/{channel_key}/recording-status",
            post(recording_status),
        )
}

/// A verified webhook request of a calls channel.
struct Webhook {
    account: AccountId,
    channel: Channel,
    params: Params,
}

impl Webhook {
    /// The path of one of this channel's callbacks (`dial-status`, ...),
    /// relative to the host Twilio already calls.
    fn callback(&self, name: &str) -> String {
        format!("/webhooks/twilio/{}/{name}", self.channel.key)
    }

    fn require(&self, name: &str) -> Result<&str, ApiError> {
        self.params.require(name).map_err(invalid)
    }
}

fn invalid(e: ChannelError) -> ApiError {
    match e {
        ChannelError::Invalid { field, message } => ApiError::invalid(field, message),
        ChannelError::Signature(_) => ApiError::Unauthorized,
    }
}

/// A string (or number) setting, if set and not empty.
fn setting(channel: &Channel, name: &str) -> Option<String> {
    match channel.settings.get(name)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Every spelling of the URL Twilio may have signed for this request.
fn signed_urls(channel: &Channel, headers: &HeaderMap, uri: &axum::http::Uri) -> Vec<String> {
    let path = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned());
    let base = match setting(channel, "public_url") {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => match headers.get(header::HOST).and_then(|h| h.to_str().ok()) {
            Some(host) => format!("http://{host}"),
            None => return Vec::new(),
        },
    };
    voice::url_variants(&format!("{base}{path}"))
}

/// Finds the calls channel, reads the form and checks its signature; only a
/// request that passes gets near the store.
async fn verify(
    state: &AppState,
    key: String,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<Webhook, ApiError> {
    if key.contains('\0') {
        return Err(ApiError::NotFound("channel".into()));
    }
    let (account, channel) = state.store.channel_by_key(key).await?;
    if channel.kind != ChannelKind::Calls {
        return Err(ApiError::NotFound("channel".into()));
    }
    let body = body?;
    let params = Params::parse(&body).map_err(invalid)?;
    let auth_token = channel
        .settings
        .get("secrets")
        .and_then(|s| s.get("auth_token"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let signature = headers
        .get(voice::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok());
    let urls = signed_urls(&channel, headers, uri);
    if let Err(e) = voice::verify_signature(auth_token, &urls, &params, signature) {
        metrics::counter!("switchboard_webhooks_refused_total", "channel" => "calls").increment(1);
        tracing::warn!(channel = %channel.id, error = %e, urls = ?urls, "voice webhook refused");
        return Err(ApiError::Unauthorized);
    }
    Ok(Webhook {
        account,
        channel,
        params,
    })
}

/// A TwiML answer.
fn twiml(xml: String) -> Response {
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], xml).into_response()
}

/// The voicemail greeting and recording, for this channel.
fn voicemail(w: &Webhook) -> Response {
    let message = setting(&w.channel, "voicemail_message")
        .unwrap_or_else(|| voice::DEFAULT_VOICEMAIL_MESSAGE.into());
    twiml(voice::voicemail(
        &message,
        &w.callback("recording"),
        &w.callback("recording-status"),
    ))
}

/// `settings.voice_identities` (`{"<user id>": "client-identity" or
/// "+E.164"}`); entries that do not parse are logged and skipped, so one
/// typo does not silence every phone.
fn voice_identities(channel: &Channel) -> HashMap<UserId, DialTarget> {
    let Some(Value::Object(map)) = channel.settings.get("voice_identities") else {
        return HashMap::new();
    };
    map.iter()
        .filter_map(|(user, target)| {
            let parsed = user
                .parse::<i64>()
                .ok()
                .zip(target.as_str())
                .map(|(id, t)| (UserId(id), DialTarget::parse(t)));
            match parsed {
                Some((id, Ok(target))) => Some((id, target)),
                _ => {
                    tracing::warn!(channel = %channel.id, %user, %target, "unusable voice identity skipped");
                    None
                }
            }
        })
        .collect()
}

/// Who to ring for `ticket`: the store's ring order (the routed owner
/// first, then everyone the channel's rule could route the call to, by the
/// routing engine's checks and in its distribution's order), kept to those
/// with a voice identity; at most [`voice::MAX_PARALLEL_DIAL`].
async fn ring_targets(
    state: &AppState,
    account: AccountId,
    channel: &Channel,
    ticket: &Ticket,
) -> Result<Vec<DialTarget>, ApiError> {
    let order = state.store.ring_order(account, ticket.id).await?;
    if order.is_empty() {
        return Ok(Vec::new());
    }
    let identities = voice_identities(channel);
    Ok(order
        .iter()
        .filter_map(|user| identities.get(user).cloned())
        .take(voice::MAX_PARALLEL_DIAL)
        .collect())
}

/// A call comes in: a ticket, then ringing or voicemail.
#[utoipa::path(post, path = "/webhooks/twilio/{channel_key}/voice", tag = "public",
    params(
        ("channel_key" = String, Path, description = "The calls channel's key"),
        ("X-Twilio-Signature" = String, Header, description = "Twilio's signature of the URL and the form parameters, keyed by the channel's `settings.secrets.auth_token`"),
    ),
    request_body(content = HashMap<String, String>, content_type = "application/x-www-form-urlencoded", description = "Twilio's webhook parameters"),
    responses(
        (status = 200, description = "TwiML", content_type = "text/xml", body = String),
        (status = 400, description = "The body could not be read", body = Problem),
        (status = 401, description = "Missing or bad signature; nothing was stored", body = Problem),
        (status = 413, description = "The body is too large", body = Problem),
        (status = 422, description = "A parameter the call needs is missing or malformed", body = Problem),
    ))]
pub(crate) async fn incoming_call(
    State(s): State<AppState>,
    Path(key): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let w = verify(&s, key, &headers, &uri, body).await?;
    let call_sid = w.require("CallSid")?.to_owned();
    let from = w.params.get("From");
    let phone = from.and_then(|f| E164::try_from(f.to_owned()).ok());
    let caller_name = w
        .params
        .get("CallerName")
        .and_then(|n| Name::try_from(n.to_owned()).ok());
    let who = caller_name
        .as_ref()
        .map(|n| n.to_string())
        .or_else(|| from.map(str::to_owned))
        .unwrap_or_else(|| "an unknown caller".into());
    let body = match w.params.get("To") {
        Some(to) => format!("Incoming call from {who} to {to}."),
        None => format!("Incoming call from {who}."),
    };
    let received = inbound::receive(
        &s,
        w.account,
        &w.channel,
        Inbound {
            external_id: Some(call_sid.clone()),
            contact: phone.map(|p| ContactRef {
                email: None,
                phone: Some(p),
                name: caller_name,
            }),
            subject: format!("Call from {who}"),
            body,
            ..Default::default()
        },
    )
    .await?;
    let ticket = received.ticket;
    // The instant the store recorded the call (its clock), so a retried
    // webhook gets the same answer as the first.
    let open = w
        .channel
        .office_hours
        .as_ref()
        .is_none_or(|hours| hours.is_open(ticket.created_at));
    let targets = if open {
        ring_targets(&s, w.account, &w.channel, &ticket).await?
    } else {
        Vec::new()
    };
    let outcome = match (open, targets.is_empty()) {
        (false, _) => "after_hours",
        (true, true) => "nobody_to_ring",
        (true, false) => "ringing",
    };
    metrics::counter!("switchboard_calls_total", "outcome" => outcome).increment(1);
    tracing::info!(channel = %w.channel.id, ticket = %ticket.id, %call_sid, outcome,
        duplicate = received.duplicate, rung = targets.len(), "incoming call");
    if targets.is_empty() {
        return Ok(voicemail(&w));
    }
    let timeout = w
        .channel
        .settings
        .get("ring_timeout")
        .and_then(Value::as_u64)
        .map_or(voice::DEFAULT_RING_TIMEOUT, |t| t.clamp(5, 600) as u32);
    Ok(twiml(voice::dial(
        &w.callback("dial-status"),
        timeout,
        &targets,
        Some(&w.callback("answered")),
    )))
}

/// The user whose voice identity a leg's `To` names (`client:ana`, or a
/// number).
fn user_called(identities: &HashMap<UserId, DialTarget>, to: &str) -> Option<UserId> {
    let mut matches: Vec<UserId> = identities
        .iter()
        .filter(|(_, target)| target.is_called(to))
        .map(|(id, _)| *id)
        .collect();
    // Two users sharing an identity is a misconfiguration; the lowest id
    // keeps the choice stable.
    matches.sort();
    matches.first().copied()
}

/// Makes `user` the owner of the ticket of call `call_sid` (no change, and
/// no history line, if they already are).
async fn assign_call(
    state: &AppState,
    account: AccountId,
    call_sid: &str,
    user: UserId,
) -> Result<(), ApiError> {
    let Some((ticket, _)) = state
        .store
        .find_by_external_id(account, vec![call_sid.to_owned()])
        .await?
    else {
        tracing::warn!(%call_sid, "answered call has no ticket");
        return Ok(());
    };
    if state.store.get_ticket(account, ticket).await?.owner.user_id == Some(user) {
        return Ok(());
    }
    let requested = Owner {
        user_id: Some(user),
        team_id: None,
    };
    state
        .store
        .set_owner(account, ticket, requested, Actor::System)
        .await?;
    tracing::info!(ticket = %ticket, %user, "call answered; owner set");
    Ok(())
}

/// One rung leg was answered: its user owns the call's ticket.
#[utoipa::path(post, path = "/webhooks/twilio/{channel_key}/answered", tag = "public",
    params(
        ("channel_key" = String, Path, description = "The calls channel's key"),
        ("X-Twilio-Signature" = String, Header, description = "Twilio's signature of the URL and the form parameters, keyed by the channel's `settings.secrets.auth_token`"),
    ),
    request_body(content = HashMap<String, String>, content_type = "application/x-www-form-urlencoded", description = "Twilio's webhook parameters"),
    responses(
        (status = 200, description = "TwiML", content_type = "text/xml", body = String),
        (status = 400, description = "The body could not be read", body = Problem),
        (status = 401, description = "Missing or bad signature; nothing was stored", body = Problem),
        (status = 413, description = "The body is too large", body = Problem),
        (status = 422, description = "A parameter the call needs is missing or malformed", body = Problem),
    ))]
pub(crate) async fn leg_answered(
    State(s): State<AppState>,
    Path(key): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let w = verify(&s, key, &headers, &uri, body).await?;
    let answered = matches!(w.params.get("CallStatus"), Some("in-progress" | "answered"));
    if answered
        && let (Some(parent), Some(to)) = (w.params.get("ParentCallSid"), w.params.get("To"))
        && let Some(user) = user_called(&voice_identities(&w.channel), to)
    {
        assign_call(&s, w.account, parent, user).await?;
    }
    Ok(twiml(voice::empty()))
}

/// The `<Dial>` ended: the owner if someone answered, else voicemail.
#[utoipa::path(post, path = "/webhooks/twilio/{channel_key}/dial-status", tag = "public",
    params(
        ("channel_key" = String, Path, description = "The calls channel's key"),
        ("X-Twilio-Signature" = String, Header, description = "Twilio's signature of the URL and the form parameters, keyed by the channel's `settings.secrets.auth_token`"),
    ),
    request_body(content = HashMap<String, String>, content_type = "application/x-www-form-urlencoded", description = "Twilio's webhook parameters"),
    responses(
        (status = 200, description = "TwiML", content_type = "text/xml", body = String),
        (status = 400, description = "The body could not be read", body = Problem),
        (status = 401, description = "Missing or bad signature; nothing was stored", body = Problem),
        (status = 413, description = "The body is too large", body = Problem),
        (status = 422, description = "A parameter the call needs is missing or malformed", body = Problem),
    ))]
pub(crate) async fn dial_status(
    State(s): State<AppState>,
    Path(key): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let w = verify(&s, key, &headers, &uri, body).await?;
    let call_sid = w.require("CallSid")?.to_owned();
    let status = w.params.get("DialCallStatus").unwrap_or_default();
    metrics::counter!("switchboard_call_dials_total", "answered" => if voice::dial_answered(status) { "true" } else { "false" })
        .increment(1);
    if !voice::dial_answered(status) {
        tracing::info!(channel = %w.channel.id, %call_sid, status, "call not answered; voicemail");
        return Ok(voicemail(&w));
    }
    // A `<Client>` leg names itself as `client:identity` in `To`/`Called`;
    // when the request carries only our own number, the `answered` leg
    // callback has already set the owner.
    let identities = voice_identities(&w.channel);
    let user = ["To", "Called"]
        .iter()
        .filter_map(|name| w.params.get(name))
        .find_map(|to| user_called(&identities, to));
    if let Some(user) = user {
        assign_call(&s, w.account, &call_sid, user).await?;
    }
    Ok(twiml(voice::empty()))
}

/// The caller finished recording: stored, then thanked.
#[utoipa::path(post, path = "/webhooks/twilio/{channel_key}/recording", tag = "public",
    params(
        ("channel_key" = String, Path, description = "The calls channel's key"),
        ("X-Twilio-Signature" = String, Header, description = "Twilio's signature of the URL and the form parameters, keyed by the channel's `settings.secrets.auth_token`"),
    ),
    request_body(content = HashMap<String, String>, content_type = "application/x-www-form-urlencoded", description = "Twilio's webhook parameters"),
    responses(
        (status = 200, description = "TwiML", content_type = "text/xml", body = String),
        (status = 400, description = "The body could not be read", body = Problem),
        (status = 401, description = "Missing or bad signature; nothing was stored", body = Problem),
        (status = 413, description = "The body is too large", body = Problem),
        (status = 422, description = "A parameter the call needs is missing or malformed", body = Problem),
    ))]
pub(crate) async fn recording(
    State(s): State<AppState>,
    Path(key): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let w = verify(&s, key, &headers, &uri, body).await?;
    if w.params.get("RecordingUrl").is_some() {
        store_recording(&s, &w).await?;
    }
    Ok(twiml(voice::say_and_hang_up(
        "Thank you for your message. Goodbye.",
    )))
}

/// The recording's file is ready (or there was none).
#[utoipa::path(post, path = "/webhooks/twilio/{channel_key}/recording-status", tag = "public",
    params(
        ("channel_key" = String, Path, description = "The calls channel's key"),
        ("X-Twilio-Signature" = String, Header, description = "Twilio's signature of the URL and the form parameters, keyed by the channel's `settings.secrets.auth_token`"),
    ),
    request_body(content = HashMap<String, String>, content_type = "application/x-www-form-urlencoded", description = "Twilio's webhook parameters"),
    responses(
        (status = 200, description = "TwiML", content_type = "text/xml", body = String),
        (status = 400, description = "The body could not be read", body = Problem),
        (status = 401, description = "Missing or bad signature; nothing was stored", body = Problem),
        (status = 413, description = "The body is too large", body = Problem),
        (status = 422, description = "A parameter the call needs is missing or malformed", body = Problem),
    ))]
pub(crate) async fn recording_status(
    State(s): State<AppState>,
    Path(key): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let w = verify(&s, key, &headers, &uri, body).await?;
    match w.params.get("RecordingStatus") {
        Some("completed") if w.params.get("RecordingUrl").is_some() => {
            store_recording(&s, &w).await?
        }
        status => tracing::info!(channel = %w.channel.id, call_sid = w.params.get("CallSid"),
            status, "no voicemail recording"),
    }
    Ok(twiml(voice::empty()))
}

/// Adds the voicemail to the call's ticket: a message with its duration and
/// the recording attached by URL. Keyed on the recording's id, so the action
/// and the status callback (and their retries) add it once.
async fn store_recording(state: &AppState, w: &Webhook) -> Result<(), ApiError> {
    let call_sid = w.require("CallSid")?;
    let url = w.require("RecordingUrl")?;
    let duration = w
        .params
        .get("RecordingDuration")
        .and_then(|d| d.parse::<u32>().ok());
    // Twilio skips empty recordings on the action; the status callback may
    // still report one.
    if duration == Some(0) {
        return Ok(());
    }
    // The recording's URL ends in its sid; the action callback may not send
    // `RecordingSid`, the status callback does: both must give one key.
    let recording_id = url
        .split(['?', '#'])
        .next()
        .and_then(|path| path.rsplit('/').next())
        .map(|last| last.split('.').next().unwrap_or(last))
        .filter(|id| !id.is_empty())
        .or(w.params.get("RecordingSid"))
        .unwrap_or(url)
        .to_owned();
    let body = match duration {
        Some(seconds) => format!("Voicemail, {seconds} s."),
        None => "Voicemail.".to_owned(),
    };
    let phone = w
        .params
        .get("From")
        .and_then(|f| E164::try_from(f.to_owned()).ok());
    let received = inbound::receive(
        state,
        w.account,
        &w.channel,
        Inbound {
            external_id: Some(format!("recording:{recording_id}")),
            // The call's first message carries the CallSid: the voicemail
            // joins that ticket.
            thread: vec![call_sid.to_owned()],
            contact: phone.map(|p| ContactRef {
                email: None,
                phone: Some(p),
                name: None,
            }),
            subject: "Voicemail".into(),
            body,
            attachments: vec![NewAttachment {
                filename: Some(format!("{recording_id}.{}", extension(url))),
                content_type: voice::recording_content_type(url).into(),
                content: None,
                provider_ref: Some(url.to_owned()),
            }],
            ..Default::default()
        },
    )
    .await?;
    if received.created {
        // No call ticket to join (the call webhook never reached us): say
        // so on the new ticket rather than pretend it was a call.
        let note = NewMessage {
            kind: MessageKind::Note,
            author: Actor::System,
            body: format!("Voicemail of call {call_sid}, whose ticket was not found."),
            external_id: None,
        };
        state
            .store
            .add_message(w.account, received.ticket.id, note)
            .await?;
    }
    tracing::info!(ticket = %received.ticket.id, %call_sid, duplicate = received.duplicate, "voicemail stored");
    Ok(())
}

/// The file extension matching [`voice::recording_content_type`].
fn extension(url: &str) -> &'static str {
    match voice::recording_content_type(url) {
        "audio/mpeg" => "mp3",
        _ => "wav",
    }
}
