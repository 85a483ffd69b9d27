//! Group commit for token creation.
//!
//! A durable commit costs a flush to disk (SQLite runs with `synchronous =
//! FULL`), and SQLite has one writer at a time: one transaction per create
//! caps creates at a few hundred a second, and concurrent writers waiting on
//! SQLite's lock sleep in its busy handler. Instead, creates are queued to
//! one writer task, which writes everything queued so far for one workspace
//! in one transaction (each token with its audit event) and answers every caller
//! after that single commit. Nobody is answered before the commit is
//! durable; under load, batches grow on their own while the previous commit
//! is being flushed.
//!
//! If any create in a batch fails (a constraint, say), the batch is rolled
//! back and its creates are written one transaction each, so every caller
//! gets its own answer and no create is lost or half-applied.

use chrono::{DateTime, Utc};
use sqlx::{Any, AnyPool, Transaction};
use tokio::sync::{mpsc, oneshot};
use tooken_core::SecretHash;

use crate::audit::AuditContext;
use crate::sql::Backend;
use crate::tokens::{write_token, TokenRecord};
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
    pub(crate) fn start(pool: AnyPool, backend: Backend) -> Creates {
        let (queue, rx) = mpsc::unbounded_channel();
        tokio::spawn(writer(pool, backend, rx));
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

async fn writer(pool: AnyPool, backend: Backend, mut rx: mpsc::UnboundedReceiver<Create>) {
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
        if batch.len() > 1 && write(&pool, backend, &batch).await.is_ok() {
            for create in batch {
                let _ = create.reply.send(Ok(create.token));
            }
            continue;
        }
        // Alone, or a batch that failed: one transaction each.
        for create in batch {
            let result = write(&pool, backend, std::slice::from_ref(&create)).await;
            let _ = create.reply.send(result.map(|()| create.token));
        }
    }
}

async fn write(pool: &AnyPool, backend: Backend, batch: &[Create]) -> Result<()> {
    let mut tx: Transaction<'static, Any> = pool.begin_with(backend.begin_write()).await?;
    for c in batch {
        write_token(backend, &mut tx, &c.token, &c.secret_hash, &c.ctx, c.now).await?;
    }
    tx.commit().await?;
    Ok(())
}
