//! `/v1/tokens`: issue, list, inspect, change, rotate and revoke tokens.
//! Each handler parses the request, calls one operation of the service,
//! and renders its answer.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tooken_core::api::{
    CreateToken, Page, RevokeToken, RotateToken, TokenObject, TokenUsage, TokenWithSecret,
    UpdateToken,
};
use tooken_core::token::TokenStatus;
use tooken_core::Scope;
use tooken_service::views::token_object;
use tooken_service::{Caller, TokenQuery};

use crate::error::{ApiResult, ErrorBody};
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
    let issued = state.service.issue_token(&caller, req.into()).await?;
    Ok((StatusCode::CREATED, Json(issued)))
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
    let query = TokenQuery {
        limit: q.limit,
        starting_after: q.starting_after,
        status: q.status,
        scope: q.scope,
        name: q.name,
    };
    let page = state.service.list_tokens(&caller, query).await?;
    let next_cursor = page
        .has_more
        .then(|| page.tokens.last().map(|t| t.id.clone()))
        .flatten();
    Ok(Json(Page {
        data: page
            .tokens
            .into_iter()
            .map(|t| token_object(t, page.at))
            .collect(),
        has_more: page.has_more,
        next_cursor,
    }))
}

#[utoipa::path(get, path = "/v1/tokens/{id}", tag = "tokens", params(("id" = String, Path)),
    responses((status = 200, body = TokenObject), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<TokenObject>> {
    let token = state.service.token(&caller, &id).await?;
    Ok(Json(token_object(token, state.service.now())))
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
    Ok(Json(
        state.service.update_token(&caller, &id, req.into()).await?,
    ))
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
    let rotated = state
        .service
        .rotate_token(&caller, &id, req.grace_period_seconds)
        .await?;
    Ok(Json(rotated))
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
    let revoked = state
        .service
        .revoke_token(&caller, &id, req.reason.as_deref())
        .await?;
    Ok(Json(revoked.token))
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
    let usage = state
        .service
        .token_usage(&caller, &id, q.days.as_deref())
        .await?;
    Ok(Json(usage))
}
