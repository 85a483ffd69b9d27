//! `/v1/tokens`: issue, list, inspect, change, rotate and revoke tokens.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use tooken_core::api::{
    CreateToken, Page, RevokeToken, RotateToken, TokenObject, TokenUsage, TokenWithSecret,
    UpdateToken,
};
use tooken_core::id::{is_id, IdKind};
use tooken_core::scope::{any_covers, parse_scopes, TOKENS_READ, TOKENS_WRITE};
use tooken_core::token::{self, TokenStatus};
use tooken_core::{Credential, Mode, Scope};
use tooken_store::{AuditContext, NewToken, TokenFilter, TokenPatch, TokenRecord, Workspace};

use crate::auth::{Caller, Principal};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, OptionalJson};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tokens", post(create_token).get(list_tokens))
        .route("/v1/tokens/{id}", get(get_token).patch(update_token))
        .route("/v1/tokens/{id}/rotate", post(rotate_token))
        .route("/v1/tokens/{id}/revoke", post(revoke_token))
        .route("/v1/tokens/{id}/usage", get(token_usage))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListTokensQuery {
    /// 1–100, default 20.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// A token id from a previous page: the page starts after it.
    pub starting_after: Option<String>,
    /// `active`, `expired` or `revoked`.
    #[param(value_type = Option<TokenStatus>)]
    pub status: Option<String>,
    /// Only tokens carrying exactly this scope.
    #[param(value_type = Option<Scope>)]
    pub scope: Option<String>,
    /// Only tokens whose name starts with this.
    pub name: Option<String>,
}

/// The API view of a stored token at `now`.
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

pub const MAX_GRACE_SECONDS: i64 = 604_800;

/// Parses `limit` (1–100, default 20).
pub fn parse_limit(raw: Option<&str>) -> ApiResult<u32> {
    match raw {
        None => Ok(20),
        Some(s) => match s.parse::<u32>() {
            Ok(n @ 1..=100) => Ok(n),
            _ => Err(ApiError::invalid(
                "limit",
                "limit must be an integer from 1 to 100",
            )),
        },
    }
}

/// Creates a token. Its mode is the caller's; a token creating a token can
/// only hand out scopes it holds and an expiry no later than its own.
#[utoipa::path(post, path = "/v1/tokens", tag = "tokens", request_body = CreateToken,
    responses((status = 201, body = TokenWithSecret), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateToken>,
) -> ApiResult<(StatusCode, Json<TokenWithSecret>)> {
    caller.require(TOKENS_WRITE)?;
    let workspace = state.workspace(caller.principal.workspace_id()).await?;
    let parent = match &caller.principal {
        Principal::ApiKey(_) => None,
        Principal::Token(parent) => Some(&**parent),
    };
    let body = issue_token(
        &state,
        workspace,
        caller.principal.mode(),
        caller.principal.id(),
        parent,
        req,
        &caller.audit,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(body)))
}

/// Issues a token in `workspace` and `mode` for `created_by`, under the
/// rules of `POST /v1/tokens` (shared with the dashboard): validation, the
/// workspace policy on expiry, and, when a token (`parent`) makes the
/// request, attenuation to its scopes and expiry.
pub async fn issue_token(
    state: &AppState,
    workspace: Workspace,
    mode: Mode,
    created_by: &str,
    parent: Option<&TokenRecord>,
    req: CreateToken,
    audit: &AuditContext,
) -> ApiResult<TokenWithSecret> {
    let now = state.clock.now();
    let name = token::parse_name("name", &req.name)?;
    let description = req
        .description
        .as_deref()
        .map(token::parse_description)
        .transpose()?;
    let scopes = parse_scopes("scopes", &req.scopes)?;
    let metadata = req.metadata.map(token::parse_metadata).transpose()?;
    let mut expires_at =
        token::expiry_for_new_token(now, req.expires_at, req.expires_in, &workspace.settings)?;
    let parent_id = match parent {
        None => None,
        Some(parent) => {
            check_attenuation(parent, &scopes)?;
            if expires_at.is_none() {
                // A child of an expiring token inherits its expiry.
                expires_at = parent.expires_at;
            }
            check_expiry_within_parent(parent, expires_at)?;
            Some(parent.id.clone())
        }
    };
    let credential = Credential::generate(&workspace.settings.token_prefix, mode);
    let record = state
        .store
        .insert_token(
            NewToken {
                workspace_id: workspace.id,
                mode,
                name,
                description,
                scopes,
                metadata,
                secret_hash: credential.hash(),
                hint: credential.hint(),
                created_by: created_by.to_owned(),
                parent_id,
                expires_at,
            },
            audit,
            now,
        )
        .await?;
    Ok(TokenWithSecret {
        token: token_object(record, now),
        secret: credential.expose().to_owned(),
    })
}

fn check_attenuation(parent: &TokenRecord, scopes: &[Scope]) -> ApiResult<()> {
    if let Some(extra) = scopes.iter().find(|s| !any_covers(&parent.scopes, s)) {
        return Err(ApiError::forbidden(format!(
            "scope {extra} exceeds the scopes of the token making this request"
        )));
    }
    Ok(())
}

fn check_expiry_within_parent(
    parent: &TokenRecord,
    expires_at: Option<DateTime<Utc>>,
) -> ApiResult<()> {
    match (parent.expires_at, expires_at) {
        (Some(limit), None) => Err(ApiError::forbidden(format!(
            "expires_at: a token created by a token must expire no later than it does ({})",
            limit.to_rfc3339()
        ))),
        (Some(limit), Some(at)) if at > limit => Err(ApiError::forbidden(format!(
            "expires_at exceeds the expiry of the token making this request ({})",
            limit.to_rfc3339()
        ))),
        _ => Ok(()),
    }
}

/// Lists tokens of the caller's workspace and mode, newest first.
#[utoipa::path(get, path = "/v1/tokens", tag = "tokens", params(ListTokensQuery),
    responses((status = 200, body = Page<TokenObject>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListTokensQuery>,
) -> ApiResult<Json<Page<TokenObject>>> {
    caller.require(TOKENS_READ)?;
    let now = state.clock.now();
    let limit = parse_limit(q.limit.as_deref())?;
    let status = match q.status.as_deref() {
        None => None,
        Some("active") => Some(TokenStatus::Active),
        Some("expired") => Some(TokenStatus::Expired),
        Some("revoked") => Some(TokenStatus::Revoked),
        Some(_) => {
            return Err(ApiError::invalid(
                "status",
                "status must be active, expired or revoked",
            ))
        }
    };
    if let Some(scope) = &q.scope {
        Scope::parse(scope).map_err(|e| ApiError::invalid("scope", format!("scope: {e}")))?;
    }
    let (workspace_id, mode) = (caller.principal.workspace_id(), caller.principal.mode());
    if let Some(cursor) = &q.starting_after {
        let known = is_id(IdKind::Token, cursor)
            && state
                .store
                .token(workspace_id, mode, cursor)
                .await?
                .is_some();
        if !known {
            return Err(ApiError::invalid(
                "starting_after",
                "starting_after is not a token id from a previous page",
            ));
        }
    }
    let filter = TokenFilter {
        status,
        scope: q.scope,
        name_prefix: q.name,
        starting_after: q.starting_after,
        limit,
    };
    let (tokens, has_more) = state
        .store
        .list_tokens(workspace_id, mode, &filter, now)
        .await?;
    let next_cursor = if has_more {
        tokens.last().map(|t| t.id.clone())
    } else {
        None
    };
    let data = tokens.into_iter().map(|t| token_object(t, now)).collect();
    Ok(Json(Page {
        data,
        has_more,
        next_cursor,
    }))
}

/// The `404` for `id`, which names it only if it is a token id: anything
/// else in its place (a token's secret, pasted into the URL) is not sent
/// back.
pub fn no_such_token(id: &str) -> ApiError {
    ApiError::NotFound(if is_id(IdKind::Token, id) {
        format!("no token with id {id}")
    } else if tooken_core::credential::is_well_formed(id) {
        "no such token: this is a credential, not a token id (token ids start with tk_)".into()
    } else {
        format!(
            "no token with id {} (token ids start with tk_)",
            tooken_core::redact::shown(id)
        )
    })
}

/// A token of the caller's workspace and mode, or `404`.
async fn find(state: &AppState, principal: &Principal, id: &str) -> ApiResult<TokenRecord> {
    let not_found = || no_such_token(id);
    if !is_id(IdKind::Token, id) {
        return Err(not_found());
    }
    state
        .store
        .token(principal.workspace_id(), principal.mode(), id)
        .await?
        .ok_or_else(not_found)
}

/// A token may manage only tokens created through it, at any depth.
async fn require_manages(
    state: &AppState,
    principal: &Principal,
    target: &TokenRecord,
) -> ApiResult<()> {
    if let Principal::Token(me) = principal {
        if me.id == target.id
            || !state
                .store
                .is_descendant_or_self(&me.id, &target.id)
                .await?
        {
            return Err(ApiError::forbidden(
                "a token may only manage tokens created through it",
            ));
        }
    }
    Ok(())
}

#[utoipa::path(get, path = "/v1/tokens/{id}", tag = "tokens", params(("id" = String, Path)),
    responses((status = 200, body = TokenObject), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<TokenObject>> {
    caller.require(TOKENS_READ)?;
    let token = find(&state, &caller.principal, &id).await?;
    Ok(Json(token_object(token, state.clock.now())))
}

#[utoipa::path(patch, path = "/v1/tokens/{id}", tag = "tokens", params(("id" = String, Path)),
    request_body = UpdateToken,
    responses((status = 200, body = TokenObject), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<UpdateToken>,
) -> ApiResult<Json<TokenObject>> {
    caller.require(TOKENS_WRITE)?;
    let now = state.clock.now();
    let current = find(&state, &caller.principal, &id).await?;
    require_manages(&state, &caller.principal, &current).await?;
    if current.revoked_at.is_some() {
        return Err(ApiError::Conflict(format!(
            "token {id} is revoked and cannot be changed"
        )));
    }
    let workspace = state.workspace(caller.principal.workspace_id()).await?;
    let mut patch = TokenPatch {
        name: req
            .name
            .as_deref()
            .map(|n| token::parse_name("name", n))
            .transpose()?,
        description: match req.description {
            Some(Some(d)) => Some(Some(token::parse_description(&d)?)),
            other => other.map(|_| None),
        },
        metadata: match req.metadata {
            Some(Some(m)) => Some(Some(token::parse_metadata(m)?)),
            other => other.map(|_| None),
        },
        scopes: req
            .scopes
            .as_deref()
            .map(|s| parse_scopes("scopes", s))
            .transpose()?,
        expires_at: None,
    };
    if let Some(expires_at) = req.expires_at {
        token::check_expiry(now, expires_at, &workspace.settings)?;
        patch.expires_at = Some(expires_at);
    }
    if let Principal::Token(me) = &caller.principal {
        if let Some(scopes) = &patch.scopes {
            check_attenuation(me, scopes)?;
        }
        if let Some(expires_at) = patch.expires_at {
            check_expiry_within_parent(me, expires_at)?;
        }
    }
    let updated = state
        .store
        .update_token(
            &workspace.id,
            caller.principal.mode(),
            &id,
            patch,
            &caller.audit,
            now,
        )
        .await?
        .ok_or_else(|| no_such_token(&id))?;
    Ok(Json(token_object(updated, now)))
}

/// Gives the token a new secret; the previous one keeps working for the
/// grace period, then stops.
#[utoipa::path(post, path = "/v1/tokens/{id}/rotate", tag = "tokens", params(("id" = String, Path)),
    request_body(content = Option<RotateToken>),
    responses((status = 200, body = TokenWithSecret), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn rotate_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    OptionalJson(req): OptionalJson<RotateToken>,
) -> ApiResult<Json<TokenWithSecret>> {
    caller.require(TOKENS_WRITE)?;
    check_grace_period(req.grace_period_seconds)?;
    let current = find(&state, &caller.principal, &id).await?;
    require_manages(&state, &caller.principal, &current).await?;
    let workspace = state.workspace(caller.principal.workspace_id()).await?;
    let rotated = rotate_secret(
        &state,
        &workspace,
        current,
        req.grace_period_seconds,
        &caller.audit,
    )
    .await?;
    Ok(Json(rotated))
}

/// `grace_period_seconds` of a rotation: 0 to [`MAX_GRACE_SECONDS`].
pub fn check_grace_period(seconds: i64) -> ApiResult<()> {
    if !(0..=MAX_GRACE_SECONDS).contains(&seconds) {
        return Err(ApiError::invalid(
            "grace_period_seconds",
            format!("grace_period_seconds must be between 0 and {MAX_GRACE_SECONDS}"),
        ));
    }
    Ok(())
}

/// Gives an active token a new secret under the rules of `POST
/// /v1/tokens/{id}/rotate` (shared with the dashboard); the previous secret
/// keeps working for `grace_period_seconds` (already checked).
pub async fn rotate_secret(
    state: &AppState,
    workspace: &Workspace,
    current: TokenRecord,
    grace_period_seconds: i64,
    audit: &AuditContext,
) -> ApiResult<TokenWithSecret> {
    let now = state.clock.now();
    let id = current.id.clone();
    if current.status_at(now) != TokenStatus::Active {
        return Err(ApiError::Conflict(format!(
            "token {id} is {} and cannot be rotated",
            current.status_at(now).as_str()
        )));
    }
    // The new secret keeps the token's own prefix: rotating must not break
    // whatever matches on it.
    let prefix = current
        .hint
        .split('_')
        .next()
        .unwrap_or(&workspace.settings.token_prefix);
    let credential = Credential::generate(prefix, current.mode);
    let grace = (grace_period_seconds > 0).then(|| now + Duration::seconds(grace_period_seconds));
    let rotated = state
        .store
        .rotate_token(
            &workspace.id,
            current.mode,
            &id,
            credential.hash(),
            credential.hint(),
            grace,
            audit,
            now,
        )
        .await?
        .ok_or_else(|| no_such_token(&id))?;
    Ok(TokenWithSecret {
        token: token_object(rotated, now),
        secret: credential.expose().to_owned(),
    })
}

/// The optional `reason` of a revocation: at most 256 characters of text.
pub fn check_revoke_reason(reason: Option<&str>) -> ApiResult<()> {
    reason.map(token::check_revoke_reason).transpose()?;
    Ok(())
}

/// Revokes the token and every token created through it. Idempotent.
#[utoipa::path(post, path = "/v1/tokens/{id}/revoke", tag = "tokens", params(("id" = String, Path)),
    request_body(content = Option<RevokeToken>),
    responses((status = 200, body = TokenObject), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    OptionalJson(req): OptionalJson<RevokeToken>,
) -> ApiResult<Json<TokenObject>> {
    caller.require(TOKENS_WRITE)?;
    check_revoke_reason(req.reason.as_deref())?;
    let now = state.clock.now();
    let current = find(&state, &caller.principal, &id).await?;
    require_manages(&state, &caller.principal, &current).await?;
    let (token, _revoked) = state
        .store
        .revoke_token(
            &current.workspace_id,
            current.mode,
            &id,
            req.reason.as_deref(),
            &caller.audit,
            now,
        )
        .await?
        .ok_or_else(|| no_such_token(&id))?;
    Ok(Json(token_object(token, now)))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// How many days back, 1–90 (default 30), today included.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 90)]
    pub days: Option<String>,
}

/// A token's use per day: successful verifications and API calls. Current
/// to within about a second.
#[utoipa::path(get, path = "/v1/tokens/{id}/usage", tag = "tokens", params(("id" = String, Path), UsageQuery),
    responses((status = 200, body = TokenUsage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn token_usage(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<UsageQuery>,
) -> ApiResult<Json<TokenUsage>> {
    caller.require(TOKENS_READ)?;
    let days = match q.days.as_deref() {
        None => 30,
        Some(s) => match s.parse::<i64>() {
            Ok(n @ 1..=90) => n,
            _ => {
                return Err(ApiError::invalid(
                    "days",
                    "days must be an integer from 1 to 90",
                ))
            }
        },
    };
    let token = find(&state, &caller.principal, &id).await?;
    let since = state.clock.now().date_naive() - Duration::days(days - 1);
    let data = state.store.daily_usage(&token.id, since).await?;
    Ok(Json(TokenUsage {
        token_id: token.id,
        last_used_at: token.last_used_at,
        data,
    }))
}
