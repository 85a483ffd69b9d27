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
//! getting in. A handler reads its form, calls one operation of
//! [`tooken_service::Service`] with the session's caller, and renders the
//! page (a refusal next to its field, or as an error page).

pub mod api_keys;
pub mod assets;
pub mod audit;
pub mod error;
pub mod format;
pub mod general;
pub mod login;
pub mod members;
pub mod reveal;
pub mod session;
pub mod setup;
pub mod tokens;
pub mod view;

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

use tooken_service::SignInPolicy;

use crate::AppState;
pub use error::DashError;

/// The policy on every dashboard response: nothing but this origin's own
/// files, no inline script or style, no framing.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; \
     base-uri 'none'";

/// How the dashboard behaves; the defaults suit a server behind nothing.
#[derive(Debug, Clone, Default)]
pub struct DashboardConfig {
    /// Mark cookies `Secure` (only sent over HTTPS). Also done, whatever
    /// this says, for requests a proxy marks `X-Forwarded-Proto: https`.
    pub secure_cookies: bool,
    /// Passwords, sign-in throttling and session lifetimes (the service
    /// applies them).
    pub sign_in: SignInPolicy,
}

/// The dashboard's configuration, as the server holds it.
#[derive(Debug, Default)]
pub struct DashboardState {
    pub config: DashboardConfig,
}

impl DashboardState {
    pub fn new(config: DashboardConfig) -> DashboardState {
        DashboardState { config }
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
