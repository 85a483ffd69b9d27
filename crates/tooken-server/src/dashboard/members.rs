//! Members: who can sign in to this workspace, as `owner` (everything) or
//! `viewer` (sees everything, changes nothing). Owners add members (an
//! existing account at once; anyone else by a one-time invitation link),
//! change roles and remove members. A workspace always keeps an owner.

use super::Routes;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use tooken_service::{check_email, normalize_email, Invited, ServiceError};
use tooken_store::{Member, Role};

use super::error::{DashError, DashResult};
use super::format::relative;
use super::reveal;
use super::session::{with_cookies, OwnerForm, OwnerPage, Session};
use super::setup::link_path;
use super::view::{render, render_with, see_other, url_with, FieldErrors, Nav};
use crate::AppState;

pub fn routes() -> Routes {
    vec![
        ("/dashboard/members", get(list).post(add)),
        ("/dashboard/members/{user_id}/role", post(set_role)),
        (
            "/dashboard/members/{user_id}/remove",
            get(remove_form).post(remove),
        ),
    ]
}

pub struct MemberRow {
    pub user_id: String,
    pub name: String,
    pub email: String,
    pub role: &'static str,
    pub added: String,
    pub is_me: bool,
}

fn row(m: &Member, session: &Session, now: chrono::DateTime<chrono::Utc>) -> MemberRow {
    MemberRow {
        user_id: m.user.id.clone(),
        name: m.user.name.clone(),
        email: m.user.email.clone(),
        role: m.role.as_str(),
        added: relative(now, m.added_at),
        is_me: m.user.id == session.user.id,
    }
}

#[derive(Deserialize, Default, Clone)]
pub struct AddForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

#[derive(Template)]
#[template(path = "dashboard/members.html")]
struct ListPage {
    nav: Nav,
    members: Vec<MemberRow>,
    form: AddForm,
    errors: FieldErrors,
    notice: Option<String>,
    /// A new invitation: its email and link, shown once.
    invite_email: Option<String>,
    invite_url: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    notice: Option<String>,
    invited: Option<String>,
}

async fn list_page(
    state: &AppState,
    session: &Session,
    form: AddForm,
    errors: FieldErrors,
) -> DashResult<ListPage> {
    let now = state.service.now();
    let members = state.service.members(&session.caller).await?;
    Ok(ListPage {
        nav: session.nav("members"),
        members: members.iter().map(|m| row(m, session, now)).collect(),
        form,
        errors,
        notice: None,
        invite_email: None,
        invite_url: None,
    })
}

fn notice_text(code: &str) -> Option<String> {
    Some(
        match code {
            "added" => "Member added. They can sign in now.",
            "role" => "Role changed.",
            "removed" => "Member removed. Their sessions in this workspace ended.",
            _ => return None,
        }
        .to_owned(),
    )
}

/// The absolute address of a dashboard path, as the browser reached us.
fn absolute(headers: &HeaderMap, secure: bool, path: &str) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("127.0.0.1:7878");
    format!("{}://{host}{path}", if secure { "https" } else { "http" })
}

/// `GET /dashboard/members`.
pub async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> DashResult<Response> {
    let mut page = list_page(&state, &session, AddForm::default(), FieldErrors::default()).await?;
    page.notice = q.notice.as_deref().and_then(notice_text);
    let mut clear = None;
    if let Some(email) = q.invited {
        let (token, c) = reveal::open(&state, &session, &headers, "invite", &email).await?;
        clear = c;
        if let Some(token) = token {
            page.invite_url = Some(absolute(&headers, session.secure, &link_path(&token)));
            page.invite_email = Some(email);
        }
    }
    Ok(with_cookies(render(&page)?, clear))
}

/// `POST /dashboard/members`: adds an existing account, or makes a
/// one-time invitation link (shown once) for a new one.
pub async fn add(
    State(state): State<AppState>,
    OwnerForm { session, form }: OwnerForm<AddForm>,
) -> DashResult<Response> {
    // Both fields' problems at once.
    let mut errors = FieldErrors::default();
    if let Err(e) = check_email(&normalize_email(&form.email)) {
        errors.add("email", e);
    }
    let role = form.role.parse::<Role>().ok();
    if role.is_none() {
        errors.add("role", "Choose owner or viewer.");
    }
    let (Some(role), true) = (role, errors.is_empty()) else {
        let page = list_page(&state, &session, form, errors).await?;
        return render_with(StatusCode::BAD_REQUEST, &page);
    };
    match state
        .service
        .add_member(&session.caller, &form.email, role)
        .await
    {
        Ok(Invited::Added) => Ok(see_other("/dashboard/members?notice=added")),
        Ok(Invited::Link(token)) => {
            let email = normalize_email(&form.email);
            let cookie = reveal::seal(&state, &session, "invite", &email, &token).await?;
            Ok(with_cookies(
                see_other(&url_with(
                    "/dashboard/members",
                    &[("invited", Some(&email))],
                )),
                [cookie],
            ))
        }
        Err(ServiceError::Conflict { .. }) => {
            let mut errors = FieldErrors::default();
            errors.add("email", "This person is already a member.");
            let page = list_page(&state, &session, form, errors).await?;
            render_with(StatusCode::BAD_REQUEST, &page)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    role: String,
}

/// `POST /dashboard/members/{user_id}/role`.
pub async fn set_role(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    OwnerForm { session, form }: OwnerForm<RoleForm>,
) -> DashResult<Response> {
    let role = form
        .role
        .parse::<Role>()
        .map_err(|_| DashError::BadRequest("Choose owner or viewer.".into()))?;
    state
        .service
        .set_member_role(&session.caller, &user_id, role)
        .await?;
    Ok(see_other("/dashboard/members?notice=role"))
}

#[derive(Template)]
#[template(path = "dashboard/member_remove.html")]
struct RemovePage {
    nav: Nav,
    member: MemberRow,
}

/// `GET /dashboard/members/{user_id}/remove`: confirmation.
pub async fn remove_form(
    State(state): State<AppState>,
    OwnerPage(session): OwnerPage,
    Path(user_id): Path<String>,
) -> DashResult<Response> {
    let member = state.service.member(&session.caller, &user_id).await?;
    render(&RemovePage {
        nav: session.nav("members"),
        member: row(&member, &session, state.service.now()),
    })
}

#[derive(Deserialize)]
pub struct EmptyForm {}

/// `POST /dashboard/members/{user_id}/remove`.
pub async fn remove(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    OwnerForm { session, .. }: OwnerForm<EmptyForm>,
) -> DashResult<Response> {
    state
        .service
        .remove_member(&session.caller, &user_id)
        .await?;
    if user_id == session.user.id {
        Ok(see_other("/dashboard/tokens"))
    } else {
        Ok(see_other("/dashboard/members?notice=removed"))
    }
}
