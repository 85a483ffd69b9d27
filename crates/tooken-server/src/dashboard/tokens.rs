//! Tokens: list (filter, search, pages), create (secret shown once),
//! inspect, rotate (with a grace period) and revoke (with everything
//! created through it). The rules are the API's own: these handlers call
//! [`crate::tokens::issue_token`], [`crate::tokens::rotate_secret`] and the
//! store's revocation, as `/v1/tokens` does.

use super::Routes;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Deserialize;
use tooken_core::api::CreateToken;
use tooken_core::id::{is_id, IdKind};
use tooken_core::token::TokenStatus;
use tooken_core::Scope;
use tooken_store::{TokenFilter, TokenRecord};

use super::error::{DashError, DashResult};
use super::reveal;
use super::session::{with_cookies, OwnerForm, Session};
use super::view::{relative, render, render_with, see_other, time, url_with, FieldErrors, Nav};
use crate::error::ApiError;
use crate::tokens::{check_grace_period, check_revoke_reason, issue_token, rotate_secret};
use crate::AppState;

pub fn routes() -> Routes {
    vec![
        ("/dashboard/tokens", get(list).post(create)),
        ("/dashboard/tokens/new", get(new_form)),
        ("/dashboard/tokens/{id}", get(detail)),
        (
            "/dashboard/tokens/{id}/rotate",
            get(rotate_form).post(rotate),
        ),
        (
            "/dashboard/tokens/{id}/revoke",
            get(revoke_form).post(revoke),
        ),
    ]
}

/// Tokens per page.
const PAGE_SIZE: u32 = 25;

/// A token as a table row.
pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub status: &'static str,
    pub hint: String,
    pub scopes: Vec<String>,
    pub created: String,
    pub expires: String,
    pub last_used: String,
}

impl TokenRow {
    fn new(t: &TokenRecord, now: DateTime<Utc>) -> TokenRow {
        TokenRow {
            id: t.id.clone(),
            name: t.name.clone(),
            status: t.status_at(now).as_str(),
            hint: t.hint.clone(),
            scopes: t.scopes.iter().map(|s| s.to_string()).collect(),
            created: relative(now, t.created_at),
            expires: match (t.revoked_at, t.expires_at) {
                (Some(_), _) => "—".into(),
                (None, Some(at)) => relative(now, at),
                (None, None) => "never".into(),
            },
            last_used: match t.last_used_at {
                Some(at) => relative(now, at),
                None => "never".into(),
            },
        }
    }
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    status: Option<String>,
    q: Option<String>,
    scope: Option<String>,
    after: Option<String>,
}

#[derive(Template)]
#[template(path = "dashboard/tokens.html")]
struct ListPage {
    nav: Nav,
    rows: Vec<TokenRow>,
    status: String,
    q: String,
    scope: String,
    scope_error: Option<String>,
    filtered: bool,
    next_url: Option<String>,
    first_url: Option<String>,
}

/// `GET /dashboard/tokens`.
pub async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<ListQuery>,
) -> DashResult<Response> {
    let now = state.clock.now();
    let status = match q.status.as_deref().unwrap_or_default() {
        "active" => Some(TokenStatus::Active),
        "expired" => Some(TokenStatus::Expired),
        "revoked" => Some(TokenStatus::Revoked),
        _ => None,
    };
    let name = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let scope = q.scope.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let scope_error = scope
        .and_then(|s| Scope::parse(s).err())
        .map(|e| e.to_string());
    let after = q
        .after
        .as_deref()
        .filter(|a| is_id(IdKind::Token, a))
        .map(str::to_owned);
    let (tokens, has_more) = if scope_error.is_some() {
        (Vec::new(), false)
    } else {
        let filter = TokenFilter {
            status,
            scope: scope.map(str::to_owned),
            name_prefix: name.map(str::to_owned),
            starting_after: after.clone(),
            limit: PAGE_SIZE,
        };
        state
            .store
            .list_tokens(&session.workspace.id, session.mode, &filter, now)
            .await?
    };
    let status_str = status.map(|s| s.as_str()).unwrap_or_default();
    let page_url = |after: Option<&str>| {
        url_with(
            "/dashboard/tokens",
            &[
                ("status", Some(status_str)),
                ("q", name),
                ("scope", scope),
                ("after", after),
            ],
        )
    };
    let next_url = has_more
        .then(|| tokens.last().map(|t| page_url(Some(&t.id))))
        .flatten();
    let page = ListPage {
        nav: session.nav("tokens"),
        rows: tokens.iter().map(|t| TokenRow::new(t, now)).collect(),
        status: status_str.to_owned(),
        q: name.unwrap_or_default().to_owned(),
        scope: scope.unwrap_or_default().to_owned(),
        scope_error,
        filtered: status.is_some() || name.is_some() || scope.is_some(),
        next_url,
        first_url: after.is_some().then(|| page_url(None)),
    };
    render(&page)
}

/// One choice of the expiry menu.
pub struct ExpiryOption {
    pub value: &'static str,
    pub label: String,
    pub disabled: bool,
    pub selected: bool,
}

/// The expiry choices the workspace policy allows: a preset longer than
/// `max_token_ttl_seconds` is disabled, and "never" is offered only when the
/// policy neither requires an expiry nor sets a default one.
fn expiry_options(session: &Session, selected: &str) -> Vec<ExpiryOption> {
    let s = &session.workspace.settings;
    let mut out = Vec::new();
    match s.default_token_ttl_seconds {
        Some(ttl) => out.push(ExpiryOption {
            value: "default",
            label: format!("Workspace default ({})", super::view::human_seconds(ttl)),
            disabled: false,
            selected: false,
        }),
        None if !s.require_expiration => out.push(ExpiryOption {
            value: "never",
            label: "Never".into(),
            disabled: false,
            selected: false,
        }),
        None => {}
    }
    for days in [7, 30, 90] {
        let too_long = s
            .max_token_ttl_seconds
            .is_some_and(|max| days * 86_400 > max);
        out.push(ExpiryOption {
            value: match days {
                7 => "7",
                30 => "30",
                _ => "90",
            },
            label: if too_long {
                format!("{days} days (over the workspace limit)")
            } else {
                format!("{days} days")
            },
            disabled: too_long,
            selected: false,
        });
    }
    out.push(ExpiryOption {
        value: "custom",
        label: "Custom date…".into(),
        disabled: false,
        selected: false,
    });
    let wanted = if out.iter().any(|o| o.value == selected && !o.disabled) {
        selected
    } else {
        out.iter()
            .find(|o| !o.disabled)
            .map(|o| o.value)
            .unwrap_or("custom")
    };
    for o in &mut out {
        o.selected = o.value == wanted;
    }
    out
}

/// What the policy says about expiry, for the form.
fn policy_note(session: &Session) -> Option<String> {
    let s = &session.workspace.settings;
    let mut parts = Vec::new();
    if s.require_expiration {
        parts.push("every token must expire".to_owned());
    }
    if let Some(max) = s.max_token_ttl_seconds {
        parts.push(format!(
            "tokens may last at most {}",
            super::view::human_seconds(max)
        ));
    }
    (!parts.is_empty()).then(|| format!("Workspace policy: {}.", parts.join("; ")))
}

#[derive(Deserialize, Default, Clone)]
pub struct CreateForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    scopes: String,
    #[serde(default)]
    metadata: String,
    #[serde(default)]
    expiry: String,
    #[serde(default)]
    expires_on: String,
}

#[derive(Template)]
#[template(path = "dashboard/token_new.html")]
struct NewPage {
    nav: Nav,
    form: CreateForm,
    errors: FieldErrors,
    expiry_options: Vec<ExpiryOption>,
    policy_note: Option<String>,
    /// The earliest custom date (tomorrow, UTC).
    min_date: String,
}

fn new_page(
    session: &Session,
    form: CreateForm,
    errors: FieldErrors,
    now: DateTime<Utc>,
) -> NewPage {
    NewPage {
        nav: session.nav("tokens"),
        expiry_options: expiry_options(session, &form.expiry),
        policy_note: policy_note(session),
        min_date: (now + Duration::days(1)).format("%Y-%m-%d").to_string(),
        form,
        errors,
    }
}

/// `GET /dashboard/tokens/new`.
pub async fn new_form(State(state): State<AppState>, session: Session) -> DashResult<Response> {
    if !session.is_owner() {
        return Err(DashError::owners_only());
    }
    render(&new_page(
        &session,
        CreateForm::default(),
        FieldErrors::default(),
        state.clock.now(),
    ))
}

/// Splits the scopes field: commas and whitespace separate.
pub fn split_scopes(raw: &str) -> Vec<String> {
    raw.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Which form field an API validation error belongs to.
fn form_field(api_field: Option<&str>) -> &'static str {
    match api_field.unwrap_or_default() {
        "name" => "name",
        "description" => "description",
        "metadata" => "metadata",
        f if f.starts_with("scopes") => "scopes",
        f if f.starts_with("expires") => "expiry",
        _ => "form",
    }
}

/// `POST /dashboard/tokens`: creates a token, then shows it with its
/// secret, once.
pub async fn create(
    State(state): State<AppState>,
    OwnerForm { session, form }: OwnerForm<CreateForm>,
) -> DashResult<Response> {
    let now = state.clock.now();
    let mut errors = FieldErrors::default();
    let metadata = match form.metadata.trim() {
        "" => None,
        raw => match serde_json::from_str(raw) {
            Ok(v) => Some(v),
            Err(e) => {
                errors.add("metadata", format!("Not valid JSON: {e}."));
                None
            }
        },
    };
    let (expires_at, expires_in) = match form.expiry.as_str() {
        "7" => (None, Some(7 * 86_400)),
        "30" => (None, Some(30 * 86_400)),
        "90" => (None, Some(90 * 86_400)),
        "custom" => match NaiveDate::parse_from_str(form.expires_on.trim(), "%Y-%m-%d") {
            // Valid through the chosen day: until the next midnight, UTC.
            Ok(day) => (
                day.succ_opt()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .map(|t| t.and_utc()),
                None,
            ),
            Err(_) => {
                errors.add("expiry", "Choose the last day the token works.");
                (None, None)
            }
        },
        _ => (None, None),
    };
    if !errors.is_empty() {
        return render_with(
            StatusCode::BAD_REQUEST,
            &new_page(&session, form, errors, now),
        );
    }
    let description = Some(form.description.trim())
        .filter(|d| !d.is_empty())
        .map(str::to_owned);
    let req = CreateToken {
        name: form.name.clone(),
        description,
        scopes: split_scopes(&form.scopes),
        metadata,
        expires_at,
        expires_in,
    };
    let created = issue_token(
        &state,
        session.workspace.clone(),
        session.mode,
        &session.user.id,
        None,
        req,
        &session.audit,
    )
    .await;
    let created = match created {
        Ok(c) => c,
        Err(ApiError::InvalidRequest { message, field }) => {
            errors.add(form_field(field.as_deref()), message);
            return render_with(
                StatusCode::BAD_REQUEST,
                &new_page(&session, form, errors, now),
            );
        }
        Err(e) => return Err(e.into()),
    };
    let cookie = reveal::seal(
        &state,
        &session,
        "token",
        &created.token.id,
        &created.secret,
    )
    .await?;
    Ok(with_cookies(
        see_other(&format!("/dashboard/tokens/{}", created.token.id)),
        [cookie],
    ))
}

/// A token of the session's workspace and mode, or a 404 page.
async fn find(state: &AppState, session: &Session, id: &str) -> DashResult<TokenRecord> {
    // The id is repeated only if it is one: not a secret pasted into the
    // address bar.
    let not_found = || {
        DashError::NotFound(if is_id(IdKind::Token, id) {
            format!(
                "There is no token {id} in the {} data of this workspace.",
                session.mode
            )
        } else {
            "There is no such token: the address does not hold a token id.".into()
        })
    };
    if !is_id(IdKind::Token, id) {
        return Err(not_found());
    }
    state
        .store
        .token(&session.workspace.id, session.mode, id)
        .await?
        .ok_or_else(not_found)
}

/// A token's full view.
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub status: &'static str,
    pub mode: &'static str,
    pub hint: String,
    pub scopes: Vec<String>,
    pub metadata: Option<String>,
    pub created: String,
    pub created_by: String,
    pub expires: String,
    pub last_used: String,
    pub revoked: Option<String>,
    pub revoked_reason: Option<String>,
    pub active: bool,
}

#[derive(Template)]
#[template(path = "dashboard/token.html")]
struct DetailPage {
    nav: Nav,
    t: TokenView,
    secret: Option<String>,
    parent: Option<TokenRow>,
    children: Vec<TokenRow>,
    notice: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct DetailQuery {
    revoked: Option<u32>,
}

/// Who made a token, in words.
async fn creator(state: &AppState, session: &Session, id: &str) -> DashResult<String> {
    if id == session.user.id {
        return Ok(format!("you ({})", session.user.email));
    }
    if id.starts_with("usr_") {
        if let Some(m) = state.store.member(&session.workspace.id, id).await? {
            return Ok(m.user.email);
        }
    }
    if let Some(k) = state.store.api_key(id).await? {
        if k.workspace_id == session.workspace.id {
            return Ok(format!("API key “{}” ({})", k.name, k.hint));
        }
    }
    Ok(id.to_owned())
}

/// `GET /dashboard/tokens/{id}`: the token, and its secret if it was just
/// made (once).
pub async fn detail(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<DetailQuery>,
    headers: HeaderMap,
) -> DashResult<Response> {
    let now = state.clock.now();
    let t = find(&state, &session, &id).await?;
    let (secret, clear) = reveal::open(&state, &session, &headers, "token", &t.id).await?;
    let parent = match &t.parent_id {
        Some(p) => state
            .store
            .token(&session.workspace.id, session.mode, p)
            .await?
            .map(|p| TokenRow::new(&p, now)),
        None => None,
    };
    let children = state
        .store
        .child_tokens(&session.workspace.id, session.mode, &t.id, 50)
        .await?
        .iter()
        .map(|c| TokenRow::new(c, now))
        .collect();
    let status = t.status_at(now);
    let view = TokenView {
        id: t.id.clone(),
        name: t.name.clone(),
        description: t.description.clone().unwrap_or_default(),
        status: status.as_str(),
        mode: t.mode.as_str(),
        hint: t.hint.clone(),
        scopes: t.scopes.iter().map(|s| s.to_string()).collect(),
        metadata: t
            .metadata
            .as_ref()
            .and_then(|m| serde_json::to_string_pretty(m).ok()),
        created: time(t.created_at),
        created_by: creator(&state, &session, &t.created_by).await?,
        expires: match t.expires_at {
            Some(at) => format!("{} ({})", time(at), relative(now, at)),
            None => "Never".into(),
        },
        last_used: match t.last_used_at {
            Some(at) => format!("{} ({})", time(at), relative(now, at)),
            None => "Never".into(),
        },
        revoked: t.revoked_at.map(time),
        revoked_reason: t.revoked_reason.clone(),
        active: status == TokenStatus::Active,
    };
    let notice = q.revoked.map(|n| match n {
        0 => "Token revoked. It stops working at once.".to_owned(),
        1 => "Token revoked, together with 1 token created through it.".to_owned(),
        n => format!("Token revoked, together with {n} tokens created through it."),
    });
    let page = DetailPage {
        nav: session.nav("tokens"),
        t: view,
        secret,
        parent,
        children,
        notice,
    };
    Ok(with_cookies(render(&page)?, clear))
}

/// A grace-period choice.
pub struct GraceOption {
    pub seconds: i64,
    pub label: &'static str,
}

const GRACE_OPTIONS: [(i64, &str); 4] = [
    (0, "None: the current secret stops working now"),
    (3_600, "1 hour"),
    (86_400, "24 hours"),
    (604_800, "7 days"),
];

#[derive(Template)]
#[template(path = "dashboard/token_rotate.html")]
struct RotatePage {
    nav: Nav,
    t: TokenRow,
    options: Vec<GraceOption>,
}

/// `GET /dashboard/tokens/{id}/rotate`: choose the grace period.
pub async fn rotate_form(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> DashResult<Response> {
    if !session.is_owner() {
        return Err(DashError::owners_only());
    }
    let now = state.clock.now();
    let t = find(&state, &session, &id).await?;
    if t.status_at(now) != TokenStatus::Active {
        return Err(DashError::BadRequest(format!(
            "This token is {} and cannot be rotated.",
            t.status_at(now).as_str()
        )));
    }
    render(&RotatePage {
        nav: session.nav("tokens"),
        t: TokenRow::new(&t, now),
        options: GRACE_OPTIONS
            .iter()
            .map(|(seconds, label)| GraceOption {
                seconds: *seconds,
                label,
            })
            .collect(),
    })
}

#[derive(Deserialize)]
pub struct RotateForm {
    #[serde(default)]
    grace_period_seconds: i64,
}

/// `POST /dashboard/tokens/{id}/rotate`.
pub async fn rotate(
    State(state): State<AppState>,
    Path(id): Path<String>,
    OwnerForm { session, form }: OwnerForm<RotateForm>,
) -> DashResult<Response> {
    check_grace_period(form.grace_period_seconds)?;
    let t = find(&state, &session, &id).await?;
    let rotated = rotate_secret(
        &state,
        &session.workspace,
        t,
        form.grace_period_seconds,
        &session.audit,
    )
    .await?;
    let cookie = reveal::seal(
        &state,
        &session,
        "token",
        &rotated.token.id,
        &rotated.secret,
    )
    .await?;
    Ok(with_cookies(
        see_other(&format!("/dashboard/tokens/{}", rotated.token.id)),
        [cookie],
    ))
}

#[derive(Template)]
#[template(path = "dashboard/token_revoke.html")]
struct RevokePage {
    nav: Nav,
    t: TokenRow,
    descendants: i64,
    already_revoked: bool,
}

/// `GET /dashboard/tokens/{id}/revoke`: says what goes with it.
pub async fn revoke_form(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> DashResult<Response> {
    if !session.is_owner() {
        return Err(DashError::owners_only());
    }
    let now = state.clock.now();
    let t = find(&state, &session, &id).await?;
    let descendants = state.store.count_unrevoked_descendants(&t.id).await?;
    render(&RevokePage {
        nav: session.nav("tokens"),
        already_revoked: t.revoked_at.is_some(),
        t: TokenRow::new(&t, now),
        descendants,
    })
}

#[derive(Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    reason: String,
}

/// `POST /dashboard/tokens/{id}/revoke`: revokes the token and every token
/// created through it.
pub async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
    OwnerForm { session, form }: OwnerForm<RevokeForm>,
) -> DashResult<Response> {
    let reason = Some(form.reason.trim()).filter(|r| !r.is_empty());
    check_revoke_reason(reason)?;
    let t = find(&state, &session, &id).await?;
    let (token, revoked) = state
        .store
        .revoke_token(
            &session.workspace.id,
            session.mode,
            &t.id,
            reason,
            &session.audit,
            state.clock.now(),
        )
        .await?
        .ok_or_else(|| DashError::NotFound("There is no such token.".into()))?;
    let descendants = revoked.iter().filter(|r| **r != token.id).count();
    Ok(see_other(&format!(
        "/dashboard/tokens/{}?revoked={descendants}",
        token.id
    )))
}
