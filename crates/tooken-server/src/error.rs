//! One error type for the whole API, rendered in the spec's error shape:
//! `{"error": "<code>", "message": "<text>"}` plus fields where useful.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
pub use tooken_core::api::ErrorBody;
use tooken_core::api::{www_authenticate_insufficient_scope, www_authenticate_unauthorized};
use tooken_service::ServiceError;

/// The message of every 401, whatever the cause: the response must not
/// reveal whether the credential was absent, malformed, unknown, revoked,
/// regenerated away or expired.
pub const UNAUTHORIZED_MESSAGE: &str = "Invalid or missing API key";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    InvalidRequest {
        message: String,
        field: Option<String>,
    },
    /// `credential_presented` only changes the `WWW-Authenticate` header.
    #[error("unauthorized")]
    Unauthorized { credential_presented: bool },
    #[error("{message}")]
    Forbidden {
        message: String,
        required_scope: Option<String>,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// The request was not received and answered within the server's
    /// time limit ([`crate::Limits::request_timeout`]).
    #[error("the request took too long: send it whole, promptly, and try again")]
    RequestTimeout,
    #[error("too many requests")]
    RateLimited { retry_after_seconds: u64 },
    #[error("the store is unavailable")]
    Unavailable,
    #[error(transparent)]
    Internal(#[from] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::InvalidRequest {
            message: message.into(),
            field: Some(field.into()),
        }
    }

    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> ApiError {
        ApiError::Internal(Box::new(e))
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid { message, field } => ApiError::InvalidRequest { message, field },
            ServiceError::Forbidden {
                message,
                required_scope,
            } => ApiError::Forbidden {
                message,
                required_scope,
            },
            ServiceError::NotFound(nf) => ApiError::NotFound(nf.to_string()),
            ServiceError::Conflict { message, .. } => ApiError::Conflict(message),
            ServiceError::Unavailable => ApiError::Unavailable,
            ServiceError::Internal(cause) => ApiError::Internal(cause),
        }
    }
}

impl ApiError {
    /// The status, headers and body this error is answered with (a
    /// gateway's answer carries them in its own form, see
    /// [`crate::authz::Answer`]).
    pub fn parts(self) -> (StatusCode, HeaderMap, ErrorBody) {
        let (status, code) = match &self {
            ApiError::InvalidRequest { .. } => (StatusCode::BAD_REQUEST, "invalid_request"),
            ApiError::Unauthorized { .. } => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden { .. } => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::PayloadTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
            }
            ApiError::RequestTimeout => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        let message = match &self {
            ApiError::Unauthorized { .. } => UNAUTHORIZED_MESSAGE.to_owned(),
            ApiError::Unavailable => {
                "the service is temporarily unavailable; try again shortly".to_owned()
            }
            ApiError::Internal(cause) => {
                // The cause is logged (with the request id, from the span)
                // and never sent: it may name tables, paths or values.
                tracing::error!(error = %cause, "internal error");
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        let mut body = ErrorBody {
            error: code.to_owned(),
            message,
            field: None,
            required_scope: None,
        };
        match &self {
            ApiError::InvalidRequest { field, .. } => body.field = field.clone(),
            ApiError::Forbidden { required_scope, .. } => {
                body.required_scope = required_scope.clone()
            }
            _ => {}
        }
        let mut headers = HeaderMap::new();
        match &self {
            ApiError::Unauthorized {
                credential_presented,
            } => {
                let value = www_authenticate_unauthorized(*credential_presented);
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(value));
            }
            ApiError::Forbidden {
                required_scope: Some(scope),
                ..
            } => {
                if let Ok(v) = HeaderValue::from_str(&www_authenticate_insufficient_scope(scope)) {
                    headers.insert(header::WWW_AUTHENTICATE, v);
                }
            }
            ApiError::RateLimited {
                retry_after_seconds,
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_seconds));
            }
            ApiError::Unavailable => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        (status, headers, body)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, headers, body) = self.parts();
        let mut response = (status, Json(body)).into_response();
        response.headers_mut().extend(headers);
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
