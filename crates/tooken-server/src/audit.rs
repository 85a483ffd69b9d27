//! `/v1/audit-log`: read and export the workspace's audit log.

use axum::body::Body;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use tooken_core::api::Page;
use tooken_core::audit::Event;
use tooken_service::Caller;
use tooken_store::StoreError;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::ApiQuery;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/audit-log", get(list_events))
        .route("/v1/audit-log/export", get(export_events))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// 1–100, default 20 (list only).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// An event id from a previous page (list only).
    pub starting_after: Option<String>,
    /// e.g. `token.revoked`.
    pub action: Option<String>,
    /// The id of the API key or token that acted.
    pub actor: Option<String>,
    /// The id of the object acted on.
    pub target: Option<String>,
    /// RFC 3339; events at or after.
    #[param(value_type = Option<chrono::DateTime<chrono::Utc>>)]
    pub since: Option<String>,
    /// RFC 3339; events before.
    #[param(value_type = Option<chrono::DateTime<chrono::Utc>>)]
    pub until: Option<String>,
}

impl From<AuditQuery> for tooken_service::AuditQuery {
    fn from(q: AuditQuery) -> Self {
        tooken_service::AuditQuery {
            limit: q.limit,
            starting_after: q.starting_after,
            action: q.action,
            actor: q.actor,
            target: q.target,
            since: q.since,
            until: q.until,
        }
    }
}

/// Events, newest first. Events of the other mode are not shown.
#[utoipa::path(get, path = "/v1/audit-log", tag = "audit", params(AuditQuery),
    responses((status = 200, body = Page<Event>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_events(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<Page<Event>>> {
    Ok(Json(state.service.audit_events(&caller, q.into()).await?))
}

/// Every matching event as NDJSON, oldest first (chain order), streamed in
/// batches so a log of any size is never held in memory.
#[utoipa::path(get, path = "/v1/audit-log/export", tag = "audit", params(AuditQuery),
    responses((status = 200, description = "NDJSON, one event per line", content_type = "application/x-ndjson"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn export_events(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Response> {
    Ok(ndjson(state.service.export_events(&caller, q.into())?))
}

/// Batches of events as an NDJSON response, one event per line. Shared by
/// the API's export and the dashboard's.
pub fn ndjson(
    batches: impl Stream<Item = Result<Vec<Event>, StoreError>> + Send + 'static,
) -> Response {
    let body = batches.map(|batch| match batch {
        Ok(batch) => {
            let mut chunk = Vec::new();
            for e in &batch {
                // Serializing our own types cannot fail.
                let _ = serde_json::to_writer(&mut chunk, e);
                chunk.push(b'\n');
            }
            Ok(chunk)
        }
        Err(e) => {
            // Headers are sent; the only way to signal failure is to cut
            // the stream short, which the client sees as an error.
            tracing::error!(error = %e, "audit export failed");
            Err(std::io::Error::other("export failed"))
        }
    });
    (
        [(CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(body),
    )
        .into_response()
}
