//! Knowing when the store changed, so that caches in front of it can be
//! trusted only while nothing has.
//!
//! Writes that can make a cached credential wrong (revoking, rotating,
//! changing, regenerating or deleting) bump the `store_changes` counter in
//! their own transaction. Creating things, recording usage and appending
//! audit events do not: nothing cached can be wrong because of them.
//!
//! * SQLite: a synchronous connection of our own reads `PRAGMA
//!   data_version`, which changes whenever any other connection (the
//!   server's pool, or `tooken admin` in another process) commits; only then
//!   is the counter read again. A cache checked against it is never stale by
//!   even one request. To make the common case cheaper still, the first 48
//!   bytes of the `-shm` file (the WAL index header, which every commit
//!   rewrites: its frame count, or its salt when the log restarts) are read
//!   first; while they are byte for byte what they were at the last full
//!   check, nothing has committed and the pragma is skipped. A torn or
//!   failed read only sends the check down the full path.
//! * PostgreSQL: those writes also send `NOTIFY tooken_changes`; a listener
//!   bumps a generation on each notification. While the listener is
//!   disconnected the store reports no marker at all, so caches are bypassed
//!   (fail safe) until it has reconnected and resubscribed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The notification channel every PostgreSQL write transaction signals.
pub const CHANNEL: &str = "tooken_changes";

#[derive(Debug)]
pub(crate) enum Watch {
    Sqlite(Mutex<SqliteWatch>),
    Postgres(Arc<PgWatch>),
}

#[derive(Debug)]
pub(crate) struct SqliteWatch {
    conn: rusqlite::Connection,
    /// (data_version, counter) when last read.
    seen: Option<(i64, i64)>,
    /// The `-shm` file, when it could be opened.
    shm: Option<std::fs::File>,
    /// Its header at the last full check.
    shm_seen: Option<[u8; WAL_INDEX_HEADER]>,
}

/// Bytes of the WAL index header at the start of the `-shm` file.
const WAL_INDEX_HEADER: usize = 48;

impl SqliteWatch {
    fn marker(&mut self) -> rusqlite::Result<u64> {
        let header = self.shm.as_ref().and_then(read_header);
        if let (Some(h), Some((_, counter))) = (header, self.seen) {
            if self.shm_seen == Some(h) {
                return Ok(counter as u64);
            }
        }
        // Remembered before the full check: a commit landing during it
        // changes the header again, so the next check is a full one too.
        self.shm_seen = header;
        let version: i64 = self
            .conn
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))?;
        if let Some((v, counter)) = self.seen {
            if v == version {
                return Ok(counter as u64);
            }
        }
        let counter: i64 = self
            .conn
            .prepare_cached("SELECT counter FROM store_changes WHERE id = 1")?
            .query_row([], |r| r.get(0))?;
        self.seen = Some((version, counter));
        Ok(counter as u64)
    }
}

#[derive(Debug, Default)]
pub(crate) struct PgWatch {
    generation: AtomicU64,
    healthy: AtomicBool,
}

impl PgWatch {
    pub(crate) fn bump(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

impl Watch {
    pub(crate) fn sqlite(path: &str) -> Option<Watch> {
        let flags =
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        match rusqlite::Connection::open_with_flags(path, flags) {
            Ok(conn) => Some(Watch::Sqlite(Mutex::new(SqliteWatch {
                conn,
                seen: None,
                shm: std::fs::File::open(format!("{path}-shm")).ok(),
                shm_seen: None,
            }))),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the SQLite file for changes; caches stay off");
                None
            }
        }
    }

    /// A value that differs whenever the store may have changed; `None` when
    /// that cannot be known right now.
    pub(crate) fn marker(&self) -> Option<u64> {
        match self {
            Watch::Sqlite(w) => w.lock().unwrap_or_else(|e| e.into_inner()).marker().ok(),
            Watch::Postgres(w) => w
                .healthy
                .load(Ordering::SeqCst)
                .then(|| w.generation.load(Ordering::SeqCst)),
        }
    }
}

#[cfg(unix)]
fn read_header(file: &std::fs::File) -> Option<[u8; WAL_INDEX_HEADER]> {
    use std::os::unix::fs::FileExt;
    let mut header = [0u8; WAL_INDEX_HEADER];
    file.read_exact_at(&mut header, 0).ok()?;
    Some(header)
}

#[cfg(not(unix))]
fn read_header(_: &std::fs::File) -> Option<[u8; WAL_INDEX_HEADER]> {
    None
}

/// Listens for change notifications until the process ends, reconnecting
/// when the connection drops.
pub(crate) async fn listen(url: String, watch: Arc<PgWatch>) {
    loop {
        match sqlx::postgres::PgListener::connect(&url).await {
            Ok(mut listener) => {
                if let Err(e) = listener.listen(CHANNEL).await {
                    tracing::warn!(error = %e, "cannot subscribe to store changes");
                } else {
                    // Subscribed: anything cached before may be stale.
                    watch.bump();
                    watch.healthy.store(true, Ordering::SeqCst);
                    tracing::debug!("subscribed to store changes");
                    while let Ok(Some(_)) = listener.try_recv().await {
                        watch.bump();
                    }
                }
                tracing::warn!(
                    "lost the store change subscription; caches are bypassed until it is back"
                );
            }
            Err(e) => tracing::warn!(error = %e, "cannot connect to listen for store changes"),
        }
        watch.healthy.store(false, Ordering::SeqCst);
        watch.bump();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
