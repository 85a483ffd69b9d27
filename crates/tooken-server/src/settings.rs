//! `/v1/settings`: the workspace's token policy. API keys only.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use tooken_core::api::UpdateSettings;
use tooken_core::Settings;
use tooken_service::Caller;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::ApiJson;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/settings", get(get_settings).patch(update_settings))
}

#[utoipa::path(get, path = "/v1/settings", tag = "settings",
    responses((status = 200, body = Settings), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn get_settings(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Settings>> {
    Ok(Json(state.service.settings(&caller).await?))
}

#[utoipa::path(patch, path = "/v1/settings", tag = "settings", request_body = UpdateSettings,
    responses((status = 200, body = Settings), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn update_settings(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<UpdateSettings>,
) -> ApiResult<Json<Settings>> {
    Ok(Json(
        state.service.update_settings(&caller, req.into()).await?,
    ))
}
