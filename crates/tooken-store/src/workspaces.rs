//! Workspaces and their policy settings.

use chrono::{DateTime, Utc};
use serde_json::json;
use tooken_core::audit::Target;
use tooken_core::id::{new_id, IdKind};
use tooken_core::{Settings, WorkspaceName};

use crate::audit::{AuditContext, NewEvent};
use crate::row::{to_ms, Columns, Key};
use crate::{Result, Store};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub settings: Settings,
}

fn workspace_from_row(row: &(impl Columns + ?Sized)) -> Result<Workspace> {
    Ok(Workspace {
        id: row.text("id")?,
        name: row.text("name")?,
        created_at: row.time("created_at")?,
        settings: Settings {
            require_expiration: row.int("require_expiration")? != 0,
            max_token_ttl_seconds: row.opt_int("max_token_ttl_seconds")?,
            default_token_ttl_seconds: row.opt_int("default_token_ttl_seconds")?,
            token_prefix: row.text("token_prefix")?,
            audit_retention_days: row.opt_int("audit_retention_days")?,
        },
    })
}

impl Store {
    /// Creates a workspace with default settings.
    #[tracing::instrument(skip(self, ctx))]
    pub async fn create_workspace(
        &self,
        name: &WorkspaceName,
        ctx: &AuditContext,
        now: DateTime<Utc>,
    ) -> Result<Workspace> {
        let mut w = self.write().await?;
        let ws = Workspace {
            id: new_id(IdKind::Workspace, now),
            name: name.to_string(),
            created_at: now,
            settings: Settings::default(),
        };
        sqlx::query(
            "INSERT INTO workspaces (id, name, created_at, token_prefix) VALUES ($1, $2, $3, $4)",
        )
        .bind(&ws.id)
        .bind(&ws.name)
        .bind(to_ms(now))
        .bind(&ws.settings.token_prefix)
        .execute(w.conn())
        .await?;
        w.record(
            ctx,
            NewEvent {
                workspace_id: ws.id.clone(),
                mode: None,
                action: "workspace.created",
                target: Some(Target {
                    kind: "workspace".into(),
                    id: ws.id.clone(),
                }),
                details: json!({ "name": ws.name }),
            },
            now,
        );
        w.commit().await?;
        Ok(ws)
    }

    pub async fn workspace_by_name(&self, name: &str) -> Result<Option<Workspace>> {
        const BY_NAME: &str = "SELECT * FROM workspaces WHERE name = $1";
        self.lookup(BY_NAME, Key::Text(name), |r| workspace_from_row(r))
            .await
    }

    pub async fn workspace(&self, id: &str) -> Result<Option<Workspace>> {
        const BY_ID: &str = "SELECT * FROM workspaces WHERE id = $1";
        self.lookup(BY_ID, Key::Text(id), |r| workspace_from_row(r))
            .await
    }

    pub async fn list_workspaces(&self) -> Result<Vec<Workspace>> {
        let rows = sqlx::query("SELECT * FROM workspaces ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(workspace_from_row).collect()
    }

    /// Replaces a workspace's settings (already validated by the caller).
    #[tracing::instrument(skip(self, ctx))]
    pub async fn update_settings(
        &self,
        workspace_id: &str,
        settings: &Settings,
        ctx: &AuditContext,
        now: DateTime<Utc>,
    ) -> Result<Settings> {
        let mut w = self.write().await?;
        let row = sqlx::query(&format!(
            "SELECT * FROM workspaces WHERE id = $1{}",
            self.backend().for_update()
        ))
        .bind(workspace_id)
        .fetch_one(w.conn())
        .await?;
        let old = workspace_from_row(&row)?.settings;
        sqlx::query(
            "UPDATE workspaces SET require_expiration = $1, max_token_ttl_seconds = $2, \
             default_token_ttl_seconds = $3, token_prefix = $4, audit_retention_days = $5 WHERE id = $6",
        )
        .bind(i64::from(settings.require_expiration))
        .bind(settings.max_token_ttl_seconds)
        .bind(settings.default_token_ttl_seconds)
        .bind(&settings.token_prefix)
        .bind(settings.audit_retention_days)
        .bind(workspace_id)
        .execute(w.conn())
        .await?;
        w.record(
            ctx,
            NewEvent {
                workspace_id: workspace_id.to_owned(),
                mode: None,
                action: "settings.updated",
                target: Some(Target {
                    kind: "workspace".into(),
                    id: workspace_id.to_owned(),
                }),
                details: json!({ "old": old, "new": settings }),
            },
            now,
        );
        w.invalidate_caches();
        w.commit().await?;
        Ok(settings.clone())
    }
}
