//! Records as the API shows them: the objects of responses (and, later,
//! of webhook payloads and verifier events, which must show the same).

use chrono::{DateTime, Utc};
use tooken_core::api::{IntrospectResponse, TokenObject, VerifiedToken, VerifyResponse};
use tooken_core::Scope;
use tooken_store::TokenRecord;

use crate::Verdict;

/// A stored token, as the API shows it at `now`.
pub fn token_object(t: TokenRecord, now: DateTime<Utc>) -> TokenObject {
    TokenObject {
        status: t.status_at(now),
        id: t.id,
        name: t.name,
        description: t.description,
        mode: t.mode,
        scopes: t.scopes,
        metadata: t.metadata,
        hint: t.hint,
        created_at: t.created_at,
        created_by: t.created_by,
        expires_at: t.expires_at,
        last_used_at: t.last_used_at,
        revoked_at: t.revoked_at,
        parent_id: t.parent_id,
    }
}

/// A verdict as `POST /v1/tokens/verify` answers it.
pub fn verify_response(verdict: &Verdict) -> VerifyResponse {
    VerifyResponse {
        valid: verdict.is_valid(),
        code: verdict.code,
        token: verdict.token.as_deref().map(|found| {
            let t = &found.token;
            VerifiedToken {
                id: t.id.clone(),
                name: t.name.clone(),
                scopes: t.scopes.clone(),
                metadata: t.metadata.clone(),
                expires_at: t.expires_at,
                mode: t.mode,
            }
        }),
    }
}

/// A verdict as RFC 7662 introspection answers it: only a valid token is
/// active, and an inactive one is `{"active":false}` alone.
pub fn introspection(verdict: &Verdict) -> IntrospectResponse {
    match verdict.token.as_deref().map(|found| &found.token) {
        Some(t) if verdict.is_valid() => IntrospectResponse {
            active: true,
            scope: Some(
                t.scopes
                    .iter()
                    .map(Scope::as_str)
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            exp: t.expires_at.map(|e| e.timestamp()),
            iat: Some(t.created_at.timestamp()),
            sub: Some(t.id.clone()),
            client_id: Some(t.created_by.clone()),
            token_type: Some("bearer".into()),
        },
        _ => IntrospectResponse::default(),
    }
}
