//! Tooken's HTTP API.
//!
//! One module per resource, each exposing `router()`; [`app`] puts them
//! together with the layers every request passes through, and [`serve`] runs
//! them until told to stop ([`serve_with`]: under given [`Limits`], over
//! TLS).

pub mod audit;
pub mod auth;
pub mod cache;
pub mod dashboard;
pub mod error;
pub mod extract;
pub mod failures;
pub mod metrics;
pub mod openapi;
pub mod settings;
pub mod system;
pub mod throttle;
pub mod tls;
pub mod tokens;
pub mod transport;
pub mod usage;
pub mod verify;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderName, Request, Response};
use axum::Router;
use tokio::net::TcpListener;
use tooken_core::Clock;
use tooken_core::SecretHash;
use tooken_store::{ApiKey, Store, StoreError, TokenMatch, Workspace};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;

use crate::cache::{Cached, CredentialCache};
use crate::error::{ApiError, ApiResult};
use crate::failures::FailureLog;
use crate::metrics::CacheOutcome;
use crate::throttle::{AuthLimits, Throttle};
use crate::usage::Usage;

pub use crate::tls::{TlsConfig, TlsError};
pub use crate::transport::Limits;

/// Header carrying each request's id, echoed in the response and logs.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// What every handler shares. Cloned for every request (by axum's `State`
/// and middleware), so it is one `Arc`: a clone is one atomic increment,
/// not one per part.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The parts of [`AppState`], reached through it by `Deref`.
#[derive(Clone)]
pub struct Shared {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub usage: Arc<Usage>,
    pub throttle: Arc<Throttle>,
    pub failures: Arc<FailureLog>,
    pub cache: Arc<CredentialCache>,
    pub dashboard: Arc<dashboard::DashboardState>,
    pub metrics: Arc<metrics::Metrics>,
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> AppState {
        AppState(Arc::new(Shared {
            store,
            clock,
            usage: Arc::default(),
            throttle: Arc::default(),
            failures: Arc::default(),
            cache: Arc::default(),
            metrics: Arc::default(),
            dashboard: Arc::default(),
        }))
    }

    /// The same state with one part changed (for setting up, before
    /// serving).
    fn with(self, change: impl FnOnce(&mut Shared)) -> AppState {
        let mut shared = Arc::unwrap_or_clone(self.0);
        change(&mut shared);
        AppState(Arc::new(shared))
    }

    /// The same state with another credential cache.
    pub fn with_cache(self, cache: CredentialCache) -> AppState {
        self.with(|s| s.cache = Arc::new(cache))
    }

    /// The same state with another way of gathering use.
    pub fn with_usage(self, usage: Usage) -> AppState {
        self.with(|s| s.usage = Arc::new(usage))
    }

    /// The same state with another dashboard configuration.
    pub fn with_dashboard(self, dashboard: dashboard::DashboardState) -> AppState {
        self.with(|s| s.dashboard = Arc::new(dashboard))
    }

    /// The store's change marker, read once per request: the request's
    /// credential lookups all trust the cache under it (see `cache.rs`).
    pub fn change_marker(&self) -> Option<u64> {
        self.store.change_marker()
    }

    /// The API key whose secret hashes to `hash`, from the cache when it
    /// may be trusted under `marker` (read at the request's start), else
    /// from the store.
    pub async fn api_key_by_secret(
        &self,
        marker: Option<u64>,
        hash: &SecretHash,
    ) -> Result<Option<Arc<ApiKey>>, StoreError> {
        if let Some(Cached::ApiKey(k)) = self.cache.get(marker, hash) {
            self.metrics.record_cache_lookup(CacheOutcome::Hit);
            return Ok(Some(k));
        }
        self.metrics.record_cache_lookup(match marker {
            Some(_) => CacheOutcome::Miss,
            None => CacheOutcome::Bypassed,
        });
        let found = self.store.api_key_by_secret(hash).await?.map(Arc::new);
        if let Some(k) = &found {
            self.cache.insert(marker, hash, Cached::ApiKey(k.clone()));
        }
        Ok(found)
    }

    /// The token one of whose secrets hashes to `hash`, from the cache when
    /// it may be trusted under `marker`, else from the store.
    ///
    /// Only a token that will be accepted now is answered from the cache
    /// (and cached): one that will be refused — revoked, expired, or a
    /// secret rotated away past its grace period — is looked up in the
    /// store like an unknown secret, so a refusal takes the same path, and
    /// the same time, whether or not the secret ever existed.
    pub async fn token_by_secret(
        &self,
        marker: Option<u64>,
        hash: &SecretHash,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<Arc<TokenMatch>>, StoreError> {
        if let Some(Cached::Token(t)) = self.cache.get(marker, hash) {
            if accepted_now(&t, now) {
                self.metrics.record_cache_lookup(CacheOutcome::Hit);
                return Ok(Some(t));
            }
        }
        self.metrics.record_cache_lookup(match marker {
            Some(_) => CacheOutcome::Miss,
            None => CacheOutcome::Bypassed,
        });
        let found = self.store.token_by_secret(hash).await?.map(Arc::new);
        if let Some(t) = found.as_ref().filter(|t| accepted_now(t, now)) {
            self.cache.insert(marker, hash, Cached::Token(t.clone()));
        }
        Ok(found)
    }

    /// The same state with other brute-force limits.
    pub fn with_auth_limits(self, limits: AuthLimits) -> AppState {
        self.with(|s| s.throttle = Arc::new(Throttle::new(limits)))
    }

    /// The caller's workspace. It exists: credentials belong to one.
    pub async fn workspace(&self, id: &str) -> ApiResult<Workspace> {
        self.store.workspace(id).await?.ok_or_else(|| {
            ApiError::internal(std::io::Error::other(format!("workspace {id} is missing")))
        })
    }
}

/// Would a token found by this secret be accepted at `now`: active, and
/// not a previous secret past its grace period?
fn accepted_now(found: &TokenMatch, now: chrono::DateTime<chrono::Utc>) -> bool {
    found.token.status_at(now) == tooken_core::token::TokenStatus::Active
        && found.previous_valid_until.is_none_or(|until| now < until)
}

/// The whole API, with its layers; requests time out after the default
/// [`Limits::request_timeout`].
pub fn app(state: AppState) -> Router {
    app_with(state, Limits::default().request_timeout)
}

/// The whole API, with its layers; a request not answered within
/// `request_timeout` (reading its body included) gets `408`.
pub fn app_with(state: AppState, request_timeout: Duration) -> Router {
    Router::new()
        .merge(tokens::router())
        .merge(audit::router())
        .merge(verify::router())
        .merge(settings::router())
        .merge(system::router())
        .merge(openapi::router())
        .merge(dashboard::router())
        .merge(metrics::router())
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async {
            (
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                axum::Json(error::ErrorBody {
                    error: "invalid_request".into(),
                    message: "method not allowed on this route".into(),
                    field: None,
                    required_scope: None,
                }),
            )
        })
        .with_state(state)
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("handler panicked");
            axum::response::IntoResponse::into_response(ApiError::internal(std::io::Error::other("panic")))
        }))
        // Inside the trace and request-id layers, so a 408 is logged and
        // carries its request id like any other answer.
        .layer(axum::middleware::from_fn_with_state(request_timeout, transport::time_limit))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<_>| {
                    // The path only: never headers (Authorization), the
                    // query or bodies; and in the path, no segment that
                    // could be a secret (a dashboard link, a token pasted
                    // into the URL): see `tooken_core::redact`.
                    let id = req
                        .headers()
                        .get(REQUEST_ID_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    // Fields are evaluated only when the span is enabled.
                    tracing::info_span!("request", method = %req.method(),
                        path = %tooken_core::redact::redact_path(req.uri().path()), request_id = %id)
                })
                .on_response(|res: &Response<_>, latency: std::time::Duration, _: &tracing::Span| {
                    tracing::info!(status = res.status().as_u16(), latency_us = latency.as_micros() as u64, "response");
                }),
        )
        .layer(PropagateRequestIdLayer::new(HeaderName::from_static(REQUEST_ID_HEADER)))
        .layer(SetRequestIdLayer::new(HeaderName::from_static(REQUEST_ID_HEADER), MakeReqId))
}

/// Request ids: `req_` and 16 random bytes in hex. A client-sent id is kept.
#[derive(Clone, Copy)]
struct MakeReqId;

impl MakeRequestId for MakeReqId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let id = format!(
            "req_{}",
            tooken_core::audit::hex(&tooken_core::credential::random_bytes::<16>())
        );
        id.parse().ok().map(RequestId::new)
    }
}

/// Serves the API over plain HTTP on `listener`, under the default
/// [`Limits`], until `shutdown` completes, then lets in-flight requests
/// finish and writes out gathered usage.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, state, Limits::default(), None, shutdown).await
}

/// [`serve`], under `limits`, and over TLS when `tls` is given.
pub async fn serve_with(
    listener: TcpListener,
    state: AppState,
    limits: Limits,
    tls: Option<TlsConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let flusher = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(usage::FLUSH_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if state.usage.is_periodic() {
                    state.usage.flush(&state.store).await;
                }
                state
                    .failures
                    .flush(&state.store, state.clock.now(), false)
                    .await;
            }
        })
    };
    let pruner = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(audit::RETENTION_INTERVAL);
            loop {
                tick.tick().await;
                if let Err(e) = audit::apply_retention(&state).await {
                    tracing::warn!(error = %e, "audit retention failed; will retry");
                }
            }
        })
    };
    let app = app_with(state.clone(), limits.request_timeout);
    let result = transport::run(listener, app, limits, tls, shutdown).await;
    flusher.abort();
    pruner.abort();
    state.usage.flush(&state.store).await;
    state
        .failures
        .flush(&state.store, state.clock.now(), true)
        .await;
    result
}
