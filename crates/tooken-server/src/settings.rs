//! `/v1/settings`: the workspace's token policy. API keys only.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use tooken_core::api::UpdateSettings;
use tooken_core::Settings;

use crate::auth::Caller;
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
    caller.require_api_key()?;
    Ok(Json(
        state
            .workspace(caller.principal.workspace_id())
            .await?
            .settings,
    ))
}

#[utoipa::path(patch, path = "/v1/settings", tag = "settings", request_body = UpdateSettings,
    responses((status = 200, body = Settings), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn update_settings(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<UpdateSettings>,
) -> ApiResult<Json<Settings>> {
    caller.require_api_key()?;
    let workspace = state.workspace(caller.principal.workspace_id()).await?;
    let mut s = workspace.settings;
    if let Some(v) = req.require_expiration {
        s.require_expiration = v;
    }
    if let Some(v) = req.max_token_ttl_seconds {
        s.max_token_ttl_seconds = v;
    }
    if let Some(v) = req.default_token_ttl_seconds {
        s.default_token_ttl_seconds = v;
    }
    if let Some(v) = req.token_prefix {
        s.token_prefix = v;
    }
    if let Some(v) = req.audit_retention_days {
        s.audit_retention_days = v;
    }
    s.validate()?;
    let saved = state
        .store
        .update_settings(&workspace.id, &s, &caller.audit, state.clock.now())
        .await?;
    Ok(Json(saved))
}
