//! Request extractors whose rejections use the API's error shape, name the
//! field at fault, and never read more than [`MAX_BODY_BYTES`].

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_LENGTH;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Largest request body the API accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Reads the body, refusing one over the limit: by its `Content-Length`
/// before reading anything, or as soon as the limit is passed.
async fn read_body(req: Request) -> Result<Bytes, ApiError> {
    let too_large = ApiError::PayloadTooLarge {
        limit: MAX_BODY_BYTES,
    };
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large);
    }
    axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES)
        .await
        .map_err(|_| too_large)
}

/// Turns a serde error into a `400` naming the field.
fn json_error(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    let message = inner.to_string();
    if inner.is_syntax() || inner.is_eof() {
        return ApiError::InvalidRequest {
            message: format!("request body is not valid JSON: {message}"),
            field: None,
        };
    }
    // The path already ends at an unknown field; a missing one is named
    // only in the message, below the path of its parent.
    let field = match message
        .strip_prefix("missing field `")
        .and_then(|r| r.split('`').next())
    {
        Some(f) if path == "." => f.to_owned(),
        Some(f) => format!("{path}.{f}"),
        None => path,
    };
    let field = if field == "." { None } else { Some(field) };
    let message = match &field {
        Some(f) => format!("{f}: {message}"),
        None => message,
    };
    ApiError::InvalidRequest { message, field }
}

/// `missing field `name`` and `unknown field `x`, expected …` name their
/// field only in the message.
fn backticked_field(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("missing field `")
        .or_else(|| message.strip_prefix("unknown field `"))?;
    rest.split('`').next().map(str::to_owned)
}

/// Parses a JSON object body. Serde would also accept an array for a
/// struct; the API does not.
fn parse_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|&b| b != b'{') {
        let valid_json = serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok();
        let message = if valid_json {
            "request body must be a JSON object"
        } else {
            "request body is not valid JSON"
        };
        return Err(ApiError::InvalidRequest {
            message: message.into(),
            field: None,
        });
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(json_error)
}

/// A JSON body, deserialized strictly.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req).await?;
        parse_object(&bytes).map(ApiJson)
    }
}

/// A JSON body that may be absent (empty), in which case `T::default()`.
#[derive(Debug)]
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
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
            .map_err(|e| ApiError::InvalidRequest {
                message: format!("form body: {e}"),
                field: None,
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
        serde_urlencoded::from_str(query)
            .map(ApiQuery)
            .map_err(|e| {
                let message = e.to_string();
                let field = backticked_field(&message);
                ApiError::InvalidRequest {
                    message: format!("query string: {message}"),
                    field,
                }
            })
    }
}
