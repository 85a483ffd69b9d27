//! Bearer authentication and authorization of API calls.
//!
//! Every `/v1` request carries `Authorization: Bearer <credential>`, exactly
//! one space after `Bearer`, no other whitespace. The credential is an API
//! key (full access to its workspace, in its mode) or a token (limited to its
//! scopes). Every failure looks the same to the client.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::{AUTHORIZATION, USER_AGENT};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use tooken_core::audit::Actor;
use tooken_core::scope::any_covers;
use tooken_core::token::TokenStatus;
use tooken_core::{Credential, CredentialKind, Mode, Scope};
use tooken_store::{ApiKey, AuditContext, TokenRecord};

use crate::error::{ApiError, ApiResult};
use crate::failures::{Failure, FailureLog};
use crate::usage::Use;
use crate::AppState;

/// Who is calling.
#[derive(Debug, Clone)]
///
/// Both share their record with the credential cache: authenticating a
/// request copies nothing.
pub enum Principal {
    ApiKey(Arc<ApiKey>),
    Token(Arc<TokenRecord>),
}

impl Principal {
    pub fn workspace_id(&self) -> &str {
        match self {
            Principal::ApiKey(k) => &k.workspace_id,
            Principal::Token(t) => &t.workspace_id,
        }
    }

    pub fn mode(&self) -> Mode {
        match self {
            Principal::ApiKey(k) => k.mode,
            Principal::Token(t) => t.mode,
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Principal::ApiKey(k) => &k.id,
            Principal::Token(t) => &t.id,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Principal::ApiKey(_) => "api_key",
            Principal::Token(_) => "token",
        }
    }

    pub fn actor(&self) -> Actor {
        let hint = match self {
            Principal::ApiKey(k) => &k.hint,
            Principal::Token(t) => &t.hint,
        };
        Actor {
            kind: self.kind().to_owned(),
            id: Some(self.id().to_owned()),
            hint: Some(hint.clone()),
        }
    }

    /// Allows API keys always, and tokens holding a scope that covers `scope`.
    pub fn require(&self, scope: &str) -> ApiResult<()> {
        match self {
            Principal::ApiKey(_) => Ok(()),
            Principal::Token(t) => {
                let wanted = Scope::parse(scope).map_err(ApiError::internal)?;
                if any_covers(&t.scopes, &wanted) {
                    Ok(())
                } else {
                    Err(ApiError::missing_scope(scope))
                }
            }
        }
    }

    /// Allows API keys only (workspace settings).
    pub fn require_api_key(&self) -> ApiResult<()> {
        match self {
            Principal::ApiKey(_) => Ok(()),
            Principal::Token(_) => Err(ApiError::forbidden("only an API key may do this")),
        }
    }
}

/// An authenticated caller and the audit context of its request.
#[derive(Clone)]
pub struct Caller {
    pub principal: Principal,
    /// The store's change marker when the request began: later lookups in
    /// the same request (verifying a token) trust the cache under it.
    pub marker: Option<u64>,
    pub audit: AuditContext,
    failures: Arc<FailureLog>,
    now: DateTime<Utc>,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("principal", &self.principal)
            .finish_non_exhaustive()
    }
}

impl Caller {
    /// Checks the caller holds `scope` (API keys hold every scope); a
    /// refusal is recorded in the audit log.
    pub fn require(&self, scope: &str) -> ApiResult<()> {
        self.principal
            .require(scope)
            .inspect_err(|_| self.record_refusal("insufficient_scope"))
    }

    /// Checks the caller is an API key; a refusal is recorded.
    pub fn require_api_key(&self) -> ApiResult<()> {
        self.principal
            .require_api_key()
            .inspect_err(|_| self.record_refusal("api_key_required"))
    }

    fn record_refusal(&self, reason: &'static str) {
        let hint = self.principal.actor().hint;
        self.failures.record(
            Failure {
                workspace_id: Some(self.principal.workspace_id().to_owned()),
                mode: Some(self.principal.mode()),
                client_addr: self.audit.client_addr.clone(),
                reason,
                hint,
            },
            self.now,
        );
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let now = state.clock.now();
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(a)| a.ip());
        let client_addr = ip.map(|ip| ip.to_string());
        if let Some(ip) = ip {
            if let Err(retry_after_seconds) = state.throttle.check(ip, now) {
                let failure = Failure {
                    workspace_id: None,
                    mode: None,
                    client_addr,
                    reason: "rate_limited",
                    hint: None,
                };
                state.failures.record(failure, now);
                return Err(ApiError::RateLimited {
                    retry_after_seconds,
                });
            }
        }
        let marker = state.change_marker();
        let principal = match authenticate(&parts.headers, state, marker, now).await {
            Ok(p) => p,
            Err(Rejected::Store(e)) => return Err(e.into()),
            Err(Rejected::Auth(mut failure)) => {
                let presented = failure.reason != "missing";
                failure.client_addr = client_addr;
                state.failures.record(failure, now);
                if let Some(ip) = ip {
                    let delay = state.throttle.failure(ip, now);
                    if !delay.is_zero() {
                        state.metrics.record_slowed_failure();
                        tokio::time::sleep(delay).await;
                    }
                }
                return Err(ApiError::Unauthorized {
                    credential_presented: presented,
                });
            }
        };
        match &principal {
            Principal::ApiKey(k) => state.usage.record_api_key(&k.id, now),
            Principal::Token(t) => state.usage.record_token(&t.id, now, Use::ApiCall),
        }
        let mut audit = AuditContext::new(principal.actor());
        audit.client_addr = client_addr;
        audit.user_agent = parts
            .headers
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(256).collect());
        audit.request_id = parts
            .headers
            .get(crate::REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Caller {
            principal,
            marker,
            audit,
            failures: state.failures.clone(),
            now,
        })
    }
}

enum Rejected {
    Auth(Failure),
    Store(tooken_store::StoreError),
}

impl From<tooken_store::StoreError> for Rejected {
    fn from(e: tooken_store::StoreError) -> Self {
        Rejected::Store(e)
    }
}

fn failed(reason: &'static str, hint: Option<String>, owner: Option<(&str, Mode)>) -> Rejected {
    Rejected::Auth(Failure {
        workspace_id: owner.map(|(w, _)| w.to_owned()),
        mode: owner.map(|(_, m)| m),
        client_addr: None,
        reason,
        hint,
    })
}

async fn authenticate(
    headers: &HeaderMap,
    state: &AppState,
    marker: Option<u64>,
    now: DateTime<Utc>,
) -> Result<Principal, Rejected> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(failed("missing", None, None));
    };
    if values.next().is_some() {
        return Err(failed("malformed", None, None));
    }
    let credential = Credential::from_authorization(value.as_bytes())
        .map_err(|_| failed("malformed", None, None))?;
    // Only failures are recorded with the hint.
    let hint = || Some(credential.hint());
    let hash = credential.hash();
    match credential.kind() {
        CredentialKind::ApiKey => match state.api_key_by_secret(marker, &hash).await? {
            Some(key) => Ok(Principal::ApiKey(key)),
            None => Err(failed("unknown", hint(), None)),
        },
        CredentialKind::Token => {
            let Some(found) = state.token_by_secret(marker, &hash, now).await? else {
                return Err(failed("unknown", hint(), None));
            };
            let owner = Some((found.token.workspace_id.as_str(), found.token.mode));
            if found.previous_valid_until.is_some_and(|until| now >= until) {
                return Err(failed("rotated", hint(), owner));
            }
            match found.token.status_at(now) {
                TokenStatus::Active => Ok(Principal::Token(found.token.clone())),
                TokenStatus::Revoked => Err(failed("revoked", hint(), owner)),
                TokenStatus::Expired => Err(failed("expired", hint(), owner)),
            }
        }
    }
}
