//! Tooken's HTTP transports: the API (`/v1`) and the dashboard.
//!
//! One module per resource, each exposing `router()`; a handler parses the
//! request, calls one operation of [`tooken_service::Service`] and renders
//! the answer or the error. [`app`] puts the routers together with the
//! layers every request passes through, and [`serve`] runs them until told
//! to stop ([`serve_with`]: under given [`Limits`], over TLS).

pub mod audit;
pub mod auth;
pub mod authz;
pub mod client;
pub mod dashboard;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod openapi;
pub mod settings;
pub mod state;
pub mod system;
pub mod throttle;
pub mod tls;
pub mod tokens;
pub mod transport;
pub mod verify;

use std::future::Future;
use std::time::Duration;

use axum::http::{HeaderName, Request, Response};
use axum::Router;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;

use crate::error::ApiError;

pub use crate::state::AppState;
pub use crate::tls::{TlsConfig, TlsError};
pub use crate::transport::Limits;

/// Header carrying each request's id, echoed in the response and logs.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

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
        .merge(authz::router())
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
        let service = state.service.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(tooken_service::FLUSH_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                service.flush(false).await;
            }
        })
    };
    let pruner = {
        let service = state.service.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(tooken_service::RETENTION_INTERVAL);
            loop {
                tick.tick().await;
                if let Err(e) = service.apply_retention().await {
                    tracing::warn!(error = %e, "audit retention failed; will retry");
                }
            }
        })
    };
    let app = app_with(state.clone(), limits.request_timeout);
    let result = transport::run(listener, app, limits, tls, shutdown).await;
    flusher.abort();
    pruner.abort();
    state.service.flush(true).await;
    result
}
