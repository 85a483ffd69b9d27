//! Sessions, cookies and forms.
//!
//! The session cookie holds 32 random bytes (hex); the store keeps only
//! their SHA-256, so a copy of the database signs no one in. The CSRF token
//! of a session is derived from its id (SHA-256 of a label and the id): the
//! server recomputes it from the cookie on every POST, nothing extra is
//! stored, and it cannot be computed from what the store holds. Forms are
//! read only through [`MemberForm`] and [`OwnerForm`], which check the
//! session, the CSRF token (constant-time) and, for [`OwnerForm`], the
//! role, before the handler sees any field.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tooken_core::audit::hex;
use tooken_core::{Mode, SecretHash};
use tooken_service::{new_secret, Caller, SessionState};
use tooken_store::Role;

use super::error::{DashError, DashResult};
use super::view::{see_other, Nav, WorkspaceOption};
use crate::client::audit_context;
use crate::AppState;

pub const SESSION_COOKIE: &str = "tooken_session";
/// Before sign-in: the double-submit CSRF secret of the login and setup
/// forms.
pub const PRE_SESSION_COOKIE: &str = "tooken_pre";
/// Largest form body the dashboard reads.
pub const MAX_FORM_BYTES: usize = 64 * 1024;

/// The value of cookie `name`, if the request carries exactly one.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut found = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| v);
    let first = found.next()?;
    // Two cookies of one name (one planted for a parent path): trust neither.
    found.next().is_none().then_some(first)
}

/// Should cookies be `Secure`: configured so, or the request came over
/// HTTPS through a proxy. (A client faking the header only makes its own
/// cookies stricter.)
pub fn secure(state: &AppState, headers: &HeaderMap) -> bool {
    state.dashboard.config.secure_cookies
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value for the dashboard: `HttpOnly`, `SameSite=Strict`,
/// path `/dashboard`; `max_age` 0 deletes it, `None` lasts the browser
/// session.
pub fn set_cookie(name: &str, value: &str, max_age: Option<i64>, secure: bool) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/dashboard; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    // Names and values are ours: ASCII letters, digits, `_` and `.`.
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The CSRF token of the session whose id is `session_id`.
pub fn csrf_token(session_id: &str) -> String {
    hex(SecretHash::of(&format!("tooken-dashboard-csrf:{session_id}")).as_bytes())
}

/// Constant-time comparison of a submitted token with the expected one.
pub fn tokens_match(expected: &str, submitted: Option<&str>) -> bool {
    match submitted {
        Some(s) => bool::from(expected.as_bytes().ct_eq(s.as_bytes())),
        None => false,
    }
}

/// A signed-in person, in the workspace and mode their dashboard shows.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who, and what the dashboard shows (see [`SessionState`]).
    pub state: SessionState,
    pub csrf: String,
    /// The person as the caller of the service's operations, with who is
    /// acting and from where for the audit log.
    pub caller: Caller,
    /// Whether cookies set in the answer should be `Secure`.
    pub secure: bool,
}

impl std::ops::Deref for Session {
    type Target = SessionState;

    fn deref(&self) -> &SessionState {
        &self.state
    }
}

impl Session {
    pub fn is_owner(&self) -> bool {
        self.role == Role::Owner
    }

    /// The session, if an owner's: viewers see everything and change
    /// nothing, so they get no form of a change either.
    pub fn owner(self) -> DashResult<Session> {
        if self.is_owner() {
            Ok(self)
        } else {
            Err(DashError::owners_only())
        }
    }

    /// The layout's data, with `active` highlighted in the sidebar.
    pub fn nav(&self, active: &'static str) -> Nav {
        Nav {
            user_name: self.user.name.clone(),
            user_email: self.user.email.clone(),
            workspace_name: self.workspace.name.clone(),
            workspaces: self
                .memberships
                .iter()
                .map(|m| WorkspaceOption {
                    id: m.workspace_id.clone(),
                    name: m.workspace_name.clone(),
                    current: m.workspace_id == self.workspace.id,
                })
                .collect(),
            live: self.mode == Mode::Live,
            csrf: self.csrf.clone(),
            owner: self.is_owner(),
            role: self.role.as_str(),
            active,
        }
    }

    /// A refusal of the service's, in words for this session (a token is
    /// sought in its mode's data).
    pub fn explain(&self, e: tooken_service::ServiceError) -> DashError {
        match e {
            tooken_service::ServiceError::NotFound(nf) => {
                DashError::NotFound(super::error::not_found_text(&nf, Some(self.mode)))
            }
            other => other.into(),
        }
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = DashError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> DashResult<Session> {
        let signed_out = || {
            if parts.method == Method::GET || parts.method == Method::HEAD {
                let next = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_default();
                DashError::LoginRequired { next }
            } else {
                DashError::Forbidden(
                    "You are not signed in, or your session has ended. Sign in and try again."
                        .into(),
                )
            }
        };
        let Some(id) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(signed_out());
        };
        let Some(session) = state.service.resume_session(id).await? else {
            return Err(signed_out());
        };
        let caller = session.caller(audit_context(parts, session.user.actor()));
        Ok(Session {
            csrf: csrf_token(id),
            caller,
            secure: secure(state, &parts.headers),
            state: session,
        })
    }
}

#[derive(Deserialize, Default)]
struct CsrfField {
    csrf: Option<String>,
}

/// Reads a form body of at most [`MAX_FORM_BYTES`].
async fn form_body(body: axum::body::Body) -> DashResult<Bytes> {
    axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| DashError::BadRequest("The form is too large.".into()))
}

fn parse_form<T: DeserializeOwned>(bytes: &[u8]) -> DashResult<T> {
    serde_urlencoded::from_bytes(bytes).map_err(|e| {
        let e = tooken_core::redact::redact_serde_message(&e.to_string());
        DashError::BadRequest(format!("The form could not be read: {e}"))
    })
}

/// A form posted by a signed-in member, its CSRF token checked. For
/// actions that change nothing in the workspace (sign out, switch the
/// workspace shown).
pub struct MemberForm<T> {
    pub session: Session,
    pub form: T,
}

impl<T: DeserializeOwned> FromRequest<AppState> for MemberForm<T> {
    type Rejection = DashError;

    async fn from_request(req: Request, state: &AppState) -> DashResult<Self> {
        let (mut parts, body) = req.into_parts();
        let session = Session::from_request_parts(&mut parts, state).await?;
        let bytes = form_body(body).await?;
        let submitted: CsrfField = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
        if !tokens_match(&session.csrf, submitted.csrf.as_deref()) {
            return Err(DashError::bad_csrf());
        }
        Ok(MemberForm {
            session,
            form: parse_form(&bytes)?,
        })
    }
}

/// A form posted by an owner of the workspace shown, its CSRF token
/// checked. Every action that changes something goes through this: a
/// viewer gets `403` whatever the route.
pub struct OwnerForm<T> {
    pub session: Session,
    pub form: T,
}

impl<T: DeserializeOwned> FromRequest<AppState> for OwnerForm<T> {
    type Rejection = DashError;

    async fn from_request(req: Request, state: &AppState) -> DashResult<Self> {
        let MemberForm { session, form } = MemberForm::<T>::from_request(req, state).await?;
        Ok(OwnerForm {
            session: session.owner()?,
            form,
        })
    }
}

/// An owner's page: the form of a change (a viewer gets `403`).
pub struct OwnerPage(pub Session);

impl FromRequestParts<AppState> for OwnerPage {
    type Rejection = DashError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> DashResult<OwnerPage> {
        Ok(OwnerPage(
            Session::from_request_parts(parts, state).await?.owner()?,
        ))
    }
}

/// A form posted before sign-in (login, setup), its double-submit CSRF
/// token checked against the pre-session cookie.
pub struct AnonForm<T> {
    pub parts: Parts,
    pub form: T,
}

impl<T: DeserializeOwned> FromRequest<AppState> for AnonForm<T> {
    type Rejection = DashError;

    async fn from_request(req: Request, _state: &AppState) -> DashResult<Self> {
        let (parts, body) = req.into_parts();
        let bytes = form_body(body).await?;
        let submitted: CsrfField = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
        let expected = cookie(&parts.headers, PRE_SESSION_COOKIE).unwrap_or_default();
        if expected.len() != 64 || !tokens_match(expected, submitted.csrf.as_deref()) {
            return Err(DashError::bad_csrf());
        }
        Ok(AnonForm {
            form: parse_form(&bytes)?,
            parts,
        })
    }
}

/// The pre-session CSRF secret for a login or setup form: the one the
/// browser has, or a new one with the cookie that sets it.
pub fn pre_session_token(state: &AppState, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    match cookie(headers, PRE_SESSION_COOKIE) {
        Some(v) if v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) => {
            (v.to_owned(), None)
        }
        _ => {
            let v = new_secret();
            let c = set_cookie(PRE_SESSION_COOKIE, &v, None, secure(state, headers));
            (v, Some(c))
        }
    }
}

/// Adds `Set-Cookie` headers to a response.
pub fn with_cookies(mut res: Response, cookies: impl IntoIterator<Item = HeaderValue>) -> Response {
    for c in cookies {
        res.headers_mut().append(SET_COOKIE, c);
    }
    res
}

/// `GET /dashboard`: the tokens page, or the sign-in page.
pub async fn home(session: Result<Session, DashError>) -> Response {
    match session {
        Ok(_) => see_other("/dashboard/tokens"),
        Err(DashError::LoginRequired { .. }) => see_other("/dashboard/login"),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
pub struct SwitchForm {
    workspace: Option<String>,
    mode: Option<String>,
    back: Option<String>,
}

/// The list page a section's switch returns to.
fn section_path(active: Option<&str>) -> &'static str {
    match active {
        Some("api-keys") => "/dashboard/settings/api-keys",
        Some("audit-log") => "/dashboard/settings/audit-log",
        Some("general") => "/dashboard/settings/general",
        Some("members") => "/dashboard/members",
        _ => "/dashboard/tokens",
    }
}

/// `POST /dashboard/switch`: show another workspace, or the other mode.
pub async fn switch(
    State(state): State<AppState>,
    MemberForm { session, form }: MemberForm<SwitchForm>,
) -> DashResult<Response> {
    let workspace = form.workspace.filter(|w| *w != session.workspace.id);
    // Another workspace opens on its first page.
    let back = match workspace {
        Some(_) => section_path(None),
        None => section_path(form.back.as_deref()),
    };
    let mode = match form.mode.as_deref() {
        None => session.mode,
        Some(m) => m
            .parse()
            .map_err(|_| DashError::BadRequest("mode must be live or test".into()))?,
    };
    state
        .service
        .switch_session(&session, workspace.as_deref(), mode)
        .await?;
    Ok(see_other(back))
}
