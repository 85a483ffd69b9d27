//! Who belongs to which workspace, and as what: `owner` (everything,
//! including members) or `viewer` (sees everything, changes nothing). A
//! workspace always keeps at least one owner.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::AnyConnection;

use crate::audit::AuditContext;
use crate::row::{parsed, to_ms, Columns};
use crate::users::{insert_user, user_event, user_from_row, NewUser, User, USER_COLUMNS};
use crate::write::Write;
use crate::{Result, Store};

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

/// A role name that is neither `owner` nor `viewer`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a role is owner or viewer")]
pub struct UnknownRole;

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Role, UnknownRole> {
        match s {
            "owner" => Ok(Role::Owner),
            "viewer" => Ok(Role::Viewer),
            _ => Err(UnknownRole),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
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

const MEMBER_QUERY: &str = "FROM memberships m JOIN users u ON u.id = m.user_id";

fn member_from_row(row: &(impl Columns + ?Sized)) -> Result<Member> {
    Ok(Member {
        user: user_from_row(row)?,
        role: parsed(row, "role")?,
        added_at: row.time("added_at")?,
    })
}

/// Makes `user_id` a member (one already a member is
/// [`crate::Conflict::Membership`]).
pub(crate) async fn insert_membership(
    conn: &mut AnyConnection,
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
    .execute(conn)
    .await?;
    Ok(())
}

/// One member of a workspace, read on `conn` (the pool, or a transaction).
async fn member_on(
    conn: impl sqlx::Executor<'_, Database = sqlx::Any>,
    workspace_id: &str,
    user_id: &str,
) -> Result<Option<Member>> {
    let row = sqlx::query(&format!(
        "SELECT {USER_COLUMNS}, m.role, m.created_at AS added_at {MEMBER_QUERY} \
         WHERE m.workspace_id = $1 AND m.user_id = $2"
    ))
    .bind(workspace_id)
    .bind(user_id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(member_from_row).transpose()
}

/// The member a change of role (`Some(role)`) or a removal (`None`) is
/// about, or the answer without a change: not found, the same role
/// already, or the workspace's last owner (who stays). Holds the
/// workspace's lock from here to the commit, so two owners demoting each
/// other at once cannot leave it without one.
async fn member_to_change(
    w: &mut Write,
    workspace_id: &str,
    user_id: &str,
    role: Option<Role>,
) -> Result<Result<Member, MemberChange>> {
    w.lock_chain(workspace_id).await?;
    let Some(member) = member_on(w.conn(), workspace_id, user_id).await? else {
        return Ok(Err(MemberChange::NotFound));
    };
    if role == Some(member.role) {
        return Ok(Err(MemberChange::Done(member)));
    }
    if member.role == Role::Owner {
        let owners: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM memberships WHERE workspace_id = $1 AND role = 'owner'",
        )
        .bind(workspace_id)
        .fetch_one(w.conn())
        .await?;
        if owners <= 1 {
            return Ok(Err(MemberChange::LastOwner));
        }
    }
    Ok(Ok(member))
}

impl Store {
    /// Creates a user who is a member of `workspace_id` with `role` (the
    /// admin CLI).
    #[tracing::instrument(skip(self, new, ctx), fields(email = new.email))]
    pub async fn create_user(
        &self,
        new: NewUser<'_>,
        workspace_id: &str,
        role: Role,
        ctx: &AuditContext,
        now: DateTime<Utc>,
    ) -> Result<User> {
        let mut w = self.write().await?;
        let user = insert_user(w.conn(), new, now).await?;
        insert_membership(w.conn(), workspace_id, &user.id, role, now).await?;
        let details = json!({ "email": user.email, "role": role.as_str() });
        w.record(
            ctx,
            user_event(workspace_id, "member.added", &user, details),
            now,
        );
        w.commit().await?;
        Ok(user)
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
                    workspace_id: r.text("workspace_id")?,
                    workspace_name: r.text("name")?,
                    role: parsed(r, "role")?,
                })
            })
            .collect()
    }

    /// The members of a workspace, owners first, then by email.
    pub async fn members(&self, workspace_id: &str) -> Result<Vec<Member>> {
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, m.role, m.created_at AS added_at {MEMBER_QUERY} \
             WHERE m.workspace_id = $1 ORDER BY CASE m.role WHEN 'owner' THEN 0 ELSE 1 END, u.email"
        ))
        .bind(workspace_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(member_from_row).collect()
    }

    /// One member of a workspace.
    pub async fn member(&self, workspace_id: &str, user_id: &str) -> Result<Option<Member>> {
        member_on(&self.pool, workspace_id, user_id).await
    }

    /// Adds an existing user to a workspace. A user already a member is a
    /// [`crate::Conflict::Membership`].
    #[tracing::instrument(skip(self, ctx))]
    pub async fn add_member(
        &self,
        workspace_id: &str,
        user: &User,
        role: Role,
        ctx: &AuditContext,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut w = self.write().await?;
        insert_membership(w.conn(), workspace_id, &user.id, role, now).await?;
        let details = json!({ "email": user.email, "role": role.as_str() });
        w.record(
            ctx,
            user_event(workspace_id, "member.added", user, details),
            now,
        );
        w.commit().await
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
        let mut w = self.write().await?;
        let member = match member_to_change(&mut w, workspace_id, user_id, Some(role)).await? {
            Ok(member) => member,
            Err(answer) => return Ok(answer),
        };
        sqlx::query("UPDATE memberships SET role = $1 WHERE workspace_id = $2 AND user_id = $3")
            .bind(role.as_str())
            .bind(workspace_id)
            .bind(user_id)
            .execute(w.conn())
            .await?;
        let details = json!({ "email": member.user.email, "old": member.role.as_str(), "new": role.as_str() });
        w.record(
            ctx,
            user_event(workspace_id, "member.role_changed", &member.user, details),
            now,
        );
        w.commit().await?;
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
        let mut w = self.write().await?;
        let member = match member_to_change(&mut w, workspace_id, user_id, None).await? {
            Ok(member) => member,
            Err(answer) => return Ok(answer),
        };
        for table in ["memberships", "sessions"] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE workspace_id = $1 AND user_id = $2"
            ))
            .bind(workspace_id)
            .bind(user_id)
            .execute(w.conn())
            .await?;
        }
        let details = json!({ "email": member.user.email, "role": member.role.as_str() });
        w.record(
            ctx,
            user_event(workspace_id, "member.removed", &member.user, details),
            now,
        );
        w.commit().await?;
        Ok(MemberChange::Done(member))
    }
}
