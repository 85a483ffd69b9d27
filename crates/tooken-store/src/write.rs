//! The write ritual, written once: begin a write transaction, run the
//! change's statements, record its audit events, and commit, telling
//! every node's cache when the change can make a cached credential wrong.
//!
//! Every change goes through a [`Write`]: its audit events are appended
//! to their chains in the same transaction, so if an event cannot be
//! written the change does not happen (fail closed). What a later change
//! must also write in that transaction (a change record, an outbox row)
//! belongs here too, beside the events.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::{Any, AnyConnection, AnyPool, Transaction};

use crate::audit::{append_all, AuditContext, NewEvent, Recorded};
use crate::engine::Engine;
use crate::sql::Backend;
use crate::watch::postgres::CHANNEL;
use crate::{Result, Store};

/// A write transaction in progress. Dropped without [`Write::commit`],
/// it rolls back.
pub(crate) struct Write {
    tx: Transaction<'static, Any>,
    engine: Arc<Engine>,
    events: Vec<Recorded>,
    invalidates: bool,
}

impl Store {
    /// Starts a write transaction (on SQLite, holding the write lock from
    /// the start: see [`Backend::begin_write`]).
    pub(crate) async fn write(&self) -> Result<Write> {
        Write::begin(&self.pool, self.engine.clone()).await
    }
}

impl Write {
    pub(crate) async fn begin(pool: &AnyPool, engine: Arc<Engine>) -> Result<Write> {
        let tx = pool.begin_with(engine.backend().begin_write()).await?;
        Ok(Write {
            tx,
            engine,
            events: Vec::new(),
            invalidates: false,
        })
    }

    /// The transaction, to run the change's statements on.
    pub(crate) fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    pub(crate) fn backend(&self) -> Backend {
        self.engine.backend()
    }

    /// Records `event`, done by `ctx` at `at`, in its workspace's audit
    /// chain, with this change.
    pub(crate) fn record(&mut self, ctx: &AuditContext, event: NewEvent, at: DateTime<Utc>) {
        self.events.push(Recorded {
            ctx: ctx.clone(),
            event,
            at,
        });
    }

    /// This change can make something a cache holds wrong (a credential
    /// revoked, rotated, changed, regenerated or deleted; a policy
    /// changed): every node is told with the commit.
    pub(crate) fn invalidate_caches(&mut self) {
        self.invalidates = true;
    }

    /// Serializes, from here to the commit, the writers of one workspace's
    /// audit chain (PostgreSQL; SQLite's write transactions are serialized
    /// already). Appending events takes it anyway; a change that reads
    /// before it decides (the last owner of a workspace) takes it first.
    pub(crate) async fn lock_chain(&mut self, workspace_id: &str) -> Result<()> {
        if let Some(lock) = self.backend().chain_lock() {
            sqlx::query(lock)
                .bind(workspace_id)
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    /// Appends the recorded events and commits. A change that invalidates
    /// caches bumps the store's change counter in the transaction and, on
    /// PostgreSQL, returns only once every node has acknowledged it
    /// (bounded; see the `watch` module), so that no node answers from a
    /// stale cache after the caller has answered.
    pub(crate) async fn commit(mut self) -> Result<()> {
        let backend = self.backend();
        let events = std::mem::take(&mut self.events);
        // Each run of one workspace's events reads its chain's head once.
        for run in events.chunk_by(|a, b| a.event.workspace_id == b.event.workspace_id) {
            append_all(backend, &mut self.tx, run).await?;
        }
        if !self.invalidates {
            self.tx.commit().await?;
            return Ok(());
        }
        sqlx::query("UPDATE store_changes SET counter = counter + 1 WHERE id = 1")
            .execute(&mut *self.tx)
            .await?;
        let echo = match self.engine.postgres() {
            Some(w) => {
                let echo = w.expect_echo();
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(CHANNEL)
                    .bind(echo.payload())
                    .execute(&mut *self.tx)
                    .await?;
                Some(echo)
            }
            None => None,
        };
        self.tx.commit().await?;
        if let Some(w) = self.engine.postgres() {
            // This node's cache is stale from now on, whatever the listener does.
            w.bump();
        }
        if let Some(echo) = echo {
            echo.wait().await;
        }
        Ok(())
    }
}
