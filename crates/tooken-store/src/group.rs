//! Group commit for token creation.
//!
//! A durable commit costs a flush to disk (SQLite runs with `synchronous =
//! FULL`), and SQLite has one writer at a time: one transaction per create
//! caps creates at a few hundred a second, and concurrent writers waiting on
//! SQLite's lock sleep in its busy handler. Instead, creates are queued to
//! one writer task, which writes everything queued so far for one workspace
//! in one transaction (the tokens in a few multi-row statements, their audit
//! events likewise, after reading the chain's head once) and answers every
//! caller after that single commit. Nobody is answered before the commit is
//! durable; under load, batches grow on their own while the previous commit
//! is being flushed.
//!
//! If any create in a batch fails (a constraint, say), the batch is rolled
//! back and its creates are written one transaction each, so every caller
//! gets its own answer and no create is lost or half-applied.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};
use tooken_core::SecretHash;

use crate::audit::AuditContext;
use crate::engine::Engine;
use crate::tokens::{write_tokens, TokenRecord, TokenWrite};
use crate::write::Write;
use crate::{Result, StoreError};

/// Most creates written in one transaction.
const MAX_BATCH: usize = 512;

pub(crate) struct Create {
    pub token: TokenRecord,
    pub secret_hash: SecretHash,
    pub ctx: AuditContext,
    pub now: DateTime<Utc>,
    pub reply: oneshot::Sender<Result<TokenRecord>>,
}

#[derive(Debug)]
pub(crate) struct Creates {
    queue: mpsc::UnboundedSender<Create>,
}

impl Creates {
    /// Starts the writer task on the current runtime. It ends when every
    /// handle on the store is gone.
    pub(crate) fn start(pool: AnyPool, engine: Arc<Engine>) -> Creates {
        let (queue, rx) = mpsc::unbounded_channel();
        tokio::spawn(writer(pool, engine, rx));
        Creates { queue }
    }

    /// Queues `create` and waits for its durable commit.
    pub(crate) async fn submit(
        &self,
        token: TokenRecord,
        secret_hash: SecretHash,
        ctx: &AuditContext,
        now: DateTime<Utc>,
    ) -> Result<TokenRecord> {
        let (reply, answer) = oneshot::channel();
        let create = Create {
            token,
            secret_hash,
            ctx: ctx.clone(),
            now,
            reply,
        };
        self.queue.send(create).map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }
}

fn writer_gone() -> StoreError {
    StoreError::Database(sqlx::Error::PoolClosed)
}

async fn writer(pool: AnyPool, engine: Arc<Engine>, mut rx: mpsc::UnboundedReceiver<Create>) {
    let mut queued: Vec<Create> = Vec::new();
    loop {
        if queued.is_empty() {
            match rx.recv().await {
                Some(first) => queued.push(first),
                None => return,
            }
        }
        while queued.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(next) => queued.push(next),
                Err(_) => break,
            }
        }
        // One workspace per transaction: each holds one audit chain's lock
        // only, as every other write does, so writers on several nodes
        // cannot deadlock over two chains.
        let workspace = queued[0].token.workspace_id.clone();
        let (batch, rest): (Vec<_>, Vec<_>) = queued
            .drain(..)
            .partition(|c| c.token.workspace_id == workspace);
        queued = rest;
        if batch.len() > 1 && write(&pool, &engine, &batch).await.is_ok() {
            for create in batch {
                let _ = create.reply.send(Ok(create.token));
            }
            continue;
        }
        // Alone, or a batch that failed: one transaction each.
        for create in batch {
            let result = write(&pool, &engine, std::slice::from_ref(&create)).await;
            let _ = create.reply.send(result.map(|()| create.token));
        }
    }
}

async fn write(pool: &AnyPool, engine: &Arc<Engine>, batch: &[Create]) -> Result<()> {
    let mut w = Write::begin(pool, engine.clone()).await?;
    let tokens: Vec<TokenWrite<'_>> = batch
        .iter()
        .map(|c| (&c.token, &c.secret_hash, &c.ctx, c.now))
        .collect();
    write_tokens(&mut w, &tokens).await?;
    w.commit().await
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use chrono::Utc;
    use serde_json::{json, Map};
    use tooken_core::audit::Actor;
    use tooken_core::{Credential, Mode, Scope};

    use crate::{AuditContext, EventFilter, NewToken, Store};

    /// Creates queued together are written as one batch, several rows per
    /// statement: each token is whole, has its one event, and the chain
    /// holds.
    #[tokio::test]
    async fn a_burst_of_creates_is_written_whole_with_one_event_each() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::open(&url).await.unwrap();
        let ctx = AuditContext::new(Actor::system());
        let ws = store
            .create_workspace(&"w".parse().unwrap(), &ctx, Utc::now())
            .await
            .unwrap();
        // More than a statement's worth of rows (8), queued before the
        // writer task first runs on this single-threaded runtime.
        let n = 100;
        let creates = (0..n).map(|i| {
            let store = store.clone();
            let ctx = ctx.clone();
            let workspace_id = ws.id.clone();
            async move {
                let secret = Credential::generate("tkn", Mode::Test);
                let mut metadata = Map::new();
                metadata.insert("i".into(), json!(i));
                let new = NewToken {
                    workspace_id,
                    mode: Mode::Test,
                    name: format!("t{i}").parse().unwrap(),
                    description: (i % 2 == 0).then(|| format!("d{i}").parse().unwrap()),
                    scopes: vec![Scope::parse(&format!("s:r{i}")).unwrap()],
                    metadata: Some(metadata),
                    secret_hash: secret.hash(),
                    hint: secret.hint(),
                    created_by: "test".into(),
                    parent_id: None,
                    expires_at: (i % 3 == 0).then(|| Utc::now() + chrono::Duration::days(1)),
                };
                let created = store.insert_token(new, &ctx, Utc::now()).await.unwrap();
                (i, created, secret)
            }
        });
        let created = futures_util::future::join_all(creates).await;
        for (i, record, secret) in &created {
            let stored = store
                .token(&ws.id, Mode::Test, &record.id)
                .await
                .unwrap()
                .expect("an acknowledged create is stored");
            assert_eq!(stored.name, format!("t{i}"));
            assert_eq!(stored.description, record.description);
            assert_eq!(stored.scopes, record.scopes);
            assert_eq!(stored.metadata.as_ref().unwrap()["i"], json!(i));
            assert_eq!(
                stored.expires_at.map(|t| t.timestamp_millis()),
                record.expires_at.map(|t| t.timestamp_millis())
            );
            let found = store.token_by_secret(&secret.hash()).await.unwrap();
            assert_eq!(found.unwrap().token.id, record.id, "found by its secret");
        }
        let filter = EventFilter {
            action: Some("token.created".into()),
            limit: 1000,
            ..Default::default()
        };
        let (events, _) = store.list_events(&ws.id, &filter).await.unwrap();
        let targets: HashSet<_> = events
            .iter()
            .map(|e| e.target.as_ref().unwrap().id.clone())
            .collect();
        assert_eq!(events.len(), n);
        assert_eq!(
            targets,
            created.iter().map(|(_, r, _)| r.id.clone()).collect()
        );
        assert_eq!(
            store.verify_audit_chain(&ws.id).await.unwrap(),
            Ok(n + 1),
            "workspace.created and one event per token, chained"
        );
    }
}
