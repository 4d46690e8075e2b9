//! The app's one error type, answered as RFC 9457 `application/problem+json`.
//!
//! 4xx bodies say what to fix; 5xx bodies stay generic while the detail goes to the log.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tidemark::StreamVersion;

/// Seconds a client should wait before retrying after a 503.
pub const RETRY_AFTER_SECS: u32 = 1;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The request is malformed: not JSON, wrong shape, a bad header.
    #[error("{0}")]
    BadRequest(String),
    /// The body is not declared as JSON.
    #[error("the body is JSON: send it as application/json")]
    UnsupportedMediaType,
    /// The body is larger than the server accepts.
    #[error("the body is too large")]
    TooLarge,
    /// The request is well-formed but its content breaks a rule (an empty order, a bad currency).
    #[error("{0}")]
    Invalid(String),
    /// No valid bearer token.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// The user's role does not allow this.
    #[error("this needs the admin role")]
    Forbidden,
    /// Nothing here for this user (absent, or someone else's).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The order was deleted (its stream ends with a tombstone): it is gone for good.
    #[error("this {0} was deleted")]
    Gone(&'static str),
    /// The order is not at the version the request expected (`If-Match`).
    #[error("the order is at version {actual}, not {expected}")]
    Conflict {
        /// The version the request expected.
        expected: StreamVersion,
        /// The order's version.
        actual: StreamVersion,
    },
    /// The `Idempotency-Key` was used before for a different request.
    #[error("this Idempotency-Key was used for a different request; use a new key")]
    KeyReused,
    /// The read model did not catch up within the requested wait.
    #[error("the read model did not catch up within the wait")]
    Lagging,
    /// Too many commands in flight, or the store or broker is unreachable: retry later.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    /// Chaos mode failed this request on purpose.
    #[error("chaos mode failed this request")]
    Chaos,
    /// Anything else; the detail is logged, not shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// Maps a store error: a deleted stream is gone (410), another tenant's stream is
    /// not found (404), conflicts and transient failures are retryable (503), the rest
    /// internal.
    pub fn store(error: &tidemark::Error) -> Self {
        if let tidemark::Error::StreamDeleted { .. } = error {
            Self::Gone("order")
        } else if let tidemark::Error::TenantMismatch { .. } = error {
            // Another tenant's order: not this caller's to know about (nor whose it is).
            Self::NotFound("order")
        } else if error.is_retryable() {
            Self::Unavailable(error.to_string())
        } else {
            Self::Internal(error.to_string())
        }
    }

    /// Maps a read-model error.
    pub fn read_models(error: &tidemark_projections::ProjectionError) -> Self {
        if error.is_retryable() {
            Self::Unavailable(error.to_string())
        } else {
            Self::Internal(error.to_string())
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Invalid(_) | Self::KeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Gone(_) => StatusCode::GONE,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::Lagging | Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Chaos | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem type's short name, also the last segment of its `type` URI.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad-request",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::TooLarge => "payload-too-large",
            Self::Invalid(_) => "validation",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound(_) => "not-found",
            Self::Gone(_) => "gone",
            Self::Conflict { .. } => "version-conflict",
            Self::KeyReused => "idempotency-key-reused",
            Self::Lagging => "read-model-lagging",
            Self::Unavailable(_) => "unavailable",
            Self::Chaos => "chaos",
            Self::Internal(_) => "internal",
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::Unavailable(_) => "the service is temporarily unavailable; retry later".to_owned(),
            Self::Internal(_) => "something went wrong on our side".to_owned(),
            other => other.to_string(),
        }
    }
}

/// An RFC 9457 problem document.
#[derive(Debug, Serialize)]
struct Problem {
    r#type: String,
    title: &'static str,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    expected_version: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    actual_version: Option<u64>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() && !matches!(self, Self::Chaos) {
            tracing::error!(error = %self, "request failed");
        }
        let (expected_version, actual_version) = match &self {
            Self::Conflict { expected, actual } => (Some(expected.0), Some(actual.0)),
            _ => (None, None),
        };
        let problem = Problem {
            r#type: format!("/problems/{}", self.code()),
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: self.detail(),
            expected_version,
            actual_version,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::ApiError;
    use axum::http::StatusCode;
    use tidemark::{Error, StreamId};

    #[test]
    fn another_tenants_stream_is_not_found_and_its_tenant_is_not_shown() {
        let stream = StreamId::new("order-1").expect("stream id");
        let mismatch =
            Error::TenantMismatch { stream, stream_tenant: Some("globex".into()), tenant: Some("acme".into()) };
        let error = ApiError::store(&mismatch);
        assert_eq!(error.status(), StatusCode::NOT_FOUND);
        assert!(!error.to_string().contains("globex"), "{error}");
    }
}
