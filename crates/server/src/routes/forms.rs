//! `POST /f/{channel_key}`: web form submissions on a `form` channel, from a
//! browser form (`application/x-www-form-urlencoded`) or a script (JSON).
//!
//! Nobody authenticates: the channel key in the URL is public (it is in the
//! customer's page). What keeps the endpoint honest instead:
//! - rate limits per client IP and per channel ([`crate::ratelimit`]; 10
//!   and 600 a minute unless `settings.rate_limit` says otherwise), checked
//!   before the body is read; `429` with `Retry-After`;
//! - a 64 KiB body limit (`413`);
//! - `settings.allowed_origins`: when set, a browser post from any other
//!   page is refused (`403`), and only those origins get CORS headers;
//!   when absent every origin may post (the endpoint takes no cookies
//!   as credentials, so CORS `*` exposes nothing).
//!
//! The fields are mapped by `switchboard_channels::forms` (settings
//! `fields`, `required`, `properties`). The visitor's tracking value comes
//! from a `visitor_token` field or else the `sb_visitor` cookie, and links
//! the ticket to the contact that carries it (contact-owner routing needs
//! that). The ticket is opened through [`crate::inbound::receive`], so it
//! is routed by the channel's rule like any other.
//!
//! Answers: `201 {"ticket_id"}` to JSON (a JSON body, or `Accept:
//! application/json`); to a browser form, a `303` to `settings.redirect_url`
//! or a small thank-you page (`settings.thank_you_message`). Errors are
//! problem bodies naming the submitted field, or for a browser form the
//! same status with a short HTML page.
//!
//! The CORS and cookie helpers here are shared with the chat API.

use std::sync::Arc;

use axum::{
    Extension, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, FromRequest, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Response},
    routing::post,
};
use serde_json::Value;
use switchboard_channels::{ChannelError, forms};
use switchboard_domain::{Channel, ChannelKind};

use crate::{
    AppState,
    extract::Path,
    inbound::{self, Inbound},
    problem::{ApiError, Problem},
    ratelimit::{ClientIp, Limits, RateLimiter},
};

/// Largest accepted submission.
pub const MAX_BODY: usize = 64 * 1024;

/// Limits when `settings.rate_limit` does not set them.
pub const DEFAULT_LIMITS: Limits = Limits {
    per_ip_per_minute: 10,
    per_channel_per_minute: 600,
};

/// The cookie that carries a visitor's tracking value (or, on the chat
/// routes, their signed chat token).
pub const VISITOR_COOKIE: &str = "sb_visitor";

/// The routes of this area.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/f/{channel_key}", post(submit).options(preflight))
        .layer(Extension(Arc::new(RateLimiter::default())))
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

/// A public channel by key, only if it is of `kind` (any other answers 404,
/// like a missing key, so keys of other kinds cannot be probed here).
pub(crate) async fn public_channel(
    state: &AppState,
    key: String,
    kind: ChannelKind,
) -> Result<(switchboard_domain::AccountId, Channel), ApiError> {
    if key.contains('\0') {
        return Err(ApiError::NotFound("channel".into()));
    }
    match state.store.channel_by_key(key).await {
        Ok((account, channel)) if channel.kind == kind => Ok((account, channel)),
        Ok(_) | Err(switchboard_store::StoreError::NotFound(_)) => {
            Err(ApiError::NotFound("channel".into()))
        }
        Err(e) => Err(e.into()),
    }
}

/// A channel's CORS decision for one request.
#[derive(Debug, Clone)]
pub(crate) struct Cors(Option<HeaderValue>);

impl Cors {
    /// Checks the request's `Origin` against `settings.allowed_origins`
    /// (a list of `scheme://host[:port]`): without the setting every origin
    /// is allowed (`*`); with it, a listed origin is echoed back and any
    /// other is refused with `403`. A request without `Origin` (curl, a
    /// server, a same-origin GET) is not a CORS request and passes.
    pub(crate) fn check(channel: &Channel, headers: &HeaderMap) -> Result<Self, ApiError> {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return Ok(Self(None));
        };
        let allowed = match channel.settings.get("allowed_origins") {
            None | Some(Value::Null) => return Ok(Self(Some(HeaderValue::from_static("*")))),
            Some(Value::Array(list)) => list,
            Some(other) => {
                return Err(ApiError::Internal(format!(
                    "channel {}: settings.allowed_origins must be a list of origins, got {other}",
                    channel.id
                )));
            }
        };
        let given = origin.to_str().unwrap_or("").trim_end_matches('/');
        let listed = allowed.iter().filter_map(Value::as_str).any(|o| {
            let o = o.trim().trim_end_matches('/');
            !o.is_empty() && o.eq_ignore_ascii_case(given)
        });
        if listed {
            Ok(Self(Some(origin.clone())))
        } else {
            Err(ApiError::forbidden(format!(
                "origin {given:?} is not in this channel's allowed_origins"
            )))
        }
    }

    /// Adds the CORS headers to `response` (errors included, so a script
    /// can read why it was refused).
    pub(crate) fn apply(&self, mut response: Response) -> Response {
        if let Some(origin) = &self.0 {
            let h = response.headers_mut();
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            h.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("Retry-After"),
            );
            if origin != "*" {
                h.append(header::VARY, HeaderValue::from_static("Origin"));
            }
        }
        response
    }

    /// The answer to a preflight `OPTIONS` request.
    pub(crate) fn preflight(&self, methods: &'static str) -> Response {
        let mut response = StatusCode::NO_CONTENT.into_response();
        let h = response.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(methods),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Content-Type, Accept, X-Visitor-Token, Last-Event-ID"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        self.apply(response)
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim().trim_matches('"').to_owned())
}

/// A channel's settings problem: the channel is misconfigured, which is
/// logged and answered as an internal error (the visitor did nothing wrong).
pub(crate) fn misconfigured(channel: &Channel, e: ChannelError) -> ApiError {
    ApiError::Internal(format!("channel {}: {e}", channel.id))
}

/// A visitor's input problem, as a 422 naming the field.
pub(crate) fn refused(e: ChannelError) -> ApiError {
    match e {
        ChannelError::Invalid { field, message } => ApiError::invalid(field, message),
        ChannelError::Signature(why) => ApiError::BadRequest {
            field: None,
            detail: why,
        },
    }
}

/// `OPTIONS /f/{channel_key}`: the CORS preflight of a JSON post.
#[utoipa::path(options, path = "/f/{channel_key}", tag = "public",
    params(
        ("channel_key" = String, Path, description = "The form channel's key"),
        ("Origin" = Option<String>, Header, description = "The page that will post"),
    ),
    responses(
        (status = 204, description = "Allowed: the CORS headers say what may be sent"),
        (status = 403, description = "This origin is not in the channel's `allowed_origins`", body = Problem),
    ))]
pub(crate) async fn preflight(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (_, channel) = public_channel(&state, key, ChannelKind::Form).await?;
    Ok(Cors::check(&channel, &headers)?.preflight("POST, OPTIONS"))
}

/// How the submitter wants its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// A script: JSON and problem bodies.
    Json,
    /// A browser form: a redirect or a page.
    Html,
}

fn answer_for(headers: &HeaderMap) -> Answer {
    let has = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains("json"))
    };
    if has(header::CONTENT_TYPE) || has(header::ACCEPT) {
        Answer::Json
    } else {
        Answer::Html
    }
}

/// What a form channel does after a submission, read before anything is
/// stored so a misconfiguration never leaves a ticket behind an error.
struct AfterSubmit {
    redirect: Option<HeaderValue>,
    thank_you: String,
}

fn after_submit(channel: &Channel) -> Result<AfterSubmit, ApiError> {
    let redirect = match channel.settings.get("redirect_url") {
        None | Some(Value::Null) => None,
        Some(Value::String(url))
            if (url.starts_with("https://") || url.starts_with("http://"))
                && HeaderValue::from_str(url).is_ok() =>
        {
            HeaderValue::from_str(url).ok()
        }
        Some(other) => {
            return Err(ApiError::Internal(format!(
                "channel {}: settings.redirect_url must be an http(s) URL, got {other}",
                channel.id
            )));
        }
    };
    let thank_you = channel
        .settings
        .get("thank_you_message")
        .and_then(Value::as_str)
        .unwrap_or("Thank you! We received your message and will get back to you soon.")
        .to_owned();
    Ok(AfterSubmit {
        redirect,
        thank_you,
    })
}

/// The answer to a script's submission.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct FormReceived {
    /// The ticket the submission opened.
    pub ticket_id: switchboard_domain::TicketId,
}

/// `POST /f/{channel_key}`: one form submission. A script (a JSON body or
/// `Accept: application/json`) gets JSON and problem bodies; a browser form
/// gets a redirect or a small page, errors included (same status).
#[utoipa::path(post, path = "/f/{channel_key}", tag = "public",
    params(
        ("channel_key" = String, Path, description = "The form channel's key"),
        ("Origin" = Option<String>, Header, description = "The posting page; checked against `settings.allowed_origins`"),
    ),
    request_body(description = "The form's fields (mapped by `settings.fields`)", content(
        (Object = "application/json"),
        (std::collections::HashMap<String, String> = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 201, description = "Ticket opened (JSON answer)", body = FormReceived),
        (status = 200, description = "Ticket opened: the thank-you page", content_type = "text/html", body = String),
        (status = 303, description = "Ticket opened: redirect to `settings.redirect_url`"),
        (status = 400, description = "Malformed body", content((Problem = "application/problem+json"), (String = "text/html"))),
        (status = 403, description = "Origin not allowed", content((Problem = "application/problem+json"), (String = "text/html"))),
        (status = 404, description = "No form channel has this key", content((Problem = "application/problem+json"), (String = "text/html"))),
        (status = 413, description = "Body over 64 KiB", content((Problem = "application/problem+json"), (String = "text/html"))),
        (status = 415, description = "Neither JSON nor a urlencoded form", content((Problem = "application/problem+json"), (String = "text/html"))),
        (status = 422, description = "A field is missing or invalid (named)", content((Problem = "application/problem+json"), (String = "text/html"))),
        (status = 429, description = "Rate limited; see `Retry-After`", content((Problem = "application/problem+json"), (String = "text/html"))),
    ))]
pub async fn submit(
    State(state): State<AppState>,
    Extension(limiter): Extension<Arc<RateLimiter>>,
    Path(key): Path<String>,
    ClientIp(client): ClientIp,
    request: Request,
) -> Response {
    let answer = answer_for(request.headers());
    let result = match public_channel(&state, key, ChannelKind::Form).await {
        Ok((account, channel)) => {
            handle(&state, &limiter, client, account, &channel, request).await
        }
        Err(e) => Err(e),
    };
    match (result, answer) {
        (Ok(response), _) => response,
        (Err(e), Answer::Json) => e.into_response(),
        (Err(e), Answer::Html) => error_page(e),
    }
}

/// The submission once the channel is known; CORS headers are added here so
/// that they are on every answer, errors included.
async fn handle(
    state: &AppState,
    limiter: &RateLimiter,
    client: Option<std::net::IpAddr>,
    account: switchboard_domain::AccountId,
    channel: &Channel,
    request: Request,
) -> Result<Response, ApiError> {
    let headers = request.headers().clone();
    let cors = Cors::check(channel, &headers)?;
    let result: Result<Response, ApiError> = async {
        let limits = Limits::from_settings(&channel.settings, DEFAULT_LIMITS)?;
        limiter.check(&channel.key, client, limits)?;
        let settings = forms::FormSettings::from_settings(&channel.settings)
            .map_err(|e| misconfigured(channel, e))?;
        let after = after_submit(channel)?;
        let body = Bytes::from_request(request, &()).await?;
        let fields = parse_body(&headers, &body)?;
        if let Some((name, _)) = fields
            .iter()
            .find(|(n, v)| n.contains('\0') || v.to_string().contains("\\u0000"))
        {
            return Err(ApiError::invalid(
                name.clone(),
                "text cannot contain the NUL character (U+0000)",
            ));
        }
        let submission = forms::map_submission(&settings, fields).map_err(refused)?;
        // The field wins over the cookie: the page's author put it there on
        // purpose. A malformed cookie is ignored rather than refused; the
        // visitor cannot see or fix it.
        let visitor_token = submission.visitor_token.clone().or_else(|| {
            cookie(&headers, VISITOR_COOKIE).and_then(|c| forms::normalize_visitor_token(&c).ok())
        });
        let received = inbound::receive(
            state,
            account,
            channel,
            Inbound {
                contact: submission.contact(),
                subject: submission.subject,
                body: submission.message,
                properties: submission.properties,
                visitor_token,
                ..Inbound::default()
            },
        )
        .await?;
        metrics::counter!("switchboard_form_submissions_total").increment(1);
        let id = received.ticket.id;
        Ok(match answer_for(&headers) {
            Answer::Json => (
                StatusCode::CREATED,
                axum::Json(FormReceived { ticket_id: id }),
            )
                .into_response(),
            Answer::Html => match after.redirect {
                Some(url) => (StatusCode::SEE_OTHER, [(header::LOCATION, url)]).into_response(),
                None => page(StatusCode::OK, "Thank you", &after.thank_you),
            },
        })
    }
    .await;
    Ok(cors.apply(match result {
        Ok(r) => r,
        Err(e) => match answer_for(&headers) {
            Answer::Json => e.into_response(),
            Answer::Html => error_page(e),
        },
    }))
}

/// The submitted fields, by content type. Multipart (file uploads) is not
/// taken: files do not belong in an unauthenticated endpoint.
fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<Vec<(String, Value)>, ApiError> {
    let mime = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let malformed = |e: ChannelError| ApiError::BadRequest {
        field: Some("body".into()),
        detail: e.to_string(),
    };
    if mime == "application/x-www-form-urlencoded" {
        forms::parse_urlencoded(body).map_err(malformed)
    } else if mime == "application/json" || mime.ends_with("+json") {
        let value: Value = serde_json::from_slice(body).map_err(|e| ApiError::BadRequest {
            field: None,
            detail: format!("malformed JSON: {e}"),
        })?;
        forms::json_fields(value).map_err(refused)
    } else {
        Err(ApiError::UnsupportedMediaType)
    }
}

/// An error for a person at a browser: the same status (and `Retry-After`)
/// as the problem body, with a short page saying what to fix.
fn error_page(e: ApiError) -> Response {
    let what = match &e {
        ApiError::Invalid {
            field: Some(field),
            detail,
        } => format!("Please check the field \u{201c}{field}\u{201d}: {detail}"),
        ApiError::TooManyRequests { .. } => {
            "Too many submissions from here; please wait a moment and try again.".into()
        }
        ApiError::TooLarge => "This submission is too large.".into(),
        ApiError::Internal(_) => "Something went wrong on our side; please try again later.".into(),
        other => other.to_string(),
    };
    let problem = e.into_response();
    let mut response = page(problem.status(), "Your message was not sent", &what);
    if let Some(retry) = problem.headers().get(header::RETRY_AFTER) {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, retry.clone());
    }
    response
}

/// A minimal HTML page.
fn page(status: StatusCode, title: &str, text: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{t}</title></head>\
         <body style=\"font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem\">\
         <h1 style=\"font-size:1.4rem\">{t}</h1><p>{m}</p>\
         <p><a href=\"javascript:history.back()\">Back</a></p></body></html>",
        t = escape_html(title),
        m = escape_html(text)
    );
    (status, Html(html)).into_response()
}

/// Escapes text for HTML content and attribute values.
pub(crate) fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; sb_visitor=utk-9 ; b=2"),
        );
        assert_eq!(cookie(&h, "sb_visitor").as_deref(), Some("utk-9"));
        assert_eq!(cookie(&h, "missing"), None);
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape_html("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
