//! Workspace API keys: admin credentials with full access to their
//! workspace, in their mode.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use serde_json::json;
use tooken_core::audit::Target;
use tooken_core::id::{new_id, IdKind};
use tooken_core::text::Name;
use tooken_core::{Mode, SecretHash};

use crate::audit::{AuditContext, NewEvent};
use crate::row::{parsed, to_ms, Columns, Key};
use crate::{Result, Store};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    pub workspace_id: String,
    pub mode: Mode,
    pub name: String,
    pub hint: String,
    pub created_at: DateTime<Utc>,
    pub regenerated_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// What it takes to store a new key: its hash, never the secret.
#[derive(Debug)]
pub struct NewApiKey<'a> {
    pub workspace_id: &'a str,
    pub mode: Mode,
    pub name: &'a Name,
    pub secret_hash: SecretHash,
    pub hint: String,
}

fn api_key_from_row(row: &(impl Columns + ?Sized)) -> Result<ApiKey> {
    Ok(ApiKey {
        id: row.text("id")?,
        workspace_id: row.text("workspace_id")?,
        mode: parsed(row, "mode")?,
        name: row.text("name")?,
        hint: row.text("hint")?,
        created_at: row.time("created_at")?,
        regenerated_at: row.opt_time("regenerated_at")?,
        last_used_at: row.opt_time("last_used_at")?,
    })
}

/// Last use is the latest over the key's daily usage rows (see usage.rs).
const COLUMNS: &str = "id, workspace_id, mode, name, hint, created_at, regenerated_at, \
     (SELECT max(u.last_used_at) FROM usage_daily u WHERE u.subject_id = api_keys.id) AS last_used_at";

static BY_SECRET: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {COLUMNS} FROM api_keys WHERE secret_hash = $1"));

impl Store {
    #[tracing::instrument(skip(self, ctx))]
    pub async fn create_api_key(
        &self,
        key: NewApiKey<'_>,
        ctx: &AuditContext,
        now: DateTime<Utc>,
    ) -> Result<ApiKey> {
        let created = ApiKey {
            id: new_id(IdKind::ApiKey, now),
            workspace_id: key.workspace_id.to_owned(),
            mode: key.mode,
            name: key.name.to_string(),
            hint: key.hint,
            created_at: now,
            regenerated_at: None,
            last_used_at: None,
        };
        let mut w = self.write().await?;
        sqlx::query(
            "INSERT INTO api_keys (id, workspace_id, mode, name, secret_hash, hint, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&created.id)
        .bind(&created.workspace_id)
        .bind(created.mode.as_str())
        .bind(&created.name)
        .bind(&key.secret_hash.as_bytes()[..])
        .bind(&created.hint)
        .bind(to_ms(now))
        .execute(w.conn())
        .await?;
        w.record(
            ctx,
            key_event(
                &created,
                "api_key.created",
                json!({ "name": created.name, "hint": created.hint }),
            ),
            now,
        );
        w.commit().await?;
        Ok(created)
    }

    pub async fn list_api_keys(&self, workspace_id: &str) -> Result<Vec<ApiKey>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM api_keys WHERE workspace_id = $1 ORDER BY id DESC"
        ))
        .bind(workspace_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(api_key_from_row).collect()
    }

    pub async fn api_key(&self, id: &str) -> Result<Option<ApiKey>> {
        let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE id = $1");
        self.lookup(&sql, Key::Text(id), |r| api_key_from_row(r))
            .await
    }

    /// The key whose secret hashes to `hash`, if any.
    pub async fn api_key_by_secret(&self, hash: &SecretHash) -> Result<Option<ApiKey>> {
        self.lookup(&BY_SECRET, Key::Bytes(hash.as_bytes()), |r| {
            api_key_from_row(r)
        })
        .await
    }

    /// Replaces a key's secret. The old secret stops working with the commit.
    #[tracing::instrument(skip(self, secret_hash, ctx))]
    pub async fn regenerate_api_key(
        &self,
        id: &str,
        secret_hash: SecretHash,
        hint: String,
        ctx: &AuditContext,
        now: DateTime<Utc>,
    ) -> Result<Option<ApiKey>> {
        let mut w = self.write().await?;
        let row = sqlx::query(&format!(
            "UPDATE api_keys SET secret_hash = $1, hint = $2, regenerated_at = $3 WHERE id = $4 \
             RETURNING {COLUMNS}"
        ))
        .bind(&secret_hash.as_bytes()[..])
        .bind(&hint)
        .bind(to_ms(now))
        .bind(id)
        .fetch_optional(w.conn())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let key = api_key_from_row(&row)?;
        w.record(
            ctx,
            key_event(&key, "api_key.regenerated", json!({ "hint": key.hint })),
            now,
        );
        w.invalidate_caches();
        w.commit().await?;
        Ok(Some(key))
    }

    /// Deletes a key. Its secret stops working with the commit.
    #[tracing::instrument(skip(self, ctx))]
    pub async fn delete_api_key(
        &self,
        id: &str,
        ctx: &AuditContext,
        now: DateTime<Utc>,
    ) -> Result<Option<ApiKey>> {
        let mut w = self.write().await?;
        let row = sqlx::query(&format!(
            "DELETE FROM api_keys WHERE id = $1 RETURNING {COLUMNS}"
        ))
        .bind(id)
        .fetch_optional(w.conn())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let key = api_key_from_row(&row)?;
        w.record(
            ctx,
            key_event(
                &key,
                "api_key.deleted",
                json!({ "name": key.name, "hint": key.hint }),
            ),
            now,
        );
        w.invalidate_caches();
        w.commit().await?;
        Ok(Some(key))
    }
}

fn key_event(key: &ApiKey, action: &'static str, details: serde_json::Value) -> NewEvent {
    NewEvent {
        workspace_id: key.workspace_id.clone(),
        mode: Some(key.mode),
        action,
        target: Some(Target {
            kind: "api_key".into(),
            id: key.id.clone(),
        }),
        details,
    }
}
