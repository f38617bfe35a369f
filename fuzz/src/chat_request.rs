//! Chat visitor requests: the bodies of `POST /chat/{key}/conversations`
//! and `POST .../messages` through the server's JSON extractor and their
//! checks (`switchboard_server::routes::chat::request`), the client id that
//! becomes an external id, and signed visitor tokens
//! (`routes::chat::visitor::{sign, verify}`).
//!
//! Checked: an accepted message is trimmed, not empty, at most 10,000
//! characters; an accepted client id cannot break out of its scope in the
//! external id; a token verifies only if it is the signature of its
//! visitor id, a signed token always verifies, and the form channel reads
//! it as the bare visitor id.

use switchboard_channels::forms::normalize_visitor_token;
use switchboard_domain::{ChannelId, EmailAddress};
use switchboard_server::routes::chat::{
    request::{self, MAX_MESSAGE_CHARS},
    visitor,
};

const KEY: &[u8] = b"fuzz-visitor-signing-key";
const CHANNEL: ChannelId = ChannelId(7);
const VISITOR: &str = "0123456789abcdef0123456789abcdef";

fn check_text(text: &str) {
    assert_eq!(text, text.trim());
    assert!(!text.is_empty());
    assert!(text.chars().count() <= MAX_MESSAGE_CHARS);
}

fn check_client_id(client_id: Option<&str>) {
    if let Ok(Some(ext)) = request::external_id(CHANNEL, VISITOR, "start", client_id) {
        let id = client_id.expect("an id was given");
        assert_eq!(ext, format!("chat:7:{VISITOR}:start:{id}"));
        assert_eq!(ext.matches(':').count(), 4, "{ext:?}");
    }
}

/// One input: a request body; as text, also a presented visitor token.
pub fn run(data: &[u8]) {
    let headers = crate::json_headers();
    if let Ok(start) = request::parse_start(&headers, data) {
        check_text(&start.text);
        if let Some(email) = &start.email {
            assert_eq!(
                EmailAddress::try_from(email.to_string()).as_ref(),
                Ok(email)
            );
        }
        if let Some(name) = &start.name {
            assert_eq!(name.as_str(), name.as_str().trim());
        }
        check_client_id(start.client_id.as_deref());
    }
    if let Ok((text, client_id)) = request::parse_send(&headers, data) {
        check_text(&text);
        check_client_id(client_id.as_deref());
    }
    // Without a JSON content type nothing is parsed.
    assert!(request::parse_send(&axum::http::HeaderMap::new(), data).is_err());

    if let Ok(token) = std::str::from_utf8(data) {
        if let Some(id) = visitor::verify(KEY, CHANNEL, token) {
            assert_eq!(id.len(), 32);
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
            assert_eq!(
                visitor::verify(KEY, ChannelId(8), token),
                None,
                "token valid on another channel"
            );
        }
        if let Ok(normalized) = normalize_visitor_token(token) {
            assert!(!normalized.is_empty());
        }
    }
    // A visitor id made of the input's first bytes round-trips.
    let mut bytes = [0u8; 16];
    for (b, d) in bytes.iter_mut().zip(data) {
        *b = *d;
    }
    let id = hex::encode(bytes);
    let token = visitor::sign(KEY, CHANNEL, &id);
    assert_eq!(
        visitor::verify(KEY, CHANNEL, &token).as_deref(),
        Some(id.as_str())
    );
    assert_eq!(visitor::verify(b"another-key", CHANNEL, &token), None);
    assert_eq!(
        normalize_visitor_token(&token).ok().as_deref(),
        Some(id.as_str())
    );
}
