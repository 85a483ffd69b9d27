//! The dashboard's people: users, their roles in workspaces (members), their
//! login sessions, one-time links (first-run setup and invitations) and
//! one-time displays of new secrets ("reveals").
//!
//! Session ids and link tokens are high-entropy secrets: only their SHA-256
//! is stored. Passwords arrive already hashed (argon2id, by the server).
//! Every change that matters to an owner (a user created, a member added,
//! removed or given another role, a login, a logout, a password reset) is
//! written in one transaction with its audit event in the workspace's chain.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use tooken_core::audit::{Actor, Target};
use tooken_core::id::{new_id, IdKind};
use tooken_core::{Mode, SecretHash};

use crate::audit::{append, AuditContext, NewEvent};
use crate::sql::Backend;
use crate::{from_ms, to_ms, Result, Store, StoreError, TokenRecord};

/// What a member may do in a workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything, including managing members.
    Owner,
    /// Sees everything, changes nothing.
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Viewer => "viewer",
        }
    }
}

impl FromStr for Role {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Role> {
        match s {
            "owner" => Ok(Role::Owner),
            "viewer" => Ok(Role::Viewer),
            other => Err(StoreError::Corrupt(format!("role {other:?}"))),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A person who can sign in to the dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    /// Lowercased; unique.
    pub email: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

impl User {
    /// The user as the actor of an audit event.
    pub fn actor(&self) -> Actor {
        Actor {
            kind: "user".into(),
            id: Some(self.id.clone()),
            hint: Some(self.email.clone()),
        }
    }
}

/// A workspace a user belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub workspace_id: String,
    pub workspace_name: String,
    pub role: Role,
}

/// A user as a member of one workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user: User,
    pub role: Role,
    pub added_at: DateTime<Utc>,
}

/// The outcome of changing or removing a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberChange {
    Done(Member),
    NotFound,
    /// Refused: the workspace would be left without an owner.
    LastOwner,
}

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

/// What a one-time link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    /// First run: whoever opens it sets up the first owner.
    Setup,
    /// An owner invited someone by email.
    Invite,
}

impl LinkPurpose {
    fn as_str(self) -> &'static str {
        match self {
            LinkPurpose::Setup => "setup",
            LinkPurpose::Invite => "invite",
        }
    }
}

/// A usable (unused, unexpired) one-time link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserLink {
    pub purpose: LinkPurpose,
    pub workspace_id: String,
    /// Invitations are for one email address.
    pub email: Option<String>,
    pub role: Role,
    pub expires_at: DateTime<Utc>,
}

/// A one-time link about to be stored.
#[derive(Debug)]
pub struct NewLink<'a> {
    pub token_hash: SecretHash,
    pub purpose: LinkPurpose,
    pub workspace_id: &'a str,
    pub email: Option<&'a str>,
    pub role: Role,
    pub expires_at: DateTime<Utc>,
}

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

fn new_user_id(now: DateTime<Utc>) -> String {
    // Same layout as every other id (time-ordered, 80 random bits), under
    // the `usr_` prefix.
    let id = new_id(IdKind::Event, now);
    format!("usr_{}", &id[IdKind::Event.prefix().len() + 1..])
}

fn user_from_row(row: &AnyRow) -> Result<User> {
    Ok(User {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        created_at: from_ms(row.try_get("created_at")?),
    })
}

fn mode_from(s: &str) -> Result<Mode> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("session mode {s:?}")))
}

fn member_event(
    workspace_id: &str,
    action: &'static str,
    user: &User,
    details: serde_json::Value,
) -> NewEvent {
    NewEvent {
        workspace_id: workspace_id.to_owned(),
        mode: None,
        action,
        target: Some(Target {
            kind: "user".into(),
            id: user.id.clone(),
        }),
        details,
    }
}

const USER_COLUMNS: &str = "u.id, u.email, u.name, u.created_at";

/// Serializes changes to one workspace's members (PostgreSQL; SQLite's
/// write transactions are serialized already), so two owners demoting each
/// other at once cannot leave the workspace without an owner.
async fn lock_workspace(
    backend: Backend,
    tx: &mut Transaction<'static, Any>,
    workspace_id: &str,
) -> Result<()> {
    if let Some(lock) = backend.chain_lock() {
        sqlx::query(lock)
            .bind(workspace_id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

async fn insert_user(
    tx: &mut Transaction<'static, Any>,
    email: &str,
    name: &str,
    password_hash: &str,
    now: DateTime<Utc>,
) -> Result<User> {
    let user = User {
        id: new_user_id(now),
        email: email.to_owned(),
        name: name.to_owned(),
        created_at: now,
    };
    sqlx::query(
        "INSERT INTO users (id, email, name, password_hash, created_at, password_changed_at) \
         VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(&user.id)
    .bind(&user.email)
    .bind(&user.name)
    .bind(password_hash)
    .bind(to_ms(now))
    .execute(&mut **tx)
    .await
    .map_err(StoreError::from_sqlx)?;
    Ok(user)
}

async fn insert_membership(
    tx: &mut Transaction<'static, Any>,
    workspace_id: &str,
    user_id: &str,
    role: Role,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO memberships (workspace_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(workspace_id)
    .bind(user_id)
    .bind(role.as_str())
    .bind(to_ms(now))
    .execute(&mut **tx)
    .await
    .map_err(StoreError::from_sqlx)?;
    Ok(())
}

impl Store {
    /// How many dashboard users exist.
    pub async fn count_users(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM users")
            .fetch_one(&self.pool)
            .await?)
    }

    /// Creates a user who is a member of `workspace_id` with `role` (the
    /// admin CLI). `email` must already be normalized (lowercase).
    #[tracing::instrument(skip(self, password_hash, ctx))]
    #[allow(clippy::too_many_arguments)]
    pub async fn create_user(
        &self,
        email: &str,
        name: &str,
        password_hash: &str,
        workspace_id: &str,
        role: Role,
        ctx: &AuditContext,
        now: DateTime<Utc>,
    ) -> Result<User> {
        let mut tx = self.begin_write().await?;
        let user = insert_user(&mut tx, email, name, password_hash, now).await?;
        insert_membership(&mut tx, workspace_id, &user.id, role, now).await?;
        let details = json!({ "email": user.email, "role": role.as_str() });
        append(
            self.backend,
            &mut tx,
            ctx,
            member_event(workspace_id, "member.added", &user, details),
            now,
        )
        .await?;
        self.commit(tx).await?;
        Ok(user)
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users u WHERE u.email = $1"
        ))
        .bind(email)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// A user and their password hash, for checking a login.
    pub async fn user_with_password(&self, email: &str) -> Result<Option<(User, String)>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE u.email = $1"
        ))
        .bind(email)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(Some((user_from_row(&row)?, row.try_get("password_hash")?))),
            None => Ok(None),
        }
    }

    /// Replaces a user's password and ends all their sessions. Recorded in
    /// every workspace the user belongs to.
    #[tracing::instrument(skip(self, password_hash, ctx))]
    pub async fn set_password(
        &self,
        email: &str,
        password_hash: &str,
        ctx: &AuditContext,
        now: DateTime<Utc>,
    ) -> Result<Option<User>> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users u WHERE u.email = $1{}",
            self.backend.for_update()
        ))
        .bind(email)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let user = user_from_row(&row)?;
        sqlx::query("UPDATE users SET password_hash = $1, password_changed_at = $2 WHERE id = $3")
            .bind(password_hash)
            .bind(to_ms(now))
            .bind(&user.id)
            .execute(&mut *tx)
            .await?;
        let ended = sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(&user.id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let workspaces: Vec<String> =
            sqlx::query_scalar("SELECT workspace_id FROM memberships WHERE user_id = $1")
                .bind(&user.id)
                .fetch_all(&mut *tx)
                .await?;
        for ws in workspaces {
            let details = json!({ "email": user.email, "sessions_ended": ended });
            append(
                self.backend,
                &mut tx,
                ctx,
                member_event(&ws, "user.password_reset", &user, details),
                now,
            )
            .await?;
        }
        self.commit(tx).await?;
        Ok(Some(user))
    }

    /// The workspaces a user belongs to, by name.
    pub async fn memberships(&self, user_id: &str) -> Result<Vec<Membership>> {
        let rows = sqlx::query(
            "SELECT m.workspace_id, w.name, m.role FROM memberships m \
             JOIN workspaces w ON w.id = m.workspace_id WHERE m.user_id = $1 ORDER BY w.name",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Membership {
                    workspace_id: r.try_get("workspace_id")?,
                    workspace_name: r.try_get("name")?,
                    role: r.try_get::<String, _>("role")?.parse()?,
                })
            })
            .collect()
    }

    /// The members of a workspace, owners first, then by email.
    pub async fn members(&self, workspace_id: &str) -> Result<Vec<Member>> {
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, m.role, m.created_at AS added_at FROM memberships m \
             JOIN users u ON u.id = m.user_id WHERE m.workspace_id = $1 \
             ORDER BY CASE m.role WHEN 'owner' THEN 0 ELSE 1 END, u.email"
        ))
        .bind(workspace_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(member_from_row).collect()
    }

    /// One member of a workspace.
    pub async fn member(&self, workspace_id: &str, user_id: &str) -> Result<Option<Member>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, m.role, m.created_at AS added_at FROM memberships m \
             JOIN users u ON u.id = m.user_id WHERE m.workspace_id = $1 AND m.user_id = $2"
        ))
        .bind(workspace_id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(member_from_row).transpose()
    }

    /// Adds an existing user to a workspace. A user already a member is a
    /// [`StoreError::Conflict`].
    #[tracing::instrument(skip(self, ctx))]
    pub async fn add_member(
        &self,
        workspace_id: &str,
        user: &User,
        role: Role,
        ctx: &AuditContext,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        insert_membership(&mut tx, workspace_id, &user.id, role, now).await?;
        let details = json!({ "email": user.email, "role": role.as_str() });
        append(
            self.backend,
            &mut tx,
            ctx,
            member_event(workspace_id, "member.added", user, details),
            now,
        )
        .await?;
        self.commit(tx).await?;
        Ok(())
    }

    /// Gives a member another role. The last owner stays an owner.
    #[tracing::instrument(skip(self, ctx))]
    pub async fn set_member_role(
        &self,
        workspace_id: &str,
        user_id: &str,
        role: Role,
        ctx: &AuditContext,
        now: DateTime<Utc>,
    ) -> Result<MemberChange> {
        let mut tx = self.begin_write().await?;
        lock_workspace(self.backend, &mut tx, workspace_id).await?;
        let Some(member) = member_in(&mut tx, workspace_id, user_id).await? else {
            return Ok(MemberChange::NotFound);
        };
        if member.role == role {
            return Ok(MemberChange::Done(member));
        }
        if member.role == Role::Owner && owners_in(&mut tx, workspace_id).await? <= 1 {
            return Ok(MemberChange::LastOwner);
        }
        sqlx::query("UPDATE memberships SET role = $1 WHERE workspace_id = $2 AND user_id = $3")
            .bind(role.as_str())
            .bind(workspace_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        let details = json!({ "email": member.user.email, "old": member.role.as_str(), "new": role.as_str() });
        append(
            self.backend,
            &mut tx,
            ctx,
            member_event(workspace_id, "member.role_changed", &member.user, details),
            now,
        )
        .await?;
        self.commit(tx).await?;
        Ok(MemberChange::Done(Member { role, ..member }))
    }

    /// Removes a member, ending their sessions in that workspace at once.
    /// The last owner cannot be removed.
    #[tracing::instrument(skip(self, ctx))]
    pub async fn remove_member(
        &self,
        workspace_id: &str,
        user_id: &str,
        ctx: &AuditContext,
        now: DateTime<Utc>,
    ) -> Result<MemberChange> {
        let mut tx = self.begin_write().await?;
        lock_workspace(self.backend, &mut tx, workspace_id).await?;
        let Some(member) = member_in(&mut tx, workspace_id, user_id).await? else {
            return Ok(MemberChange::NotFound);
        };
        if member.role == Role::Owner && owners_in(&mut tx, workspace_id).await? <= 1 {
            return Ok(MemberChange::LastOwner);
        }
        sqlx::query("DELETE FROM memberships WHERE workspace_id = $1 AND user_id = $2")
            .bind(workspace_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM sessions WHERE workspace_id = $1 AND user_id = $2")
            .bind(workspace_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        let details = json!({ "email": member.user.email, "role": member.role.as_str() });
        append(
            self.backend,
            &mut tx,
            ctx,
            member_event(workspace_id, "member.removed", &member.user, details),
            now,
        )
        .await?;
        self.commit(tx).await?;
        Ok(MemberChange::Done(member))
    }

    /// Stores a one-time link. Recorded as `setup_link.created` or
    /// `member.invited`.
    #[tracing::instrument(skip(self, link, ctx), fields(workspace = %link.workspace_id))]
    pub async fn create_link(
        &self,
        link: NewLink<'_>,
        ctx: &AuditContext,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO user_links (token_hash, purpose, workspace_id, email, role, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&link.token_hash.as_bytes()[..])
        .bind(link.purpose.as_str())
        .bind(link.workspace_id)
        .bind(link.email)
        .bind(link.role.as_str())
        .bind(to_ms(now))
        .bind(to_ms(link.expires_at))
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from_sqlx)?;
        let (action, details) = match link.purpose {
            LinkPurpose::Setup => (
                "setup_link.created",
                json!({ "role": link.role.as_str(), "expires_at": link.expires_at }),
            ),
            LinkPurpose::Invite => (
                "member.invited",
                json!({ "email": link.email, "role": link.role.as_str(), "expires_at": link.expires_at }),
            ),
        };
        let event = NewEvent {
            workspace_id: link.workspace_id.to_owned(),
            mode: None,
            action,
            target: None,
            details,
        };
        append(self.backend, &mut tx, ctx, event, now).await?;
        self.commit(tx).await?;
        Ok(())
    }

    /// The link whose token hashes to `token_hash`, if it is still usable.
    pub async fn usable_link(
        &self,
        token_hash: &SecretHash,
        now: DateTime<Utc>,
    ) -> Result<Option<UserLink>> {
        let row = sqlx::query(
            "SELECT purpose, workspace_id, email, role, expires_at FROM user_links \
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
        )
        .bind(&token_hash.as_bytes()[..])
        .bind(to_ms(now))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(link_from_row).transpose()
    }

    /// Uses a one-time link: creates the user it is for (with `email`
    /// unless the link names one) and makes them a member, in one
    /// transaction. `None` when the link is unknown, used or expired. An
    /// email that already has an account is a [`StoreError::Conflict`].
    #[tracing::instrument(skip(self, token_hash, password_hash, ctx))]
    pub async fn redeem_link(
        &self,
        token_hash: &SecretHash,
        email: &str,
        name: &str,
        password_hash: &str,
        ctx: &AuditContext,
        now: DateTime<Utc>,
    ) -> Result<Option<(User, UserLink)>> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(&format!(
            "SELECT purpose, workspace_id, email, role, expires_at FROM user_links \
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2{}",
            self.backend.for_update()
        ))
        .bind(&token_hash.as_bytes()[..])
        .bind(to_ms(now))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let link = link_from_row(&row)?;
        let used = sqlx::query(
            "UPDATE user_links SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL",
        )
        .bind(to_ms(now))
        .bind(&token_hash.as_bytes()[..])
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if used != 1 {
            return Ok(None);
        }
        let email = link.email.as_deref().unwrap_or(email);
        let user = insert_user(&mut tx, email, name, password_hash, now).await?;
        insert_membership(&mut tx, &link.workspace_id, &user.id, link.role, now).await?;
        // The new user acts on their own behalf.
        let ctx = AuditContext {
            actor: user.actor(),
            ..ctx.clone()
        };
        let details = json!({
            "email": user.email,
            "role": link.role.as_str(),
            "via": link.purpose.as_str(),
        });
        append(
            self.backend,
            &mut tx,
            &ctx,
            member_event(&link.workspace_id, "member.added", &user, details),
            now,
        )
        .await?;
        self.commit(tx).await?;
        Ok(Some((user, link)))
    }

    /// Stores a new session and records the login in its workspace's chain.
    #[tracing::instrument(skip(self, s, ctx), fields(user = %s.user.id))]
    pub async fn create_session(
        &self,
        s: NewSession<'_>,
        ctx: &AuditContext,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
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
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from_sqlx)?;
        append(
            self.backend,
            &mut tx,
            ctx,
            member_event(
                s.workspace_id,
                "user.login",
                s.user,
                json!({ "email": s.user.email }),
            ),
            now,
        )
        .await?;
        self.commit(tx).await?;
        Ok(())
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
            workspace_id: row.try_get("workspace_id")?,
            mode: mode_from(&row.try_get::<String, _>("mode")?)?,
            created_at: from_ms(row.try_get("session_created_at")?),
            last_seen_at: from_ms(row.try_get("last_seen_at")?),
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
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, s.workspace_id FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.id_hash = $1"
        ))
        .bind(&id_hash.as_bytes()[..])
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(false) };
        let user = user_from_row(&row)?;
        let workspace_id: String = row.try_get("workspace_id")?;
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(&id_hash.as_bytes()[..])
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM reveals WHERE session_hash = $1")
            .bind(&id_hash.as_bytes()[..])
            .execute(&mut *tx)
            .await?;
        append(
            self.backend,
            &mut tx,
            ctx,
            member_event(
                &workspace_id,
                "user.logout",
                &user,
                json!({ "email": user.email }),
            ),
            now,
        )
        .await?;
        self.commit(tx).await?;
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
        .await
        .map_err(StoreError::from_sqlx)?;
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
        if from_ms(row.try_get("expires_at")?) <= now {
            return Ok(None);
        }
        Ok(Some(row.try_get("sealed")?))
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
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM tokens WHERE parent_id = $1 AND workspace_id = $2 AND mode = $3 \
             ORDER BY id DESC LIMIT $4",
        )
        .bind(parent_id)
        .bind(workspace_id)
        .bind(mode.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(t) = self.token(workspace_id, mode, &id).await? {
                out.push(t);
            }
        }
        Ok(out)
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
}

fn member_from_row(row: &AnyRow) -> Result<Member> {
    Ok(Member {
        user: user_from_row(row)?,
        role: row.try_get::<String, _>("role")?.parse()?,
        added_at: from_ms(row.try_get("added_at")?),
    })
}

fn link_from_row(row: &AnyRow) -> Result<UserLink> {
    let purpose = match row.try_get::<String, _>("purpose")?.as_str() {
        "setup" => LinkPurpose::Setup,
        "invite" => LinkPurpose::Invite,
        other => return Err(StoreError::Corrupt(format!("link purpose {other:?}"))),
    };
    Ok(UserLink {
        purpose,
        workspace_id: row.try_get("workspace_id")?,
        email: row.try_get("email")?,
        role: row.try_get::<String, _>("role")?.parse()?,
        expires_at: from_ms(row.try_get("expires_at")?),
    })
}

async fn member_in(
    tx: &mut Transaction<'static, Any>,
    workspace_id: &str,
    user_id: &str,
) -> Result<Option<Member>> {
    let row = sqlx::query(&format!(
        "SELECT {USER_COLUMNS}, m.role, m.created_at AS added_at FROM memberships m \
         JOIN users u ON u.id = m.user_id WHERE m.workspace_id = $1 AND m.user_id = $2"
    ))
    .bind(workspace_id)
    .bind(user_id)
    .fetch_optional(&mut **tx)
    .await?;
    row.as_ref().map(member_from_row).transpose()
}

async fn owners_in(tx: &mut Transaction<'static, Any>, workspace_id: &str) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM memberships WHERE workspace_id = $1 AND role = 'owner'",
    )
    .bind(workspace_id)
    .fetch_one(&mut **tx)
    .await?)
}
