//! The embedded store's read path for credential lookups.
//!
//! Every authenticated request looks up a credential by the hash of its
//! secret. Through the sqlx pool each such query is handed to the
//! connection's worker thread and back; here a few synchronous SQLite
//! connections of our own answer it on the calling thread in microseconds
//! (one indexed lookup). A connection is held only for the query itself,
//! never across an await. In WAL mode each query reads the latest committed
//! state, whoever committed it (this process or `tooken admin`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::Result;

#[derive(Debug)]
pub(crate) struct Readers {
    conns: Box<[Mutex<Connection>]>,
    next: AtomicUsize,
}

impl Readers {
    /// Opens `count` read-only connections to the SQLite file at `path`.
    pub(crate) fn open(path: &str, count: usize) -> rusqlite::Result<Readers> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conns = (0..count.max(1))
            .map(|_| {
                let conn = Connection::open_with_flags(path, flags)?;
                conn.busy_timeout(Duration::from_secs(5))?;
                // 2 MiB of pages each: the hash index's upper levels and
                // the hottest rows. Lookups by a random hash land on a
                // random leaf, which no cache this side of the whole file
                // would hold, so more only adds to each reader's memory.
                conn.pragma_update(None, "cache_size", -2048)?;
                conn.set_prepared_statement_cache_capacity(16);
                Ok(Mutex::new(conn))
            })
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(Readers {
            conns: conns.into_boxed_slice(),
            next: AtomicUsize::new(0),
        })
    }

    /// Runs `f` on a free connection (or waits for one, briefly: each is
    /// held for one query).
    pub(crate) fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let n = self.conns.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            if let Ok(conn) = self.conns[(start + i) % n].try_lock() {
                return f(&conn);
            }
        }
        let conn = self.conns[start % n]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        f(&conn)
    }

    /// The first row `sql` returns for `key`, decoded by `decode`.
    pub(crate) fn one<T>(
        &self,
        sql: &str,
        key: &dyn rusqlite::ToSql,
        decode: impl FnOnce(&rusqlite::Row<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached(sql)?;
            let mut rows = stmt.query([key])?;
            match rows.next()? {
                Some(row) => decode(row).map(Some),
                None => Ok(None),
            }
        })
    }
}
