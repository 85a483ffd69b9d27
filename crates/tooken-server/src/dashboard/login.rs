//! Signing in and out: the page, its form and the session cookie. The
//! rules (one answer and one duration whether or not the account exists,
//! throttling per address and per account) are the service's
//! ([`tooken_service::Service::sign_in`]).

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use secrecy::SecretString;
use serde::Deserialize;
use tooken_service::SignInRefused;

use super::error::DashResult;
use super::session::{
    pre_session_token, set_cookie, with_cookies, AnonForm, MemberForm, PRE_SESSION_COOKIE,
    SESSION_COOKIE,
};
use super::view::{render_with, see_other};
use crate::client::{audit_context, client_ip};
use crate::AppState;

/// The one message of every failed sign-in.
pub const LOGIN_FAILED: &str = "Incorrect email or password.";

/// Only paths inside the dashboard are followed after sign-in.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with("/dashboard/")
                && !n.starts_with("/dashboard/login")
                && !n.starts_with("/dashboard/setup")
                && !n.contains("//")
                && !n.contains('\\') =>
        {
            n
        }
        _ => "/dashboard/tokens",
    }
}

#[derive(Template)]
#[template(path = "dashboard/login.html")]
struct LoginPage<'a> {
    csrf: &'a str,
    email: &'a str,
    next: &'a str,
    error: Option<String>,
    notice: Option<&'a str>,
    /// No one has set up the dashboard yet.
    no_users: bool,
}

#[derive(Deserialize, Default)]
pub struct LoginQuery {
    next: Option<String>,
    signed_out: Option<String>,
}

/// `GET /dashboard/login`.
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> DashResult<Response> {
    let (csrf, cookie) = pre_session_token(&state, &headers);
    let no_users = !state.service.has_users().await?;
    let page = LoginPage {
        csrf: &csrf,
        email: "",
        next: safe_next(q.next.as_deref()),
        error: None,
        notice: q.signed_out.is_some().then_some("You have signed out."),
        no_users,
    };
    Ok(with_cookies(render_with(StatusCode::OK, &page)?, cookie))
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

/// `POST /dashboard/login`.
pub async fn submit(
    State(state): State<AppState>,
    AnonForm { parts, form }: AnonForm<LoginForm>,
) -> DashResult<Response> {
    let csrf = super::session::cookie(&parts.headers, PRE_SESSION_COOKIE)
        .unwrap_or_default()
        .to_owned();
    let next = safe_next(form.next.as_deref()).to_owned();
    let email = tooken_service::normalize_email(&form.email);
    let failed_page = |status: StatusCode, error: String| {
        render_with(
            status,
            &LoginPage {
                csrf: &csrf,
                email: &email,
                next: &next,
                error: Some(error),
                notice: None,
                no_users: false,
            },
        )
    };
    let checked = state
        .service
        .sign_in(
            &form.email,
            SecretString::from(form.password),
            client_ip(&parts),
        )
        .await?;
    let (user, workspace_id) =
        match checked {
            Ok(signed_in) => signed_in,
            Err(SignInRefused::Throttled {
                retry_after_seconds,
            }) => {
                let minutes = (retry_after_seconds + 59) / 60;
                return failed_page(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "Too many failed sign-ins. Try again in {minutes} minute{}.",
                        if minutes == 1 { "" } else { "s" }
                    ),
                );
            }
            Err(SignInRefused::Wrong) => {
                return failed_page(StatusCode::BAD_REQUEST, LOGIN_FAILED.to_owned())
            }
            Err(SignInRefused::NoWorkspace) => return failed_page(
                StatusCode::FORBIDDEN,
                "Your account is not a member of any workspace. Ask a workspace owner to add you."
                    .to_owned(),
            ),
        };
    start_session(&state, &parts, &user, &workspace_id, &next).await
}

/// Signs a new session in: stores it (recording the login) and answers
/// with its cookie and a redirect to `to`.
pub async fn start_session(
    state: &AppState,
    parts: &axum::http::request::Parts,
    user: &tooken_store::User,
    workspace_id: &str,
    to: &str,
) -> DashResult<Response> {
    let ctx = audit_context(parts, user.actor());
    let session_id = state
        .service
        .start_session(user, workspace_id, &ctx)
        .await?;
    let secure = super::session::secure(state, &parts.headers);
    Ok(with_cookies(
        see_other(to),
        [
            set_cookie(SESSION_COOKIE, &session_id, None, secure),
            set_cookie(PRE_SESSION_COOKIE, "", Some(0), secure),
        ],
    ))
}

#[derive(Deserialize)]
pub struct LogoutForm {}

/// `POST /dashboard/logout`: deletes the session (recording the logout)
/// and its cookie.
pub async fn logout(
    State(state): State<AppState>,
    MemberForm { session, .. }: MemberForm<LogoutForm>,
) -> DashResult<Response> {
    state
        .service
        .end_session(&session, &session.caller.audit)
        .await?;
    Ok(with_cookies(
        see_other("/dashboard/login?signed_out=1"),
        [set_cookie(SESSION_COOKIE, "", Some(0), session.secure)],
    ))
}
