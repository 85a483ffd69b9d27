//! Tooken's persistent store: the embedded SQLite file (one node) or
//! PostgreSQL (any number of nodes sharing one database), with one set of
//! queries for both (dialect differences in `sql.rs`).
//!
//! Every change is written in one transaction together with its audit
//! event (see `write.rs`): if the event cannot be written, the change does
//! not happen. On SQLite, write transactions start with `BEGIN IMMEDIATE`,
//! so a transaction that reads before it writes never fails to upgrade its
//! lock when another process (the admin CLI) writes meanwhile.
//!
//! One module per concept: [`tokens`](TokenRecord), API keys, workspaces,
//! gateway route rules, the audit log, usage, and the dashboard's people (users, memberships,
//! sessions, one-time links and reveals).

mod api_keys;
mod audit;
mod authz;
mod engine;
mod error;
mod group;
mod links;
mod memberships;
mod open;
mod reader;
mod reveals;
mod row;
mod sessions;
mod sql;
mod tokens;
mod usage;
mod users;
mod watch;
mod workspaces;
mod write;

use std::sync::Arc;

use sqlx::AnyPool;

pub use api_keys::{ApiKey, NewApiKey};
pub use audit::{AuditContext, AuthFailureEvent, EventFilter, Pruned, SERVER_CHAIN};
pub use authz::StoredRules;
pub use error::{Conflict, Result, StoreError};
pub use links::{LinkPurpose, NewLink, UserLink};
pub use memberships::{Member, MemberChange, Membership, Role};
pub use open::StoreOptions;
pub use reveals::NewReveal;
pub use sessions::{NewSession, SessionRecord};
pub use sql::Backend;
pub use tokens::{Acceptance, NewToken, TokenFilter, TokenMatch, TokenPatch, TokenRecord};
pub use usage::{DayUse, UsageBatch};
pub use users::{NewUser, User};
pub use workspaces::Workspace;

/// The workspace every new store starts with.
pub const DEFAULT_WORKSPACE: &str = "default";

/// A handle on the store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    engine: Arc<engine::Engine>,
    /// The group-commit writer for token creation.
    creates: Arc<group::Creates>,
}

/// How busy the pool is, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections open.
    pub size: u32,
    /// Of those, idle.
    pub idle: usize,
}

impl Store {
    /// A value that changes whenever anything in the store may have changed
    /// (any commit, by this process or another, on any node). `None` means
    /// the store cannot tell right now: caches must not be trusted.
    pub fn change_marker(&self) -> Option<u64> {
        self.engine.marker()
    }

    /// PostgreSQL: is this node subscribed to the other nodes' changes
    /// right now? (While it is not, its caches are bypassed.) Always true
    /// on SQLite.
    pub fn is_watching_changes(&self) -> bool {
        self.engine.is_watching_changes()
    }

    pub fn backend(&self) -> Backend {
        self.engine.backend()
    }

    /// Is the store reachable and answering?
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub fn pool_stats(&self) -> PoolStats {
        PoolStats {
            size: self.pool.size(),
            idle: self.pool.num_idle(),
        }
    }

    pub async fn close(&self) {
        if let Some(w) = self.engine.postgres() {
            w.close(&self.pool).await;
        }
        self.pool.close().await;
    }

    /// Direct access to the pool, for tests that tamper with rows (the
    /// `test-support` feature; never in a build that serves).
    #[cfg(any(test, feature = "test-support"))]
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

#[cfg(test)]
mod tests {
    use super::redact_url;

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
