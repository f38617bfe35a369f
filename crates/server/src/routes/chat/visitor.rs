//! Who a chat visitor is: signed visitor tokens (`<visitor id>.<signature>`,
//! HMAC-SHA256 keyed by the channel's `settings.secrets.visitor_signing_key`,
//! created on first use), where a request presents one, and which
//! conversations it opens. See the parent module for the reasoning.

use axum::http::HeaderMap;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde_json::{Map, Value};
use sha2::Sha256;
use switchboard_domain::{input::ChannelPatch, *};

use super::TOKEN_HEADER;
use crate::{
    AppState,
    problem::ApiError,
    routes::forms::{VISITOR_COOKIE, cookie},
};

/// Where the signing key lives in a channel's settings.
const KEY_SECRET: &str = "visitor_signing_key";

type HmacSha256 = Hmac<Sha256>;

fn signature(key: &[u8], channel: ChannelId, visitor: &str) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(format!("switchboard-chat-visitor:v1:{channel}:{visitor}").as_bytes());
    mac
}

/// A new visitor id and its signed token.
pub(super) fn issue(key: &[u8], channel: ChannelId) -> (String, String) {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let visitor = hex::encode(bytes);
    let token = sign(key, channel, &visitor);
    (visitor, token)
}

/// The signed token of `visitor` on `channel`: `<visitor>.<base64url of
/// HMAC-SHA256(key, "switchboard-chat-visitor:v1:<channel>:<visitor>")>`.
pub fn sign(key: &[u8], channel: ChannelId, visitor: &str) -> String {
    let mac = signature(key, channel, visitor).finalize().into_bytes();
    format!(
        "{visitor}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac)
    )
}

/// The visitor id of a token signed with `key` for `channel`; `None` for
/// anything else. The comparison is in constant time.
pub fn verify(key: &[u8], channel: ChannelId, token: &str) -> Option<String> {
    let (visitor, sig) = token.trim().split_once('.')?;
    if visitor.len() != 32 || !visitor.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sig)
        .ok()?;
    signature(key, channel, visitor)
        .verify_slice(&sig)
        .ok()
        .map(|()| visitor.to_ascii_lowercase())
}

pub(super) fn stored_key(channel: &Channel) -> Option<Vec<u8>> {
    channel
        .settings
        .get("secrets")?
        .get(KEY_SECRET)?
        .as_str()
        .filter(|k| !k.is_empty())
        .map(|k| k.as_bytes().to_vec())
}

/// The channel's signing key, created and stored on first use.
pub(super) async fn ensure_key(
    state: &AppState,
    key_lock: &tokio::sync::Mutex<()>,
    account: AccountId,
    channel: &Channel,
) -> Result<Vec<u8>, ApiError> {
    if let Some(key) = stored_key(channel) {
        return Ok(key);
    }
    let _creating = key_lock.lock().await;
    // Another request of this process may have created it meanwhile.
    let fresh = state.store.get_channel(account, channel.id).await?;
    if let Some(key) = stored_key(&fresh) {
        return Ok(key);
    }
    let mut settings = fresh.settings;
    let secrets = settings
        .entry("secrets")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(secrets) = secrets else {
        return Err(ApiError::Internal(format!(
            "channel {}: settings.secrets is not an object",
            channel.id
        )));
    };
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let key = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    secrets.insert(KEY_SECRET.into(), Value::String(key));
    let patch = ChannelPatch {
        settings: Some(settings),
        ..ChannelPatch::default()
    };
    let updated = state
        .store
        .update_channel(account, channel.id, patch)
        .await?;
    stored_key(&updated)
        .ok_or_else(|| ApiError::Internal("the visitor signing key was not stored".into()))
}

/// The token the request presents: header, then query, then cookie.
pub(super) fn presented(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    headers
        .get(TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| query.map(str::to_owned))
        .or_else(|| cookie(headers, VISITOR_COOKIE))
        .filter(|t| !t.trim().is_empty())
}

/// The visitor the request is from, or `401`.
pub(super) fn visitor(
    channel: &Channel,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<String, ApiError> {
    let key = stored_key(channel).ok_or(ApiError::Unauthorized)?;
    presented(headers, query)
        .and_then(|t| verify(&key, channel.id, &t))
        .ok_or(ApiError::Unauthorized)
}

/// The visitor's conversation `id` on `channel`, or `404` (missing, another
/// channel's, another visitor's: all alike).
pub(super) async fn conversation(
    state: &AppState,
    account: AccountId,
    channel: &Channel,
    visitor: &str,
    id: TicketId,
) -> Result<Ticket, ApiError> {
    let not_found = || ApiError::NotFound("conversation".into());
    let ticket = match state.store.get_ticket(account, id).await {
        Ok(t) => t,
        Err(switchboard_store::StoreError::NotFound(_)) => return Err(not_found()),
        Err(e) => return Err(e.into()),
    };
    let owned = ticket.channel_id == Some(channel.id)
        && ticket
            .properties
            .get("visitor_token")
            .and_then(Value::as_str)
            == Some(visitor);
    if owned { Ok(ticket) } else { Err(not_found()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_with_their_key_and_channel() {
        let (visitor, token) = issue(b"key-one", ChannelId(1));
        assert_eq!(
            verify(b"key-one", ChannelId(1), &token),
            Some(visitor.clone())
        );
        assert_eq!(verify(b"key-two", ChannelId(1), &token), None);
        assert_eq!(verify(b"key-one", ChannelId(2), &token), None);
        let (_, sig) = token.split_once('.').unwrap();
        let other = format!("{}.{sig}", "0".repeat(32));
        assert_eq!(
            verify(b"key-one", ChannelId(1), &other),
            None,
            "a signature is tied to its visitor"
        );
        for junk in ["", ".", &visitor, "zz.zz", &format!("{visitor}.!!")] {
            assert_eq!(verify(b"key-one", ChannelId(1), junk), None, "{junk}");
        }
        // The form channel reads the same token as the bare visitor id.
        assert_eq!(
            switchboard_channels::forms::normalize_visitor_token(&token).unwrap(),
            visitor
        );
    }
}
