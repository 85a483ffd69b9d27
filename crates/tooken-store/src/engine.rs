//! What runs beside the pool, by backend. One enum: a store is either
//! embedded (synchronous readers for credential lookups and the file's
//! change watch) or on PostgreSQL (the change listener shared with the
//! other nodes), never a mix of optional parts.

use std::sync::{Arc, Mutex};

use crate::reader::Readers;
use crate::sql::Backend;
use crate::watch::postgres::PgWatch;
use crate::watch::sqlite::SqliteWatch;

// One per store, behind an `Arc`: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Engine {
    Sqlite {
        /// Synchronous connections for credential lookups.
        readers: Readers,
        /// `None` when the file could not be watched: caches stay off.
        watch: Option<Mutex<SqliteWatch>>,
    },
    Postgres {
        watch: Arc<PgWatch>,
    },
}

impl Engine {
    pub(crate) fn backend(&self) -> Backend {
        match self {
            Engine::Sqlite { .. } => Backend::Sqlite,
            Engine::Postgres { .. } => Backend::Postgres,
        }
    }

    /// A value that differs whenever the store may have changed; `None`
    /// when that cannot be known right now.
    pub(crate) fn marker(&self) -> Option<u64> {
        match self {
            Engine::Sqlite { watch, .. } => watch
                .as_ref()
                .and_then(|w| w.lock().unwrap_or_else(|e| e.into_inner()).marker().ok()),
            Engine::Postgres { watch } => watch.marker(),
        }
    }

    /// Is this node following every other writer's changes right now?
    /// Always on SQLite, where every commit shows in the file.
    pub(crate) fn is_watching_changes(&self) -> bool {
        match self {
            Engine::Sqlite { .. } => true,
            Engine::Postgres { watch } => watch.is_healthy(),
        }
    }

    /// The embedded store's synchronous readers.
    pub(crate) fn readers(&self) -> Option<&Readers> {
        match self {
            Engine::Sqlite { readers, .. } => Some(readers),
            Engine::Postgres { .. } => None,
        }
    }

    /// PostgreSQL's change listener.
    pub(crate) fn postgres(&self) -> Option<&Arc<PgWatch>> {
        match self {
            Engine::Sqlite { .. } => None,
            Engine::Postgres { watch } => Some(watch),
        }
    }
}
