//! The bodies of Switchboard's fuzz targets, one module per parser family.
//!
//! Each `run(data)` feeds outside bytes to the real parsing code and checks
//! the invariants that must hold whatever the bytes are (no panic is the
//! first). The binaries in `fuzz_targets/` are one-line wrappers for
//! libFuzzer (`cargo fuzz run <target>`); `tests/replay.rs` runs every file
//! of `corpus/<target>/` and `regressions/<target>/` through the same
//! functions as a plain `cargo test`.

pub mod api_json;
pub mod chat_request;
pub mod email_parse;
pub mod form_submission;
pub mod smtp_session;
pub mod twilio_params;
pub mod whatsapp_webhook;

/// A target's body: one input, checked.
pub type Target = fn(&[u8]);

/// Every target: its name (the directory of its corpus) and its body.
pub const TARGETS: &[(&str, Target)] = &[
    ("api_json", api_json::run),
    ("chat_request", chat_request::run),
    ("email_parse", email_parse::run),
    ("form_submission", form_submission::run),
    ("smtp_session", smtp_session::run),
    ("twilio_params", twilio_params::run),
    ("whatsapp_webhook", whatsapp_webhook::run),
];

/// The headers of a JSON request.
pub fn json_headers() -> axum::http::HeaderMap {
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    headers
}

/// `data` cut at its first line feed: the line (without it) and the rest.
pub fn first_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[]),
    }
}
