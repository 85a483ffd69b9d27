//! Settings → Audit Log: the workspace's events, newest first, filtered by
//! action, actor and dates, a page at a time; the state of the hash chain;
//! and an NDJSON export of the same events as `/v1/audit-log/export`.

use super::Routes;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::header::CONTENT_DISPOSITION;
use axum::http::HeaderValue;
use axum::response::Response;
use axum::routing::get;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use tooken_core::audit::Event;
use tooken_core::id::EventId;

use super::error::DashResult;
use super::session::Session;
use super::view::{render, url_with, Nav};
use crate::AppState;

pub fn routes() -> Routes {
    vec![
        ("/dashboard/settings/audit-log", get(list)),
        ("/dashboard/settings/audit-log/export", get(export)),
    ]
}

/// Events per page.
const PAGE_SIZE: u32 = 50;

/// Actions the log records, offered as suggestions in the filter.
pub const KNOWN_ACTIONS: &[&str] = &[
    "token.created",
    "token.updated",
    "token.rotated",
    "token.revoked",
    "api_key.created",
    "api_key.regenerated",
    "api_key.deleted",
    "settings.updated",
    "workspace.created",
    "member.added",
    "member.invited",
    "member.role_changed",
    "member.removed",
    "user.login",
    "user.logout",
    "user.password_reset",
    "setup_link.created",
    "auth.failed",
    "audit.pruned",
];

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    action: Option<String>,
    actor: Option<String>,
    /// YYYY-MM-DD: events on or after this day (UTC).
    since: Option<String>,
    /// YYYY-MM-DD: events on or before this day (UTC).
    until: Option<String>,
    after: Option<String>,
}

fn trimmed(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn day_start(raw: Option<&str>) -> Option<DateTime<Utc>> {
    NaiveDate::parse_from_str(raw?, "%Y-%m-%d")
        .ok()?
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
}

/// What the page's fields ask the service for (of the session's mode,
/// plus workspace-wide events, as the API shows): dates are whole days,
/// UTC; a page starts after an event id only.
fn query(q: &AuditQuery, limit: Option<u32>) -> tooken_service::AuditQuery {
    tooken_service::AuditQuery {
        limit: limit.map(|l| l.to_string()),
        starting_after: limit
            .and_then(|_| trimmed(&q.after))
            .filter(|a| EventId::parse(a).is_ok())
            .map(str::to_owned),
        action: trimmed(&q.action).map(str::to_owned),
        actor: trimmed(&q.actor).map(str::to_owned),
        target: None,
        since: day_start(trimmed(&q.since)).map(|t| t.to_rfc3339()),
        // Through the whole of the `until` day.
        until: day_start(trimmed(&q.until)).map(|t| (t + chrono::Duration::days(1)).to_rfc3339()),
    }
}

pub struct EventRow {
    pub time: String,
    pub action: String,
    pub actor_kind: String,
    pub actor_label: String,
    pub actor_id: Option<String>,
    /// The log filtered to this event's action, and to its actor.
    pub action_url: String,
    pub actor_url: Option<String>,
    pub target: String,
    pub client_addr: String,
    pub details: String,
    pub seq: i64,
}

/// An event's details as `key: value` pairs, shortened.
fn details_text(details: &serde_json::Value) -> String {
    let text = match details {
        serde_json::Value::Object(map) => map
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k}: {s}"),
                other => format!("{k}: {other}"),
            })
            .collect::<Vec<_>>()
            .join(" · "),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    if text.chars().count() > 240 {
        format!("{}…", text.chars().take(240).collect::<String>())
    } else {
        text
    }
}

fn event_row(e: &Event) -> EventRow {
    EventRow {
        time: e.occurred_at.format("%Y-%m-%d %H:%M:%S").to_string(),
        action: e.action.clone(),
        actor_kind: e.actor.kind.clone(),
        actor_label: e
            .actor
            .hint
            .clone()
            .or_else(|| e.actor.id.clone())
            .unwrap_or_else(|| e.actor.kind.clone()),
        actor_id: e.actor.id.clone(),
        action_url: url_with(
            "/dashboard/settings/audit-log",
            &[("action", Some(&e.action))],
        ),
        actor_url: e
            .actor
            .id
            .as_deref()
            .map(|id| url_with("/dashboard/settings/audit-log", &[("actor", Some(id))])),
        target: e.target.as_ref().map(|t| t.id.clone()).unwrap_or_default(),
        client_addr: e.client_addr.clone().unwrap_or_default(),
        details: details_text(&e.details),
        seq: e.seq,
    }
}

#[derive(Template)]
#[template(path = "dashboard/audit.html")]
struct AuditPage {
    nav: Nav,
    rows: Vec<EventRow>,
    action: String,
    actor: String,
    since: String,
    until: String,
    actions: &'static [&'static str],
    filtered: bool,
    next_url: Option<String>,
    first_url: Option<String>,
    export_url: String,
    chain_ok: bool,
    chain_message: String,
}

/// `GET /dashboard/settings/audit-log`.
pub async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<AuditQuery>,
) -> DashResult<Response> {
    let asked = query(&q, Some(PAGE_SIZE));
    let after = asked.starting_after.clone();
    let page = state.service.audit_events(&session.caller, asked).await?;
    let (events, has_more) = (page.data, page.has_more);
    let fields = [
        ("action", trimmed(&q.action)),
        ("actor", trimmed(&q.actor)),
        ("since", trimmed(&q.since)),
        ("until", trimmed(&q.until)),
    ];
    let page_url = |after: Option<&str>| {
        let mut pairs = fields.to_vec();
        pairs.push(("after", after));
        url_with("/dashboard/settings/audit-log", &pairs)
    };
    let next_url = has_more
        .then(|| events.last().map(|e| page_url(Some(&e.id))))
        .flatten();
    let (chain_ok, chain_message) = match state.service.audit_chain(&session.caller).await? {
        Ok(n) => (
            true,
            format!(
                "Hash chain intact: all {n} event{} of this workspace verified.",
                if n == 1 { "" } else { "s" }
            ),
        ),
        Err(b) => (
            false,
            format!("Hash chain broken: {b}. The log has been tampered with."),
        ),
    };
    let page = AuditPage {
        nav: session.nav("audit-log"),
        rows: events.iter().map(event_row).collect(),
        action: trimmed(&q.action).unwrap_or_default().to_owned(),
        actor: trimmed(&q.actor).unwrap_or_default().to_owned(),
        since: trimmed(&q.since).unwrap_or_default().to_owned(),
        until: trimmed(&q.until).unwrap_or_default().to_owned(),
        actions: KNOWN_ACTIONS,
        filtered: fields.iter().any(|(_, v)| v.is_some()),
        next_url,
        first_url: after.is_some().then(|| page_url(None)),
        export_url: url_with("/dashboard/settings/audit-log/export", &fields),
        chain_ok,
        chain_message,
    };
    render(&page)
}

/// `GET /dashboard/settings/audit-log/export`: the matching events as
/// NDJSON, streamed, oldest first, exactly as `/v1/audit-log/export` sends
/// them.
pub async fn export(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<AuditQuery>,
) -> DashResult<Response> {
    let batches = state
        .service
        .export_events(&session.caller, query(&q, None))?;
    let mut res = crate::audit::ndjson(batches);
    let name = format!(
        "attachment; filename=\"tooken-audit-{}-{}.ndjson\"",
        session.workspace.name,
        state.service.now().format("%Y%m%d")
    );
    if let Ok(v) = HeaderValue::from_str(&name) {
        res.headers_mut().insert(CONTENT_DISPOSITION, v);
    }
    Ok(res)
}
