//! `/v1/whoami`, health and readiness.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use tooken_core::api::{Whoami, WorkspaceRef};
use tooken_core::scope::{AUDIT_READ, TOKENS_READ, TOKENS_VERIFY, TOKENS_WRITE};
use tooken_service::{Caller, Principal};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/whoami", get(whoami))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

#[utoipa::path(get, path = "/v1/whoami", tag = "system",
    responses((status = 200, body = Whoami), (status = 401, body = ErrorBody)))]
pub async fn whoami(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Whoami>> {
    let workspace = state.service.own_workspace(&caller).await?;
    let (name, hint, scopes, mode) = match &caller.principal {
        Principal::ApiKey(k) => (
            k.name.clone(),
            k.hint.clone(),
            [TOKENS_READ, TOKENS_WRITE, TOKENS_VERIFY, AUDIT_READ]
                .map(str::to_owned)
                .to_vec(),
            k.mode,
        ),
        Principal::Token(t) => (
            t.name.clone(),
            t.hint.clone(),
            t.scopes.iter().map(|s| s.to_string()).collect(),
            t.mode,
        ),
        // The API authenticates credentials only.
        other => {
            return Err(ApiError::internal(std::io::Error::other(format!(
                "whoami for a {} caller",
                other.kind()
            ))))
        }
    };
    Ok(Json(Whoami {
        kind: caller.principal.kind().to_owned(),
        id: caller.principal.id().unwrap_or_default().to_owned(),
        name,
        hint,
        workspace: WorkspaceRef {
            id: workspace.id,
            name: workspace.name,
        },
        mode,
        scopes,
    }))
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "system",
    responses((status = 200, description = "alive", content_type = "text/plain")))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the store answers.
#[utoipa::path(get, path = "/readyz", tag = "system",
    responses((status = 200, description = "ready", content_type = "text/plain"),
        (status = 503, description = "store unreachable", content_type = "text/plain")))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    match state.service.ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, "store not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
        }
    }
}
