//! The embedded store's change marker: `PRAGMA data_version`, read only
//! when the WAL index header says something committed (see the module
//! above).

use std::sync::Mutex;

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
    /// Opens the watching connection on the SQLite file at `path`; `None`
    /// (and caches stay off) when it cannot be opened.
    pub(crate) fn open(path: &str) -> Option<Mutex<SqliteWatch>> {
        let flags =
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        match rusqlite::Connection::open_with_flags(path, flags) {
            Ok(conn) => Some(Mutex::new(SqliteWatch {
                conn,
                seen: None,
                shm: std::fs::File::open(format!("{path}-shm")).ok(),
                shm_seen: None,
            })),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the SQLite file for changes; caches stay off");
                None
            }
        }
    }

    /// A value that differs whenever any connection has committed.
    pub(crate) fn marker(&mut self) -> rusqlite::Result<u64> {
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
