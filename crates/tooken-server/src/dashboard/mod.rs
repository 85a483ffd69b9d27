//! The web dashboard, served under `/dashboard` by the same binary.
//!
//! Server-rendered HTML (askama templates, escaped by default) and plain
//! forms: every action works without JavaScript; one small script adds
//! conveniences (copy to clipboard). People sign in with a password
//! (argon2id); the browser holds a random session id in an `HttpOnly`,
//! `SameSite=Strict` cookie and the store keeps only its SHA-256. Every
//! form carries a CSRF token derived from the session id and checked in
//! constant time, and every POST that changes something requires the
//! `owner` role, checked on the server ([`session::OwnerForm`]). Every
//! response carries a strict Content-Security-Policy.
//!
//! One module per page group, like the API: [`tokens`], [`api_keys`],
//! [`audit`], [`general`], [`members`], and [`login`] / [`setup`] for
//! getting in.

pub mod api_keys;
pub mod assets;
pub mod audit;
pub mod error;
pub mod general;
pub mod login;
pub mod members;
pub mod password;
pub mod reveal;
pub mod session;
pub mod setup;
pub mod tokens;
pub mod view;

use std::time::Duration;

use axum::extract::Request;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::{Redirect, Response};
use axum::routing::{any, get, post, MethodRouter};
use axum::Router;

use crate::AppState;
pub use error::DashError;
pub use setup::create_setup_link;

/// The policy on every dashboard response: nothing but this origin's own
/// files, no inline script or style, no framing.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; \
     base-uri 'none'";

/// How the dashboard behaves; the defaults suit a server behind nothing.
#[derive(Debug, Clone)]
pub struct DashboardConfig {
    /// Mark cookies `Secure` (only sent over HTTPS). Also done, whatever
    /// this says, for requests a proxy marks `X-Forwarded-Proto: https`.
    pub secure_cookies: bool,
    /// A session unused this long ends.
    pub session_idle: Duration,
    /// A session ends this long after sign-in, used or not.
    pub session_max: Duration,
    /// argon2id cost for new password hashes. Verification always uses the
    /// cost recorded in the stored hash.
    pub password_params: argon2::Params,
    /// Failed sign-ins allowed per account, and per client address, within
    /// `login_window`, before further attempts are refused until it ends.
    pub login_failures_per_account: u32,
    pub login_failures_per_address: u32,
    pub login_window: Duration,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig {
            secure_cookies: false,
            session_idle: Duration::from_secs(12 * 3600),
            session_max: Duration::from_secs(7 * 24 * 3600),
            password_params: argon2::Params::default(),
            login_failures_per_account: 5,
            login_failures_per_address: 20,
            login_window: Duration::from_secs(15 * 60),
        }
    }
}

/// What the dashboard keeps in memory.
#[derive(Debug, Default)]
pub struct DashboardState {
    pub config: DashboardConfig,
    pub login_throttle: login::LoginThrottle,
    /// A hash of no one's password, checked when the account does not
    /// exist, so that a wrong email takes as long as a wrong password.
    dummy_hash: tokio::sync::OnceCell<String>,
}

impl DashboardState {
    pub fn new(config: DashboardConfig) -> DashboardState {
        DashboardState {
            config,
            login_throttle: login::LoginThrottle::default(),
            dummy_hash: tokio::sync::OnceCell::new(),
        }
    }

    /// The hash checked when an account does not exist: made once, with
    /// the configured cost, from a random password no one knows.
    pub async fn dummy_hash(&self) -> Result<&str, password::PasswordError> {
        self.dummy_hash
            .get_or_try_init(|| {
                password::hash_password(
                    secrecy::SecretString::from(session::new_secret()),
                    self.config.password_params.clone(),
                )
            })
            .await
            .map(String::as_str)
    }
}

/// Routes: each path with what each method does there.
pub type Routes = Vec<(&'static str, MethodRouter<AppState>)>;

/// Every dashboard route. The router is made from this table, and so are
/// the tests that every form checks its CSRF token.
pub fn routes() -> Routes {
    let mut all: Routes = vec![
        ("/", get(|| async { Redirect::to("/dashboard") })),
        ("/dashboard", get(session::home)),
        ("/dashboard/", get(session::home)),
        ("/dashboard/static/{file}", get(assets::serve)),
        (
            "/dashboard/setup/{token}",
            get(setup::show).post(setup::submit),
        ),
        ("/dashboard/login", get(login::show).post(login::submit)),
        ("/dashboard/logout", post(login::logout)),
        ("/dashboard/switch", post(session::switch)),
    ];
    all.extend(tokens::routes());
    all.extend(api_keys::routes());
    all.extend(audit::routes());
    all.extend(general::routes());
    all.extend(members::routes());
    all
}

/// The dashboard's routes, with the security headers every response gets.
pub fn router() -> Router<AppState> {
    routes()
        .into_iter()
        .fold(Router::new(), |router, (path, methods)| {
            router.route(path, methods)
        })
        .route("/dashboard/{*rest}", any(error::not_found))
        .layer(middleware::from_fn(security_headers))
}

/// Adds the Content-Security-Policy and its companions to every response,
/// and keeps pages (which may hold a secret shown once) out of caches.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE),
    );
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Setup and invitation links carry their secret in the path: never
    // send it anywhere in a Referer.
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if !h.contains_key(CACHE_CONTROL) {
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}
