//! The one error type of the HTTP layer. Every failure becomes an RFC 9457
//! problem body (`application/problem+json`) naming the field at fault when
//! there is one. Internal errors are logged with their cause and answered
//! with a generic body, so database details never reach a client.

use axum::{
    Json,
    extract::rejection::{BytesRejection, PathRejection, QueryRejection},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use switchboard_domain::DomainError;
use switchboard_store::StoreError;

/// An RFC 9457 problem body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind of problem.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong this time, for a person.
    pub detail: String,
    /// The request field at fault (a JSON path such as `contact.email`, a
    /// query parameter, a path parameter or a header), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed (bad JSON syntax, bad query or path).
    #[error("{detail}")]
    BadRequest {
        field: Option<String>,
        detail: String,
    },
    /// The request is well-formed but a value is not acceptable.
    #[error("{detail}")]
    Invalid {
        field: Option<String>,
        detail: String,
    },
    /// No or unknown credentials.
    #[error("authentication required")]
    Unauthorized,
    /// Authenticated, but the role does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// Not found in the caller's account.
    #[error("{0} not found")]
    NotFound(String),
    /// A path whose parameter cannot name anything (`/tickets/abc`): there
    /// is no resource at that address, so 404, naming the parameter.
    #[error("{detail}")]
    NoSuchPath { field: String, detail: String },
    /// Clashes with existing data.
    #[error("{detail}")]
    Conflict { field: String, detail: String },
    /// The route exists but not with this method.
    #[error("this route does not take this method")]
    MethodNotAllowed,
    /// The body is larger than allowed.
    #[error("request body too large")]
    TooLarge,
    /// The body is not JSON.
    #[error("expected a JSON body (Content-Type: application/json)")]
    UnsupportedMediaType,
    /// Too many requests from this client or to this channel; retry after
    /// the given delay (sent as `Retry-After`).
    #[error("too many requests; retry in {retry_after_seconds} s")]
    TooManyRequests {
        /// Seconds until a request would be accepted again.
        retry_after_seconds: u64,
    },
    /// The server is shutting down.
    #[error("shutting down")]
    Unavailable,
    /// A bug or an infrastructure failure; logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A 422 on `field`.
    pub fn invalid(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::Invalid {
            field: Some(field.into()),
            detail: detail.into(),
        }
    }

    /// A 403 with a reason.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::Forbidden(detail.into())
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Self::BadRequest { .. } => {
                (StatusCode::BAD_REQUEST, "bad-request", "Malformed request")
            }
            Self::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid", "Invalid value"),
            Self::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Authentication required",
            ),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Not allowed"),
            Self::NotFound(_) | Self::NoSuchPath { .. } => {
                (StatusCode::NOT_FOUND, "not-found", "Not found")
            }
            Self::Conflict { .. } => (StatusCode::CONFLICT, "conflict", "Conflict"),
            Self::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            Self::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                "Request too large",
            ),
            Self::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            Self::TooManyRequests { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-requests",
                "Too many requests",
            ),
            Self::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Unavailable",
            ),
            Self::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, slug, title) = self.parts();
        let detail = match &self {
            Self::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                "something went wrong on our side; it has been logged".to_owned()
            }
            other => other.to_string(),
        };
        let field = match &self {
            Self::BadRequest { field, .. } | Self::Invalid { field, .. } => field.clone(),
            Self::Conflict { field, .. } | Self::NoSuchPath { field, .. } => Some(field.clone()),
            _ => None,
        };
        let body = Problem {
            kind: format!("urn:switchboard:problem:{slug}"),
            title: title.into(),
            status: status.as_u16(),
            detail,
            field,
        };
        let mut response = (status, Json(body)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Self::TooManyRequests {
            retry_after_seconds,
        } = &self
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_seconds));
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Invalid { field, reason } => Self::invalid(field, reason),
            DomainError::InvalidAt { field, reason } => Self::invalid(field, reason),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::NotFound(what.into()),
            // A duplicate delivery answers like any clash: 409 naming the
            // field (`external_id`). Channels catch it before it gets here.
            StoreError::Conflict { field, message } | StoreError::Duplicate { field, message } => {
                Self::Conflict {
                    field: field.into(),
                    detail: message,
                }
            }
            StoreError::Invalid(e) => e.into(),
            StoreError::ShuttingDown => Self::Unavailable,
            StoreError::Backend(e) => Self::Internal(e.to_string()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(e: PathRejection) -> Self {
        // Every route of this API has one path parameter that can fail to
        // parse, `id` (channel keys and names are any text). A segment that
        // is not an id (`abc`, `3.0`, `None`) names no resource: 404, like
        // an id of another account, rather than 400, since the request
        // itself is well formed.
        Self::NoSuchPath {
            field: "id".into(),
            detail: format!("no resource at this path: {}", e.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        // The message reads "Failed to deserialize query string: NAME: why"
        // for a bad value, or "...: unknown field `NAME`, ..." for a stray one.
        let detail = e.body_text();
        let reason = detail
            .split_once("query string: ")
            .map_or(detail.as_str(), |(_, r)| r);
        let field = match reason.strip_prefix("unknown field `") {
            Some(rest) => rest.split('`').next(),
            None => reason
                .split_once(": ")
                .map(|(name, _)| name)
                .filter(|n| !n.contains(' ')),
        };
        Self::BadRequest {
            field: Some(field.unwrap_or("query").to_owned()),
            detail,
        }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(e: BytesRejection) -> Self {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::TooLarge
        } else {
            Self::BadRequest {
                field: None,
                detail: e.body_text(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::IntoResponse;

    #[test]
    fn a_duplicate_delivery_is_a_409_naming_external_id() {
        let e = StoreError::Duplicate {
            field: "external_id",
            message: "a message with this external id exists".into(),
        };
        assert!(e.is_duplicate());
        let api = ApiError::from(e);
        assert!(
            matches!(&api, ApiError::Conflict { field, .. } if field == "external_id"),
            "{api:?}"
        );
        assert_eq!(api.into_response().status(), StatusCode::CONFLICT);
    }
}
