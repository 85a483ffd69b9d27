//! The store's credential lookups behind the in-memory cache: what every
//! authentication and verification reads, whichever transport asks.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tooken_core::SecretHash;
use tooken_store::{Acceptance, ApiKey, Store, TokenMatch};

use crate::cache::{Cached, CredentialCache};
use crate::telemetry::{CacheOutcome, Observer};
use crate::ServiceResult;

/// A cached store wrapper for looking credentials up by secret.
#[derive(Clone)]
pub struct Credentials {
    store: Store,
    cache: Arc<CredentialCache>,
    observer: Arc<dyn Observer>,
}

impl Credentials {
    pub(crate) fn new(
        store: Store,
        cache: Arc<CredentialCache>,
        observer: Arc<dyn Observer>,
    ) -> Credentials {
        Credentials {
            store,
            cache,
            observer,
        }
    }

    pub(crate) fn with_cache(self, cache: Arc<CredentialCache>) -> Credentials {
        Credentials { cache, ..self }
    }

    pub(crate) fn with_observer(self, observer: Arc<dyn Observer>) -> Credentials {
        Credentials { observer, ..self }
    }

    /// The store's change marker, read once per request: the request's
    /// credential lookups all trust the cache under it (see `cache.rs`).
    pub fn change_marker(&self) -> Option<u64> {
        self.store.change_marker()
    }

    fn missed(&self, marker: Option<u64>) {
        self.observer.cache_lookup(match marker {
            Some(_) => CacheOutcome::Miss,
            None => CacheOutcome::Bypassed,
        });
    }

    /// The API key whose secret hashes to `hash`, from the cache when it
    /// may be trusted under `marker` (read at the request's start), else
    /// from the store.
    pub async fn api_key_by_secret(
        &self,
        marker: Option<u64>,
        hash: &SecretHash,
    ) -> ServiceResult<Option<Arc<ApiKey>>> {
        if let Some(Cached::ApiKey(k)) = self.cache.get(marker, hash) {
            self.observer.cache_lookup(CacheOutcome::Hit);
            return Ok(Some(k));
        }
        self.missed(marker);
        let found = self.store.api_key_by_secret(hash).await?.map(Arc::new);
        if let Some(k) = &found {
            self.cache.insert(marker, hash, Cached::ApiKey(k.clone()));
        }
        Ok(found)
    }

    /// The token one of whose secrets hashes to `hash`, from the cache when
    /// it may be trusted under `marker`, else from the store.
    ///
    /// Only a secret that is accepted at `now` is answered from the cache
    /// (and cached): one that will be refused (revoked, expired, or rotated
    /// away past its grace period) is looked up in the store like an
    /// unknown secret, so a refusal takes the same path, and the same time,
    /// whether or not the secret ever existed.
    pub async fn token_by_secret(
        &self,
        marker: Option<u64>,
        hash: &SecretHash,
        now: DateTime<Utc>,
    ) -> ServiceResult<Option<Arc<TokenMatch>>> {
        let accepted = |t: &TokenMatch| t.acceptance_at(now) == Acceptance::Accepted;
        if let Some(Cached::Token(t)) = self.cache.get(marker, hash) {
            if accepted(&t) {
                self.observer.cache_lookup(CacheOutcome::Hit);
                return Ok(Some(t));
            }
        }
        self.missed(marker);
        let found = self.store.token_by_secret(hash).await?.map(Arc::new);
        if let Some(t) = found.as_ref().filter(|t| accepted(t)) {
            self.cache.insert(marker, hash, Cached::Token(t.clone()));
        }
        Ok(found)
    }
}
