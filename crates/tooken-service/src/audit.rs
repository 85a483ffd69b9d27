//! The audit log: read a page at a time, exported whole, checked, and
//! pruned to each workspace's retention.

use chrono::{DateTime, Utc};
use futures_util::stream::{self, Stream};
use tooken_core::api::Page;
use tooken_core::audit::{ChainBreak, Event};
use tooken_core::id::EventId;
use tooken_core::scope::AUDIT_READ;
use tooken_core::Mode;
use tooken_store::{EventFilter, StoreError};

use crate::caller::{Caller, Need};
use crate::tokens::parse_limit;
use crate::{Service, ServiceError, ServiceResult};

/// How often retention is applied in the background.
pub const RETENTION_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Events exported per batch: a log of any size is never held in memory.
const EXPORT_BATCH: u32 = 500;

/// Which events, as the client asked (every value unparsed).
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// 1–100, default 20 (a page only).
    pub limit: Option<String>,
    /// An event id from a previous page (a page only).
    pub starting_after: Option<String>,
    /// e.g. `token.revoked`.
    pub action: Option<String>,
    /// The id of the credential or user that acted.
    pub actor: Option<String>,
    /// The id of the object acted on.
    pub target: Option<String>,
    /// RFC 3339; events at or after.
    pub since: Option<String>,
    /// RFC 3339; events before.
    pub until: Option<String>,
}

fn parse_time(field: &str, raw: Option<&str>) -> ServiceResult<Option<DateTime<Utc>>> {
    raw.map(|s| {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| ServiceError::invalid(field, format!("{field} must be an RFC 3339 time")))
    })
    .transpose()
}

/// The filter `q` describes, for the caller's mode (plus workspace-wide
/// events).
fn filter(mode: Mode, q: &AuditQuery, limit: u32) -> ServiceResult<EventFilter> {
    Ok(EventFilter {
        mode: Some(mode),
        action: q.action.clone(),
        actor: q.actor.clone(),
        target: q.target.clone(),
        since: parse_time("since", q.since.as_deref())?,
        until: parse_time("until", q.until.as_deref())?,
        starting_after: None,
        limit,
    })
}

impl Service {
    /// Events of the caller's workspace, newest first, a page at a time.
    /// Events of the other mode are not shown.
    pub async fn audit_events(&self, caller: &Caller, q: AuditQuery) -> ServiceResult<Page<Event>> {
        self.authorize(caller, Need::Scope(AUDIT_READ))?;
        let (workspace_id, mode) = caller.place()?;
        let limit = parse_limit(q.limit.as_deref())?;
        let mut f = filter(mode, &q, limit)?;
        if let Some(cursor) = &q.starting_after {
            if EventId::parse(cursor).is_err() {
                return Err(ServiceError::invalid(
                    "starting_after",
                    "starting_after is not an event id from a previous page",
                ));
            }
            f.starting_after = Some(cursor.clone());
        }
        let (data, has_more) = self.store().list_events(workspace_id, &f).await?;
        let next_cursor = if has_more {
            data.last().map(|e| e.id.clone())
        } else {
            None
        };
        Ok(Page {
            data,
            has_more,
            next_cursor,
        })
    }

    /// Every matching event, oldest first (chain order), a batch at a
    /// time. A live credential exports the whole chain, test events
    /// included, so that an unfiltered export verifies on its own (`tooken
    /// audit verify`); a test credential only test and workspace-wide
    /// events.
    pub fn export_events(
        &self,
        caller: &Caller,
        q: AuditQuery,
    ) -> ServiceResult<impl Stream<Item = Result<Vec<Event>, StoreError>> + Send + 'static> {
        self.authorize(caller, Need::Scope(AUDIT_READ))?;
        let (workspace_id, mode) = caller.place()?;
        if q.limit.is_some() || q.starting_after.is_some() {
            let field = if q.limit.is_some() {
                "limit"
            } else {
                "starting_after"
            };
            return Err(ServiceError::invalid(
                field,
                format!("{field} does not apply to an export"),
            ));
        }
        let mut f = filter(mode, &q, EXPORT_BATCH)?;
        if mode == Mode::Live {
            f.mode = None;
        }
        let (store, workspace_id) = (self.store().clone(), workspace_id.to_owned());
        Ok(stream::unfold(Some(0i64), move |cursor| {
            let (store, f, workspace_id) = (store.clone(), f.clone(), workspace_id.clone());
            async move {
                let after = cursor?;
                match store.events_after(&workspace_id, &f, after).await {
                    Ok(batch) if batch.is_empty() => None,
                    Ok(batch) => {
                        let next = (batch.len() >= EXPORT_BATCH as usize)
                            .then(|| batch.last().map(|e| e.seq))
                            .flatten();
                        Some((Ok(batch), next))
                    }
                    Err(e) => Some((Err(e), None)),
                }
            }
        }))
    }

    /// Checks the caller's workspace's whole chain: how many events it
    /// holds, or the first that breaks it.
    pub async fn audit_chain(&self, caller: &Caller) -> ServiceResult<Result<usize, ChainBreak>> {
        self.authorize(caller, Need::Scope(AUDIT_READ))?;
        let (workspace_id, _) = caller.place()?;
        Ok(self.store().verify_audit_chain(workspace_id).await?)
    }

    /// Prunes each workspace's audit log to its `audit_retention_days`.
    /// Returns how many events were removed in all.
    pub async fn apply_retention(&self) -> ServiceResult<i64> {
        let now = self.now();
        let mut removed = 0;
        for ws in self.store().list_workspaces().await? {
            let Some(days) = ws.settings.audit_retention_days else {
                continue;
            };
            let cutoff = now - chrono::Duration::days(days);
            if let Some(p) = self.store().prune_audit(&ws.id, cutoff, now).await? {
                tracing::info!(workspace = %ws.name, deleted = p.deleted, anchor_seq = p.anchor_seq, "pruned audit log");
                removed += p.deleted;
            }
        }
        Ok(removed)
    }
}

/// One chain's state, as the admin CLI reports it.
#[derive(Debug, Clone)]
pub struct ChainReport {
    /// The workspace's name, or `(server)` for the server's own chain.
    pub name: String,
    /// The chain starts after this event (pruned before it); 0 when whole.
    pub anchor_seq: i64,
    /// How many events it holds, or the first that breaks it.
    pub result: Result<usize, ChainBreak>,
}

impl Service {
    /// Checks the hash chain of one workspace's audit log, or of every
    /// workspace's and the server's own (authentication failures that
    /// belong to no workspace).
    pub async fn verify_chains(
        &self,
        caller: &Caller,
        workspace: Option<&str>,
    ) -> ServiceResult<Vec<ChainReport>> {
        self.authorize(caller, Need::Console { change: false })?;
        let chains: Vec<(String, String)> = match workspace {
            Some(name) => {
                let ws = self.workspace_named(caller, name).await?;
                vec![(ws.id, ws.name)]
            }
            None => {
                let mut all: Vec<(String, String)> = self
                    .store()
                    .list_workspaces()
                    .await?
                    .into_iter()
                    .map(|w| (w.id, w.name))
                    .collect();
                let server = tooken_store::SERVER_CHAIN;
                if self
                    .store()
                    .audit_chains()
                    .await?
                    .iter()
                    .any(|c| c == server)
                {
                    all.push((server.to_owned(), format!("({server})")));
                }
                all
            }
        };
        let mut reports = Vec::with_capacity(chains.len());
        for (id, name) in chains {
            let (_, anchor_seq) = self.store().audit_anchor(&id).await?;
            let result = self.store().verify_audit_chain(&id).await?;
            reports.push(ChainReport {
                name,
                anchor_seq,
                result,
            });
        }
        Ok(reports)
    }
}
