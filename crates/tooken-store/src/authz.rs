//! Gateway route rules (SPEC §12): one ordered list per workspace and mode.

use chrono::{DateTime, Utc};
use serde_json::json;
use tooken_core::audit::Target;
use tooken_core::authz::RuleSet;
use tooken_core::Mode;

use crate::audit::{AuditContext, NewEvent};
use crate::row::{to_ms, Columns};
use crate::{Result, Store, StoreError};

/// The rules of one workspace and mode, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRules {
    pub rules: RuleSet,
    /// When they were last set; `None` when they never were.
    pub updated_at: Option<DateTime<Utc>>,
}

fn rules_from_row(row: &(impl Columns + ?Sized)) -> Result<StoredRules> {
    let text = row.text("rules")?;
    // Validated when written; rules that no longer validate (a limit made
    // stricter since) are refused rather than half used.
    let rules: RuleSet = serde_json::from_str(&text)
        .map_err(|e| StoreError::Corrupt(format!("authz_rules: {e}")))?;
    Ok(StoredRules {
        rules,
        updated_at: Some(row.time("updated_at")?),
    })
}

const SELECT: &str =
    "SELECT rules, updated_at FROM authz_rules WHERE workspace_id = $1 AND mode = $2";

impl Store {
    /// The route rules of `workspace_id` in `mode` (none until set).
    pub async fn authz_rules(&self, workspace_id: &str, mode: Mode) -> Result<StoredRules> {
        let row = sqlx::query(SELECT)
            .bind(workspace_id)
            .bind(mode.as_str())
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => rules_from_row(&row),
            None => Ok(StoredRules {
                rules: RuleSet::default(),
                updated_at: None,
            }),
        }
    }

    /// Replaces the route rules of `workspace_id` in `mode` (already
    /// validated), recording `authz_rules.updated` with the old and new
    /// lists; returns the old ones. Every node's rule cache is told.
    #[tracing::instrument(skip(self, rules, ctx))]
    pub async fn set_authz_rules(
        &self,
        workspace_id: &str,
        mode: Mode,
        rules: &RuleSet,
        ctx: &AuditContext,
        now: DateTime<Utc>,
    ) -> Result<RuleSet> {
        let mut w = self.write().await?;
        // Serializes writers of one workspace's rules (PostgreSQL), so the
        // old list recorded is the one replaced.
        w.lock_chain(workspace_id).await?;
        let old = sqlx::query(SELECT)
            .bind(workspace_id)
            .bind(mode.as_str())
            .fetch_optional(w.conn())
            .await?;
        let old = match old {
            Some(row) => rules_from_row(&row)?.rules,
            None => RuleSet::default(),
        };
        let text = serde_json::to_string(rules).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO authz_rules (workspace_id, mode, rules, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (workspace_id, mode) DO UPDATE SET rules = excluded.rules, \
             updated_at = excluded.updated_at",
        )
        .bind(workspace_id)
        .bind(mode.as_str())
        .bind(&text)
        .bind(to_ms(now))
        .execute(w.conn())
        .await?;
        w.record(
            ctx,
            NewEvent {
                workspace_id: workspace_id.to_owned(),
                mode: Some(mode),
                action: "authz_rules.updated",
                target: Some(Target {
                    kind: "workspace".into(),
                    id: workspace_id.to_owned(),
                }),
                details: json!({ "old": old, "new": rules }),
            },
            now,
        );
        w.invalidate_caches();
        w.commit().await?;
        Ok(old)
    }
}
