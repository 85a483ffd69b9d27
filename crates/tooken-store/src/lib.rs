//! Tooken's persistent store.
//!
//! The embedded SQLite store serves one node. Every change is written in one
//! transaction together with its audit event: if the event cannot be written,
//! the change does not happen. Write transactions start with `BEGIN
//! IMMEDIATE`, so a transaction that reads before it writes never fails to
//! upgrade its lock when another process (the admin CLI) writes meanwhile.

mod api_keys;
mod audit;
mod tokens;
mod workspaces;

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

pub use api_keys::{ApiKey, NewApiKey};
pub use audit::{AuditContext, AuthFailureEvent, EventFilter, NewEvent, SERVER_CHAIN};
pub use tokens::{NewToken, TokenFilter, TokenMatch, TokenPatch, TokenRecord};
pub use workspaces::Workspace;

/// The workspace every new store starts with.
pub const DEFAULT_WORKSPACE: &str = "default";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken; the string names the constraint.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("the store holds a value it cannot read: {0}")]
    Corrupt(String),
    #[error("database URL: {0}")]
    Url(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// Turns unique-constraint violations into [`StoreError::Conflict`].
    fn from_sqlx(e: sqlx::Error) -> StoreError {
        if let sqlx::Error::Database(db) = &e {
            if db.is_unique_violation() {
                return StoreError::Conflict(db.message().to_owned());
            }
        }
        StoreError::Database(e)
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A handle on the store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating if needed) the store at `url` (`sqlite://PATH`, or a
    /// bare path) and brings its schema up to date.
    // The URL is not recorded: it may carry a password.
    #[tracing::instrument(skip_all)]
    pub async fn open(url: &str) -> Result<Store> {
        let url = if url.starts_with("sqlite:") {
            url.to_owned()
        } else if url.contains("://") {
            return Err(StoreError::Url(format!(
                "unsupported database URL scheme in {url:?}: use sqlite://PATH"
            )));
        } else {
            format!("sqlite://{url}")
        };
        let options = SqliteConnectOptions::from_str(&url)
            .map_err(|e| StoreError::Url(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk before it returns, so nothing that
            // was acknowledged is lost when the process or machine dies.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .min_connections(1)
            .connect_with(options)
            .await?;
        sqlx::migrate!("migrations/sqlite").run(&pool).await?;
        Ok(Store { pool })
    }

    /// Is the store reachable and answering?
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Starts a write transaction holding the write lock from the start.
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Direct access to the pool, for tests that tamper with rows.
    #[doc(hidden)]
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

pub(crate) fn to_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

pub(crate) fn opt_from_ms(ms: Option<i64>) -> Option<DateTime<Utc>> {
    ms.map(from_ms)
}
pub use sqlx::Error as SqlxError;
