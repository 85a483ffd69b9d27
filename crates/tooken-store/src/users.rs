//! The dashboard's people: the accounts that can sign in.
//!
//! Passwords arrive already hashed (argon2id, by the service layer). Every
//! change that matters to an owner (a user created, a password reset) is
//! written in one transaction with its audit event in the chain of each
//! workspace the user belongs to. Memberships, sessions, one-time links
//! and reveals each have a module of their own.

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::AnyConnection;
use tooken_core::audit::{Actor, Target};
use tooken_core::id::{new_id, IdKind};

use crate::audit::{AuditContext, NewEvent};
use crate::row::{to_ms, Columns, Key};
use crate::{Result, Store};

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

/// An account about to be created.
#[derive(Debug, Clone, Copy)]
pub struct NewUser<'a> {
    /// Already normalized (trimmed, lowercase).
    pub email: &'a str,
    pub name: &'a str,
    /// argon2id, as a PHC string.
    pub password_hash: &'a str,
}

/// The columns of a user, read by [`user_from_row`]; `u` is `users`.
pub(crate) const USER_COLUMNS: &str = "u.id, u.email, u.name, u.created_at";

pub(crate) fn user_from_row(row: &(impl Columns + ?Sized)) -> Result<User> {
    Ok(User {
        id: row.text("id")?,
        email: row.text("email")?,
        name: row.text("name")?,
        created_at: row.time("created_at")?,
    })
}

/// An event of a workspace's chain about `user`.
pub(crate) fn user_event(
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

fn new_user_id(now: DateTime<Utc>) -> String {
    // Same layout as every other id (time-ordered, 80 random bits), under
    // the `usr_` prefix.
    let id = new_id(IdKind::Event, now);
    format!("usr_{}", &id[IdKind::Event.prefix().len() + 1..])
}

/// Writes a new user (a taken email is [`crate::Conflict::UserEmail`]).
pub(crate) async fn insert_user(
    conn: &mut AnyConnection,
    new: NewUser<'_>,
    now: DateTime<Utc>,
) -> Result<User> {
    let user = User {
        id: new_user_id(now),
        email: new.email.to_owned(),
        name: new.name.to_owned(),
        created_at: now,
    };
    sqlx::query(
        "INSERT INTO users (id, email, name, password_hash, created_at, password_changed_at) \
         VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(&user.id)
    .bind(&user.email)
    .bind(&user.name)
    .bind(new.password_hash)
    .bind(to_ms(now))
    .execute(conn)
    .await?;
    Ok(user)
}

impl Store {
    /// How many dashboard users exist.
    pub async fn count_users(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM users")
            .fetch_one(&self.pool)
            .await?)
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.email = $1");
        self.lookup(&sql, Key::Text(email), |r| user_from_row(r))
            .await
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
            Some(row) => Ok(Some((user_from_row(&row)?, row.text("password_hash")?))),
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
        let mut w = self.write().await?;
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users u WHERE u.email = $1{}",
            self.backend().for_update()
        ))
        .bind(email)
        .fetch_optional(w.conn())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let user = user_from_row(&row)?;
        sqlx::query("UPDATE users SET password_hash = $1, password_changed_at = $2 WHERE id = $3")
            .bind(password_hash)
            .bind(to_ms(now))
            .bind(&user.id)
            .execute(w.conn())
            .await?;
        let ended = sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(&user.id)
            .execute(w.conn())
            .await?
            .rows_affected();
        let workspaces: Vec<String> =
            sqlx::query_scalar("SELECT workspace_id FROM memberships WHERE user_id = $1")
                .bind(&user.id)
                .fetch_all(w.conn())
                .await?;
        for ws in workspaces {
            let details = json!({ "email": user.email, "sessions_ended": ended });
            w.record(
                ctx,
                user_event(&ws, "user.password_reset", &user, details),
                now,
            );
        }
        w.commit().await?;
        Ok(Some(user))
    }
}
