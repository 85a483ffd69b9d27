//! What the service reports as it works, to whoever keeps metrics (the
//! server's Prometheus registry). Counts and codes only: never a secret.

use tooken_core::token::VerifyCode;

/// Where a credential lookup was answered from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheOutcome {
    /// Answered from the cache.
    Hit,
    /// Not cached (or the cache was just emptied): looked up in the store.
    Miss,
    /// The cache could not be trusted (PostgreSQL's change listener is
    /// down): looked up in the store.
    Bypassed,
}

/// Told of what happened; every method does nothing unless overridden.
pub trait Observer: Send + Sync {
    /// A credential was looked up by its secret.
    fn cache_lookup(&self, _outcome: CacheOutcome) {}
    /// A token was verified for a downstream service.
    fn verification(&self, _code: VerifyCode) {}
    /// A gateway's request was decided (see `Decision::outcome`).
    fn authz_decision(&self, _outcome: &'static str) {}
    /// An argon2id password check ran (a dashboard sign-in).
    fn password_check(&self) {}
}

/// Observes nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoObserver;

impl Observer for NoObserver {}
