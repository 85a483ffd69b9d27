//! One-time links: the first-run setup link `tooken serve` prints, and the
//! invitations owners send. Opening one lets a person choose their name and
//! password and become a member; the link then stops working (the service
//! keeps only its hash; it expires after [`tooken_service::LINK_LIFETIME`]).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use secrecy::SecretString;
use serde::Deserialize;
use tooken_core::audit::Actor;
use tooken_service::{normalize_email, NewAccount, ServiceError};
use tooken_store::LinkPurpose;

use super::error::DashResult;
use super::login::start_session;
use super::session::{pre_session_token, with_cookies, AnonForm};
use super::view::{render_with, FieldErrors};
use crate::client::audit_context;
use crate::AppState;

/// The path of the page a link opens.
pub fn link_path(token: &str) -> String {
    format!("/dashboard/setup/{token}")
}

#[derive(Template)]
#[template(path = "dashboard/setup.html")]
struct SetupPage<'a> {
    csrf: &'a str,
    token: &'a str,
    /// First run (else an invitation).
    first_run: bool,
    workspace_name: &'a str,
    role: &'a str,
    email: &'a str,
    email_fixed: bool,
    name: &'a str,
    errors: FieldErrors,
}

/// `GET /dashboard/setup/{token}`.
pub async fn show(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> DashResult<Response> {
    let (link, workspace_name) = state.service.open_link(&token).await?;
    let (csrf, cookie) = pre_session_token(&state, &headers);
    let page = SetupPage {
        csrf: &csrf,
        token: &token,
        first_run: link.purpose == LinkPurpose::Setup,
        workspace_name: &workspace_name,
        role: link.role.as_str(),
        email: link.email.as_deref().unwrap_or_default(),
        email_fixed: link.email.is_some(),
        name: "",
        errors: FieldErrors::default(),
    };
    Ok(with_cookies(render_with(StatusCode::OK, &page)?, cookie))
}

#[derive(Deserialize)]
pub struct SetupForm {
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

/// `POST /dashboard/setup/{token}`: creates the account, signs it in.
pub async fn submit(
    State(state): State<AppState>,
    Path(token): Path<String>,
    AnonForm { parts, form }: AnonForm<SetupForm>,
) -> DashResult<Response> {
    let (link, workspace_name) = state.service.open_link(&token).await?;
    let account = NewAccount {
        email: match &link.email {
            Some(e) => e.clone(),
            None => normalize_email(&form.email),
        },
        name: form.name.trim().to_owned(),
        password: SecretString::from(form.password),
        confirm: SecretString::from(form.confirm),
    };
    let (email, name) = (account.email.clone(), account.name.clone());
    let page = |errors: FieldErrors| SetupPage {
        csrf: &form.csrf,
        token: &token,
        first_run: link.purpose == LinkPurpose::Setup,
        workspace_name: &workspace_name,
        role: link.role.as_str(),
        email: &email,
        email_fixed: link.email.is_some(),
        name: &name,
        errors,
    };
    // Every field's problem at once, next to its field.
    let mut errors = FieldErrors::default();
    for (field, problem) in account.problems() {
        errors.add(field, problem);
    }
    if !errors.is_empty() {
        return render_with(StatusCode::BAD_REQUEST, &page(errors));
    }
    let ctx = audit_context(&parts, Actor::system());
    // A link used by someone else a moment ago is not found.
    let (user, link) = match state.service.redeem_link(&token, account, &ctx).await {
        Ok(r) => r,
        Err(ServiceError::Conflict {
            message,
            field: Some(field),
        }) => {
            let mut errors = FieldErrors::default();
            errors.add(field, message);
            return render_with(StatusCode::BAD_REQUEST, &page(errors));
        }
        Err(e) => return Err(e.into()),
    };
    start_session(
        &state,
        &parts,
        &user,
        &link.workspace_id,
        "/dashboard/tokens",
    )
    .await
}
