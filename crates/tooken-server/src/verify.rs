//! Verification for downstream services: `POST /v1/tokens/verify` and RFC
//! 7662 introspection at `POST /v1/oauth/introspect`.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use tooken_core::api::{
    IntrospectRequest, IntrospectResponse, VerifiedToken, VerifyRequest, VerifyResponse,
};
use tooken_core::scope::{any_covers, parse_scopes, TOKENS_VERIFY};
use tooken_core::token::{TokenStatus, VerifyCode};
use tooken_core::{Credential, CredentialKind, Scope};

use tooken_store::TokenMatch;

use crate::auth::{Caller, Principal};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiForm, ApiJson};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tokens/verify", post(verify_token))
        .route("/v1/oauth/introspect", post(introspect))
}

/// The verdict on a presented token, for the caller's workspace and mode.
pub struct Verdict {
    pub code: VerifyCode,
    /// Shared with the credential cache: judging copies nothing.
    pub token: Option<Arc<TokenMatch>>,
}

/// Judges `candidate` as a token of `principal`'s workspace and mode,
/// trusting the cache under `marker` (the request's, see
/// [`crate::auth::Caller::marker`]). Tokens elsewhere, API keys, and
/// secrets rotated away past their grace period are all simply not found.
pub async fn judge(
    state: &AppState,
    principal: &Principal,
    marker: Option<u64>,
    candidate: &str,
    required: &[Scope],
    now: DateTime<Utc>,
) -> ApiResult<Verdict> {
    let Ok(credential) = Credential::parse(candidate) else {
        return Ok(Verdict {
            code: VerifyCode::Malformed,
            token: None,
        });
    };
    let not_found = Verdict {
        code: VerifyCode::NotFound,
        token: None,
    };
    if credential.kind() != CredentialKind::Token || credential.mode() != principal.mode() {
        return Ok(not_found);
    }
    let Some(found) = state
        .token_by_secret(marker, &credential.hash(), now)
        .await?
    else {
        return Ok(not_found);
    };
    let token = &found.token;
    if token.workspace_id != principal.workspace_id()
        || token.mode != principal.mode()
        || found.previous_valid_until.is_some_and(|until| now >= until)
    {
        return Ok(not_found);
    }
    let code = match token.status_at(now) {
        TokenStatus::Revoked => VerifyCode::Revoked,
        TokenStatus::Expired => VerifyCode::Expired,
        TokenStatus::Active if required.iter().all(|r| any_covers(&token.scopes, r)) => {
            VerifyCode::Valid
        }
        TokenStatus::Active => VerifyCode::InsufficientScope,
    };
    if code == VerifyCode::Valid {
        state
            .usage
            .record_token(&token.id, now, crate::usage::Use::Verification);
    }
    Ok(Verdict {
        code,
        token: Some(found),
    })
}

/// Verifies a token for a downstream service. Always `200`: the answer is
/// in `valid` and `code`.
#[utoipa::path(post, path = "/v1/tokens/verify", tag = "verification", request_body = VerifyRequest,
    responses((status = 200, body = VerifyResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn verify_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<VerifyRequest>,
) -> ApiResult<Json<VerifyResponse>> {
    caller.require(TOKENS_VERIFY)?;
    let required = parse_scopes("scopes", &req.scopes)?;
    let now = state.clock.now();
    let verdict = judge(
        &state,
        &caller.principal,
        caller.marker,
        &req.token,
        &required,
        now,
    )
    .await?;
    state.metrics.record_verification(verdict.code);
    Ok(Json(VerifyResponse {
        valid: verdict.code == VerifyCode::Valid,
        code: verdict.code,
        token: verdict.token.map(|found| {
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
    }))
}

#[utoipa::path(post, path = "/v1/oauth/introspect", tag = "verification",
    request_body(content = IntrospectRequest, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = IntrospectResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn introspect(
    State(state): State<AppState>,
    caller: Caller,
    ApiForm(req): ApiForm<IntrospectRequest>,
) -> ApiResult<Json<IntrospectResponse>> {
    caller.require(TOKENS_VERIFY)?;
    let now = state.clock.now();
    let verdict = judge(
        &state,
        &caller.principal,
        caller.marker,
        &req.token,
        &[],
        now,
    )
    .await?;
    let response = match verdict.token.as_deref().map(|found| &found.token) {
        Some(t) if verdict.code == VerifyCode::Valid => IntrospectResponse {
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
    };
    Ok(Json(response))
}
