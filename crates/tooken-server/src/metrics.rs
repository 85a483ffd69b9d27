//! `GET /metrics`: Prometheus text format. Requests by route and status,
//! latency histograms by route, verification outcomes by code, gateway
//! decisions by outcome, credential
//! cache lookups by outcome, dashboard password checks, whether the node follows the other nodes'
//! changes, and store pool usage. Labels are route templates and codes only: never a path with
//! an id in it, never a credential.

use std::sync::atomic::AtomicI64;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tooken_core::token::VerifyCode;
use tooken_service::{CacheOutcome, Observer};

use crate::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily,
    verifications: Family<CodeLabels, Counter>,
    authz_decisions: Family<OutcomeLabels, Counter>,
    cache_lookups: Family<OutcomeLabels, Counter>,
    password_checks: Counter,
    auth_failures_slowed: Counter,
    change_feed_up: Gauge<i64, AtomicI64>,
    pool_size: Gauge<i64, AtomicI64>,
    pool_idle: Gauge<i64, AtomicI64>,
}

fn latency_histogram() -> Histogram {
    // 50 µs to about 1.6 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("tooken");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: HistogramFamily = Family::new_with_constructor(latency_histogram);
        let verifications = Family::<CodeLabels, Counter>::default();
        let authz_decisions = Family::<OutcomeLabels, Counter>::default();
        let cache_lookups = Family::<OutcomeLabels, Counter>::default();
        let password_checks = Counter::default();
        let auth_failures_slowed = Counter::default();
        let change_feed_up = Gauge::<i64, AtomicI64>::default();
        let pool_size = Gauge::<i64, AtomicI64>::default();
        let pool_idle = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        registry.register(
            "verifications",
            "Token verifications by outcome code",
            verifications.clone(),
        );
        registry.register(
            "authz_decisions",
            "Gateway forward-auth decisions by outcome (allowed, anonymous, unauthenticated, \
             refused, no_rule, path_refused); the tokens judged also count in verifications",
            authz_decisions.clone(),
        );
        registry.register(
            "credential_cache_lookups",
            "API key and token lookups by secret, by outcome (hit, miss, bypassed)",
            cache_lookups.clone(),
        );
        registry.register(
            "dashboard_password_checks",
            "argon2id password checks run by dashboard sign-ins (one per attempt that is not \
             throttled, whether or not the account exists)",
            password_checks.clone(),
        );
        registry.register(
            "auth_failures_slowed",
            "Authentication failures answered late by the brute-force throttle (an address \
             past its allowance of failures)",
            auth_failures_slowed.clone(),
        );
        registry.register(
            "store_change_feed_up",
            "1 while this node receives the store's change notifications (always on SQLite); \
             0 while it bypasses its credential cache",
            change_feed_up.clone(),
        );
        registry.register(
            "store_pool_connections",
            "Connections open in the store pool",
            pool_size.clone(),
        );
        registry.register(
            "store_pool_idle_connections",
            "Idle connections in the store pool",
            pool_idle.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            verifications,
            authz_decisions,
            cache_lookups,
            password_checks,
            auth_failures_slowed,
            change_feed_up,
            pool_size,
            pool_idle,
        }
    }
}

/// What the service reports goes into the registry.
impl Observer for Metrics {
    fn verification(&self, code: VerifyCode) {
        let code = serde_json::to_value(code)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        self.verifications.get_or_create(&CodeLabels { code }).inc();
    }

    fn cache_lookup(&self, outcome: CacheOutcome) {
        let outcome = match outcome {
            CacheOutcome::Hit => "hit",
            CacheOutcome::Miss => "miss",
            CacheOutcome::Bypassed => "bypassed",
        };
        self.cache_lookups
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    fn authz_decision(&self, outcome: &'static str) {
        self.authz_decisions
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    fn password_check(&self) {
        self.password_checks.inc();
    }
}

impl Metrics {
    /// The brute-force throttle delayed the answer to one failure.
    pub fn record_slowed_failure(&self) {
        self.auth_failures_slowed.inc();
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(render))
}

/// Prometheus metrics (OpenMetrics text). Like the health checks, it needs
/// no credential: it holds counts by route and code, never a secret.
#[utoipa::path(get, path = "/metrics", tag = "system",
    responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text")))]
pub async fn render(State(state): State<AppState>) -> Response {
    let m = &state.metrics;
    let store = state.service.store();
    m.change_feed_up.set(i64::from(store.is_watching_changes()));
    let pool = store.pool_stats();
    m.pool_size.set(i64::from(pool.size));
    m.pool_idle.set(pool.idle as i64);
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, &m.registry).is_err() {
        return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

/// Counts and times every routed request.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().as_str().to_owned();
    let start = Instant::now();
    let response = next.run(req).await;
    let m = &state.metrics;
    m.latency
        .get_or_create(&RouteLabels {
            route: route.clone(),
        })
        .observe(start.elapsed().as_secs_f64());
    m.requests
        .get_or_create(&RequestLabels {
            method,
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}
