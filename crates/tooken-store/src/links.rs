//! One-time links: the first-run setup link and invitations. A link's
//! token is a high-entropy secret: only its SHA-256 is stored. Using one
//! creates the account and its membership in one transaction.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde_json::json;
use tooken_core::SecretHash;

use crate::audit::{AuditContext, NewEvent};
use crate::memberships::{insert_membership, Role};
use crate::row::{parsed, to_ms, Columns};
use crate::users::{insert_user, user_event, NewUser, User};
use crate::{Result, Store};

/// What a one-time link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    /// First run: whoever opens it sets up the first owner.
    Setup,
    /// An owner invited someone by email.
    Invite,
}

impl LinkPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkPurpose::Setup => "setup",
            LinkPurpose::Invite => "invite",
        }
    }
}

impl FromStr for LinkPurpose {
    type Err = ();
    fn from_str(s: &str) -> Result<LinkPurpose, ()> {
        match s {
            "setup" => Ok(LinkPurpose::Setup),
            "invite" => Ok(LinkPurpose::Invite),
            _ => Err(()),
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

fn link_from_row(row: &(impl Columns + ?Sized)) -> Result<UserLink> {
    Ok(UserLink {
        purpose: parsed(row, "purpose")?,
        workspace_id: row.text("workspace_id")?,
        email: row.opt_text("email")?,
        role: parsed(row, "role")?,
        expires_at: row.time("expires_at")?,
    })
}

const USABLE: &str = "SELECT purpose, workspace_id, email, role, expires_at FROM user_links \
     WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2";

impl Store {
    /// Stores a one-time link. Recorded as `setup_link.created` or
    /// `member.invited`.
    #[tracing::instrument(skip(self, link, ctx), fields(workspace = %link.workspace_id))]
    pub async fn create_link(
        &self,
        link: NewLink<'_>,
        ctx: &AuditContext,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut w = self.write().await?;
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
        .execute(w.conn())
        .await?;
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
        w.record(ctx, event, now);
        w.commit().await
    }

    /// The link whose token hashes to `token_hash`, if it is still usable.
    pub async fn usable_link(
        &self,
        token_hash: &SecretHash,
        now: DateTime<Utc>,
    ) -> Result<Option<UserLink>> {
        let row = sqlx::query(USABLE)
            .bind(&token_hash.as_bytes()[..])
            .bind(to_ms(now))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(link_from_row).transpose()
    }

    /// Uses a one-time link: creates the user it is for (with `new.email`
    /// unless the link names one) and makes them a member, in one
    /// transaction. `None` when the link is unknown, used or expired. An
    /// email that already has an account is a
    /// [`crate::Conflict::UserEmail`].
    #[tracing::instrument(skip(self, token_hash, new, ctx))]
    pub async fn redeem_link(
        &self,
        token_hash: &SecretHash,
        new: NewUser<'_>,
        ctx: &AuditContext,
        now: DateTime<Utc>,
    ) -> Result<Option<(User, UserLink)>> {
        let mut w = self.write().await?;
        let row = sqlx::query(&format!("{USABLE}{}", self.backend().for_update()))
            .bind(&token_hash.as_bytes()[..])
            .bind(to_ms(now))
            .fetch_optional(w.conn())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let link = link_from_row(&row)?;
        let used = sqlx::query(
            "UPDATE user_links SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL",
        )
        .bind(to_ms(now))
        .bind(&token_hash.as_bytes()[..])
        .execute(w.conn())
        .await?
        .rows_affected();
        if used != 1 {
            return Ok(None);
        }
        let new = NewUser {
            email: link.email.as_deref().unwrap_or(new.email),
            ..new
        };
        let user = insert_user(w.conn(), new, now).await?;
        insert_membership(w.conn(), &link.workspace_id, &user.id, link.role, now).await?;
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
        w.record(
            &ctx,
            user_event(&link.workspace_id, "member.added", &user, details),
            now,
        );
        w.commit().await?;
        Ok(Some((user, link)))
    }
}
