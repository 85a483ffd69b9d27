//! Refusals, rendered in Tooken's own error shapes so that clients of your
//! service see exactly what Tooken itself answers.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use tooken_core::api::{
    www_authenticate_insufficient_scope, www_authenticate_unauthorized, ErrorBody,
};
use tooken_core::Scope;

/// The message of every `401`, whatever the cause (missing, malformed,
/// unknown, revoked or expired): a client must not learn which one applied.
pub const UNAUTHORIZED_MESSAGE: &str = "Invalid or missing API key";

/// Why a request was refused. Answers in Tooken's error shapes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// `401`. `credential_presented` only changes the `WWW-Authenticate`
    /// header (`error="invalid_token"` when a credential was presented).
    #[error("unauthorized")]
    Unauthorized { credential_presented: bool },
    /// `403`: the token is valid but lacks `required_scope`.
    #[error("the token lacks the scope {required_scope}")]
    Forbidden { required_scope: Scope },
    /// `503`: Tooken could not be asked (unreachable, answering 5xx, or
    /// refusing the verifier credential), and no usable cached answer exists.
    #[error("Tooken is unavailable")]
    Unavailable,
    /// `500`: the service is wired wrongly (e.g. a handler takes
    /// [`TookenToken`](crate::TookenToken) on a route without the layer).
    #[error("internal error")]
    Internal,
}

impl Rejection {
    /// The `401` for a presented credential that is not valid.
    pub fn invalid_token() -> Rejection {
        Rejection::Unauthorized {
            credential_presented: true,
        }
    }

    /// The `401` for a request without credentials.
    pub fn missing_token() -> Rejection {
        Rejection::Unauthorized {
            credential_presented: false,
        }
    }

    /// The `403` naming the scope the operation needs.
    pub fn missing_scope(required_scope: Scope) -> Rejection {
        Rejection::Forbidden { required_scope }
    }

    /// The HTTP status this refusal answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Rejection::Forbidden { .. } => StatusCode::FORBIDDEN,
            Rejection::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Rejection::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON body this refusal answers with.
    pub fn body(&self) -> ErrorBody {
        let (error, message, required_scope) = match self {
            Rejection::Unauthorized { .. } => ("unauthorized", UNAUTHORIZED_MESSAGE.into(), None),
            Rejection::Forbidden { required_scope } => (
                "forbidden",
                format!("this token lacks the scope {required_scope} required for this operation"),
                Some(required_scope.to_string()),
            ),
            Rejection::Unavailable => (
                "unavailable",
                "the token cannot be verified right now; try again shortly".into(),
                None,
            ),
            Rejection::Internal => ("internal", "internal error".into(), None),
        };
        ErrorBody {
            error: error.into(),
            message,
            field: None,
            required_scope,
        }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let mut response = (self.status(), Json(self.body())).into_response();
        let headers = response.headers_mut();
        match &self {
            Rejection::Unauthorized {
                credential_presented,
            } => {
                let value = www_authenticate_unauthorized(*credential_presented);
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(value));
            }
            Rejection::Forbidden { required_scope } => {
                let value = www_authenticate_insufficient_scope(required_scope.as_str());
                if let Ok(v) = HeaderValue::from_str(&value) {
                    headers.insert(header::WWW_AUTHENTICATE, v);
                }
            }
            Rejection::Unavailable => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Rejection::Internal => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn render(r: Rejection) -> (StatusCode, Option<String>, String) {
        let res = r.into_response();
        let status = res.status();
        let www = res
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = axum::body::to_bytes(res.into_body(), 4096).await.unwrap();
        (status, www, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn unauthorized_is_tookens_exact_401() {
        let (status, www, body) = render(Rejection::missing_token()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(www.as_deref(), Some(r#"Bearer realm="tooken""#));
        assert_eq!(
            body,
            r#"{"error":"unauthorized","message":"Invalid or missing API key"}"#
        );
        let (_, www, body) = render(Rejection::invalid_token()).await;
        assert_eq!(
            www.as_deref(),
            Some(r#"Bearer realm="tooken", error="invalid_token""#)
        );
        assert_eq!(
            body,
            r#"{"error":"unauthorized","message":"Invalid or missing API key"}"#
        );
    }

    #[tokio::test]
    async fn forbidden_names_the_scope_in_body_and_header() {
        let scope = Scope::parse("invoices:read").unwrap();
        let (status, www, body) = render(Rejection::missing_scope(scope)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(
            www.as_deref(),
            Some(r#"Bearer error="insufficient_scope", scope="invoices:read""#)
        );
        assert_eq!(
            body,
            r#"{"error":"forbidden","message":"this token lacks the scope invoices:read required for this operation","required_scope":"invoices:read"}"#
        );
    }

    #[tokio::test]
    async fn unavailable_is_a_503_with_retry_after() {
        let res = Rejection::Unavailable.into_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()[header::RETRY_AFTER], "1");
        let (_, _, body) = render(Rejection::Unavailable).await;
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["error"], "unavailable");
        assert_eq!(json.as_object().unwrap().len(), 2, "{body}");
    }
}
