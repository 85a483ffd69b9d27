//! One-time links: the first-run setup link `tooken serve` prints, and the
//! invitations owners send. Opening one lets a person choose their name and
//! password and become a member; the link then stops working. A link is a
//! 256-bit random secret of which the store keeps only the SHA-256; it
//! expires after [`LINK_LIFETIME`].

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Duration, Utc};
use secrecy::SecretString;
use serde::Deserialize;
use tooken_core::audit::Actor;
use tooken_core::SecretHash;
use tooken_store::{
    AuditContext, LinkPurpose, NewLink, NewUser, Role, Store, StoreError, UserLink,
};

use super::error::{DashError, DashResult};
use super::login::{normalize_email, start_session};
use super::password::{check_new_password, hash_password};
use super::session::{new_secret, pre_session_token, with_cookies, AnonForm};
use super::view::{render_with, FieldErrors};
use crate::AppState;

/// How long a setup link or invitation works.
pub const LINK_LIFETIME: Duration = Duration::hours(24);
/// Longest display name.
pub const MAX_NAME_CHARS: usize = 128;

/// The path of the page a link opens.
pub fn link_path(token: &str) -> String {
    format!("/dashboard/setup/{token}")
}

/// Creates a one-time link; returns its secret token (shown once).
pub async fn create_link(
    store: &Store,
    purpose: LinkPurpose,
    workspace_id: &str,
    email: Option<&str>,
    role: Role,
    ctx: &AuditContext,
    now: DateTime<Utc>,
) -> Result<String, StoreError> {
    let token = new_secret();
    store
        .create_link(
            NewLink {
                token_hash: SecretHash::of(&token),
                purpose,
                workspace_id,
                email,
                role,
                expires_at: now + LINK_LIFETIME,
            },
            ctx,
            now,
        )
        .await?;
    Ok(token)
}

/// The first-run link: whoever opens it becomes an owner of
/// `workspace_id`. Returns the token; the page is at [`link_path`].
pub async fn create_setup_link(
    store: &Store,
    workspace_id: &str,
    now: DateTime<Utc>,
) -> Result<String, StoreError> {
    let ctx = AuditContext::new(Actor::system());
    create_link(
        store,
        LinkPurpose::Setup,
        workspace_id,
        None,
        Role::Owner,
        &ctx,
        now,
    )
    .await
}

/// Why an email address is refused, in words for the form.
pub fn check_email(email: &str) -> Result<(), String> {
    let valid = (3..=254).contains(&email.len())
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(email.split_once('@'), Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
    if valid {
        Ok(())
    } else {
        Err("Enter an email address such as ana@example.com.".into())
    }
}

/// Why a display name is refused.
pub fn check_name(name: &str) -> Result<(), String> {
    let n = name.chars().count();
    if n == 0 {
        Err("Enter your name.".into())
    } else if n > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        Err(format!(
            "Use at most {MAX_NAME_CHARS} characters, without control characters."
        ))
    } else {
        Ok(())
    }
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

async fn usable(state: &AppState, token: &str) -> DashResult<(UserLink, String)> {
    let invalid = || {
        DashError::NotFound(
            "This link is not valid: it was already used, it has expired, or it was copied \
             incompletely. Ask for a new one (an owner can invite you again; a server \
             administrator can run `tooken admin users create`)."
                .into(),
        )
    };
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    let link = state
        .store
        .usable_link(&SecretHash::of(token), state.clock.now())
        .await?
        .ok_or_else(invalid)?;
    let workspace = state.workspace(&link.workspace_id).await?;
    Ok((link, workspace.name))
}

/// `GET /dashboard/setup/{token}`.
pub async fn show(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> DashResult<Response> {
    let (link, workspace_name) = usable(&state, &token).await?;
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
    let (link, workspace_name) = usable(&state, &token).await?;
    let email = match &link.email {
        Some(e) => e.clone(),
        None => normalize_email(&form.email),
    };
    let name = form.name.trim().to_owned();
    let mut errors = FieldErrors::default();
    if let Err(e) = check_email(&email) {
        errors.add("email", e);
    }
    if let Err(e) = check_name(&name) {
        errors.add("name", e);
    }
    if let Err(e) = check_new_password(&form.password, &form.confirm, &email) {
        errors.add("password", e);
    }
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
    if !errors.is_empty() {
        return render_with(StatusCode::BAD_REQUEST, &page(errors));
    }
    let hash = hash_password(
        SecretString::from(form.password.clone()),
        state.dashboard.config.password_params.clone(),
    )
    .await
    .map_err(DashError::internal)?;
    let ctx = super::session::audit_context(&parts, Actor::system());
    let redeemed = state
        .store
        .redeem_link(
            &SecretHash::of(&token),
            NewUser {
                email: &email,
                name: &name,
                password_hash: &hash,
            },
            &ctx,
            state.clock.now(),
        )
        .await;
    let (user, link) = match redeemed {
        Ok(Some(r)) => r,
        // Used by someone else a moment ago.
        Ok(None) => {
            return Err(usable(&state, &token)
                .await
                .err()
                .unwrap_or_else(|| DashError::NotFound("This link is not valid.".into())))
        }
        Err(StoreError::Conflict(_)) => {
            let mut errors = FieldErrors::default();
            errors.add(
                "email",
                "An account with this email already exists. Sign in instead, or use another email.",
            );
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
