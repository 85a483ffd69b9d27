//! What every handler shares: the application ([`tooken_service::Service`])
//! and what only HTTP needs beside it (the per-address throttle, the
//! dashboard's cookie settings, the metrics registry).

use std::sync::Arc;

use tooken_core::Clock;
use tooken_service::{CredentialCache, Service, Usage};
use tooken_store::Store;

use crate::authz::GatewayOptions;
use crate::dashboard::DashboardState;
use crate::metrics::Metrics;
use crate::throttle::{AuthLimits, Throttle};

/// What every handler shares. Cloned for every request (by axum's `State`
/// and middleware), so it is one `Arc`: a clone is one atomic increment,
/// not one per part.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The parts of [`AppState`], reached through it by `Deref`.
#[derive(Clone)]
pub struct Shared {
    pub service: Service,
    pub throttle: Arc<Throttle>,
    pub dashboard: Arc<DashboardState>,
    pub metrics: Arc<Metrics>,
    /// How gateways may reuse forward-auth answers.
    pub gateway: GatewayOptions,
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    /// The application over `store`, reporting to a fresh metrics
    /// registry, with the default limits and dashboard.
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> AppState {
        let metrics = Arc::new(Metrics::default());
        let service = Service::new(store, clock).with_observer(metrics.clone());
        AppState(Arc::new(Shared {
            service,
            throttle: Arc::default(),
            dashboard: Arc::default(),
            metrics,
            gateway: GatewayOptions::default(),
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
        self.with(|s| s.service = s.service.clone().with_cache(cache))
    }

    /// The same state with another way of gathering use.
    pub fn with_usage(self, usage: Usage) -> AppState {
        self.with(|s| s.service = s.service.clone().with_usage(usage))
    }

    /// The same state with another dashboard configuration (its sign-in
    /// policy goes to the service).
    pub fn with_dashboard(self, dashboard: DashboardState) -> AppState {
        self.with(|s| {
            s.service = s
                .service
                .clone()
                .with_sign_in(dashboard.config.sign_in.clone());
            s.dashboard = Arc::new(dashboard);
        })
    }

    /// The same state answering gateways with `options`.
    pub fn with_gateway(self, options: GatewayOptions) -> AppState {
        self.with(|s| s.gateway = options)
    }

    /// The same state with other brute-force limits.
    pub fn with_auth_limits(self, limits: AuthLimits) -> AppState {
        self.with(|s| s.throttle = Arc::new(Throttle::new(limits)))
    }
}
