//! Appending audit events inside the transaction of the change they record.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};
use tooken_core::audit::{Actor, ChainBreak, ChainVerifier, Event, Target, GENESIS};
use tooken_core::id::{new_id, IdKind};
use tooken_core::Mode;

use crate::row::{to_ms, Columns};
use crate::sql::{Arg, Backend, SqlBuilder};
use crate::{Result, Store, StoreError};

/// Who is acting, and from where: recorded with every event.
#[derive(Debug, Clone)]
pub struct AuditContext {
    pub actor: Actor,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

impl AuditContext {
    pub fn new(actor: Actor) -> Self {
        AuditContext {
            actor,
            client_addr: None,
            user_agent: None,
            request_id: None,
        }
    }
}

/// An event about to be recorded.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub workspace_id: String,
    pub mode: Option<Mode>,
    pub action: &'static str,
    pub target: Option<Target>,
    pub details: Value,
}

/// An event waiting for its transaction's commit.
pub(crate) struct Recorded {
    pub ctx: AuditContext,
    pub event: NewEvent,
    pub at: DateTime<Utc>,
}

/// Which events to list.
#[derive(Clone, Default)]
pub struct EventFilter {
    /// Only events of this mode, plus workspace-wide ones (no mode).
    pub mode: Option<Mode>,
    pub action: Option<String>,
    pub actor: Option<String>,
    pub target: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub starting_after: Option<String>,
    pub limit: u32,
}

/// The filter as logged (`list_events` is instrumented): its strings come
/// from the client, and one may be a secret pasted in the wrong place.
impl std::fmt::Debug for EventFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use tooken_core::redact::shown;
        f.debug_struct("EventFilter")
            .field("mode", &self.mode)
            .field("action", &self.action.as_deref().map(shown))
            .field("actor", &self.actor.as_deref().map(shown))
            .field("target", &self.target.as_deref().map(shown))
            .field("since", &self.since)
            .field("until", &self.until)
            .field("starting_after", &self.starting_after.as_deref().map(shown))
            .field("limit", &self.limit)
            .finish()
    }
}

/// Events per multi-row `INSERT` (17 binds each), few for the same reason
/// as `TOKENS_PER_INSERT`.
const EVENTS_PER_INSERT: usize = 8;

/// Appends `events`, all of one workspace, in order, to its chain within
/// `tx` (see `write.rs`). The transaction holds the chain's lock, so no
/// other event can slip in between reading the chain's head and writing
/// the new ones; the head is read once and the events are written a few
/// statements at a time.
pub(crate) async fn append_all(
    backend: Backend,
    tx: &mut Transaction<'static, Any>,
    events: &[Recorded],
) -> Result<()> {
    let Some(workspace_id) = events.first().map(|r| r.event.workspace_id.clone()) else {
        return Ok(());
    };
    if events.iter().any(|r| r.event.workspace_id != workspace_id) {
        return Err(StoreError::Corrupt(
            "events of several workspaces appended together".into(),
        ));
    }
    if let Some(lock) = backend.chain_lock() {
        sqlx::query(lock)
            .bind(&workspace_id)
            .execute(&mut **tx)
            .await?;
    }
    let head = sqlx::query(
        "SELECT seq, hash FROM audit_events WHERE workspace_id = $1 ORDER BY seq DESC LIMIT 1",
    )
    .bind(&workspace_id)
    .fetch_optional(&mut **tx)
    .await?;
    let (mut seq, mut prev_hash) = match head {
        Some(row) => (row.int("seq")?, row.text("hash")?),
        None => (0, GENESIS.to_owned()),
    };
    let mut written = Vec::with_capacity(events.len());
    for Recorded { ctx, event, at } in events {
        seq += 1;
        let mut e = Event {
            id: new_id(IdKind::Event, *at),
            workspace_id: event.workspace_id.clone(),
            seq,
            occurred_at: *at,
            mode: event.mode.map(|m| m.as_str().to_owned()),
            actor: ctx.actor.clone(),
            action: event.action.to_owned(),
            target: event.target.clone(),
            client_addr: ctx.client_addr.clone(),
            user_agent: ctx.user_agent.clone(),
            request_id: ctx.request_id.clone(),
            details: event.details.clone(),
            prev_hash,
            hash: String::new(),
        };
        e.hash = e.compute_hash();
        prev_hash = e.hash.clone();
        written.push(e);
    }
    for chunk in written.chunks(EVENTS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO audit_events (id, workspace_id, seq, occurred_at, mode, actor_kind, actor_id, \
             actor_hint, action, target_kind, target_id, client_addr, user_agent, request_id, details, \
             prev_hash, hash) VALUES {}",
            crate::sql::values(chunk.len(), 17)
        );
        let mut q = sqlx::query(&sql);
        for e in chunk {
            q = q
                .bind(&e.id)
                .bind(&e.workspace_id)
                .bind(e.seq)
                .bind(to_ms(e.occurred_at))
                .bind(&e.mode)
                .bind(&e.actor.kind)
                .bind(&e.actor.id)
                .bind(&e.actor.hint)
                .bind(&e.action)
                .bind(e.target.as_ref().map(|t| &t.kind))
                .bind(e.target.as_ref().map(|t| &t.id))
                .bind(&e.client_addr)
                .bind(&e.user_agent)
                .bind(&e.request_id)
                .bind(e.details.to_string())
                .bind(&e.prev_hash)
                .bind(&e.hash);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

fn event_from_row(row: &AnyRow) -> Result<Event> {
    let target = match (row.opt_text("target_kind")?, row.opt_text("target_id")?) {
        (Some(kind), Some(id)) => Some(Target { kind, id }),
        _ => None,
    };
    let details = row.text("details")?;
    Ok(Event {
        id: row.text("id")?,
        workspace_id: row.text("workspace_id")?,
        seq: row.int("seq")?,
        occurred_at: row.time("occurred_at")?,
        mode: row.opt_text("mode")?,
        actor: Actor {
            kind: row.text("actor_kind")?,
            id: row.opt_text("actor_id")?,
            hint: row.opt_text("actor_hint")?,
        },
        action: row.text("action")?,
        target,
        client_addr: row.opt_text("client_addr")?,
        user_agent: row.opt_text("user_agent")?,
        request_id: row.opt_text("request_id")?,
        details: serde_json::from_str(&details)
            .map_err(|e| StoreError::Corrupt(format!("audit details: {e}")))?,
        prev_hash: row.text("prev_hash")?,
        hash: row.text("hash")?,
    })
}

impl Store {
    /// Events of a workspace, newest first, one page at a time. Returns the
    /// page and whether more follow.
    #[tracing::instrument(skip(self))]
    pub async fn list_events(
        &self,
        workspace_id: &str,
        f: &EventFilter,
    ) -> Result<(Vec<Event>, bool)> {
        let mut q = filtered_events(workspace_id, f);
        if let Some(after) = &f.starting_after {
            q.push(" AND id < ").bind(Arg::Text(after.clone()));
        }
        q.push(" ORDER BY id DESC LIMIT ")
            .bind(Arg::Int(i64::from(f.limit) + 1));
        let rows = q.query().fetch_all(&self.pool).await?;
        let mut events = rows
            .iter()
            .map(event_from_row)
            .collect::<Result<Vec<_>>>()?;
        let has_more = events.len() > f.limit as usize;
        events.truncate(f.limit as usize);
        Ok((events, has_more))
    }

    /// Up to `f.limit` events after chain position `after_seq`, oldest
    /// first: for exporting a log of any size one batch at a time.
    pub async fn events_after(
        &self,
        workspace_id: &str,
        f: &EventFilter,
        after_seq: i64,
    ) -> Result<Vec<Event>> {
        let mut q = filtered_events(workspace_id, f);
        q.push(" AND seq > ").bind(Arg::Int(after_seq));
        q.push(" ORDER BY seq LIMIT ")
            .bind(Arg::Int(i64::from(f.limit)));
        let rows = q.query().fetch_all(&self.pool).await?;
        rows.iter().map(event_from_row).collect()
    }

    /// All events of a workspace in chain order.
    pub async fn chain(&self, workspace_id: &str) -> Result<Vec<Event>> {
        let rows = sqlx::query("SELECT * FROM audit_events WHERE workspace_id = $1 ORDER BY seq")
            .bind(workspace_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(event_from_row).collect()
    }
}

fn filtered_events(workspace_id: &str, f: &EventFilter) -> SqlBuilder {
    let mut q = SqlBuilder::new("SELECT * FROM audit_events WHERE workspace_id = ");
    q.bind(Arg::Text(workspace_id.to_owned()));
    if let Some(mode) = f.mode {
        q.push(" AND (mode IS NULL OR mode = ")
            .bind(Arg::Text(mode.as_str().to_owned()))
            .push(")");
    }
    if let Some(a) = &f.action {
        q.push(" AND action = ").bind(Arg::Text(a.clone()));
    }
    if let Some(a) = &f.actor {
        q.push(" AND actor_id = ").bind(Arg::Text(a.clone()));
    }
    if let Some(t) = &f.target {
        q.push(" AND target_id = ").bind(Arg::Text(t.clone()));
    }
    if let Some(s) = f.since {
        q.push(" AND occurred_at >= ").bind(Arg::Int(to_ms(s)));
    }
    if let Some(u) = f.until {
        q.push(" AND occurred_at < ").bind(Arg::Int(to_ms(u)));
    }
    q
}

/// The chain holding events that belong to no workspace, such as
/// authentication failures with an unknown credential.
pub const SERVER_CHAIN: &str = "server";

/// An aggregated authentication failure, about to be recorded.
#[derive(Debug, Clone)]
pub struct AuthFailureEvent {
    /// `None`: the server chain.
    pub workspace_id: Option<String>,
    pub mode: Option<Mode>,
    pub client_addr: Option<String>,
    pub details: Value,
}

impl Store {
    /// Records aggregated authentication failures, each in its chain, in
    /// one transaction.
    pub async fn record_auth_failures(
        &self,
        events: &[AuthFailureEvent],
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut w = self.write().await?;
        for e in events {
            let mut ctx = AuditContext::new(Actor {
                kind: "anonymous".into(),
                id: None,
                hint: None,
            });
            ctx.client_addr = e.client_addr.clone();
            let event = NewEvent {
                workspace_id: e
                    .workspace_id
                    .clone()
                    .unwrap_or_else(|| SERVER_CHAIN.to_owned()),
                mode: e.mode,
                action: "auth.failed",
                target: None,
                details: e.details.clone(),
            };
            w.record(&ctx, event, now);
        }
        w.commit().await
    }
}

/// What pruning removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pruned {
    pub deleted: i64,
    /// The chain now starts after this event.
    pub anchor_seq: i64,
}

impl Store {
    /// Where a chain starts: the genesis, or the last event pruned from it.
    pub async fn audit_anchor(&self, workspace_id: &str) -> Result<(String, i64)> {
        let row = sqlx::query("SELECT seq, hash FROM audit_anchors WHERE workspace_id = $1")
            .bind(workspace_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => (r.text("hash")?, r.int("seq")?),
            None => (GENESIS.to_owned(), 0),
        })
    }

    /// Checks a whole chain from its anchor, a batch at a time. `Ok(Err(_))`
    /// names the first event that breaks it.
    pub async fn verify_audit_chain(
        &self,
        workspace_id: &str,
    ) -> Result<Result<usize, ChainBreak>> {
        let (hash, seq) = self.audit_anchor(workspace_id).await?;
        let mut verifier = ChainVerifier::new((&hash, seq));
        let all = EventFilter {
            limit: 1000,
            ..Default::default()
        };
        // Batches follow stored seq numbers; a gap or a swapped pair shows
        // up as an event that does not follow the one checked before it.
        let mut after = seq;
        loop {
            let batch = self.events_after(workspace_id, &all, after).await?;
            let Some(last) = batch.last() else { break };
            after = last.seq;
            for e in &batch {
                if let Err(b) = verifier.push(e) {
                    return Ok(Err(b));
                }
            }
        }
        Ok(Ok(verifier.checked()))
    }

    /// Ids of every chain that has events, the server chain included.
    pub async fn audit_chains(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT workspace_id FROM audit_events ORDER BY workspace_id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Removes events older than `cutoff` from a chain, keeping the last
    /// removed event's seq and hash as the chain's new anchor so what remains
    /// still verifies; the pruning is itself recorded.
    #[tracing::instrument(skip(self))]
    pub async fn prune_audit(
        &self,
        workspace_id: &str,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<Pruned>> {
        let mut w = self.write().await?;
        w.lock_chain(workspace_id).await?;
        let last: Option<i64> = sqlx::query_scalar(
            "SELECT max(seq) FROM audit_events WHERE workspace_id = $1 AND occurred_at < $2",
        )
        .bind(workspace_id)
        .bind(to_ms(cutoff))
        .fetch_one(w.conn())
        .await?;
        let Some(last) = last else { return Ok(None) };
        let hash: String = sqlx::query_scalar(
            "SELECT hash FROM audit_events WHERE workspace_id = $1 AND seq = $2",
        )
        .bind(workspace_id)
        .bind(last)
        .fetch_one(w.conn())
        .await?;
        let deleted = sqlx::query("DELETE FROM audit_events WHERE workspace_id = $1 AND seq <= $2")
            .bind(workspace_id)
            .bind(last)
            .execute(w.conn())
            .await?
            .rows_affected() as i64;
        sqlx::query(
            "INSERT INTO audit_anchors (workspace_id, seq, hash, pruned_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (workspace_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, \
             pruned_at = excluded.pruned_at",
        )
        .bind(workspace_id)
        .bind(last)
        .bind(&hash)
        .bind(to_ms(now))
        .execute(w.conn())
        .await?;
        let event = NewEvent {
            workspace_id: workspace_id.to_owned(),
            mode: None,
            action: "audit.pruned",
            target: None,
            details: serde_json::json!({
                "before": cutoff,
                "deleted": deleted,
                "anchor_seq": last,
                "anchor_hash": hash,
            }),
        };
        w.record(&AuditContext::new(Actor::system()), event, now);
        w.commit().await?;
        Ok(Some(Pruned {
            deleted,
            anchor_seq: last,
        }))
    }
}
