//! The span every request is logged in (`tower_http`'s trace layer, at
//! `debug`): method, path and query, with the values of credential-like
//! query parameters redacted. Some callers cannot send a secret anywhere
//! else: Meta's subscription check carries the channel's verify token as
//! `hub.verify_token`, and a browser's `EventSource` the chat visitor's
//! token as `visitor_token`; neither may reach the log.

use axum::http::{Request, Uri};

/// Query parameters whose name contains one of these have their value
/// replaced by [`REDACTED`].
const SECRET_WORDS: [&str; 6] = ["token", "secret", "password", "signature", "key", "auth"];

/// What a redacted value is logged as.
pub const REDACTED: &str = "[redacted]";

/// The span of one request.
pub fn span<B>(request: &Request<B>) -> tracing::Span {
    tracing::debug_span!(
        "request",
        method = %request.method(),
        uri = %loggable(request.uri()),
        version = ?request.version(),
    )
}

/// The path and query of `uri` as they may be logged.
pub fn loggable(uri: &Uri) -> String {
    let Some(query) = uri.query() else {
        return uri.path().to_owned();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret(name) => format!("{name}={REDACTED}"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{}?{}", uri.path(), query.join("&"))
}

/// Whether a (percent-encoded) parameter name names a credential.
fn is_secret(name: &str) -> bool {
    let decoded = percent_decode(name).to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| decoded.contains(w))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_the_query_are_redacted() {
        let uri: Uri =
            "/webhooks/whatsapp/k?hub.mode=subscribe&hub.verify_token=s3cr3t&hub.challenge=42"
                .parse()
                .unwrap();
        assert_eq!(
            loggable(&uri),
            "/webhooks/whatsapp/k?hub.mode=subscribe&hub.verify_token=[redacted]&hub.challenge=42"
        );
        for q in [
            "visitor_token=s3cr3t",
            "hub.verify%5Ftoken=s3cr3t",
            "%74oken=s3cr3t",
            "API_KEY=s3cr3t",
        ] {
            let uri: Uri = format!("/x?{q}&after=3").parse().unwrap();
            let shown = loggable(&uri);
            assert!(
                !shown.contains("s3cr3t") && shown.ends_with("&after=3"),
                "{shown}"
            );
        }
        let uri: Uri = "/api/v1/tickets?view=mine&limit=5".parse().unwrap();
        assert_eq!(loggable(&uri), "/api/v1/tickets?view=mine&limit=5");
        assert_eq!(loggable(&"/healthz".parse().unwrap()), "/healthz");
        assert_eq!(percent_decode("a%2"), "a%2");
    }
}
