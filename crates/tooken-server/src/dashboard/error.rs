//! The dashboard's errors, rendered as pages. Like the API, an internal
//! error is logged and never shown.

use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use tooken_service::{NotFound, ServiceError, Thing};

use super::format::human_seconds;

#[derive(Debug, thiserror::Error)]
pub enum DashError {
    /// Not signed in (or the session ended): go to the sign-in page, then
    /// come back to `next`.
    #[error("sign in first")]
    LoginRequired { next: String },
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("too many requests")]
    TooManyRequests { retry_after_seconds: u64 },
    #[error(transparent)]
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

pub type DashResult<T> = Result<T, DashError>;

impl DashError {
    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> DashError {
        DashError::Internal(Box::new(e))
    }

    /// The answer to a POST whose CSRF token is missing or wrong.
    pub fn bad_csrf() -> DashError {
        DashError::Forbidden(
            "This form has expired or was not sent from the dashboard. Go back, reload the page \
             and try again."
                .into(),
        )
    }

    /// The answer to a viewer's attempt to change something.
    pub fn owners_only() -> DashError {
        DashError::Forbidden("Only owners of this workspace can do this. You are a viewer.".into())
    }
}

impl From<askama::Error> for DashError {
    fn from(e: askama::Error) -> Self {
        DashError::internal(e)
    }
}

/// The service's refusals, in the dashboard's words.
impl From<ServiceError> for DashError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid { message, .. } | ServiceError::Conflict { message, .. } => {
                DashError::BadRequest(message)
            }
            ServiceError::Forbidden { message, .. } => DashError::Forbidden(message),
            ServiceError::NotFound(nf) => DashError::NotFound(not_found_text(&nf, None)),
            other => DashError::Internal(Box::new(other)),
        }
    }
}

/// What was not found, in words; a token is sought in the data of `mode`
/// (live or test), when it is known. An id is repeated only if it is
/// one: not a secret pasted into the address bar.
pub fn not_found_text(nf: &NotFound, mode: Option<tooken_core::Mode>) -> String {
    match (nf.thing, nf.key()) {
        (Thing::Token, Some(id)) => match mode {
            Some(mode) => format!("There is no token {id} in the {mode} data of this workspace."),
            None => format!("There is no token {id} in this workspace."),
        },
        (Thing::Token, None) => {
            "There is no such token: the address does not hold a token id.".into()
        }
        (Thing::ApiKey, Some(id)) => format!("There is no API key {id} in this workspace."),
        (Thing::ApiKey, None) => {
            "There is no such API key: the address does not hold an API key id.".into()
        }
        (Thing::Member, _) => "No such member.".into(),
        (Thing::User, _) => "There is no such account.".into(),
        (Thing::Link, _) => "This link is not valid: it was already used, it has expired, or it \
             was copied incompletely. Ask for a new one (an owner can invite you again; a server \
             administrator can run `tooken admin users create`)."
            .into(),
        (Thing::Workspace, _) => "There is no such workspace.".into(),
    }
}

#[derive(Template)]
#[template(path = "dashboard/error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

impl IntoResponse for DashError {
    fn into_response(self) -> Response {
        let (status, title, message) = match &self {
            DashError::LoginRequired { next } => {
                let to = format!(
                    "/dashboard/login?{}",
                    serde_urlencoded::to_string([("next", next)]).unwrap_or_default()
                );
                return Redirect::to(&to).into_response();
            }
            DashError::Forbidden(m) => (StatusCode::FORBIDDEN, "Not allowed", m.clone()),
            DashError::NotFound(m) => (StatusCode::NOT_FOUND, "Not found", m.clone()),
            DashError::BadRequest(m) => {
                (StatusCode::BAD_REQUEST, "Something is not right", m.clone())
            }
            DashError::TooManyRequests {
                retry_after_seconds,
            } => (
                StatusCode::TOO_MANY_REQUESTS,
                "Too many requests",
                format!(
                    "Too many attempts. Try again in {}.",
                    human_seconds(*retry_after_seconds as i64)
                ),
            ),
            DashError::Internal(cause) => {
                // Logged with the request id (from the span), never shown.
                tracing::error!(error = %cause, "dashboard internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The server could not complete this request. Try again; if it keeps \
                     happening, the server log has the details."
                        .to_owned(),
                )
            }
        };
        let body = ErrorPage {
            title,
            message: &message,
        }
        .render()
        .unwrap_or_else(|_| "error".to_owned());
        let mut res = (status, Html(body)).into_response();
        if let DashError::TooManyRequests {
            retry_after_seconds,
        } = self
        {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds));
        }
        res
    }
}

/// Any other path under `/dashboard`.
pub async fn not_found() -> DashError {
    DashError::NotFound("There is no page at this address.".into())
}
