//! Signing in and out.
//!
//! A failed sign-in says the same thing, in the same time, whether the
//! account exists or not: an unknown email is checked against a dummy hash
//! of the same cost. Failures are counted per client address and per
//! submitted email (existing or not, so the count reveals nothing); past
//! the limit, further attempts are refused without checking the password
//! until the window ends.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use askama::Template;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Duration, Utc};
use secrecy::SecretString;
use serde::Deserialize;
use tooken_core::{Mode, SecretHash};
use tooken_store::NewSession;

use super::error::{DashError, DashResult};
use super::password::verify_password;
use super::session::{
    audit_context, new_secret, pre_session_token, set_cookie, with_cookies, AnonForm, MemberForm,
    PRE_SESSION_COOKIE, SESSION_COOKIE,
};
use super::view::{render_with, see_other};
use crate::failures::Failure;
use crate::AppState;

/// The one message of every failed sign-in.
pub const LOGIN_FAILED: &str = "Incorrect email or password.";

#[derive(Debug)]
struct Window {
    started: DateTime<Utc>,
    failures: u32,
}

/// Entries beyond this many trigger a sweep of ended windows, so a spray of
/// addresses or emails cannot grow memory without bound.
const SWEEP_ABOVE: usize = 10_000;

/// Failed sign-ins, counted per client address and per account (email).
#[derive(Debug, Default)]
pub struct LoginThrottle {
    // std Mutex: held for map updates only, never across an await.
    by_address: Mutex<HashMap<IpAddr, Window>>,
    by_account: Mutex<HashMap<String, Window>>,
}

fn blocked_for<K: std::hash::Hash + Eq>(
    map: &Mutex<HashMap<K, Window>>,
    key: &K,
    limit: u32,
    window: Duration,
    now: DateTime<Utc>,
) -> Option<i64> {
    let map = map.lock().unwrap_or_else(|e| e.into_inner());
    map.get(key)
        .filter(|w| w.failures >= limit && now < w.started + window)
        .map(|w| (w.started + window - now).num_seconds().max(1))
}

fn count<K: std::hash::Hash + Eq>(
    map: &Mutex<HashMap<K, Window>>,
    key: K,
    window: Duration,
    now: DateTime<Utc>,
) {
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    if map.len() > SWEEP_ABOVE {
        map.retain(|_, w| now < w.started + window);
    }
    let w = map.entry(key).or_insert(Window {
        started: now,
        failures: 0,
    });
    if now >= w.started + window {
        *w = Window {
            started: now,
            failures: 0,
        };
    }
    w.failures = w.failures.saturating_add(1);
}

impl LoginThrottle {
    /// `Err(seconds)` when the address or the account is refused for now.
    fn check(
        &self,
        state: &AppState,
        ip: Option<IpAddr>,
        account: &str,
        now: DateTime<Utc>,
    ) -> Result<(), i64> {
        let c = &state.dashboard.config;
        let window = Duration::from_std(c.login_window).unwrap_or(Duration::minutes(15));
        let by_address = ip.and_then(|ip| {
            blocked_for(
                &self.by_address,
                &ip,
                c.login_failures_per_address,
                window,
                now,
            )
        });
        let by_account = blocked_for(
            &self.by_account,
            &account.to_owned(),
            c.login_failures_per_account,
            window,
            now,
        );
        match by_address.max(by_account) {
            Some(s) => Err(s),
            None => Ok(()),
        }
    }

    fn failure(&self, state: &AppState, ip: Option<IpAddr>, account: &str, now: DateTime<Utc>) {
        let window = Duration::from_std(state.dashboard.config.login_window)
            .unwrap_or(Duration::minutes(15));
        if let Some(ip) = ip {
            count(&self.by_address, ip, window, now);
        }
        count(&self.by_account, account.to_owned(), window, now);
    }

    fn success(&self, account: &str) {
        let mut map = self.by_account.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(account);
    }
}

/// Emails are compared lowercased and trimmed.
pub fn normalize_email(raw: &str) -> String {
    raw.trim().to_lowercase()
}

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
    let no_users = state.store.count_users().await? == 0;
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
    let now = state.clock.now();
    let email = normalize_email(&form.email);
    let ip = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip());
    let throttle = &state.dashboard.login_throttle;
    let csrf = super::session::cookie(&parts.headers, PRE_SESSION_COOKIE)
        .unwrap_or_default()
        .to_owned();
    let next = safe_next(form.next.as_deref()).to_owned();
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
    let record_failure = |workspace_id: Option<String>, reason: &'static str| {
        state.failures.record(
            Failure {
                workspace_id,
                mode: None,
                client_addr: ip.map(|ip| ip.to_string()),
                reason,
                hint: None,
            },
            now,
        );
    };
    if let Err(seconds) = throttle.check(&state, ip, &email, now) {
        record_failure(None, "dashboard_login_throttled");
        let minutes = (seconds + 59) / 60;
        return failed_page(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many failed sign-ins. Try again in {minutes} minute{}.",
                if minutes == 1 { "" } else { "s" }
            ),
        );
    }
    // Always made before the lookup, so the first attempt costs the same
    // whether or not the account exists.
    let dummy = state
        .dashboard
        .dummy_hash()
        .await
        .map_err(DashError::internal)?
        .to_owned();
    let found = if form.password.len() > super::password::MAX_PASSWORD_BYTES {
        None
    } else {
        state.store.user_with_password(&email).await?
    };
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), hash),
        None => (None, dummy),
    };
    let password = SecretString::from(form.password);
    let checked = verify_password(password, hash)
        .await
        .map_err(DashError::internal)?;
    if checked.is_some() {
        state.metrics.record_password_check();
    }
    let user = match user {
        Some(user) if checked == Some(true) => user,
        other => {
            throttle.failure(&state, ip, &email, now);
            // The same lookup whether or not the account exists (no one's
            // id is empty), so a failure takes the same time either way.
            let user_id = other.as_ref().map_or("", |u| u.id.as_str());
            let workspace = state
                .store
                .memberships(user_id)
                .await?
                .first()
                .map(|m| m.workspace_id.clone());
            record_failure(workspace, "dashboard_login");
            return failed_page(StatusCode::BAD_REQUEST, LOGIN_FAILED.to_owned());
        }
    };
    throttle.success(&email);
    let Some(membership) = state.store.memberships(&user.id).await?.into_iter().next() else {
        return failed_page(
            StatusCode::FORBIDDEN,
            "Your account is not a member of any workspace. Ask a workspace owner to add you."
                .to_owned(),
        );
    };
    forget_stale_sessions(&state, now).await;
    start_session(&state, &parts, &user, &membership.workspace_id, &next).await
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
    let now = state.clock.now();
    let session_id = new_secret();
    let ctx = audit_context(parts, user.actor());
    state
        .store
        .create_session(
            NewSession {
                id_hash: SecretHash::of(&session_id),
                user,
                workspace_id,
                mode: Mode::Live,
                client_addr: ctx.client_addr.as_deref(),
                user_agent: ctx.user_agent.as_deref(),
            },
            &ctx,
            now,
        )
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

/// Sessions past their time are deleted now and then (at each sign-in).
async fn forget_stale_sessions(state: &AppState, now: DateTime<Utc>) {
    let c = &state.dashboard.config;
    let idle = Duration::from_std(c.session_idle).unwrap_or(Duration::hours(12));
    let max = Duration::from_std(c.session_max).unwrap_or(Duration::days(7));
    if let Err(e) = state
        .store
        .delete_stale_sessions(now - idle, now - max, now)
        .await
    {
        tracing::warn!(error = %e, "could not delete stale sessions");
    }
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
        .store
        .end_session(&session.id_hash, &session.audit, state.clock.now())
        .await?;
    Ok(with_cookies(
        see_other("/dashboard/login?signed_out=1"),
        [set_cookie(SESSION_COOKIE, "", Some(0), session.secure)],
    ))
}
