//! Opening a store, one step at a time: read the URL, reach the database,
//! open the pool, bring the schema up to date, and start what the backend
//! runs beside the pool (the embedded store's readers and change watch, or
//! PostgreSQL's change listener).

use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::postgres::PgConnectOptions;
use sqlx::{AnyPool, Connection, Executor};

use crate::engine::Engine;
use crate::group::Creates;
use crate::reader::Readers;
use crate::sql::Backend;
use crate::watch::postgres::{self, APPLICATION_NAME, LISTENER_SUFFIX};
use crate::watch::sqlite::SqliteWatch;
use crate::{Result, Store, StoreError};

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

/// Where a URL points.
enum Target {
    /// The embedded store: the file's path, and sqlx's URL for it.
    Sqlite {
        path: String,
        url: String,
    },
    Postgres {
        url: String,
    },
}

impl Target {
    /// `sqlite://PATH` (or `sqlite:PATH`, or a bare path) or
    /// `postgres://…`; any other scheme is refused.
    fn parse(url: &str) -> Result<Target> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Target::Postgres {
                url: url.to_owned(),
            });
        }
        let path = match url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            Some(path) => path,
            None if url.contains("://") => {
                return Err(StoreError::Url(format!(
                    "unsupported database URL scheme in {:?}: use sqlite://PATH or postgres://…",
                    url.split("://").next().unwrap_or_default()
                )))
            }
            None => url,
        };
        Ok(Target::Sqlite {
            path: path.split('?').next().unwrap_or(path).to_owned(),
            url: sqlite_url(path),
        })
    }
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

impl Store {
    /// Opens (creating if needed) the store at `url` and brings its schema
    /// up to date. `sqlite://PATH` (or a bare path) is the embedded store;
    /// `postgres://…` is PostgreSQL.
    // The URL is not recorded: it may carry a password.
    #[tracing::instrument(skip_all)]
    pub async fn open(url: &str) -> Result<Store> {
        Store::open_with(url, &StoreOptions::default()).await
    }

    /// [`Store::open`], connecting as `options` say.
    #[tracing::instrument(skip_all)]
    pub async fn open_with(url: &str, options: &StoreOptions) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let (pool, engine) = match Target::parse(url)? {
            Target::Sqlite { path, url } => {
                let pool = open_pool(Backend::Sqlite, connect_options(&url)?, options).await?;
                migrate(&pool, Backend::Sqlite).await?;
                // One reader per thread that may look up at once.
                let count = std::thread::available_parallelism().map_or(2, |n| n.get()) + 2;
                let engine = Engine::Sqlite {
                    readers: Readers::open(&path, count)?,
                    watch: SqliteWatch::open(&path),
                };
                (pool, engine)
            }
            Target::Postgres { url } => {
                let mut connect = connect_options(&url)?;
                let listener = name_sessions(&mut connect, &url)?;
                check_reachable(&connect, options.acquire_timeout).await?;
                let pool = open_pool(Backend::Postgres, connect, options).await?;
                migrate(&pool, Backend::Postgres).await?;
                let watch = postgres::start(&pool, listener, options.acquire_timeout).await;
                (pool, Engine::Postgres { watch })
            }
        };
        let engine = Arc::new(engine);
        Ok(Store {
            creates: Arc::new(Creates::start(pool.clone(), engine.clone())),
            pool,
            engine,
        })
    }
}

fn connect_options(url: &str) -> Result<AnyConnectOptions> {
    url.parse()
        .map_err(|e: sqlx::Error| StoreError::Url(e.to_string()))
}

/// Names the pool's sessions (the URL's `application_name`, else
/// [`APPLICATION_NAME`]) and returns the listener's options, named after
/// them with [`LISTENER_SUFFIX`], so that an operator can tell them apart
/// in `pg_stat_activity`.
fn name_sessions(connect: &mut AnyConnectOptions, url: &str) -> Result<PgConnectOptions> {
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
    Ok(url
        .parse::<PgConnectOptions>()
        .map_err(|e| StoreError::Url(e.to_string()))?
        .application_name(&format!("{name}{LISTENER_SUFFIX}")))
}

/// One connection first, for a clear error (refused, TLS, authentication)
/// instead of the pool's timeout.
async fn check_reachable(connect: &AnyConnectOptions, within: Duration) -> Result<()> {
    match tokio::time::timeout(within, sqlx::AnyConnection::connect_with(connect)).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(StoreError::Database(e)),
        Err(_) => Err(StoreError::Database(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "no answer from the database within {} ms",
                within.as_millis()
            ),
        )))),
    }
}

async fn open_pool(
    backend: Backend,
    connect: AnyConnectOptions,
    options: &StoreOptions,
) -> Result<AnyPool> {
    let statement_timeout = options.statement_timeout;
    let pool = AnyPoolOptions::new()
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
        })
        .connect_with(connect)
        .await?;
    Ok(pool)
}

/// Brings the schema up to date. Several nodes starting at once on an
/// empty PostgreSQL database do not race: the migrator holds an advisory
/// lock while it works.
async fn migrate(pool: &AnyPool, backend: Backend) -> Result<()> {
    let migrator = match backend {
        Backend::Sqlite => sqlx::migrate!("migrations/sqlite"),
        Backend::Postgres => sqlx::migrate!("migrations/postgres"),
    };
    match migrator.run(pool).await {
        Ok(()) => Ok(()),
        Err(sqlx::migrate::MigrateError::VersionMissing(v)) => Err(StoreError::SchemaTooNew(v)),
        Err(e) => Err(e.into()),
    }
}
