//! Request extractors whose rejections use the API's error shape, name the
//! field at fault, and never read more than [`MAX_BODY_BYTES`].

use axum::body::Bytes;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::header::CONTENT_LENGTH;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use tooken_core::redact::{redact_serde_message, shown};

use crate::error::ApiError;

/// Largest request body the API accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Reads the body, refusing one over the limit: by its `Content-Length`
/// before reading anything, or as soon as the limit is passed.
async fn read_body(req: Request) -> Result<Bytes, ApiError> {
    read_body_up_to(req, MAX_BODY_BYTES).await
}

/// [`read_body`] with another limit.
async fn read_body_up_to(req: Request, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = ApiError::PayloadTooLarge { limit };
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large);
    }
    axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|_| too_large)
}

/// `missing field `name`` and `unknown field `x`, expected …` name their
/// field only in the message (already redacted: see
/// [`tooken_core::redact`]).
fn backticked_field(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("missing field `")
        .or_else(|| message.strip_prefix("unknown field `"))?;
    rest.split('`').next().map(str::to_owned)
}

/// Parses a JSON object body (see [`tooken_core::api::parse_json_object`]).
fn parse_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    tooken_core::api::parse_json_object(bytes).map_err(|e| ApiError::InvalidRequest {
        message: e.message,
        field: e.field,
    })
}

/// A JSON body of at most `LIMIT` bytes, deserialized strictly.
#[derive(Debug)]
pub struct ApiJson<T, const LIMIT: usize = MAX_BODY_BYTES>(pub T);

impl<T: DeserializeOwned, S: Send + Sync, const LIMIT: usize> FromRequest<S> for ApiJson<T, LIMIT> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_body_up_to(req, LIMIT).await?;
        parse_object(&bytes).map(ApiJson)
    }
}

/// A JSON body that may be absent (no bytes at all) or `null`, in which
/// case `T::default()`.
#[derive(Debug)]
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req).await?;
        if bytes.is_empty() || bytes.trim_ascii() == b"null" {
            return Ok(OptionalJson(T::default()));
        }
        // Whitespace alone is not JSON: refused below like any other.
        parse_object(&bytes).map(OptionalJson)
    }
}

/// An `application/x-www-form-urlencoded` body.
#[derive(Debug)]
pub struct ApiForm<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiForm<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req).await?;
        serde_urlencoded::from_bytes(&bytes)
            .map(ApiForm)
            .map_err(|e| {
                let message = redact_serde_message(&e.to_string());
                ApiError::InvalidRequest {
                    field: backticked_field(&message),
                    message: format!("form body: {message}"),
                }
            })
    }
}

/// A query string, deserialized strictly.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        // A NUL can be in no stored value, and PostgreSQL refuses it even as a
        // query parameter: refuse it here rather than fail in the store.
        if let Ok(pairs) = serde_urlencoded::from_str::<Vec<(String, String)>>(query) {
            if let Some((name, _)) = pairs.iter().find(|(_, v)| v.contains('\0')) {
                let name = shown(name);
                return Err(ApiError::invalid(
                    name,
                    format!("{name} must not contain a NUL character"),
                ));
            }
        }
        serde_urlencoded::from_str(query)
            .map(ApiQuery)
            .map_err(|e| {
                let message = redact_serde_message(&e.to_string());
                let field = backticked_field(&message);
                ApiError::InvalidRequest {
                    message: format!("query string: {message}"),
                    field,
                }
            })
    }
}

/// Path parameters. A segment that does not decode (percent-encoded bytes
/// that are not UTF-8) is a `400` in the API's error shape.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                let field = match e.kind() {
                    ErrorKind::InvalidUtf8InPathParam { key }
                    | ErrorKind::ParseErrorAtKey { key, .. } => Some(key.clone()),
                    _ => None,
                };
                Err(ApiError::InvalidRequest {
                    message: redact_serde_message(&e.body_text()),
                    field: field.as_deref().map(|f| shown(f).to_owned()),
                })
            }
            // The route has no such parameters: a bug, not bad input.
            Err(other) => Err(ApiError::internal(other)),
        }
    }
}
