//! `/v1/audit-log`: read and export the workspace's audit log.

use axum::body::Body;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use futures_util::stream;
use serde::Deserialize;
use tooken_core::api::Page;
use tooken_core::audit::Event;
use tooken_core::id::{is_id, IdKind};
use tooken_core::scope::AUDIT_READ;
use tooken_store::EventFilter;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiQuery;
use crate::tokens::parse_limit;
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
    #[param(value_type = Option<DateTime<Utc>>)]
    pub since: Option<String>,
    /// RFC 3339; events before.
    #[param(value_type = Option<DateTime<Utc>>)]
    pub until: Option<String>,
}

fn parse_time(field: &str, raw: Option<&str>) -> ApiResult<Option<DateTime<Utc>>> {
    raw.map(|s| {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| ApiError::invalid(field, format!("{field} must be an RFC 3339 time")))
    })
    .transpose()
}

fn filter(caller: &Caller, q: &AuditQuery, limit: u32) -> ApiResult<EventFilter> {
    Ok(EventFilter {
        mode: Some(caller.principal.mode()),
        action: q.action.clone(),
        actor: q.actor.clone(),
        target: q.target.clone(),
        since: parse_time("since", q.since.as_deref())?,
        until: parse_time("until", q.until.as_deref())?,
        starting_after: None,
        limit,
    })
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
    caller.require(AUDIT_READ)?;
    let limit = parse_limit(q.limit.as_deref())?;
    let mut f = filter(&caller, &q, limit)?;
    if let Some(cursor) = &q.starting_after {
        if !is_id(IdKind::Event, cursor) {
            return Err(ApiError::invalid(
                "starting_after",
                "starting_after is not an event id from a previous page",
            ));
        }
        f.starting_after = Some(cursor.clone());
    }
    let (data, has_more) = state
        .store
        .list_events(caller.principal.workspace_id(), &f)
        .await?;
    let next_cursor = if has_more {
        data.last().map(|e| e.id.clone())
    } else {
        None
    };
    Ok(Json(Page {
        data,
        has_more,
        next_cursor,
    }))
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
    caller.require(AUDIT_READ)?;
    if q.limit.is_some() || q.starting_after.is_some() {
        let field = if q.limit.is_some() {
            "limit"
        } else {
            "starting_after"
        };
        return Err(ApiError::invalid(
            field,
            format!("{field} does not apply to an export"),
        ));
    }
    const BATCH: u32 = 500;
    let mut f = filter(&caller, &q, BATCH)?;
    // A live credential exports the whole chain, test events included, so
    // that an unfiltered export verifies on its own (`tooken audit verify`).
    // A test credential sees only test and workspace-wide events.
    if caller.principal.mode() == tooken_core::Mode::Live {
        f.mode = None;
    }
    let workspace_id = caller.principal.workspace_id().to_owned();
    Ok(export_ndjson(state.store.clone(), workspace_id, f))
}

/// Every event of `workspace_id` matching `f` as an NDJSON response, oldest
/// first (chain order), streamed `f.limit` events at a time. Shared by the
/// API's export and the dashboard's.
pub fn export_ndjson(store: tooken_store::Store, workspace_id: String, f: EventFilter) -> Response {
    let batch_len = f.limit as usize;
    let body = stream::unfold(Some(0i64), move |cursor| {
        let (store, f, workspace_id) = (store.clone(), f.clone(), workspace_id.clone());
        async move {
            let after = cursor?;
            match store.events_after(&workspace_id, &f, after).await {
                Ok(batch) if batch.is_empty() => None,
                Ok(batch) => {
                    let next = batch.last().map(|e| e.seq);
                    let next = if batch.len() < batch_len { None } else { next };
                    let mut chunk = Vec::new();
                    for e in &batch {
                        // Serializing our own types cannot fail.
                        let _ = serde_json::to_writer(&mut chunk, e);
                        chunk.push(b'\n');
                    }
                    Some((Ok::<_, std::io::Error>(chunk), next))
                }
                Err(e) => {
                    // Headers are sent; the only way to signal failure is to
                    // cut the stream short, which the client sees as an error.
                    tracing::error!(error = %e, "audit export failed");
                    Some((Err(std::io::Error::other("export failed")), None))
                }
            }
        }
    });
    (
        [(CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(body),
    )
        .into_response()
}

/// How often retention is applied in the background.
pub const RETENTION_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Prunes each workspace's audit log to its `audit_retention_days`.
/// Returns how many events were removed in all.
pub async fn apply_retention(state: &AppState) -> Result<i64, tooken_store::StoreError> {
    let now = state.clock.now();
    let mut removed = 0;
    for ws in state.store.list_workspaces().await? {
        let Some(days) = ws.settings.audit_retention_days else {
            continue;
        };
        let cutoff = now - chrono::Duration::days(days);
        if let Some(p) = state.store.prune_audit(&ws.id, cutoff, now).await? {
            tracing::info!(workspace = %ws.name, deleted = p.deleted, anchor_seq = p.anchor_seq, "pruned audit log");
            removed += p.deleted;
        }
    }
    Ok(removed)
}
