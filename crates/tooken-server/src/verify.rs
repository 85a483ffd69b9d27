//! Verification for downstream services: `POST /v1/tokens/verify` and RFC
//! 7662 introspection at `POST /v1/oauth/introspect`. Both ask the
//! service's one judgement ([`tooken_service::Service::judge`]).

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use tooken_core::api::{IntrospectRequest, IntrospectResponse, VerifyRequest, VerifyResponse};
use tooken_service::views::{introspection, verify_response};
use tooken_service::Caller;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiForm, ApiJson};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tokens/verify", post(verify_token))
        .route("/v1/oauth/introspect", post(introspect))
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
    let verdict = state
        .service
        .verify(&caller, &req.token, &req.scopes)
        .await?;
    Ok(Json(verify_response(&verdict)))
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
    let verdict = state.service.introspect(&caller, &req.token).await?;
    Ok(Json(introspection(&verdict)))
}
