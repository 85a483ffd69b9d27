//! Settings → API Keys: list, create, regenerate and delete the workspace's
//! API keys. A new value is shown once. Regenerating or deleting asks for
//! confirmation first, and the old value stops working at once (the store
//! replaces or removes the hash in the same transaction as the audit event).

use super::Routes;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use tooken_core::text::{Name, MAX_NAME_CHARS};
use tooken_core::Mode;
use tooken_service::{ApiKeyWithSecret, NewApiKeyRequest};
use tooken_store::ApiKey;

use super::error::DashResult;
use super::format::{relative, time};
use super::reveal;
use super::session::{with_cookies, OwnerForm, OwnerPage, Session};
use super::view::{render, render_with, see_other, url_with, FieldErrors, Nav};
use crate::AppState;

pub fn routes() -> Routes {
    vec![
        ("/dashboard/settings/api-keys", get(list).post(create)),
        (
            "/dashboard/settings/api-keys/{id}/regenerate",
            get(regenerate_form).post(regenerate),
        ),
        (
            "/dashboard/settings/api-keys/{id}/delete",
            get(delete_form).post(delete),
        ),
    ]
}

pub struct KeyRow {
    pub id: String,
    pub name: String,
    pub mode: &'static str,
    pub hint: String,
    pub created: String,
    pub created_full: String,
    pub last_used: String,
    pub regenerated: Option<String>,
}

fn row(k: &ApiKey, now: chrono::DateTime<chrono::Utc>) -> KeyRow {
    KeyRow {
        id: k.id.clone(),
        name: k.name.clone(),
        mode: k.mode.as_str(),
        hint: k.hint.clone(),
        created: relative(now, k.created_at),
        created_full: time(k.created_at),
        last_used: k
            .last_used_at
            .map(|t| relative(now, t))
            .unwrap_or_else(|| "never".into()),
        regenerated: k.regenerated_at.map(|t| relative(now, t)),
    }
}

#[derive(Deserialize, Default, Clone)]
pub struct CreateForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    mode: String,
}

#[derive(Template)]
#[template(path = "dashboard/api_keys.html")]
struct ListPage {
    nav: Nav,
    keys: Vec<KeyRow>,
    /// The key whose new value is shown once, and the value.
    new_key: Option<KeyRow>,
    secret: Option<String>,
    notice: Option<String>,
    form: CreateForm,
    errors: FieldErrors,
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    new: Option<String>,
    deleted: Option<String>,
}

async fn list_page(
    state: &AppState,
    session: &Session,
    form: CreateForm,
    errors: FieldErrors,
) -> DashResult<ListPage> {
    let now = state.service.now();
    let keys = state
        .service
        .api_keys(&session.caller, &session.workspace.id)
        .await?;
    Ok(ListPage {
        nav: session.nav("api-keys"),
        keys: keys.iter().map(|k| row(k, now)).collect(),
        new_key: None,
        secret: None,
        notice: None,
        form,
        errors,
    })
}

/// `GET /dashboard/settings/api-keys`.
pub async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> DashResult<Response> {
    let mut page = list_page(
        &state,
        &session,
        CreateForm::default(),
        FieldErrors::default(),
    )
    .await?;
    let mut clear = None;
    if let Some(id) = q.new.as_deref() {
        let (secret, c) = reveal::open(&state, &session, &headers, "api_key", id).await?;
        clear = c;
        if secret.is_some() {
            let key = state.service.api_key(&session.caller, id).await;
            page.new_key = key.ok().map(|k| row(&k, state.service.now()));
            page.secret = secret;
        }
    }
    if let Some(name) = q.deleted {
        page.notice = Some(format!(
            "API key “{name}” was deleted. Its value no longer works."
        ));
    }
    Ok(with_cookies(render(&page)?, clear))
}

/// `POST /dashboard/settings/api-keys`: creates a key, then shows its
/// value once.
pub async fn create(
    State(state): State<AppState>,
    OwnerForm { session, form }: OwnerForm<CreateForm>,
) -> DashResult<Response> {
    // Both fields' problems at once, in the page's words.
    let mut errors = FieldErrors::default();
    if Name::parse(&form.name).is_err() {
        errors.add(
            "name",
            if form.name.trim().is_empty() {
                "Name the key after where it is used, e.g. “ci” or “billing-service”.".to_owned()
            } else {
                format!("Use at most {MAX_NAME_CHARS} characters, without control characters.")
            },
        );
    }
    let mode: Option<Mode> = form.mode.parse().ok();
    if mode.is_none() {
        errors.add("mode", "Choose live or test.");
    }
    let (Some(mode), true) = (mode, errors.is_empty()) else {
        let page = list_page(&state, &session, form, errors).await?;
        return render_with(StatusCode::BAD_REQUEST, &page);
    };
    let request = NewApiKeyRequest {
        workspace_id: &session.workspace.id,
        mode,
        name: &form.name,
    };
    let created = state
        .service
        .create_api_key(&session.caller, request)
        .await?;
    show_once(&state, &session, created).await
}

/// Redirects to the list, which shows the key's new value once.
async fn show_once(
    state: &AppState,
    session: &Session,
    made: ApiKeyWithSecret,
) -> DashResult<Response> {
    let cookie = reveal::seal(state, session, "api_key", &made.key.id, &made.secret).await?;
    Ok(with_cookies(
        see_other(&format!("/dashboard/settings/api-keys?new={}", made.key.id)),
        [cookie],
    ))
}

#[derive(Template)]
#[template(path = "dashboard/api_key_confirm.html")]
struct ConfirmPage {
    nav: Nav,
    key: KeyRow,
    /// `regenerate` or `delete`.
    action: &'static str,
}

async fn confirm_page(
    state: &AppState,
    session: &Session,
    id: &str,
    action: &'static str,
) -> DashResult<Response> {
    let key = state.service.api_key(&session.caller, id).await?;
    render(&ConfirmPage {
        nav: session.nav("api-keys"),
        key: row(&key, state.service.now()),
        action,
    })
}

/// `GET …/{id}/regenerate`: what regenerating does, and the button.
pub async fn regenerate_form(
    State(state): State<AppState>,
    OwnerPage(session): OwnerPage,
    Path(id): Path<String>,
) -> DashResult<Response> {
    confirm_page(&state, &session, &id, "regenerate").await
}

/// `GET …/{id}/delete`: what deleting does, and the button.
pub async fn delete_form(
    State(state): State<AppState>,
    OwnerPage(session): OwnerPage,
    Path(id): Path<String>,
) -> DashResult<Response> {
    confirm_page(&state, &session, &id, "delete").await
}

#[derive(Deserialize)]
pub struct EmptyForm {}

/// `POST …/{id}/regenerate`: a new value, shown once; the old one stops
/// working now.
pub async fn regenerate(
    State(state): State<AppState>,
    Path(id): Path<String>,
    OwnerForm { session, .. }: OwnerForm<EmptyForm>,
) -> DashResult<Response> {
    let made = state
        .service
        .regenerate_api_key(&session.caller, &id)
        .await?;
    show_once(&state, &session, made).await
}

/// `POST …/{id}/delete`: the key stops working now.
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    OwnerForm { session, .. }: OwnerForm<EmptyForm>,
) -> DashResult<Response> {
    let key = state.service.delete_api_key(&session.caller, &id).await?;
    Ok(see_other(&url_with(
        "/dashboard/settings/api-keys",
        &[("deleted", Some(&key.name))],
    )))
}
