//! Workflow webhooks: the body fixed when the step ran, POSTed as JSON and
//! signed with the action's secret, so the receiver can tell it came from
//! this help desk and was not changed on the way.
//!
//! - `X-Switchboard-Signature: sha256=<hex>`: HMAC-SHA256 of the raw body
//!   under the action's secret (absent without one);
//! - `X-Switchboard-Delivery: <outbox row id>`: the same on every retry, so
//!   a receiver can drop a delivery it already handled.
//!
//! A 2xx answer is done; 408, 429 and 5xx (and no answer) are retried with
//! the outbox's backoff; other answers fail the row at once.

use std::{sync::OnceLock, time::Duration};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::DeliveryError;

fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a TLS backend is compiled in")
    })
}

/// The signature header's value for `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// POSTs `body` to `url` (delivery `delivery`, signed when there is a
/// secret).
pub async fn post(
    url: &str,
    body: &serde_json::Value,
    secret: Option<&str>,
    delivery: i64,
) -> Result<(), DeliveryError> {
    let bytes = serde_json::to_vec(body).map_err(|e| DeliveryError::Permanent(e.to_string()))?;
    let mut request = client()
        .post(url)
        .header("content-type", "application/json")
        .header("x-switchboard-delivery", delivery.to_string());
    if let Some(secret) = secret {
        request = request.header("x-switchboard-signature", signature(secret, &bytes));
    }
    let answer = request
        .body(bytes)
        .send()
        .await
        // The URL is the admin's own; the error names no secret.
        .map_err(|e| {
            DeliveryError::Transient(format!("webhook unreachable: {}", e.without_url()))
        })?;
    let status = answer.status();
    if status.is_success() {
        Ok(())
    } else if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
        Err(DeliveryError::Transient(format!(
            "webhook answered {status}"
        )))
    } else {
        Err(DeliveryError::Permanent(format!(
            "webhook answered {status}"
        )))
    }
}
