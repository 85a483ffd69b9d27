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
use tooken_core::credential::API_KEY_PREFIX;
use tooken_core::id::{is_id, IdKind};
use tooken_core::{Credential, Mode};
use tooken_store::{ApiKey, NewApiKey};

use super::error::{DashError, DashResult};
use super::reveal;
use super::session::{with_cookies, OwnerForm, Session};
use super::view::{relative, render, render_with, see_other, time, FieldErrors, Nav};
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

/// Longest key name.
const MAX_NAME_CHARS: usize = 128;

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
    let now = state.clock.now();
    let keys = state.store.list_api_keys(&session.workspace.id).await?;
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
            let now = state.clock.now();
            page.new_key = state
                .store
                .api_key(id)
                .await?
                .filter(|k| k.workspace_id == session.workspace.id)
                .map(|k| row(&k, now));
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
    let mut errors = FieldErrors::default();
    let name = form.name.trim().to_owned();
    if name.is_empty() {
        errors.add(
            "name",
            "Name the key after where it is used, e.g. “ci” or “billing-service”.",
        );
    } else if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        errors.add(
            "name",
            format!("Use at most {MAX_NAME_CHARS} characters, without control characters."),
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
    let secret = Credential::generate(API_KEY_PREFIX, mode);
    let key = state
        .store
        .create_api_key(
            NewApiKey {
                workspace_id: &session.workspace.id,
                mode,
                name: &name,
                secret_hash: secret.hash(),
                hint: secret.hint(),
            },
            &session.audit,
            state.clock.now(),
        )
        .await?;
    let cookie = reveal::seal(&state, &session, "api_key", &key.id, secret.expose()).await?;
    Ok(with_cookies(
        see_other(&format!("/dashboard/settings/api-keys?new={}", key.id)),
        [cookie],
    ))
}

/// A key of the session's workspace, or a 404 page.
async fn find(state: &AppState, session: &Session, id: &str) -> DashResult<ApiKey> {
    // The id is repeated only if it is one: not a secret pasted into the
    // address bar.
    let not_found = || {
        DashError::NotFound(if is_id(IdKind::ApiKey, id) {
            format!("There is no API key {id} in this workspace.")
        } else {
            "There is no such API key: the address does not hold an API key id.".into()
        })
    };
    if !is_id(IdKind::ApiKey, id) {
        return Err(not_found());
    }
    state
        .store
        .api_key(id)
        .await?
        .filter(|k| k.workspace_id == session.workspace.id)
        .ok_or_else(not_found)
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
    if !session.is_owner() {
        return Err(DashError::owners_only());
    }
    let key = find(state, session, id).await?;
    render(&ConfirmPage {
        nav: session.nav("api-keys"),
        key: row(&key, state.clock.now()),
        action,
    })
}

/// `GET …/{id}/regenerate`: what regenerating does, and the button.
pub async fn regenerate_form(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> DashResult<Response> {
    confirm_page(&state, &session, &id, "regenerate").await
}

/// `GET …/{id}/delete`: what deleting does, and the button.
pub async fn delete_form(
    State(state): State<AppState>,
    session: Session,
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
    let key = find(&state, &session, &id).await?;
    let secret = Credential::generate(API_KEY_PREFIX, key.mode);
    let key = state
        .store
        .regenerate_api_key(
            &key.id,
            secret.hash(),
            secret.hint(),
            &session.audit,
            state.clock.now(),
        )
        .await?
        .ok_or_else(|| DashError::NotFound("There is no such API key.".into()))?;
    let cookie = reveal::seal(&state, &session, "api_key", &key.id, secret.expose()).await?;
    Ok(with_cookies(
        see_other(&format!("/dashboard/settings/api-keys?new={}", key.id)),
        [cookie],
    ))
}

/// `POST …/{id}/delete`: the key stops working now.
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    OwnerForm { session, .. }: OwnerForm<EmptyForm>,
) -> DashResult<Response> {
    let key = find(&state, &session, &id).await?;
    let key = state
        .store
        .delete_api_key(&key.id, &session.audit, state.clock.now())
        .await?
        .ok_or_else(|| DashError::NotFound("There is no such API key.".into()))?;
    Ok(see_other(&super::view::url_with(
        "/dashboard/settings/api-keys",
        &[("deleted", Some(&key.name))],
    )))
}
