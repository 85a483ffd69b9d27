//! Tooken's persistent store.
//!
//! The embedded SQLite store serves one node. Every change is written in one
//! transaction together with its audit event: if the event cannot be written,
//! the change does not happen. Write transactions start with `BEGIN
//! IMMEDIATE`, so a transaction that reads before it writes never fails to
//! upgrade its lock when another process (the admin CLI) writes meanwhile.

mod api_keys;
mod audit;
mod group;
mod reader;
mod row;
mod sql;
mod tokens;
mod usage;
mod users;
mod watch;
mod workspaces;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Connection, Executor, Transaction};

pub use api_keys::{ApiKey, NewApiKey};
pub use audit::{AuditContext, AuthFailureEvent, EventFilter, NewEvent, Pruned, SERVER_CHAIN};
pub use sql::Backend;
pub use tokens::{NewToken, TokenFilter, TokenMatch, TokenPatch, TokenRecord};
pub use usage::{DayUse, UsageBatch};
pub use users::{
    LinkPurpose, Member, MemberChange, Membership, NewLink, NewReveal, NewSession, Role,
    SessionRecord, User, UserLink,
};
pub use workspaces::Workspace;

/// The workspace every new store starts with.
pub const DEFAULT_WORKSPACE: &str = "default";

/// The `application_name` of the pool's PostgreSQL sessions, unless the
/// URL sets one (`?application_name=tooken-a` names a node).
pub const APPLICATION_NAME: &str = "tooken";

/// Appended to the pool's `application_name` to name the session that
/// listens for changes (`tooken-listener` by default).
pub const LISTENER_SUFFIX: &str = "-listener";

pub use watch::{CHANNEL as CHANGES_CHANNEL, ECHO_WAIT, HEARTBEAT_INTERVAL, PEER_TTL};

/// A database error code that means "not now" rather than "never".
/// SQLite's (extended) codes are numbers below 10,000, PostgreSQL's are
/// five-character SQLSTATEs.
fn is_transient_code(code: &str) -> bool {
    if code.len() < 5 {
        // SQLITE_BUSY (5) and SQLITE_LOCKED (6), with their extended codes.
        return code.parse::<u32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6));
    }
    // Connection exceptions; too many connections; the server shutting
    // down or not yet accepting connections.
    code.starts_with("08") || matches!(code, "53300" | "57P01" | "57P02" | "57P03")
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken; the string names the constraint.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("the store holds a value it cannot read: {0}")]
    Corrupt(String),
    #[error("database URL: {0}")]
    Url(String),
    #[error(
        "the database schema is at version {0}, newer than this tooken understands: upgrade tooken \
         (never run an older binary on a newer database)"
    )]
    SchemaTooNew(i64),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// From the embedded store's synchronous read path.
    #[error(transparent)]
    Embedded(#[from] rusqlite::Error),
}

impl StoreError {
    /// The store cannot serve this now but may soon: the pool is exhausted
    /// or closed, the database unreachable or shutting down, or (SQLite)
    /// another connection held the write lock past the busy timeout. Worth
    /// a retry, unlike a bug or a corrupt value.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Database(
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_),
            ) => true,
            StoreError::Database(sqlx::Error::Database(db)) => {
                db.code().is_some_and(|code| is_transient_code(&code))
            }
            StoreError::Embedded(rusqlite::Error::SqliteFailure(failure, _)) => matches!(
                failure.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ),
            _ => false,
        }
    }

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

/// How to connect.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Connections in the pool (SQLite: at most 8).
    pub max_connections: u32,
    /// How long a request waits for a connection (a free one, or a new one
    /// while the database cannot be reached) before failing. Also bounds
    /// the first connection at open.
    pub acquire_timeout: Duration,
    /// PostgreSQL only: statements running longer are cancelled.
    pub statement_timeout: Option<Duration>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Some(Duration::from_secs(10)),
        }
    }
}

/// A handle on the store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    watch: Option<Arc<watch::Watch>>,
    pg_watch: Option<Arc<watch::PgWatch>>,
    /// SQLite only: synchronous connections for credential lookups.
    readers: Option<Arc<reader::Readers>>,
    /// The group-commit writer for token creation.
    creates: Option<Arc<group::Creates>>,
}

impl Store {
    /// Opens (creating if needed) the store at `url` and brings its schema
    /// up to date. `sqlite://PATH` (or a bare path) is the embedded store;
    /// `postgres://…` is PostgreSQL.
    // The URL is not recorded: it may carry a password.
    #[tracing::instrument(skip_all)]
    pub async fn open(url: &str) -> Result<Store> {
        Store::open_with(url, &StoreOptions::default()).await
    }

    #[tracing::instrument(skip_all)]
    pub async fn open_with(url: &str, options: &StoreOptions) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let raw_url = url;
        let (backend, url) = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_owned())
        } else if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            (Backend::Sqlite, sqlite_url(path))
        } else if url.contains("://") {
            return Err(StoreError::Url(format!(
                "unsupported database URL scheme in {:?}: use sqlite://PATH or postgres://…",
                url.split("://").next().unwrap_or_default()
            )));
        } else {
            (Backend::Sqlite, sqlite_url(url))
        };
        let mut connect: AnyConnectOptions = url
            .parse()
            .map_err(|e: sqlx::Error| StoreError::Url(e.to_string()))?;
        let listener_options = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                // Named, so that an operator can tell the pool's sessions
                // from the listener's in pg_stat_activity.
                let named = connect
                    .database_url
                    .query_pairs()
                    .find(|(k, _)| k == "application_name")
                    .map(|(_, v)| v.into_owned());
                let name = match named {
                    Some(name) => name,
                    None => {
                        connect
                            .database_url
                            .query_pairs_mut()
                            .append_pair("application_name", APPLICATION_NAME);
                        APPLICATION_NAME.to_owned()
                    }
                };
                let listener = url
                    .parse::<sqlx::postgres::PgConnectOptions>()
                    .map_err(|e| StoreError::Url(e.to_string()))?
                    .application_name(&format!("{name}{LISTENER_SUFFIX}"));
                // One connection first, for a clear error (refused, TLS,
                // authentication) instead of the pool's timeout.
                match tokio::time::timeout(
                    options.acquire_timeout,
                    sqlx::AnyConnection::connect_with(&connect),
                )
                .await
                {
                    Ok(Ok(conn)) => {
                        let _ = conn.close().await;
                    }
                    Ok(Err(e)) => return Err(StoreError::Database(e)),
                    Err(_) => {
                        return Err(StoreError::Database(sqlx::Error::Io(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            format!(
                                "no answer from the database within {} ms",
                                options.acquire_timeout.as_millis()
                            ),
                        ))))
                    }
                }
                Some(listener)
            }
        };
        let statement_timeout = options.statement_timeout;
        let pool_options = AnyPoolOptions::new()
            .max_connections(match backend {
                // One file, one writer at a time: a few readers suffice.
                Backend::Sqlite => options.max_connections.min(8),
                Backend::Postgres => options.max_connections,
            })
            .min_connections(1)
            .acquire_timeout(options.acquire_timeout)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    match backend {
                        Backend::Sqlite => {
                            // WAL lets readers go on while one writes; FULL
                            // puts every commit on disk before it returns.
                            // Statement journals stay in memory, and a
                            // 16 MiB page cache keeps a batch's pages from
                            // spilling mid-transaction.
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; \
                                 PRAGMA temp_store = MEMORY; PRAGMA cache_size = -16384;",
                            )
                            .await?;
                        }
                        Backend::Postgres => {
                            if let Some(t) = statement_timeout {
                                conn.execute(
                                    format!("SET statement_timeout = {}", t.as_millis()).as_str(),
                                )
                                .await?;
                            }
                        }
                    }
                    Ok(())
                })
            });
        let pool = pool_options.connect_with(connect).await?;
        let migrator = match backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("migrations/postgres"),
        };
        // Several nodes starting at once on an empty PostgreSQL database do
        // not race: the migrator holds an advisory lock while it works.
        match migrator.run(&pool).await {
            Ok(()) => {}
            Err(sqlx::migrate::MigrateError::VersionMissing(v)) => {
                return Err(StoreError::SchemaTooNew(v))
            }
            Err(e) => return Err(e.into()),
        }
        let (watch, pg_watch, readers) = match backend {
            Backend::Sqlite => {
                let path = raw_url
                    .strip_prefix("sqlite://")
                    .or_else(|| raw_url.strip_prefix("sqlite:"))
                    .unwrap_or(raw_url);
                let path = path.split('?').next().unwrap_or(path);
                // One reader per thread that may look up at once.
                let count = std::thread::available_parallelism().map_or(2, |n| n.get()) + 2;
                let readers = reader::Readers::open(path, count)?;
                (
                    watch::Watch::sqlite(path).map(Arc::new),
                    None,
                    Some(Arc::new(readers)),
                )
            }
            Backend::Postgres => {
                let pg = Arc::new(watch::PgWatch::new());
                if let Some(listener) = listener_options {
                    tokio::spawn(watch::listen(listener, pg.clone()));
                    tokio::spawn(watch::heartbeat(pool.clone(), pg.clone()));
                }
                // Caches (and the wait for a change's echo) start working
                // once the listener is subscribed: give it a moment, so a
                // short-lived process (`tooken admin`) has it for its write.
                if pg.wait_subscribed(options.acquire_timeout).await {
                    // Learn the other nodes before the first write, so that
                    // it waits for their acknowledgements.
                    let listeners: i64 = sqlx::query_scalar(
                        "SELECT count(*) FROM pg_stat_activity \
                         WHERE datname = current_database() AND application_name LIKE $1",
                    )
                    .bind(format!("%{LISTENER_SUFFIX}"))
                    .fetch_one(&pool)
                    .await
                    .unwrap_or(0);
                    let others = usize::try_from(listeners - 1).unwrap_or(0);
                    if !pg.wait_for_peers(others, watch::ECHO_WAIT).await {
                        tracing::debug!(others, "not every other node answered at once");
                    }
                } else {
                    tracing::warn!(
                        "not yet subscribed to store changes; caches are bypassed until then"
                    );
                }
                (
                    Some(Arc::new(watch::Watch::Postgres(pg.clone()))),
                    Some(pg),
                    None,
                )
            }
        };
        Ok(Store {
            pool: pool.clone(),
            backend,
            watch,
            pg_watch,
            readers,
            creates: Some(Arc::new(group::Creates::start(pool.clone(), backend))),
        })
    }

    /// A value that changes whenever anything in the store may have changed
    /// (any commit, by this process or another, on any node). `None` means
    /// the store cannot tell right now: caches must not be trusted.
    pub fn change_marker(&self) -> Option<u64> {
        self.watch.as_ref().and_then(|w| w.marker())
    }

    /// Commits a write transaction that adds things or records what
    /// happened: nothing a cache holds can be wrong because of it.
    async fn commit(&self, tx: Transaction<'static, Any>) -> Result<()> {
        tx.commit().await?;
        Ok(())
    }

    /// Commits a write transaction that revokes, rotates, changes or
    /// deletes something a cache may hold, telling every node's cache.
    ///
    /// On PostgreSQL it returns only once every node has acknowledged the
    /// change (bounded; see the `watch` module), so that no node answers
    /// from a stale cache after the caller has answered.
    async fn commit_change(&self, mut tx: Transaction<'static, Any>) -> Result<()> {
        sqlx::query("UPDATE store_changes SET counter = counter + 1 WHERE id = 1")
            .execute(&mut *tx)
            .await?;
        let echo = match &self.pg_watch {
            Some(w) => {
                let echo = w.expect_echo();
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(watch::CHANNEL)
                    .bind(echo.payload())
                    .execute(&mut *tx)
                    .await?;
                Some(echo)
            }
            None => None,
        };
        tx.commit().await?;
        if let Some(w) = &self.pg_watch {
            // This node's cache is stale from now on, whatever the listener does.
            w.bump();
        }
        if let Some(echo) = echo {
            echo.wait().await;
        }
        Ok(())
    }

    /// PostgreSQL: is this node subscribed to the other nodes' changes
    /// right now? (While it is not, its caches are bypassed.) Always true
    /// on SQLite.
    pub fn is_watching_changes(&self) -> bool {
        self.pg_watch.as_ref().is_none_or(|w| w.is_healthy())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Is the store reachable and answering?
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        if let Some(w) = &self.pg_watch {
            w.close(&self.pool).await;
        }
        self.pool.close().await;
    }

    /// Starts a write transaction.
    async fn begin_write(&self) -> Result<Transaction<'static, Any>> {
        Ok(self.pool.begin_with(self.backend.begin_write()).await?)
    }

    /// Direct access to the pool, for tests that tamper with rows.
    #[doc(hidden)]
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// `url` fit for a message or a log line: a password in it, as
/// `user:PASSWORD@` or as a `password=` parameter, is replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://").map(|i| i + 3) {
        let authority_end = out[scheme_end..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |i| scheme_end + i);
        if let Some(at) = out[scheme_end..authority_end].rfind('@') {
            let userinfo = scheme_end..scheme_end + at;
            if let Some(colon) = out[userinfo.clone()].find(':') {
                out.replace_range(scheme_end + colon + 1..userinfo.end, "***");
            }
        }
    }
    if let Some(query_start) = out.find('?') {
        let (head, query) = out.split_at(query_start + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out = format!("{head}{}", query.join("&"));
    }
    out
}

/// A SQLite URL that creates the file when missing.
fn sqlite_url(path: &str) -> String {
    if path.contains("mode=") {
        format!("sqlite://{path}")
    } else if path.contains('?') {
        format!("sqlite://{path}&mode=rwc")
    } else {
        format!("sqlite://{path}?mode=rwc")
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

#[cfg(test)]
mod tests {
    use super::{is_transient_code, redact_url};

    #[test]
    fn busy_locked_and_connection_codes_are_transient() {
        // SQLite: BUSY, LOCKED, BUSY_SNAPSHOT (517), LOCKED_SHAREDCACHE (262).
        for code in ["5", "6", "517", "262"] {
            assert!(is_transient_code(code), "{code}");
        }
        // SQLite: CONSTRAINT_UNIQUE (2067), READONLY (8), CORRUPT (11).
        // PostgreSQL: unique_violation, syntax error, query_canceled.
        for code in ["2067", "8", "11", "23505", "42601", "57014"] {
            assert!(!is_transient_code(code), "{code}");
        }
        for code in ["08006", "53300", "57P01", "57P03"] {
            assert!(is_transient_code(code), "{code}");
        }
    }

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            redact_url("postgres://tooken:s3cr:et@db:5432/tooken?sslmode=require"),
            "postgres://tooken:***@db:5432/tooken?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://db/tooken?user=t&password=s3cret&sslmode=verify-full"),
            "postgres://db/tooken?user=t&password=***&sslmode=verify-full"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/x"),
            "postgres://postgres@127.0.0.1/x"
        );
        assert_eq!(redact_url("sqlite://tooken.db"), "sqlite://tooken.db");
        assert_eq!(redact_url("tooken.db"), "tooken.db");
    }

    /// `list_tokens` and `list_events` are instrumented: their filters are
    /// logged, and a client may have pasted a secret into one.
    #[test]
    fn logged_filters_do_not_show_secrets() {
        let secret = tooken_core::Credential::generate("tkn", tooken_core::Mode::Live);
        let s = secret.expose().to_owned();
        let tokens = format!(
            "{:?}",
            crate::TokenFilter {
                scope: Some(s.clone()),
                name_prefix: Some(s.clone()),
                starting_after: Some(s.clone()),
                ..Default::default()
            }
        );
        let events = format!(
            "{:?}",
            crate::EventFilter {
                action: Some(s.clone()),
                actor: Some(s.clone()),
                target: Some(s.clone()),
                starting_after: Some(s.clone()),
                ..Default::default()
            }
        );
        for logged in [&tokens, &events] {
            assert!(!logged.contains(&s[9..25]), "{logged}");
            assert!(logged.contains("<redacted>"), "{logged}");
        }
        let plain = format!(
            "{:?}",
            crate::TokenFilter {
                name_prefix: Some("billing".into()),
                ..Default::default()
            }
        );
        assert!(plain.contains(r#"name_prefix: Some("billing")"#), "{plain}");
    }
}
