//! Reading a row's columns by name, the same way whether it came through the
//! sqlx pool or through one of the embedded store's synchronous readers
//! (`reader.rs`), so each record is decoded by one function.

use chrono::{DateTime, TimeZone, Utc};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Result, Store, StoreError};

/// Times are stored as milliseconds since the Unix epoch.
pub(crate) fn to_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// A stored time; one out of range is [`StoreError::Corrupt`], never a
/// made-up date.
fn from_ms(column: &str, ms: i64) -> Result<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .ok_or_else(|| StoreError::Corrupt(format!("{column}: no such time ({ms} ms)")))
}

/// A lookup's one bind.
pub(crate) enum Key<'a> {
    Bytes(&'a [u8]),
    Text(&'a str),
}

impl Store {
    /// The first row `sql` returns for its one bind `key`, decoded by
    /// `decode`: on SQLite through the synchronous readers (`reader.rs`),
    /// elsewhere through the pool.
    pub(crate) async fn lookup<T>(
        &self,
        sql: &str,
        key: Key<'_>,
        decode: impl FnOnce(&dyn Columns) -> Result<T>,
    ) -> Result<Option<T>> {
        if let Some(readers) = self.engine.readers() {
            let bind: &dyn rusqlite::ToSql = match &key {
                Key::Bytes(b) => b,
                Key::Text(t) => t,
            };
            return readers.one(sql, bind, |row| decode(row));
        }
        let query = sqlx::query(sql);
        let query = match key {
            Key::Bytes(b) => query.bind(b),
            Key::Text(t) => query.bind(t),
        };
        let row = query.fetch_optional(&self.pool).await?;
        row.as_ref().map(|row| decode(row)).transpose()
    }
}

pub(crate) trait Columns {
    // Object safe: `Store::lookup` decodes either kind of row as `&dyn Columns`.
    fn text(&self, name: &str) -> Result<String>;
    fn opt_text(&self, name: &str) -> Result<Option<String>>;
    fn int(&self, name: &str) -> Result<i64>;
    fn opt_int(&self, name: &str) -> Result<Option<i64>>;

    /// A time (see [`to_ms`]).
    fn time(&self, name: &str) -> Result<DateTime<Utc>> {
        from_ms(name, self.int(name)?)
    }

    fn opt_time(&self, name: &str) -> Result<Option<DateTime<Utc>>> {
        self.opt_int(name)?.map(|ms| from_ms(name, ms)).transpose()
    }
}

/// A value stored as its name (a mode, a role, a purpose); anything else
/// is [`StoreError::Corrupt`].
pub(crate) fn parsed<T: std::str::FromStr>(row: &(impl Columns + ?Sized), name: &str) -> Result<T> {
    let raw = row.text(name)?;
    raw.parse()
        .map_err(|_| StoreError::Corrupt(format!("{name} {raw:?}")))
}

impl Columns for AnyRow {
    fn text(&self, name: &str) -> Result<String> {
        Ok(self.try_get(name)?)
    }
    fn opt_text(&self, name: &str) -> Result<Option<String>> {
        Ok(self.try_get(name)?)
    }
    fn int(&self, name: &str) -> Result<i64> {
        Ok(self.try_get(name)?)
    }
    fn opt_int(&self, name: &str) -> Result<Option<i64>> {
        Ok(self.try_get(name)?)
    }
}

impl Columns for rusqlite::Row<'_> {
    fn text(&self, name: &str) -> Result<String> {
        Ok(self.get(name)?)
    }
    fn opt_text(&self, name: &str) -> Result<Option<String>> {
        Ok(self.get(name)?)
    }
    fn int(&self, name: &str) -> Result<i64> {
        Ok(self.get(name)?)
    }
    fn opt_int(&self, name: &str) -> Result<Option<i64>> {
        Ok(self.get(name)?)
    }
}
