//! WhatsApp Business Cloud API: webhook verification, the
//! `X-Hub-Signature-256` check, notification parsing, and the reply request.
//!
//! Meta sends every notification as a `POST` whose raw body is signed with
//! the app secret; [`verify_signature`] must run on those exact bytes before
//! anything parses them (re-serialising would change the bytes). A
//! notification batches messages and delivery statuses from any number of
//! entries and changes; [`parse`] flattens them into [`InboundMessage`]s and
//! [`StatusUpdate`]s and ignores changes of other fields (template status,
//! account updates), which share the endpoint but carry no conversation.
//!
//! Media arrive as ids, never bytes: an [`InboundMessage`] carries the id
//! and MIME type, and the media can be fetched from the Graph API later.

use hmac::{Hmac, Mac};
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::Sha256;
use switchboard_domain::E164;

use crate::ChannelError;

/// The header carrying the body's signature (`sha256=<hex>`).
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";
/// Where the Graph API lives unless a channel says otherwise.
pub const DEFAULT_GRAPH_BASE_URL: &str = "https://graph.facebook.com";
/// The Graph API version used unless a channel says otherwise.
pub const DEFAULT_API_VERSION: &str = "v21.0";
/// How long after the customer's last message a free-form reply is allowed;
/// after that only a pre-approved template may be sent.
pub const REPLY_WINDOW: SignedDuration = SignedDuration::from_hours(24);
/// The longest text body the Cloud API accepts.
pub const MAX_TEXT_LEN: usize = 4096;

/// Answers the webhook verification request (`GET ?hub.mode=subscribe&
/// hub.verify_token=T&hub.challenge=C`): the challenge to echo when the mode
/// is `subscribe` and the token equals `expected`.
pub fn verify_subscription(
    mode: Option<&str>,
    token: Option<&str>,
    challenge: Option<&str>,
    expected: &str,
) -> Result<String, ChannelError> {
    if mode != Some("subscribe") {
        return Err(ChannelError::invalid("hub.mode", "expected subscribe"));
    }
    // An unset verify token must not match an empty one.
    let token = token.unwrap_or_default();
    if expected.is_empty() || !constant_time_eq(token.as_bytes(), expected.as_bytes()) {
        return Err(ChannelError::Signature(
            "hub.verify_token does not match".into(),
        ));
    }
    challenge
        .map(str::to_owned)
        .ok_or_else(|| ChannelError::invalid("hub.challenge", "missing"))
}

/// Compares two secrets without an early exit on the first difference, so the
/// time taken does not tell how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks `X-Hub-Signature-256` (`sha256=<hex>`) against the HMAC-SHA256 of
/// the raw `body` keyed by the app secret, in constant time.
pub fn verify_signature(
    app_secret: &str,
    header: Option<&str>,
    body: &[u8],
) -> Result<(), ChannelError> {
    if app_secret.is_empty() {
        return Err(ChannelError::Signature(
            "no app secret is configured".into(),
        ));
    }
    let header =
        header.ok_or_else(|| ChannelError::Signature("missing X-Hub-Signature-256".into()))?;
    let hex_digest = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or_else(|| ChannelError::Signature("expected sha256=<hex>".into()))?;
    let expected = hex::decode(hex_digest)
        .map_err(|_| ChannelError::Signature("the signature is not hexadecimal".into()))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret.as_bytes())
        .map_err(|_| ChannelError::Signature("unusable app secret".into()))?;
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| ChannelError::Signature("X-Hub-Signature-256 does not match".into()))
}

/// The signature header value for `body`, as Meta computes it (for tests and
/// for trying the endpoint locally).
pub fn sign(app_secret: &str, body: &[u8]) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac =
        Hmac::<Sha256>::new_from_slice(app_secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Everything a notification carried that Switchboard acts on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Notification {
    /// Customer messages, in the order they came.
    pub messages: Vec<InboundMessage>,
    /// Delivery updates about messages we sent.
    pub statuses: Vec<StatusUpdate>,
    /// Errors about the whole change rather than one message (an outage,
    /// a misconfigured number), one line each; there is nothing to attach
    /// them to, so they are only logged.
    pub errors: Vec<String>,
}

/// One customer message.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundMessage {
    /// The `wamid`: unique, so a redelivery is recognised.
    pub id: String,
    /// The sender's WhatsApp id (their phone number's digits, no `+`).
    pub wa_id: String,
    /// The sender's profile name, from `contacts[]`.
    pub profile_name: Option<String>,
    /// When the customer sent it.
    pub timestamp: Option<Timestamp>,
    /// The message type (`text`, `image`, `interactive`, ...).
    pub kind: String,
    /// What to show as the message's text (a caption, a button title, a
    /// placeholder for types without text).
    pub text: String,
    /// The `wamid` of the message it replies to, if the customer quoted one.
    pub context_id: Option<String>,
    /// Facts worth keeping on a new ticket (the id of a chosen button).
    pub properties: Map<String, Value>,
    /// The media it carries (image, audio, video, document, sticker).
    pub media: Option<Media>,
}

impl InboundMessage {
    /// The sender's number in E.164 (`+` and the wa_id), if it is one.
    pub fn phone(&self) -> Option<E164> {
        E164::try_from(format!("+{}", self.wa_id)).ok()
    }
}

/// Media sent by the customer, known by its Graph API id.
#[derive(Debug, Clone, PartialEq)]
pub struct Media {
    /// The media id (fetch it with `GET /{version}/{id}`).
    pub id: String,
    /// Its MIME type.
    pub mime_type: String,
    /// The file name, for documents.
    pub filename: Option<String>,
}

/// What became of a message we sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Accepted by WhatsApp.
    Sent,
    /// On the customer's phone.
    Delivered,
    /// Opened by the customer.
    Read,
    /// Could not be delivered (see the errors).
    Failed,
    /// A status this build does not know (`deleted`, `warning`, ...).
    Other,
}

impl DeliveryStatus {
    fn parse(s: &str) -> Self {
        match s {
            "sent" => Self::Sent,
            "delivered" => Self::Delivered,
            "read" => Self::Read,
            "failed" => Self::Failed,
            _ => Self::Other,
        }
    }

    /// A short name, also used as a metric label (a closed set, so it cannot
    /// blow up the label cardinality).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Failed => "failed",
            Self::Other => "other",
        }
    }
}

/// A delivery status update.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusUpdate {
    /// The `wamid` of the message we sent.
    pub id: String,
    /// What happened.
    pub status: DeliveryStatus,
    /// The customer's wa_id.
    pub recipient_id: Option<String>,
    /// When.
    pub timestamp: Option<Timestamp>,
    /// Why it failed, one line per error (`131047 Re-engagement message: ...`).
    pub errors: Vec<String>,
}

// The wire shapes. Meta adds fields over time, so unknown ones are ignored;
// only what identifies a message (its id and sender) is required.

#[derive(Deserialize)]
struct RawNotification {
    #[serde(default)]
    object: String,
    #[serde(default)]
    entry: Vec<RawEntry>,
}

#[derive(Deserialize)]
struct RawEntry {
    #[serde(default)]
    changes: Vec<RawChange>,
}

#[derive(Deserialize)]
struct RawChange {
    #[serde(default)]
    field: String,
    #[serde(default)]
    value: Value,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawValue {
    contacts: Vec<RawContact>,
    messages: Vec<RawMessage>,
    statuses: Vec<RawStatus>,
    errors: Vec<RawError>,
}

#[derive(Deserialize)]
struct RawContact {
    wa_id: String,
    profile: Option<RawProfile>,
}

#[derive(Deserialize)]
struct RawProfile {
    name: Option<String>,
}

#[derive(Deserialize)]
struct RawMessage {
    from: String,
    id: String,
    timestamp: Option<String>,
    #[serde(rename = "type", default)]
    kind: String,
    context: Option<RawContext>,
    text: Option<RawText>,
    interactive: Option<RawInteractive>,
    button: Option<RawButton>,
    location: Option<RawLocation>,
    reaction: Option<RawReaction>,
    #[serde(default)]
    errors: Vec<RawError>,
    /// The media object sits under the type's own name (`image`, `audio`,
    /// ...); kept whole here and read for media types only.
    #[serde(flatten)]
    rest: Map<String, Value>,
}

#[derive(Deserialize)]
struct RawContext {
    id: Option<String>,
}

#[derive(Deserialize)]
struct RawText {
    #[serde(default)]
    body: String,
}

#[derive(Deserialize)]
struct RawInteractive {
    #[serde(rename = "type", default)]
    kind: String,
    button_reply: Option<RawReply>,
    list_reply: Option<RawReply>,
}

#[derive(Deserialize)]
struct RawReply {
    #[serde(default)]
    id: String,
    #[serde(default)]
    title: String,
}

#[derive(Deserialize)]
struct RawButton {
    #[serde(default)]
    text: String,
    payload: Option<String>,
}

#[derive(Deserialize)]
struct RawMedia {
    id: String,
    mime_type: Option<String>,
    caption: Option<String>,
    filename: Option<String>,
}

#[derive(Deserialize)]
struct RawLocation {
    latitude: f64,
    longitude: f64,
    name: Option<String>,
    address: Option<String>,
}

#[derive(Deserialize)]
struct RawReaction {
    emoji: Option<String>,
}

#[derive(Deserialize)]
struct RawStatus {
    id: String,
    status: String,
    timestamp: Option<String>,
    recipient_id: Option<String>,
    #[serde(default)]
    errors: Vec<RawError>,
}

#[derive(Deserialize)]
struct RawError {
    code: Option<i64>,
    title: Option<String>,
    message: Option<String>,
    error_data: Option<RawErrorData>,
}

#[derive(Deserialize)]
struct RawErrorData {
    details: Option<String>,
}

impl RawError {
    fn line(&self) -> String {
        let code = self.code.map(|c| c.to_string());
        let details = self.error_data.as_ref().and_then(|d| d.details.clone());
        [code, self.title.clone(), self.message.clone(), details]
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .fold(Vec::<String>::new(), |mut parts, s| {
                // Meta often repeats the title as the message.
                if !parts.contains(&s) {
                    parts.push(s);
                }
                parts
            })
            .join(": ")
    }
}

/// Media types whose payload sits under their own name with an `id`.
const MEDIA_KINDS: &[&str] = &["image", "audio", "video", "document", "sticker"];

/// Parses a notification body (after [`verify_signature`]).
pub fn parse(body: &[u8]) -> Result<Notification, ChannelError> {
    let raw: RawNotification = serde_json::from_slice(body)
        .map_err(|e| ChannelError::invalid("body", format!("not a WhatsApp notification: {e}")))?;
    if !raw.object.is_empty() && raw.object != "whatsapp_business_account" {
        return Err(ChannelError::invalid(
            "object",
            format!("expected whatsapp_business_account, got {:?}", raw.object),
        ));
    }
    let mut out = Notification::default();
    for change in raw.entry.into_iter().flat_map(|e| e.changes) {
        // Other fields (template reviews, account updates) share the
        // endpoint; they carry no conversation.
        if change.field != "messages" {
            continue;
        }
        let value: RawValue = serde_json::from_value(change.value)
            .map_err(|e| ChannelError::invalid("entry.changes.value", e.to_string()))?;
        for message in value.messages {
            let name = value
                .contacts
                .iter()
                .find(|c| c.wa_id == message.from)
                .and_then(|c| c.profile.as_ref()?.name.clone())
                .filter(|n| !n.trim().is_empty());
            out.messages.push(inbound(message, name)?);
        }
        for status in value.statuses {
            out.statuses.push(StatusUpdate {
                status: DeliveryStatus::parse(&status.status),
                timestamp: status.timestamp.as_deref().and_then(unix_seconds),
                errors: status.errors.iter().map(RawError::line).collect(),
                id: status.id,
                recipient_id: status.recipient_id,
            });
        }
        out.errors.extend(value.errors.iter().map(RawError::line));
    }
    Ok(out)
}

fn unix_seconds(s: &str) -> Option<Timestamp> {
    Timestamp::from_second(s.trim().parse().ok()?).ok()
}

fn inbound(m: RawMessage, profile_name: Option<String>) -> Result<InboundMessage, ChannelError> {
    let mut properties = Map::new();
    let mut media = None;
    let text = match m.kind.as_str() {
        "text" => m.text.map(|t| t.body).unwrap_or_default(),
        "interactive" => {
            let reply = m
                .interactive
                .as_ref()
                .and_then(|i| i.button_reply.as_ref().or(i.list_reply.as_ref()));
            match reply {
                Some(r) => {
                    properties.insert("whatsapp_reply_id".into(), Value::String(r.id.clone()));
                    r.title.clone()
                }
                None => format!(
                    "[interactive reply of type {}]",
                    m.interactive
                        .as_ref()
                        .map_or("unknown", |i| i.kind.as_str())
                ),
            }
        }
        "button" => {
            let button = m.button.unwrap_or(RawButton {
                text: String::new(),
                payload: None,
            });
            if let Some(p) = button.payload {
                properties.insert("whatsapp_button_payload".into(), Value::String(p));
            }
            button.text
        }
        kind if MEDIA_KINDS.contains(&kind) => {
            let raw = m.rest.get(kind).cloned().unwrap_or(Value::Null);
            let raw: RawMedia = serde_json::from_value(raw)
                .map_err(|e| ChannelError::invalid(format!("messages.{kind}"), e.to_string()))?;
            let text = match (&raw.caption, &raw.filename) {
                (Some(c), _) if !c.trim().is_empty() => c.clone(),
                (_, Some(f)) => format!("[{kind}: {f}]"),
                _ => format!("[{kind}]"),
            };
            media = Some(Media {
                id: raw.id,
                mime_type: raw
                    .mime_type
                    .unwrap_or_else(|| "application/octet-stream".into()),
                filename: raw.filename,
            });
            text
        }
        "location" => match m.location {
            Some(l) => {
                let label: Vec<String> = [l.name, l.address].into_iter().flatten().collect();
                let place = if label.is_empty() {
                    String::new()
                } else {
                    format!("{} ", label.join(", "))
                };
                format!("Location: {place}({}, {})", l.latitude, l.longitude)
            }
            None => "[location]".into(),
        },
        "reaction" => match m.reaction.and_then(|r| r.emoji) {
            Some(emoji) if !emoji.is_empty() => format!("[reaction {emoji}]"),
            _ => "[reaction removed]".into(),
        },
        other => {
            let why: Vec<String> = m.errors.iter().map(RawError::line).collect();
            if why.is_empty() {
                format!("[WhatsApp message of type {other}, not shown here]")
            } else {
                format!(
                    "[WhatsApp message of type {other}, not shown here: {}]",
                    why.join("; ")
                )
            }
        }
    };
    Ok(InboundMessage {
        timestamp: m.timestamp.as_deref().and_then(unix_seconds),
        context_id: m.context.and_then(|c| c.id).filter(|id| !id.is_empty()),
        id: m.id,
        wa_id: m.from,
        profile_name,
        kind: m.kind,
        text,
        properties,
        media,
    })
}

/// Where replies are posted: `{base}/{version}/{phone_number_id}/messages`.
pub fn reply_url(base: &str, version: &str, phone_number_id: &str) -> String {
    format!(
        "{}/{}/{}/messages",
        base.trim_end_matches('/'),
        version.trim_matches('/'),
        phone_number_id
    )
}

/// The JSON body of a free-form text reply to `wa_id` (digits, no `+`),
/// quoting `context` (the customer's message it answers) when given.
pub fn reply_body(wa_id: &str, text: &str, context: Option<&str>) -> Value {
    let mut body = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": wa_id.trim_start_matches('+'),
        "type": "text",
        "text": {"body": text},
    });
    if let (Some(id), Some(obj)) = (context, body.as_object_mut()) {
        obj.insert("context".into(), json!({"message_id": id}));
    }
    body
}

/// Whether a free-form reply at `now` is still inside the 24-hour window
/// opened by the customer's message at `last_inbound`.
pub fn reply_window_open(last_inbound: Timestamp, now: Timestamp) -> bool {
    now.duration_since(last_inbound) <= REPLY_WINDOW
}

/// The `wamid` the Graph API gave a message it accepted
/// (`{"messages": [{"id": ...}]}`).
pub fn sent_message_id(response: &[u8]) -> Result<String, ChannelError> {
    let value: Value = serde_json::from_slice(response)
        .map_err(|e| ChannelError::invalid("response", e.to_string()))?;
    value["messages"][0]["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| ChannelError::invalid("response", "no messages[0].id"))
}

/// The explanation in a Graph API error body
/// (`{"error": {"message", "code", ...}}`), if it has one.
pub fn error_message(response: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(response).ok()?;
    let error = value.get("error")?;
    let message = error.get("message")?.as_str()?;
    Some(match error.get("code").and_then(Value::as_i64) {
        Some(code) => format!("{code} {message}"),
        None => message.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notification(value: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "object": "whatsapp_business_account",
            "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": value}]}]
        }))
        .unwrap()
    }

    fn message(extra: Value) -> Value {
        let mut m = json!({"from": "33612345678", "id": "wamid.A", "timestamp": "1774605600"});
        m.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": "PNID"},
            "contacts": [{"profile": {"name": "Cleo"}, "wa_id": "33612345678"}],
            "messages": [m]
        })
    }

    fn one(extra: Value) -> InboundMessage {
        let mut n = parse(&notification(message(extra))).unwrap();
        assert_eq!(n.messages.len(), 1);
        n.messages.remove(0)
    }

    #[test]
    fn signatures_are_checked_on_the_raw_bytes() {
        let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
        let header = sign("s3cret", body);
        // Known answer, computed independently with
        // `printf %s "$body" | openssl dgst -sha256 -hmac s3cret`.
        assert_eq!(
            header,
            "sha256=76d7cf0d41b1c62907ab63a2ffb509a14ebd4bfe05b33a2e8c6960459868a174"
        );
        assert!(verify_signature("s3cret", Some(&header), body).is_ok());
        // One byte of whitespace more is another body.
        let mut spaced = body.to_vec();
        spaced.push(b' ');
        assert!(verify_signature("s3cret", Some(&header), &spaced).is_err());
        assert!(verify_signature("other", Some(&header), body).is_err());
        assert!(verify_signature("s3cret", None, body).is_err());
        assert!(verify_signature("s3cret", Some("sha1=abc"), body).is_err());
        assert!(verify_signature("s3cret", Some("sha256=zz"), body).is_err());
        assert!(verify_signature("", Some(&sign("", body)), body).is_err());
    }

    #[test]
    fn verification_echoes_the_challenge_only_for_the_right_token() {
        let ok = verify_subscription(Some("subscribe"), Some("tok"), Some("123"), "tok");
        assert_eq!(ok.unwrap(), "123");
        assert!(verify_subscription(Some("subscribe"), Some("bad"), Some("1"), "tok").is_err());
        assert!(verify_subscription(Some("unsubscribe"), Some("tok"), Some("1"), "tok").is_err());
        assert!(verify_subscription(Some("subscribe"), None, Some("1"), "").is_err());
        assert!(verify_subscription(Some("subscribe"), Some(""), Some("1"), "").is_err());
    }

    #[test]
    fn text_messages_carry_the_sender_and_name() {
        let m = one(json!({"type": "text", "text": {"body": "Hello"},
            "context": {"from": "15550001111", "id": "wamid.PREV"}}));
        assert_eq!(m.id, "wamid.A");
        assert_eq!(m.text, "Hello");
        assert_eq!(m.phone().unwrap().as_str(), "+33612345678");
        assert_eq!(m.profile_name.as_deref(), Some("Cleo"));
        assert_eq!(m.context_id.as_deref(), Some("wamid.PREV"));
        assert_eq!(m.timestamp.unwrap().as_second(), 1774605600);
        assert!(m.media.is_none());
    }

    #[test]
    fn interactive_and_button_replies_become_their_titles() {
        let m = one(
            json!({"type": "interactive", "interactive": {"type": "button_reply",
            "button_reply": {"id": "yes-refund", "title": "Yes, refund"}}}),
        );
        assert_eq!(m.text, "Yes, refund");
        assert_eq!(m.properties["whatsapp_reply_id"], "yes-refund");
        let m = one(
            json!({"type": "interactive", "interactive": {"type": "list_reply",
            "list_reply": {"id": "plan-2", "title": "Pro plan", "description": "More seats"}}}),
        );
        assert_eq!(m.text, "Pro plan");
        assert_eq!(m.properties["whatsapp_reply_id"], "plan-2");
        let m = one(
            json!({"type": "button", "button": {"text": "Stop promotions", "payload": "STOP"}}),
        );
        assert_eq!(m.text, "Stop promotions");
        assert_eq!(m.properties["whatsapp_button_payload"], "STOP");
    }

    #[test]
    fn media_is_kept_by_id_with_its_type() {
        let m = one(json!({"type": "image", "image": {"caption": "The receipt",
            "mime_type": "image/jpeg", "sha256": "abc", "id": "MEDIA1"}}));
        assert_eq!(m.text, "The receipt");
        let media = m.media.unwrap();
        assert_eq!(
            (media.id.as_str(), media.mime_type.as_str()),
            ("MEDIA1", "image/jpeg")
        );
        let m = one(
            json!({"type": "document", "document": {"filename": "invoice.pdf",
            "mime_type": "application/pdf", "id": "MEDIA2"}}),
        );
        assert_eq!(m.text, "[document: invoice.pdf]");
        assert_eq!(m.media.unwrap().filename.as_deref(), Some("invoice.pdf"));
        let m = one(
            json!({"type": "audio", "audio": {"mime_type": "audio/ogg; codecs=opus",
            "id": "MEDIA3", "voice": true}}),
        );
        assert_eq!(m.text, "[audio]");
        assert_eq!(m.media.unwrap().mime_type, "audio/ogg; codecs=opus");
        // A media type without its object is malformed.
        assert!(parse(&notification(message(json!({"type": "sticker"})))).is_err());
    }

    #[test]
    fn other_types_become_readable_text() {
        let m = one(json!({"type": "location", "location": {"latitude": 48.8584,
            "longitude": 2.2945, "name": "Eiffel Tower", "address": "Champ de Mars"}}));
        assert_eq!(
            m.text,
            "Location: Eiffel Tower, Champ de Mars (48.8584, 2.2945)"
        );
        let m =
            one(json!({"type": "reaction", "reaction": {"message_id": "wamid.X", "emoji": "👍"}}));
        assert_eq!(m.text, "[reaction 👍]");
        let m = one(json!({"type": "unsupported", "errors": [{"code": 131051,
            "title": "Message type unknown", "message": "Message type unknown"}]}));
        assert_eq!(
            m.text,
            "[WhatsApp message of type unsupported, not shown here: 131051: Message type unknown]"
        );
        let m = one(json!({"type": "contacts", "contacts": [{"name": {"formatted_name": "Bo"}}]}));
        assert!(m.text.contains("contacts"), "{}", m.text);
    }

    #[test]
    fn statuses_are_parsed_with_their_errors() {
        let body = notification(json!({
            "messaging_product": "whatsapp",
            "statuses": [
                {"id": "wamid.OUT", "status": "delivered", "timestamp": "1774605601", "recipient_id": "33612345678"},
                {"id": "wamid.OUT2", "status": "failed", "timestamp": "1774605602", "recipient_id": "33612345678",
                 "errors": [{"code": 131047, "title": "Re-engagement message",
                             "error_data": {"details": "More than 24 hours have passed"}}]}
            ]
        }));
        let n = parse(&body).unwrap();
        assert!(n.messages.is_empty());
        assert_eq!(n.statuses.len(), 2);
        assert_eq!(n.statuses[0].status, DeliveryStatus::Delivered);
        assert_eq!(n.statuses[1].status, DeliveryStatus::Failed);
        assert_eq!(
            n.statuses[1].errors,
            ["131047: Re-engagement message: More than 24 hours have passed"]
        );
    }

    #[test]
    fn other_fields_and_objects() {
        let body = serde_json::to_vec(&json!({"object": "whatsapp_business_account", "entry": [
            {"id": "W", "changes": [{"field": "message_template_status_update",
             "value": {"event": "APPROVED", "messages": "not a list"}}]}]}))
        .unwrap();
        assert_eq!(parse(&body).unwrap(), Notification::default());
        let page = br#"{"object":"page","entry":[]}"#;
        assert!(parse(page).is_err());
        assert!(parse(b"not json").is_err());
    }

    #[test]
    fn reply_request() {
        assert_eq!(
            reply_url("http://127.0.0.1:9/", "v21.0", "PNID"),
            "http://127.0.0.1:9/v21.0/PNID/messages"
        );
        assert_eq!(
            reply_body("+33612345678", "Hi", Some("wamid.A")),
            json!({"messaging_product": "whatsapp", "recipient_type": "individual",
                "to": "33612345678", "type": "text", "text": {"body": "Hi"},
                "context": {"message_id": "wamid.A"}})
        );
        assert!(reply_body("1", "x", None).get("context").is_none());
        assert_eq!(
            sent_message_id(br#"{"messaging_product":"whatsapp","messages":[{"id":"wamid.OUT"}]}"#)
                .unwrap(),
            "wamid.OUT"
        );
        assert!(sent_message_id(b"{}").is_err());
        assert_eq!(
            error_message(br#"{"error":{"message":"Invalid OAuth access token","code":190}}"#)
                .unwrap(),
            "190 Invalid OAuth access token"
        );
    }

    #[test]
    fn the_reply_window_is_24_hours() {
        let t: Timestamp = "2026-03-27T10:00:00Z".parse().unwrap();
        assert!(reply_window_open(t, t + SignedDuration::from_hours(24)));
        assert!(!reply_window_open(
            t,
            t + SignedDuration::from_hours(24) + SignedDuration::from_secs(1)
        ));
    }
}
