//! Bearer authentication and authorization of API calls.
//!
//! Every `/v1` request carries `Authorization: Bearer <credential>`, exactly
//! one space after `Bearer`, no other whitespace. The credential is an API
//! key (full access to its workspace, in its mode) or a token (limited to its
//! scopes). Every failure looks the same to the client.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::{AUTHORIZATION, USER_AGENT};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use tooken_core::audit::Actor;
use tooken_core::scope::any_covers;
use tooken_core::{Credential, CredentialKind, Mode, Scope};
use tooken_store::{ApiKey, AuditContext, TokenRecord};

use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Principal {
    ApiKey(ApiKey),
    Token(TokenRecord),
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
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub audit: AuditContext,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let now = state.clock.now();
        let principal = authenticate(&parts.headers, state, now).await?;
        match &principal {
            Principal::ApiKey(k) => state.usage.record_api_key(&k.id, now),
            Principal::Token(t) => state.usage.record_token(&t.id, now),
        }
        let mut audit = AuditContext::new(principal.actor());
        audit.client_addr = client_addr(parts);
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
        Ok(Caller { principal, audit })
    }
}

pub fn client_addr(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string())
}

/// The credential in an `Authorization` header. `Err(false)` when there is
/// no header, `Err(true)` when one was presented but is not acceptable.
fn bearer_credential(headers: &HeaderMap) -> Result<Credential, bool> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next().ok_or(false)?;
    if values.next().is_some() {
        return Err(true);
    }
    let value = value.to_str().map_err(|_| true)?;
    let candidate = value.strip_prefix("Bearer ").ok_or(true)?;
    Credential::parse(candidate).map_err(|_| true)
}

async fn authenticate(
    headers: &HeaderMap,
    state: &AppState,
    now: DateTime<Utc>,
) -> ApiResult<Principal> {
    let credential = bearer_credential(headers).map_err(|presented| ApiError::Unauthorized {
        credential_presented: presented,
    })?;
    let unauthorized = ApiError::Unauthorized {
        credential_presented: true,
    };
    let hash = credential.hash();
    match credential.kind() {
        CredentialKind::ApiKey => match state.store.api_key_by_secret(&hash).await? {
            Some(key) => Ok(Principal::ApiKey(key)),
            None => Err(unauthorized),
        },
        CredentialKind::Token => match state.store.token_by_secret(&hash).await? {
            Some(m)
                if m.previous_valid_until.is_none_or(|until| now < until)
                    && m.token.status_at(now) == tooken_core::token::TokenStatus::Active =>
            {
                Ok(Principal::Token(m.token))
            }
            _ => Err(unauthorized),
        },
    }
}
