//! Dashboard sign-ins. A session id is a high-entropy secret: only its
//! SHA-256 is stored. A login and a logout are recorded in the chain of
//! the workspace the session shows.

use chrono::{DateTime, Utc};
use serde_json::json;
use tooken_core::{Mode, SecretHash};

use crate::audit::AuditContext;
use crate::row::{parsed, to_ms, Columns};
use crate::users::{user_event, user_from_row, User, USER_COLUMNS};
use crate::{Result, Store};

/// A signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub user: User,
    /// The workspace the dashboard shows.
    pub workspace_id: String,
    /// The mode (live or test data) the dashboard shows.
    pub mode: Mode,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

/// A session about to be stored.
#[derive(Debug)]
pub struct NewSession<'a> {
    pub id_hash: SecretHash,
    pub user: &'a User,
    pub workspace_id: &'a str,
    pub mode: Mode,
    pub client_addr: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

impl Store {
    /// Stores a new session and records the login in its workspace's chain.
    #[tracing::instrument(skip(self, s, ctx), fields(user = %s.user.id))]
    pub async fn create_session(
        &self,
        s: NewSession<'_>,
        ctx: &AuditContext,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut w = self.write().await?;
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, workspace_id, mode, created_at, last_seen_at, \
             client_addr, user_agent) VALUES ($1, $2, $3, $4, $5, $5, $6, $7)",
        )
        .bind(&s.id_hash.as_bytes()[..])
        .bind(&s.user.id)
        .bind(s.workspace_id)
        .bind(s.mode.as_str())
        .bind(to_ms(now))
        .bind(s.client_addr)
        .bind(s.user_agent)
        .execute(w.conn())
        .await?;
        let details = json!({ "email": s.user.email });
        w.record(
            ctx,
            user_event(s.workspace_id, "user.login", s.user, details),
            now,
        );
        w.commit().await
    }

    /// The session whose id hashes to `id_hash`, with its user.
    pub async fn session(&self, id_hash: &SecretHash) -> Result<Option<SessionRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, s.workspace_id, s.mode, s.created_at AS session_created_at, \
             s.last_seen_at FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = $1"
        ))
        .bind(&id_hash.as_bytes()[..])
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(SessionRecord {
            user: user_from_row(&row)?,
            workspace_id: row.text("workspace_id")?,
            mode: parsed(&row, "mode")?,
            created_at: row.time("session_created_at")?,
            last_seen_at: row.time("last_seen_at")?,
        }))
    }

    /// Notes that a session was used (for its idle timeout).
    pub async fn touch_session(&self, id_hash: &SecretHash, now: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2")
            .bind(to_ms(now))
            .bind(&id_hash.as_bytes()[..])
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Points a session at another workspace or mode.
    pub async fn switch_session(
        &self,
        id_hash: &SecretHash,
        workspace_id: &str,
        mode: Mode,
    ) -> Result<()> {
        sqlx::query("UPDATE sessions SET workspace_id = $1, mode = $2 WHERE id_hash = $3")
            .bind(workspace_id)
            .bind(mode.as_str())
            .bind(&id_hash.as_bytes()[..])
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends a session (logout), recorded in its workspace's chain. `false`
    /// when there was no such session.
    #[tracing::instrument(skip_all)]
    pub async fn end_session(
        &self,
        id_hash: &SecretHash,
        ctx: &AuditContext,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut w = self.write().await?;
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, s.workspace_id FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.id_hash = $1"
        ))
        .bind(&id_hash.as_bytes()[..])
        .fetch_optional(w.conn())
        .await?;
        let Some(row) = row else { return Ok(false) };
        let user = user_from_row(&row)?;
        let workspace_id = row.text("workspace_id")?;
        for sql in [
            "DELETE FROM sessions WHERE id_hash = $1",
            "DELETE FROM reveals WHERE session_hash = $1",
        ] {
            sqlx::query(sql)
                .bind(&id_hash.as_bytes()[..])
                .execute(w.conn())
                .await?;
        }
        let details = json!({ "email": user.email });
        w.record(
            ctx,
            user_event(&workspace_id, "user.logout", &user, details),
            now,
        );
        w.commit().await?;
        Ok(true)
    }

    /// Deletes sessions idle since before `idle_before` or started before
    /// `started_before`, and reveals past their time. Returns how many
    /// sessions were deleted.
    pub async fn delete_stale_sessions(
        &self,
        idle_before: DateTime<Utc>,
        started_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let n = sqlx::query("DELETE FROM sessions WHERE last_seen_at < $1 OR created_at < $2")
            .bind(to_ms(idle_before))
            .bind(to_ms(started_before))
            .execute(&self.pool)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM reveals WHERE expires_at <= $1")
            .bind(to_ms(now))
            .execute(&self.pool)
            .await?;
        Ok(n)
    }

    /// Deletes one session without recording anything (it expired).
    pub async fn forget_session(&self, id_hash: &SecretHash) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(&id_hash.as_bytes()[..])
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
