//! What differs between the two backends, in one place. Queries are written
//! once with `$N` placeholders, which SQLite and PostgreSQL both accept.

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::Any;

/// Which database the store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Starts a write transaction. SQLite takes the write lock at once, so a
    /// transaction that reads before it writes never fails to upgrade.
    pub(crate) fn begin_write(self) -> &'static str {
        match self {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        }
    }

    /// Appended to a SELECT whose rows the transaction will change.
    pub(crate) fn for_update(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        }
    }

    /// The larger of two integer expressions.
    pub(crate) fn greatest(self, a: &str, b: &str) -> String {
        match self {
            Backend::Sqlite => format!("max({a}, {b})"),
            Backend::Postgres => format!("GREATEST({a}, {b})"),
        }
    }

    /// A condition: the JSON array of strings in column `col` holds `param`.
    pub(crate) fn json_array_contains(self, col: &str, param: &str) -> String {
        match self {
            Backend::Sqlite => {
                format!("EXISTS (SELECT 1 FROM json_each({col}) WHERE json_each.value = {param})")
            }
            Backend::Postgres => format!("({col})::jsonb ? {param}"),
        }
    }

    /// A statement that, inside a transaction, serializes writers of one
    /// audit chain (`$1` = the chain's workspace id). SQLite needs none: its
    /// write transactions are already serialized.
    pub(crate) fn chain_lock(self) -> Option<&'static str> {
        match self {
            Backend::Sqlite => None,
            Backend::Postgres => Some("SELECT pg_advisory_xact_lock(hashtextextended($1, 7878))"),
        }
    }
}

/// `VALUES` rows for a multi-row `INSERT`: `($1, …, $cols), …` for `rows`
/// rows.
pub(crate) fn values(rows: usize, cols: usize) -> String {
    let mut sql = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..cols {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", r * cols + c + 1));
        }
        sql.push(')');
    }
    sql
}

/// A bind value for dynamically built queries.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(String),
    Int(i64),
}

/// Builds a query with `$N` placeholders and its binds.
#[derive(Debug, Default)]
pub(crate) struct SqlBuilder {
    pub sql: String,
    args: Vec<Arg>,
}

impl SqlBuilder {
    pub fn new(sql: impl Into<String>) -> Self {
        SqlBuilder {
            sql: sql.into(),
            args: Vec::new(),
        }
    }

    pub fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Adds a bind and returns its placeholder.
    pub fn arg(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }

    /// Appends a bind's placeholder to the SQL.
    pub fn bind(&mut self, arg: Arg) -> &mut Self {
        let p = self.arg(arg);
        self.sql.push_str(&p);
        self
    }

    pub fn query(&self) -> Query<'_, Any, AnyArguments<'_>> {
        let mut q = sqlx::query(&self.sql);
        for a in &self.args {
            q = match a {
                Arg::Text(s) => q.bind(s.as_str()),
                Arg::Int(i) => q.bind(*i),
            };
        }
        q
    }
}
