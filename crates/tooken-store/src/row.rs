//! Reading a row's columns by name, the same way whether it came through the
//! sqlx pool or through one of the embedded store's synchronous readers
//! (`reader.rs`), so each record is decoded by one function.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Result, Store};

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
        if let Some(readers) = &self.readers {
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
