//! Tokens: the credentials Tooken issues for use in its users' systems.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use tooken_core::audit::Target;
use tooken_core::id::{new_id, IdKind};
use tooken_core::text::{Description, Name, Reason};
use tooken_core::token::TokenStatus;
use tooken_core::{Mode, Scope, SecretHash};

use crate::audit::{AuditContext, NewEvent};
use crate::row::{parsed, to_ms, Columns, Key};
use crate::sql::{Arg, SqlBuilder};
use crate::write::Write;
use crate::{Result, Store, StoreError};

/// A token as stored, without any secret material.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRecord {
    pub id: String,
    pub workspace_id: String,
    pub mode: Mode,
    pub name: String,
    pub description: Option<String>,
    pub scopes: Vec<Scope>,
    pub metadata: Option<Map<String, Value>>,
    pub hint: String,
    pub created_at: DateTime<Utc>,
    /// The id of the API key or token that created it.
    pub created_by: String,
    /// The token that created it, when a token did.
    pub parent_id: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_reason: Option<String>,
}

impl TokenRecord {
    pub fn status_at(&self, now: DateTime<Utc>) -> TokenStatus {
        TokenStatus::at(now, self.revoked_at, self.expires_at)
    }
}

/// A token about to be stored.
#[derive(Debug)]
pub struct NewToken {
    pub workspace_id: String,
    pub mode: Mode,
    pub name: Name,
    pub description: Option<Description>,
    pub scopes: Vec<Scope>,
    pub metadata: Option<Map<String, Value>>,
    pub secret_hash: SecretHash,
    pub hint: String,
    pub created_by: String,
    pub parent_id: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Changes to a token; `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Default, Clone)]
pub struct TokenPatch {
    pub name: Option<Name>,
    pub description: Option<Option<Description>>,
    pub metadata: Option<Option<Map<String, Value>>>,
    pub scopes: Option<Vec<Scope>>,
    pub expires_at: Option<Option<DateTime<Utc>>>,
}

/// Which tokens to list, and where the page starts.
#[derive(Clone, Default)]
pub struct TokenFilter {
    pub status: Option<TokenStatus>,
    pub scope: Option<String>,
    pub name_prefix: Option<String>,
    pub starting_after: Option<String>,
    pub limit: u32,
}

/// The filter as logged (`list_tokens` is instrumented): its strings come
/// from the client, and one may be a secret pasted in the wrong place.
impl std::fmt::Debug for TokenFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use tooken_core::redact::shown;
        f.debug_struct("TokenFilter")
            .field("status", &self.status)
            .field("scope", &self.scope.as_deref().map(shown))
            .field("name_prefix", &self.name_prefix.as_deref().map(shown))
            .field("starting_after", &self.starting_after.as_deref().map(shown))
            .field("limit", &self.limit)
            .finish()
    }
}

/// A token found by one of its secrets.
#[derive(Debug, Clone)]
pub struct TokenMatch {
    /// Shared: the server's cache hands it to every request it serves.
    pub token: std::sync::Arc<TokenRecord>,
    /// Set when the secret is the one replaced by the last rotation: it works
    /// until this moment only.
    pub previous_valid_until: Option<DateTime<Utc>>,
}

/// Whether a secret is accepted at a given moment, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acceptance {
    Accepted,
    Revoked,
    Expired,
    /// The secret was replaced by a rotation and its grace period is over.
    RotatedAway,
}

impl TokenMatch {
    /// The rule "is this secret accepted now", for every path that
    /// authenticates or verifies a token: a secret rotated away past its
    /// grace period is refused first (it no longer belongs to the token),
    /// then the token's own state decides (revocation before expiry).
    pub fn acceptance_at(&self, now: DateTime<Utc>) -> Acceptance {
        if self.previous_valid_until.is_some_and(|until| now >= until) {
            return Acceptance::RotatedAway;
        }
        match self.token.status_at(now) {
            TokenStatus::Active => Acceptance::Accepted,
            TokenStatus::Revoked => Acceptance::Revoked,
            TokenStatus::Expired => Acceptance::Expired,
        }
    }
}

/// Last use is the latest over the token's daily usage rows (see usage.rs).
macro_rules! last_used_column {
    () => {
        "(SELECT max(u.last_used_at) FROM usage_daily u WHERE u.subject_id = tokens.id) AS last_used_at"
    };
}
const COLUMNS: &str = concat!(
    "id, workspace_id, mode, name, description, scopes, metadata, hint, created_at, \
     created_by, parent_id, expires_at, revoked_at, revoked_reason, ",
    last_used_column!()
);
const LAST_USED: &str = last_used_column!();

fn token_from_row(row: &(impl Columns + ?Sized)) -> Result<TokenRecord> {
    let scopes = row.text("scopes")?;
    let scopes: Vec<String> = serde_json::from_str(&scopes)
        .map_err(|e| StoreError::Corrupt(format!("token scopes: {e}")))?;
    let scopes = scopes
        .iter()
        .map(|s| {
            Scope::parse(s).map_err(|e| StoreError::Corrupt(format!("token scope {s:?}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let metadata = row.opt_text("metadata")?;
    let metadata = metadata
        .map(|m| serde_json::from_str(&m))
        .transpose()
        .map_err(|e| StoreError::Corrupt(format!("token metadata: {e}")))?;
    Ok(TokenRecord {
        id: row.text("id")?,
        workspace_id: row.text("workspace_id")?,
        mode: parsed(row, "mode")?,
        name: row.text("name")?,
        description: row.opt_text("description")?,
        scopes,
        metadata,
        hint: row.text("hint")?,
        created_at: row.time("created_at")?,
        created_by: row.text("created_by")?,
        parent_id: row.opt_text("parent_id")?,
        expires_at: row.opt_time("expires_at")?,
        last_used_at: row.opt_time("last_used_at")?,
        revoked_at: row.opt_time("revoked_at")?,
        revoked_reason: row.opt_text("revoked_reason")?,
    })
}

/// A token by either of its secrets, and which one matched.
/// Lookup by secret, on the hot path of every token-authenticated request
/// and verification. Last use is not loaded (on a store with usage it
/// costs another index probe, and neither authentication nor verification
/// shows it): `last_used_at` is always `None` here.
static BY_SECRET: LazyLock<String> = LazyLock::new(|| {
    let columns = COLUMNS.replace(LAST_USED, "CAST(NULL AS BIGINT) AS last_used_at");
    format!(
        "SELECT {columns}, CASE WHEN secret_hash = $1 THEN 1 ELSE 0 END AS current, \
         previous_valid_until FROM tokens WHERE secret_hash = $1 OR previous_secret_hash = $1"
    )
});

fn token_match_from_row(row: &(impl Columns + ?Sized)) -> Result<TokenMatch> {
    let current = row.int("current")? == 1;
    let previous_valid_until = if current {
        None
    } else {
        // A previous secret without a deadline cannot happen; treat it as
        // already expired rather than valid forever.
        Some(row.opt_time("previous_valid_until")?.unwrap_or_default())
    };
    Ok(TokenMatch {
        token: std::sync::Arc::new(token_from_row(row)?),
        previous_valid_until,
    })
}

fn scopes_json(scopes: &[Scope]) -> String {
    Value::from(scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>()).to_string()
}

fn token_event(t: &TokenRecord, action: &'static str, details: Value) -> NewEvent {
    NewEvent {
        workspace_id: t.workspace_id.clone(),
        mode: Some(t.mode),
        action,
        target: Some(Target {
            kind: "token".into(),
            id: t.id.clone(),
        }),
        details,
    }
}

/// Tokens per multi-row `INSERT` (13 binds each): fewer round trips
/// against binding costs that grow with the square of a statement's
/// placeholders (see `USAGE_ROWS_PER_STATEMENT`).
const TOKENS_PER_INSERT: usize = 8;

/// A token to write: the record, its secret's hash, who creates it, when.
pub(crate) type TokenWrite<'a> = (
    &'a TokenRecord,
    &'a SecretHash,
    &'a AuditContext,
    DateTime<Utc>,
);

/// Writes new tokens, all of one workspace, and records their events, a
/// few statements for all of them.
pub(crate) async fn write_tokens(w: &mut Write, tokens: &[TokenWrite<'_>]) -> Result<()> {
    for chunk in tokens.chunks(TOKENS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO tokens (id, workspace_id, mode, name, description, scopes, metadata, \
             secret_hash, hint, created_at, created_by, parent_id, expires_at) VALUES {}",
            crate::sql::values(chunk.len(), 13)
        );
        let mut q = sqlx::query(&sql);
        for (token, secret_hash, _, now) in chunk {
            q = q
                .bind(&token.id)
                .bind(&token.workspace_id)
                .bind(token.mode.as_str())
                .bind(&token.name)
                .bind(&token.description)
                .bind(scopes_json(&token.scopes))
                .bind(metadata_json(&token.metadata))
                .bind(&secret_hash.as_bytes()[..])
                .bind(&token.hint)
                .bind(to_ms(*now))
                .bind(&token.created_by)
                .bind(&token.parent_id)
                .bind(token.expires_at.map(to_ms));
        }
        q.execute(w.conn()).await?;
    }
    for (token, _, ctx, now) in tokens {
        let details = json!({
            "name": token.name,
            "scopes": token.scopes,
            "expires_at": token.expires_at,
            "parent_id": token.parent_id,
        });
        w.record(ctx, token_event(token, "token.created", details), *now);
    }
    Ok(())
}

fn metadata_json(metadata: &Option<Map<String, Value>>) -> Option<String> {
    metadata
        .as_ref()
        .map(|m| Value::from(m.clone()).to_string())
}

impl NewToken {
    /// The record of this token, created at `now`, with a fresh id.
    fn into_record(self, now: DateTime<Utc>) -> (TokenRecord, SecretHash) {
        let record = TokenRecord {
            id: new_id(IdKind::Token, now),
            workspace_id: self.workspace_id,
            mode: self.mode,
            name: self.name.into_string(),
            description: self.description.map(String::from),
            scopes: self.scopes,
            metadata: self.metadata,
            hint: self.hint,
            created_at: now,
            created_by: self.created_by,
            parent_id: self.parent_id,
            expires_at: self.expires_at,
            last_used_at: None,
            revoked_at: None,
            revoked_reason: None,
        };
        (record, self.secret_hash)
    }
}

impl Store {
    /// Stores a new token, with its `token.created` event. Concurrent
    /// creates are committed together (see `group.rs`).
    #[tracing::instrument(skip(self, new, ctx), fields(workspace = %new.workspace_id))]
    pub async fn insert_token(
        &self,
        new: NewToken,
        ctx: &AuditContext,
        now: DateTime<Utc>,
    ) -> Result<TokenRecord> {
        let (token, secret_hash) = new.into_record(now);
        self.creates.submit(token, secret_hash, ctx, now).await
    }

    /// Stores many new tokens in one transaction, each with its
    /// `token.created` event: for seeding a store (load tests) or importing
    /// tokens in bulk. Give tokens of one workspace per call: each
    /// workspace's audit chain is locked until the commit.
    #[tracing::instrument(skip_all, fields(count = new.len()))]
    pub async fn insert_tokens(
        &self,
        new: Vec<NewToken>,
        ctx: &AuditContext,
        now: DateTime<Utc>,
    ) -> Result<Vec<TokenRecord>> {
        let made: Vec<(TokenRecord, SecretHash)> =
            new.into_iter().map(|n| n.into_record(now)).collect();
        let writes: Vec<TokenWrite<'_>> = made.iter().map(|(t, h)| (t, h, ctx, now)).collect();
        let mut w = self.write().await?;
        write_tokens(&mut w, &writes).await?;
        w.commit().await?;
        Ok(made.into_iter().map(|(t, _)| t).collect())
    }

    /// One token of a workspace and mode. Tokens of other workspaces or
    /// modes do not exist as far as the caller can tell.
    pub async fn token(
        &self,
        workspace_id: &str,
        mode: Mode,
        id: &str,
    ) -> Result<Option<TokenRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM tokens WHERE id = $1 AND workspace_id = $2 AND mode = $3"
        ))
        .bind(id)
        .bind(workspace_id)
        .bind(mode.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    /// The token one of whose secrets hashes to `hash`, without its last
    /// use (`last_used_at` is `None`; see `BY_SECRET`).
    pub async fn token_by_secret(&self, hash: &SecretHash) -> Result<Option<TokenMatch>> {
        self.lookup(&BY_SECRET, Key::Bytes(hash.as_bytes()), |r| {
            token_match_from_row(r)
        })
        .await
    }

    /// Tokens of a workspace and mode, newest first, one page at a time.
    #[tracing::instrument(skip(self))]
    pub async fn list_tokens(
        &self,
        workspace_id: &str,
        mode: Mode,
        f: &TokenFilter,
        now: DateTime<Utc>,
    ) -> Result<(Vec<TokenRecord>, bool)> {
        let mut q = SqlBuilder::new(format!(
            "SELECT {COLUMNS} FROM tokens WHERE workspace_id = "
        ));
        q.bind(Arg::Text(workspace_id.to_owned()))
            .push(" AND mode = ")
            .bind(Arg::Text(mode.as_str().to_owned()));
        match f.status {
            Some(TokenStatus::Revoked) => {
                q.push(" AND revoked_at IS NOT NULL");
            }
            Some(TokenStatus::Expired) => {
                q.push(" AND revoked_at IS NULL AND expires_at <= ")
                    .bind(Arg::Int(to_ms(now)));
            }
            Some(TokenStatus::Active) => {
                q.push(" AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ")
                    .bind(Arg::Int(to_ms(now)))
                    .push(")");
            }
            None => {}
        }
        if let Some(scope) = &f.scope {
            let p = q.arg(Arg::Text(scope.clone()));
            let cond = self.backend().json_array_contains("tokens.scopes", &p);
            q.push(" AND ").push(&cond);
        }
        if let Some(prefix) = &f.name_prefix {
            let p = q.arg(Arg::Text(prefix.clone()));
            q.push(&format!(" AND substr(name, 1, length({p})) = {p}"));
        }
        if let Some(after) = &f.starting_after {
            q.push(" AND id < ").bind(Arg::Text(after.clone()));
        }
        q.push(" ORDER BY id DESC LIMIT ")
            .bind(Arg::Int(i64::from(f.limit) + 1));
        let rows = q.query().fetch_all(&self.pool).await?;
        let mut tokens = rows
            .iter()
            .map(token_from_row)
            .collect::<Result<Vec<_>>>()?;
        let has_more = tokens.len() > f.limit as usize;
        tokens.truncate(f.limit as usize);
        Ok((tokens, has_more))
    }

    /// Applies `patch` (already validated) to a token of the workspace and mode.
    #[tracing::instrument(skip(self, patch, ctx))]
    pub async fn update_token(
        &self,
        workspace_id: &str,
        mode: Mode,
        id: &str,
        patch: TokenPatch,
        ctx: &AuditContext,
        now: DateTime<Utc>,
    ) -> Result<Option<TokenRecord>> {
        let mut w = self.write().await?;
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM tokens WHERE id = $1 AND workspace_id = $2 AND mode = $3{}",
            self.backend().for_update()
        ))
        .bind(id)
        .bind(workspace_id)
        .bind(mode.as_str())
        .fetch_optional(w.conn())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let old = token_from_row(&row)?;
        let mut new = old.clone();
        // Each field changed, as `{"old": …, "new": …}` in the event.
        let mut changes = Map::new();
        let mut note = |field: &str, old: Value, new: Value| {
            changes.insert(field.into(), json!({ "old": old, "new": new }));
        };
        if let Some(name) = patch.name {
            note("name", json!(old.name), json!(name.as_str()));
            new.name = name.into_string();
        }
        if let Some(description) = patch.description {
            let description = description.map(String::from);
            note("description", json!(old.description), json!(description));
            new.description = description;
        }
        if let Some(metadata) = patch.metadata {
            note("metadata", json!(old.metadata), json!(metadata));
            new.metadata = metadata;
        }
        if let Some(scopes) = patch.scopes {
            note("scopes", json!(old.scopes), json!(scopes));
            new.scopes = scopes;
        }
        if let Some(expires_at) = patch.expires_at {
            note("expires_at", json!(old.expires_at), json!(expires_at));
            new.expires_at = expires_at;
        }
        sqlx::query(
            "UPDATE tokens SET name = $1, description = $2, metadata = $3, scopes = $4, expires_at = $5 \
             WHERE id = $6",
        )
        .bind(&new.name)
        .bind(&new.description)
        .bind(metadata_json(&new.metadata))
        .bind(scopes_json(&new.scopes))
        .bind(new.expires_at.map(to_ms))
        .bind(id)
        .execute(w.conn())
        .await?;
        w.record(
            ctx,
            token_event(&new, "token.updated", Value::Object(changes)),
            now,
        );
        w.invalidate_caches();
        w.commit().await?;
        Ok(Some(new))
    }

    /// Revokes a token and every token created through it, at any depth, in
    /// one transaction. Idempotent: revoking a revoked token changes nothing.
    /// Returns the token and the ids this call revoked.
    #[tracing::instrument(skip(self, ctx))]
    pub async fn revoke_token(
        &self,
        workspace_id: &str,
        mode: Mode,
        id: &str,
        reason: Option<&Reason>,
        ctx: &AuditContext,
        now: DateTime<Utc>,
    ) -> Result<Option<(TokenRecord, Vec<String>)>> {
        let mut w = self.write().await?;
        let exists =
            sqlx::query("SELECT 1 FROM tokens WHERE id = $1 AND workspace_id = $2 AND mode = $3")
                .bind(id)
                .bind(workspace_id)
                .bind(mode.as_str())
                .fetch_optional(w.conn())
                .await?;
        if exists.is_none() {
            return Ok(None);
        }
        let revoked: Vec<String> = sqlx::query_scalar(
            "WITH RECURSIVE tree(id) AS ( \
                 SELECT id FROM tokens WHERE id = $1 \
                 UNION ALL SELECT t.id FROM tokens t JOIN tree ON t.parent_id = tree.id) \
             UPDATE tokens SET revoked_at = $2, revoked_reason = $3 \
             WHERE id IN (SELECT id FROM tree) AND revoked_at IS NULL RETURNING id",
        )
        .bind(id)
        .bind(to_ms(now))
        .bind(reason.map(Reason::as_str))
        .fetch_all(w.conn())
        .await?;
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM tokens WHERE id = $1"))
            .bind(id)
            .fetch_one(w.conn())
            .await?;
        let token = token_from_row(&row)?;
        if !revoked.is_empty() {
            let mut descendants: Vec<&String> = revoked.iter().filter(|r| *r != id).collect();
            descendants.sort();
            let details = json!({
                "reason": reason.map(Reason::as_str),
                "descendants_revoked": descendants,
            });
            w.record(ctx, token_event(&token, "token.revoked", details), now);
        }
        w.invalidate_caches();
        w.commit().await?;
        Ok(Some((token, revoked)))
    }

    /// Gives a token a new secret. The secret it replaces keeps working until
    /// `previous_valid_until` (if any); an older previous secret, still in its
    /// grace period, stops working at once.
    #[tracing::instrument(skip(self, secret_hash, ctx))]
    #[allow(clippy::too_many_arguments)]
    pub async fn rotate_token(
        &self,
        workspace_id: &str,
        mode: Mode,
        id: &str,
        secret_hash: SecretHash,
        hint: String,
        previous_valid_until: Option<DateTime<Utc>>,
        ctx: &AuditContext,
        now: DateTime<Utc>,
    ) -> Result<Option<TokenRecord>> {
        let mut w = self.write().await?;
        let row = sqlx::query(&format!(
            "UPDATE tokens SET \
               previous_secret_hash = CASE WHEN $1 IS NULL THEN NULL ELSE secret_hash END, \
               previous_valid_until = $1, secret_hash = $2, hint = $3 \
             WHERE id = $4 AND workspace_id = $5 AND mode = $6 RETURNING {COLUMNS}"
        ))
        .bind(previous_valid_until.map(to_ms))
        .bind(&secret_hash.as_bytes()[..])
        .bind(&hint)
        .bind(id)
        .bind(workspace_id)
        .bind(mode.as_str())
        .fetch_optional(w.conn())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let token = token_from_row(&row)?;
        let details = json!({ "hint": token.hint, "previous_valid_until": previous_valid_until });
        w.record(ctx, token_event(&token, "token.rotated", details), now);
        w.invalidate_caches();
        w.commit().await?;
        Ok(Some(token))
    }

    /// Tokens created through `parent_id` (its direct children), newest
    /// first, at most `limit`.
    pub async fn child_tokens(
        &self,
        workspace_id: &str,
        mode: Mode,
        parent_id: &str,
        limit: u32,
    ) -> Result<Vec<TokenRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM tokens WHERE parent_id = $1 AND workspace_id = $2 AND mode = $3 \
             ORDER BY id DESC LIMIT $4"
        ))
        .bind(parent_id)
        .bind(workspace_id)
        .bind(mode.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_from_row).collect()
    }

    /// How many tokens created through `id`, at any depth, are not yet
    /// revoked: those that revoking it would revoke too.
    pub async fn count_unrevoked_descendants(&self, id: &str) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "WITH RECURSIVE tree(id) AS ( \
                 SELECT id FROM tokens WHERE parent_id = $1 \
                 UNION ALL SELECT t.id FROM tokens t JOIN tree ON t.parent_id = tree.id) \
             SELECT count(*) FROM tokens WHERE id IN (SELECT id FROM tree) AND revoked_at IS NULL",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Is `id` the token `ancestor`, or created through it at any depth?
    pub async fn is_descendant_or_self(&self, ancestor: &str, id: &str) -> Result<bool> {
        let found: Option<i64> = sqlx::query_scalar(
            "WITH RECURSIVE up(id, parent_id) AS ( \
                 SELECT id, parent_id FROM tokens WHERE id = $1 \
                 UNION ALL SELECT t.id, t.parent_id FROM tokens t JOIN up ON t.id = up.parent_id) \
             SELECT 1 FROM up WHERE id = $2 LIMIT 1",
        )
        .bind(id)
        .bind(ancestor)
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_lookup_by_secret_skips_last_use() {
        assert!(super::COLUMNS.ends_with(super::LAST_USED));
        assert!(!super::BY_SECRET.contains("usage_daily"));
    }
}
