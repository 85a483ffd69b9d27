//! Tooken's application layer: one operation per use case, between the
//! store and the transports.
//!
//! ```text
//!   HTTP API    dashboard    admin CLI    first start      transports:
//!       \           |            |            /            parse, call, render
//!        +----------+-----+------+-----------+
//!                         |
//!                  tooken-service                          rules, written once
//!          (operations, Caller, ServiceError)
//!                         |
//!                   tooken-store                           SQL, one write helper
//!                         |
//!                   tooken-core                            pure domain types
//! ```
//!
//! Every operation is a method of [`Service`] taking the acting
//! [`Caller`] (who, with the audit context of the request), the input of
//! the use case as the client gave it, and returning a domain result or
//! one [`ServiceError`]. Each operation authorizes first, then parses its
//! input into core's validated types, applies the rules, and writes
//! through the store (whose one write helper appends the audit events in
//! the same transaction). A transport never decides a rule: it parses its
//! wire format, calls one operation, and renders the answer or the error.
//!
//! Verification is judged in one place ([`Service::judge`]), through the
//! cached credential lookups ([`Credentials`]), whichever transport asks:
//! the verify and introspection endpoints, and gateways' requests
//! ([`Service::forward`], over HTTP and gRPC).

mod api_keys;
mod audit;
mod authenticate;
mod authz;
mod cache;
mod caller;
mod credentials;
mod error;
mod failures;
pub mod password;
mod settings;
mod sign_in;
mod telemetry;
mod tokens;
mod usage;
mod users;
mod verify;
pub mod views;
mod windows;
mod workspaces;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tooken_core::Clock;
use tooken_store::Store;

pub use api_keys::{ApiKeyWithSecret, NewApiKeyRequest};
pub use audit::{AuditQuery, ChainReport, RETENTION_INTERVAL};
pub use authenticate::Rejection;
pub use authz::{ClientCredential, Decision, Forwarded, RuleMatch};
pub use cache::{Cached, CredentialCache, DEFAULT_CAPACITY};
pub use caller::{Caller, Principal, SignedIn};
pub use credentials::Credentials;
pub use error::{Given, NotFound, ServiceError, ServiceResult, Thing};
pub use failures::{Failure, FailureLog, FailureReason};
pub use settings::SettingsChanges;
pub use sign_in::{SessionState, SignInPolicy, SignInRefused};
pub use telemetry::{CacheOutcome, NoObserver, Observer};
pub use tokens::{IssueToken, Revoked, TokenChanges, TokenPage, TokenQuery, MAX_GRACE_SECONDS};
pub use usage::{Usage, Use, FLUSH_INTERVAL};
pub use users::{
    check_display_name, check_email, new_secret, normalize_email, Invited, NewAccount,
    LINK_LIFETIME,
};
pub use verify::Verdict;
pub use windows::FailureWindows;
pub use workspaces::Bootstrapped;

/// The application: every operation, and what they share. Cheap to clone
/// (one `Arc`).
#[derive(Clone)]
pub struct Service(Arc<Inner>);

#[derive(Clone)]
struct Inner {
    store: Store,
    clock: Arc<dyn Clock>,
    credentials: Credentials,
    usage: Arc<Usage>,
    rules: Arc<authz::RuleCache>,
    failures: Arc<FailureLog>,
    sign_in: Arc<sign_in::SignIn>,
    observer: Arc<dyn Observer>,
}

impl Service {
    /// The application over `store`, with the default cache and sign-in
    /// policy, observed by nothing.
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Service {
        let observer: Arc<dyn Observer> = Arc::new(NoObserver);
        Service(Arc::new(Inner {
            credentials: Credentials::new(store.clone(), Arc::default(), observer.clone()),
            store,
            clock,
            usage: Arc::default(),
            rules: Arc::default(),
            failures: Arc::default(),
            sign_in: Arc::default(),
            observer,
        }))
    }

    /// The same service with one part changed (for setting up, before
    /// serving).
    fn with(self, change: impl FnOnce(&mut Inner)) -> Service {
        let mut inner = Arc::unwrap_or_clone(self.0);
        change(&mut inner);
        Service(Arc::new(inner))
    }

    /// The same service reporting to `observer` (metrics).
    pub fn with_observer(self, observer: Arc<dyn Observer>) -> Service {
        self.with(|s| {
            s.credentials = s.credentials.clone().with_observer(observer.clone());
            s.observer = observer;
        })
    }

    /// The same service with another credential cache.
    pub fn with_cache(self, cache: CredentialCache) -> Service {
        self.with(|s| s.credentials = s.credentials.clone().with_cache(Arc::new(cache)))
    }

    /// The same service with another way of gathering use.
    pub fn with_usage(self, usage: Usage) -> Service {
        self.with(|s| s.usage = Arc::new(usage))
    }

    /// The same service with another sign-in policy.
    pub fn with_sign_in(self, policy: SignInPolicy) -> Service {
        self.with(|s| s.sign_in = Arc::new(sign_in::SignIn::new(policy)))
    }

    /// The store. Transports do not need it; tests and tools that seed or
    /// inspect one do.
    pub fn store(&self) -> &Store {
        &self.0.store
    }

    /// The clock every operation reads.
    pub fn now(&self) -> DateTime<Utc> {
        self.0.clock.now()
    }

    /// The cached credential lookups.
    pub fn credentials(&self) -> &Credentials {
        &self.0.credentials
    }

    /// Use of credentials, gathered in memory.
    pub fn usage(&self) -> &Usage {
        &self.0.usage
    }

    /// Authentication failures, gathered in memory for the audit log.
    pub fn failures(&self) -> &FailureLog {
        &self.0.failures
    }

    /// The sign-in policy in force.
    pub fn sign_in_policy(&self) -> &SignInPolicy {
        self.0.sign_in.policy()
    }

    /// Is the store reachable and answering?
    pub async fn ping(&self) -> ServiceResult<()> {
        Ok(self.0.store.ping().await?)
    }

    /// Writes out what is gathered in memory: use of credentials (unless
    /// it is held until the end: see [`Usage::held_until_stop`]), and the
    /// authentication failures whose window has closed; everything when
    /// `all` (at shutdown).
    pub async fn flush(&self, all: bool) {
        if all || self.0.usage.is_periodic() {
            self.0.usage.flush(&self.0.store).await;
        }
        self.0.failures.flush(&self.0.store, self.now(), all).await;
    }
}
