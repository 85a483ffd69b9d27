//! What can go wrong in the store, in words a caller can act on.

use std::fmt;

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
    /// A uniqueness rule was broken. Says which, in our own words: the
    /// database's message (table and constraint names) is never passed on.
    #[error("conflict: {0}")]
    Conflict(Conflict),
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
    Database(sqlx::Error),
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
}

/// Every statement's error comes through here: a unique-constraint
/// violation becomes a [`StoreError::Conflict`] in our words.
impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        if let sqlx::Error::Database(db) = &e {
            if db.is_unique_violation() {
                return StoreError::Conflict(Conflict::of(db.constraint(), db.message()));
            }
        }
        StoreError::Database(e)
    }
}

/// A uniqueness rule that was broken: what already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// A workspace of that name exists.
    WorkspaceName,
    /// An account with that email exists.
    UserEmail,
    /// The user is already a member of the workspace.
    Membership,
    /// Any other unique value (ids and secret hashes: a clash there is a
    /// coincidence of random values, not the caller's doing).
    Other,
}

/// The unique rules a caller can break, as the two databases name them:
/// SQLite's message names `table.column`s, PostgreSQL names the
/// constraint (`<table>_<column>_key`, `<table>_pkey`).
const KNOWN: [(&str, &str, Conflict); 3] = [
    (
        "workspaces.name",
        "workspaces_name_key",
        Conflict::WorkspaceName,
    ),
    ("users.email", "users_email_key", Conflict::UserEmail),
    (
        "memberships.workspace_id, memberships.user_id",
        "memberships_pkey",
        Conflict::Membership,
    ),
];

impl Conflict {
    fn of(constraint: Option<&str>, message: &str) -> Conflict {
        KNOWN
            .iter()
            .find(|(columns, name, _)| {
                constraint == Some(*name) || message.ends_with(&format!("failed: {columns}"))
            })
            .map_or(Conflict::Other, |(_, _, c)| *c)
    }

    /// The request field whose value is taken, when there is one.
    pub fn field(self) -> Option<&'static str> {
        match self {
            Conflict::WorkspaceName => Some("name"),
            Conflict::UserEmail | Conflict::Membership => Some("email"),
            Conflict::Other => None,
        }
    }
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Conflict::WorkspaceName => "a workspace with this name already exists",
            Conflict::UserEmail => "an account with this email already exists",
            Conflict::Membership => "this person is already a member of the workspace",
            Conflict::Other => "a value that must be unique is already taken; try again",
        })
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

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
    fn conflicts_are_named_from_either_database() {
        let sqlite = |m: &str| Conflict::of(None, m);
        assert_eq!(
            sqlite("UNIQUE constraint failed: workspaces.name"),
            Conflict::WorkspaceName
        );
        assert_eq!(
            sqlite("UNIQUE constraint failed: memberships.workspace_id, memberships.user_id"),
            Conflict::Membership
        );
        assert_eq!(
            sqlite("UNIQUE constraint failed: tokens.secret_hash"),
            Conflict::Other
        );
        assert_eq!(
            Conflict::of(Some("users_email_key"), "duplicate key value …"),
            Conflict::UserEmail
        );
        assert_eq!(Conflict::of(Some("tokens_pkey"), "…"), Conflict::Other);
        // Our words only: no table or constraint name.
        for c in [
            Conflict::WorkspaceName,
            Conflict::UserEmail,
            Conflict::Other,
        ] {
            let text = StoreError::Conflict(c).to_string();
            assert!(
                !text.contains("workspaces") && !text.contains("_key"),
                "{text}"
            );
        }
    }
}
