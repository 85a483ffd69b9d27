//! Tokens: list (filter, search, pages), create (secret shown once),
//! inspect, rotate (with a grace period) and revoke (with everything
//! created through it). The rules are the service's, the same operations
//! `/v1/tokens` calls; these handlers read forms and render pages.

use super::Routes;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Deserialize;
use tooken_core::api::TokenWithSecret;
use tooken_core::id::TokenId;
use tooken_core::token::TokenStatus;
use tooken_core::Scope;
use tooken_service::{IssueToken, ServiceError, TokenQuery};
use tooken_store::TokenRecord;

use super::error::{DashError, DashResult};
use super::format::{human_seconds, relative, time};
use super::reveal;
use super::session::{with_cookies, OwnerForm, OwnerPage, Session};
use super::view::{render, render_with, see_other, url_with, FieldErrors, Nav};
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
    let status: Option<TokenStatus> = q.status.as_deref().and_then(|s| s.parse().ok());
    let name = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let scope = q.scope.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let scope_error = scope
        .and_then(|s| Scope::parse(s).err())
        .map(|e| e.to_string());
    let after = q
        .after
        .as_deref()
        .filter(|a| TokenId::parse(a).is_ok())
        .map(str::to_owned);
    let now = state.service.now();
    let (tokens, has_more) = if scope_error.is_some() {
        (Vec::new(), false)
    } else {
        let query = TokenQuery {
            limit: Some(PAGE_SIZE.to_string()),
            starting_after: after.clone(),
            status: status.map(|s| s.as_str().to_owned()),
            scope: scope.map(str::to_owned),
            name: name.map(str::to_owned),
        };
        let page = state.service.list_tokens(&session.caller, query).await?;
        (page.tokens, page.has_more)
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
            label: format!("Workspace default ({})", human_seconds(ttl)),
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
        parts.push(format!("tokens may last at most {}", human_seconds(max)));
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
pub async fn new_form(
    State(state): State<AppState>,
    OwnerPage(session): OwnerPage,
) -> DashResult<Response> {
    render(&new_page(
        &session,
        CreateForm::default(),
        FieldErrors::default(),
        state.service.now(),
    ))
}

/// Splits the scopes field: commas and whitespace separate.
pub fn split_scopes(raw: &str) -> Vec<String> {
    raw.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Which form field a refusal's field belongs to.
fn form_field(field: Option<&str>) -> &'static str {
    match field.unwrap_or_default() {
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
    let now = state.service.now();
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
    let request = IssueToken {
        name: form.name.clone(),
        description: Some(form.description.trim())
            .filter(|d| !d.is_empty())
            .map(str::to_owned),
        scopes: split_scopes(&form.scopes),
        metadata,
        expires_at,
        expires_in,
    };
    match state.service.issue_token(&session.caller, request).await {
        Ok(created) => show_once(&state, &session, created).await,
        Err(e @ ServiceError::Invalid { .. }) => {
            errors.add(form_field(e.field()), e.to_string());
            render_with(
                StatusCode::BAD_REQUEST,
                &new_page(&session, form, errors, now),
            )
        }
        Err(e) => Err(e.into()),
    }
}

/// Redirects to the token's page, which shows its new secret once.
async fn show_once(
    state: &AppState,
    session: &Session,
    made: TokenWithSecret,
) -> DashResult<Response> {
    let cookie = reveal::seal(state, session, "token", &made.token.id, &made.secret).await?;
    Ok(with_cookies(
        see_other(&format!("/dashboard/tokens/{}", made.token.id)),
        [cookie],
    ))
}

/// A token of the session's workspace and mode, or a 404 page.
async fn find(state: &AppState, session: &Session, id: &str) -> DashResult<TokenRecord> {
    state
        .service
        .token(&session.caller, id)
        .await
        .map_err(|e| session.explain(e))
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

/// What was found; nothing when it is not there.
fn found<T>(result: Result<T, ServiceError>) -> DashResult<Option<T>> {
    match result {
        Ok(t) => Ok(Some(t)),
        Err(ServiceError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Who made a token, in words.
async fn creator(state: &AppState, session: &Session, id: &str) -> DashResult<String> {
    if id == session.user.id {
        return Ok(format!("you ({})", session.user.email));
    }
    if id.starts_with("usr_") {
        if let Some(m) = found(state.service.member(&session.caller, id).await)? {
            return Ok(m.user.email);
        }
    }
    if let Some(k) = found(state.service.api_key(&session.caller, id).await)? {
        return Ok(format!("API key “{}” ({})", k.name, k.hint));
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
    let now = state.service.now();
    let t = find(&state, &session, &id).await?;
    let (secret, clear) = reveal::open(&state, &session, &headers, "token", &t.id).await?;
    let parent = match &t.parent_id {
        Some(p) => {
            found(state.service.token(&session.caller, p).await)?.map(|p| TokenRow::new(&p, now))
        }
        None => None,
    };
    let children = state
        .service
        .token_children(&session.caller, &t.id, 50)
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
    OwnerPage(session): OwnerPage,
    Path(id): Path<String>,
) -> DashResult<Response> {
    let now = state.service.now();
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
    let rotated = state
        .service
        .rotate_token(&session.caller, &id, form.grace_period_seconds)
        .await
        .map_err(|e| session.explain(e))?;
    show_once(&state, &session, rotated).await
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
    OwnerPage(session): OwnerPage,
    Path(id): Path<String>,
) -> DashResult<Response> {
    let now = state.service.now();
    let t = find(&state, &session, &id).await?;
    let descendants = state
        .service
        .tokens_revoked_with(&session.caller, &t.id)
        .await?;
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
    let revoked = state
        .service
        .revoke_token(&session.caller, &id, reason)
        .await
        .map_err(|e| session.explain(e))?;
    Ok(see_other(&format!(
        "/dashboard/tokens/{}?revoked={}",
        revoked.token.id, revoked.descendants
    )))
}
