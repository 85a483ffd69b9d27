//! A tower layer for axum services that accept Tooken tokens.
//!
//! [`Tooken`] verifies the `Authorization: Bearer <token>` of every request
//! with Tooken (`POST /v1/tokens/verify`), caches the answer for a short
//! while (never past the token's `expires_at`), and hands the verified
//! [`TookenToken`] (id, name, scopes, metadata, expiry) to your handlers.
//! [`Tooken::require`] adds a per-route scope check. Refusals are Tooken's
//! own: the same `401` and `403` bodies and `WWW-Authenticate` headers.
//!
//! ```no_run
//! use axum::routing::get;
//! use axum::{Json, Router};
//! use serde_json::{json, Value};
//! use tooken_axum::{Tooken, TookenToken};
//!
//! async fn list_invoices(token: TookenToken) -> Json<Value> {
//!     // Only reached with a valid token holding `invoices:read` (or `invoices:*`).
//!     let customer = token.metadata_value("customer").cloned();
//!     Json(json!({ "customer": customer, "invoices": [] }))
//! }
//!
//! async fn whoami(token: TookenToken) -> Json<TookenToken> {
//!     Json(token)
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // TOOKEN_URL (default http://127.0.0.1:7878) and TOOKEN_VERIFY_KEY: an
//!     // API key, or better a token holding only `tokens:verify`.
//!     let tooken = Tooken::from_env()?
//!         .cache_ttl(std::time::Duration::from_secs(5))
//!         .build();
//!     let app = Router::new()
//!         .route(
//!             "/invoices",
//!             get(list_invoices).route_layer(tooken.require("invoices:read")),
//!         )
//!         .route("/whoami", get(whoami))
//!         // Every route: a valid token, or Tooken's 401.
//!         .layer(tooken);
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//!     axum::serve(listener, app).await?;
//!     Ok(())
//! }
//! ```
//!
//! # Caching
//!
//! A valid answer is reused for [`TookenBuilder::cache_ttl`] (5 seconds by
//! default) and never at or after the token's `expires_at`; an invalid one
//! for [`TookenBuilder::negative_cache_ttl`] (1 second). So **a revoked
//! token may still be accepted for up to the cache TTL**: choose it with that
//! in mind (`Duration::ZERO` asks Tooken on every request). The cache is
//! keyed by the SHA-256 of the presented token, never the token itself, and
//! holds at most [`TookenBuilder::cache_capacity`] entries.
//!
//! # When Tooken cannot be asked
//!
//! Transport errors, timeouts, `5xx` and `429` answers make the request fail
//! with `503 {"error":"unavailable",…}` (fail closed). With
//! [`OnUnavailable::UseCached`], a valid answer up to `max_age` old (and
//! still before `expires_at`) is used instead; tokens never verified, or
//! last verified longer ago, still get `503`. No request ever reaches a
//! handler unverified. A verifier credential that Tooken refuses (`401`,
//! `403`) is a configuration error: `503`, logged at `error`.
//!
//! Tokens are checked locally first: a value that is not a well-formed
//! Tooken token (wrong shape or checksum, or an API key) gets `401` without
//! a call to Tooken.

mod cache;
mod layer;
mod reject;
mod token;

use std::sync::Arc;
use std::time::Duration;

use axum::http::header::AUTHORIZATION;
use axum::http::HeaderMap;
use tooken_client::{Client, VerifyRequest, VerifyResponse};
use tooken_core::scope::ScopeError;
use tooken_core::token::VerifyCode;
use tooken_core::{Clock, Credential, CredentialKind, Scope, SystemClock};

use crate::cache::{Cache, Lifetimes, Verdict};
pub use crate::layer::{RequireScope, TookenService};
pub use crate::reject::{Rejection, UNAUTHORIZED_MESSAGE};
pub use crate::token::TookenToken;

/// How long a valid answer is reused unless configured otherwise.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(5);
/// How long an invalid answer is reused unless configured otherwise.
pub const DEFAULT_NEGATIVE_CACHE_TTL: Duration = Duration::from_secs(1);
/// Most cached answers unless configured otherwise.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;
/// Longest wait for Tooken's answer unless configured otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// What to do when Tooken cannot be asked (transport error, timeout, `5xx`,
/// `429`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnUnavailable {
    /// Answer `503` (the default: fail closed).
    #[default]
    Reject,
    /// Accept the token if Tooken said it was valid at most `max_age` ago
    /// and its `expires_at` has not passed; otherwise `503`. A token
    /// revoked meanwhile stays accepted until `max_age` runs out.
    UseCached { max_age: Duration },
}

/// Setting up the layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Missing or invalid configuration.
    #[error("{0}")]
    Config(String),
    /// The HTTP client could not be built.
    #[error(transparent)]
    Client(#[from] tooken_client::Error),
}

/// Verifies bearer tokens with Tooken; a tower [`Layer`](tower::Layer) for
/// every route (`.layer(tooken)`), and the maker of per-route scope checks
/// ([`Tooken::require`]). Cheap to clone: clones share the cache.
#[derive(Clone)]
pub struct Tooken {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    cache: Cache,
    timeout: Duration,
    on_unavailable: OnUnavailable,
    clock: Arc<dyn Clock>,
}

/// Configures a [`Tooken`]. Made by [`Tooken::builder`] or
/// [`Tooken::from_env`].
pub struct TookenBuilder {
    client: Client,
    cache_ttl: Duration,
    negative_cache_ttl: Duration,
    cache_capacity: usize,
    timeout: Duration,
    on_unavailable: OnUnavailable,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for TookenBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TookenBuilder")
            .field("client", &self.client)
            .field("cache_ttl", &self.cache_ttl)
            .field("negative_cache_ttl", &self.negative_cache_ttl)
            .field("cache_capacity", &self.cache_capacity)
            .field("timeout", &self.timeout)
            .field("on_unavailable", &self.on_unavailable)
            .finish_non_exhaustive()
    }
}

impl TookenBuilder {
    /// How long a valid answer is reused (default 5 s). Never past the
    /// token's `expires_at`. A revoked token may be accepted this long after
    /// its revocation. `Duration::ZERO` asks Tooken on every request.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// How long an invalid answer (malformed, unknown, expired, revoked) is
    /// reused (default 1 s). Keeps a client retrying a bad token from
    /// turning every request into a call to Tooken.
    pub fn negative_cache_ttl(mut self, ttl: Duration) -> Self {
        self.negative_cache_ttl = ttl;
        self
    }

    /// Most answers held (default 10 000). When full, answers past use go
    /// first, then invalid ones, then the oldest. `0` disables the cache.
    pub fn cache_capacity(mut self, entries: usize) -> Self {
        self.cache_capacity = entries;
        self
    }

    /// Longest wait for Tooken's answer (default 5 s); a timeout counts as
    /// Tooken being unavailable.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// What to do when Tooken cannot be asked (default: `503`).
    pub fn on_unavailable(mut self, policy: OnUnavailable) -> Self {
        self.on_unavailable = policy;
        self
    }

    /// The clock (default: the system clock): its wall time is compared
    /// with `expires_at`, its monotonic reading measures cache ages. For
    /// tests.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn build(self) -> Tooken {
        let keep_valid = match self.on_unavailable {
            OnUnavailable::Reject => self.cache_ttl,
            OnUnavailable::UseCached { max_age } => max_age.max(self.cache_ttl),
        };
        let lifetimes = Lifetimes {
            valid: self.cache_ttl,
            invalid: self.negative_cache_ttl,
            keep_valid,
        };
        Tooken {
            inner: Arc::new(Inner {
                client: self.client,
                cache: Cache::new(lifetimes, self.cache_capacity),
                timeout: self.timeout,
                on_unavailable: self.on_unavailable,
                clock: self.clock,
            }),
        }
    }
}

impl std::fmt::Debug for Tooken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tooken")
            .field("url", &self.inner.client.base_url())
            .field("timeout", &self.inner.timeout)
            .field("on_unavailable", &self.inner.on_unavailable)
            .field("cached", &self.cache_len())
            .finish_non_exhaustive()
    }
}

/// What asking Tooken gave.
enum Answer {
    Valid(TookenToken),
    Invalid(VerifyCode),
    /// Tooken could not be asked; the cache may stand in, if so configured.
    Unreachable,
    /// Tooken answered, but not with a verdict (e.g. it refused the
    /// verifier credential).
    Failed,
}

impl Tooken {
    /// Verifies with the Tooken at `url`, authenticating with `verify_key`:
    /// an API key, or a token holding `tokens:verify` (preferable: it can do
    /// nothing else).
    pub fn builder(url: &str, verify_key: &str) -> Result<TookenBuilder, Error> {
        Ok(Tooken::builder_with_client(Client::new(url, verify_key)?))
    }

    /// Like [`Tooken::builder`], with a client you configured.
    pub fn builder_with_client(client: Client) -> TookenBuilder {
        TookenBuilder {
            client,
            cache_ttl: DEFAULT_CACHE_TTL,
            negative_cache_ttl: DEFAULT_NEGATIVE_CACHE_TTL,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
            timeout: DEFAULT_TIMEOUT,
            on_unavailable: OnUnavailable::default(),
            clock: Arc::new(SystemClock),
        }
    }

    /// Configured from `TOOKEN_URL` (default `http://127.0.0.1:7878`) and
    /// `TOOKEN_VERIFY_KEY` (required).
    pub fn from_env() -> Result<TookenBuilder, Error> {
        let key = std::env::var("TOOKEN_VERIFY_KEY")
            .ok()
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                Error::Config(
                    "TOOKEN_VERIFY_KEY is not set: export an API key or a token with \
                     the tokens:verify scope in it"
                        .into(),
                )
            })?;
        let url = std::env::var("TOOKEN_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| tooken_client::DEFAULT_URL.to_owned());
        Tooken::builder(&url, &key)
    }

    /// A layer for one route (`.route_layer(tooken.require("invoices:read"))`)
    /// that requires a valid token holding a scope that covers `scope`, and
    /// answers `403` naming it otherwise.
    ///
    /// # Panics
    ///
    /// If `scope` is not a valid scope (like `invoices:read`); use
    /// [`Tooken::try_require`] for scopes that are not literals.
    pub fn require(&self, scope: &str) -> RequireScope {
        match self.try_require(scope) {
            Ok(layer) => layer,
            Err(e) => panic!("Tooken::require({scope:?}): {e}"),
        }
    }

    /// Like [`Tooken::require`], returning an invalid scope as an error.
    pub fn try_require(&self, scope: &str) -> Result<RequireScope, ScopeError> {
        Ok(RequireScope::new(self.clone(), Scope::parse(scope)?))
    }

    /// How many answers the cache holds now.
    pub fn cache_len(&self) -> usize {
        self.inner.cache.len()
    }

    /// Authenticates a request by its headers: exactly one
    /// `Authorization: Bearer <token>` header (one space, nothing else),
    /// then [`Tooken::verify`].
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<TookenToken, Rejection> {
        let presented = bearer_token(headers)?;
        self.verify(presented).await
    }

    /// Verifies a presented token, from the cache when it can.
    pub async fn verify(&self, presented: &str) -> Result<TookenToken, Rejection> {
        let Ok(credential) = Credential::parse(presented) else {
            tracing::debug!("token refused: malformed");
            return Err(Rejection::invalid_token());
        };
        if credential.kind() != CredentialKind::Token {
            tracing::debug!(hint = %credential.hint(), "token refused: an API key, not a token");
            return Err(Rejection::invalid_token());
        }
        let key = credential.hash().0;
        let started = self.inner.clock.monotonic();
        let cache = &self.inner.cache;
        match cache.fresh(&key, started, self.inner.clock.now()) {
            Some(Verdict::Valid(token)) => return Ok(token),
            Some(Verdict::Invalid) => return Err(Rejection::invalid_token()),
            None => {}
        }
        match self.ask(&credential).await {
            Answer::Valid(token) => {
                let now = self.inner.clock.now();
                let verdict = Verdict::Valid(token.clone());
                cache.insert(key, verdict, started, self.inner.clock.monotonic(), now);
                Ok(token)
            }
            Answer::Invalid(code) => {
                tracing::debug!(hint = %credential.hint(), ?code, "token refused by Tooken");
                let now = self.inner.clock.now();
                cache.insert(
                    key,
                    Verdict::Invalid,
                    started,
                    self.inner.clock.monotonic(),
                    now,
                );
                Err(Rejection::invalid_token())
            }
            Answer::Unreachable => match self.inner.on_unavailable {
                OnUnavailable::UseCached { max_age } => {
                    let now = self.inner.clock.now();
                    match cache.last_valid(&key, max_age, self.inner.clock.monotonic(), now) {
                        Some(token) => {
                            tracing::warn!(token_id = %token.id, "Tooken unavailable: using the last verification of this token");
                            Ok(token)
                        }
                        None => Err(Rejection::Unavailable),
                    }
                }
                OnUnavailable::Reject => Err(Rejection::Unavailable),
            },
            Answer::Failed => Err(Rejection::Unavailable),
        }
    }

    /// Asks Tooken, for no particular scope: scopes are checked here, so
    /// one answer serves every route.
    async fn ask(&self, credential: &Credential) -> Answer {
        let request = VerifyRequest {
            token: credential.expose().into(),
            scopes: Vec::new(),
        };
        let call = self.inner.client.verify(&request);
        let result = match tokio::time::timeout(self.inner.timeout, call).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(timeout = ?self.inner.timeout, "Tooken did not answer in time");
                return Answer::Unreachable;
            }
        };
        match result {
            Ok(VerifyResponse {
                valid: true,
                code: VerifyCode::Valid,
                token: Some(token),
            }) => Answer::Valid(token.into()),
            Ok(VerifyResponse {
                valid: false, code, ..
            }) if code != VerifyCode::Valid => Answer::Invalid(code),
            Ok(odd) => {
                tracing::error!(code = ?odd.code, valid = odd.valid, "Tooken's verify answer is inconsistent");
                Answer::Failed
            }
            Err(tooken_client::Error::Transport(e)) => {
                tracing::warn!(error = %e, "cannot reach Tooken to verify a token");
                Answer::Unreachable
            }
            Err(e @ tooken_client::Error::Api { status, .. }) if status >= 500 || status == 429 => {
                tracing::warn!(error = %e, status, "Tooken cannot verify tokens right now");
                Answer::Unreachable
            }
            Err(
                e @ tooken_client::Error::Api {
                    status: 401 | 403, ..
                },
            ) => {
                tracing::error!(
                    error = %e,
                    "Tooken refused the verifier credential: it must be a valid API key, \
                     or a token with the tokens:verify scope"
                );
                Answer::Failed
            }
            Err(e) => {
                tracing::error!(error = %e, "verifying a token with Tooken failed");
                Answer::Failed
            }
        }
    }
}

/// The token of exactly one `Authorization: Bearer <token>` header.
fn bearer_token(headers: &HeaderMap) -> Result<&str, Rejection> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(Rejection::missing_token());
    };
    if values.next().is_some() {
        return Err(Rejection::invalid_token());
    }
    value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .filter(|t| !t.is_empty())
        .ok_or_else(Rejection::invalid_token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(AUTHORIZATION, HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    #[test]
    fn only_exactly_bearer_space_token_is_accepted() {
        assert_eq!(bearer_token(&headers(&[b"Bearer abc"])), Ok("abc"));
        assert_eq!(bearer_token(&headers(&[])), Err(Rejection::missing_token()));
        for bad in [
            &b"bearer abc"[..],
            b"Bearer",
            b"Bearer ",
            b"Basic abc",
            b"Token abc",
            b"abc",
            b"Bearer\tabc",
            b"Bearer \xffabc",
        ] {
            assert_eq!(
                bearer_token(&headers(&[bad])),
                Err(Rejection::invalid_token()),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            bearer_token(&headers(&[b"Bearer a", b"Bearer b"])),
            Err(Rejection::invalid_token())
        );
    }

    #[tokio::test]
    async fn malformed_tokens_and_api_keys_are_refused_without_asking_tooken() {
        // Nothing listens on port 9 of the discard address; if the layer
        // asked, it would answer 503, not 401.
        let tooken = Tooken::builder("http://127.0.0.1:9", "unused")
            .unwrap()
            .build();
        let api_key = Credential::generate("tok", tooken_core::Mode::Live);
        let good = Credential::generate("tkn", tooken_core::Mode::Live);
        let (body, last) = good.expose().split_at(good.expose().len() - 1);
        let typo = format!("{body}{}", if last == "x" { "y" } else { "x" });
        for presented in [
            "garbage",
            "Bearer x",
            " tkn_live_x",
            api_key.expose(),
            &typo,
        ] {
            assert_eq!(
                tooken.verify(presented).await,
                Err(Rejection::invalid_token()),
                "{presented}"
            );
        }
        assert_eq!(tooken.cache_len(), 0);
    }

    #[test]
    #[should_panic(expected = "Tooken::require")]
    fn require_panics_on_an_invalid_scope_literal() {
        let tooken = Tooken::builder("http://127.0.0.1:9", "unused")
            .unwrap()
            .build();
        let _ = tooken.require("Invoices Read");
    }
}
