//! One-time displays of new secrets in the dashboard: the store keeps a
//! sealed secret (XORed with a pad only the browser holds) until the page
//! that shows it takes it, once.

use chrono::{DateTime, Utc};
use tooken_core::SecretHash;

use crate::row::{to_ms, Columns};
use crate::{Result, Store};

/// A sealed secret waiting to be shown once.
#[derive(Debug)]
pub struct NewReveal<'a> {
    pub id_hash: SecretHash,
    pub session_hash: SecretHash,
    pub target_kind: &'a str,
    pub target_id: &'a str,
    pub sealed: &'a [u8],
    pub expires_at: DateTime<Utc>,
}

impl Store {
    /// Stores a sealed secret to be shown once.
    pub async fn put_reveal(&self, r: NewReveal<'_>) -> Result<()> {
        sqlx::query(
            "INSERT INTO reveals (id_hash, session_hash, target_kind, target_id, sealed, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&r.id_hash.as_bytes()[..])
        .bind(&r.session_hash.as_bytes()[..])
        .bind(r.target_kind)
        .bind(r.target_id)
        .bind(r.sealed)
        .bind(to_ms(r.expires_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Takes (reads and deletes) this session's sealed secret for the
    /// given target, if it is still there and in time. A second take finds
    /// nothing.
    pub async fn take_reveal(
        &self,
        id_hash: &SecretHash,
        session_hash: &SecretHash,
        target_kind: &str,
        target_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Vec<u8>>> {
        let row = sqlx::query(
            "DELETE FROM reveals WHERE id_hash = $1 AND session_hash = $2 AND target_kind = $3 \
             AND target_id = $4 RETURNING sealed, expires_at",
        )
        .bind(&id_hash.as_bytes()[..])
        .bind(&session_hash.as_bytes()[..])
        .bind(target_kind)
        .bind(target_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        if row.time("expires_at")? <= now {
            return Ok(None);
        }
        Ok(Some(sqlx::Row::try_get(&row, "sealed")?))
    }
}
