//! The dashboard's people: accounts (made by the admin CLI, or by opening
//! a one-time link), and who is a member of which workspace as what. A
//! workspace always keeps an owner.

use chrono::Duration;
use secrecy::SecretString;
use tooken_core::audit::hex;
use tooken_core::credential::random_bytes;
use tooken_core::SecretHash;
use tooken_store::{
    AuditContext, LinkPurpose, Member, MemberChange, NewLink, NewUser, Role, StoreError, User,
    UserLink,
};

use crate::caller::{Caller, Need};
use crate::error::{NotFound, Thing};
use crate::password::{check_new_password, hash_password};
use crate::{Service, ServiceError, ServiceResult};

/// How long a setup link or invitation works.
pub const LINK_LIFETIME: Duration = Duration::hours(24);
/// Longest display name.
pub const MAX_DISPLAY_NAME_CHARS: usize = 128;

/// A fresh random secret: 32 bytes from the OS CSPRNG, in hex (session
/// ids, link tokens).
pub fn new_secret() -> String {
    hex(&random_bytes::<32>())
}

/// Emails are compared lowercased and trimmed.
pub fn normalize_email(raw: &str) -> String {
    raw.trim().to_lowercase()
}

/// Why an email address is refused, in words for a form.
pub fn check_email(email: &str) -> Result<(), String> {
    let valid = (3..=254).contains(&email.len())
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(email.split_once('@'), Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
    if valid {
        Ok(())
    } else {
        Err("Enter an email address such as ana@example.com.".into())
    }
}

/// Why a display name is refused.
pub fn check_display_name(name: &str) -> Result<(), String> {
    let n = name.chars().count();
    if n == 0 {
        Err("Enter your name.".into())
    } else if n > MAX_DISPLAY_NAME_CHARS || name.chars().any(char::is_control) {
        Err(format!(
            "Use at most {MAX_DISPLAY_NAME_CHARS} characters, without control characters."
        ))
    } else {
        Ok(())
    }
}

/// An account to create: everything checked by [`NewAccount::problems`].
#[derive(Debug)]
pub struct NewAccount {
    /// Normalized (see [`normalize_email`]).
    pub email: String,
    /// Trimmed.
    pub name: String,
    pub password: SecretString,
    /// The password typed again (the admin CLI, reading one line from a
    /// pipe, repeats it).
    pub confirm: SecretString,
}

impl NewAccount {
    /// What is wrong, field by field (`email`, `name`, `password`), in
    /// words for a form; empty when nothing is.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        use secrecy::ExposeSecret;
        let checks = [
            ("email", check_email(&self.email)),
            ("name", check_display_name(&self.name)),
            (
                "password",
                check_new_password(
                    self.password.expose_secret(),
                    self.confirm.expose_secret(),
                    &self.email,
                ),
            ),
        ];
        checks
            .into_iter()
            .filter_map(|(field, check)| check.err().map(|e| (field, e)))
            .collect()
    }

    fn check(&self) -> ServiceResult<()> {
        match self.problems().into_iter().next() {
            Some((field, message)) => Err(ServiceError::invalid(field, message)),
            None => Ok(()),
        }
    }
}

/// The outcome of adding someone to a workspace.
#[derive(Debug)]
pub enum Invited {
    /// They had an account: a member now.
    Added,
    /// They had none: a one-time link for them (its token, shown once).
    Link(String),
}

/// `user_id`, if it has the shape of a user id: the store's calls are
/// logged with their arguments, and what is in its place might be a
/// secret pasted there.
fn user_id(raw: &str) -> ServiceResult<&str> {
    if tooken_core::id::looks_like_id(raw) {
        Ok(raw)
    } else {
        Err(ServiceError::NotFound(NotFound::id(
            Thing::Member,
            raw,
            false,
        )))
    }
}

fn last_owner() -> ServiceError {
    ServiceError::conflict(
        "A workspace needs at least one owner: make someone else an owner first.",
    )
}

impl Service {
    /// The members of the caller's workspace, owners first.
    pub async fn members(&self, caller: &Caller) -> ServiceResult<Vec<Member>> {
        self.authorize(caller, Need::Console { change: false })?;
        let (workspace_id, _) = caller.place()?;
        Ok(self.store().members(workspace_id).await?)
    }

    /// One member of the caller's workspace.
    pub async fn member(&self, caller: &Caller, user_id_raw: &str) -> ServiceResult<Member> {
        self.authorize(caller, Need::Console { change: false })?;
        let (workspace_id, _) = caller.place()?;
        self.store()
            .member(workspace_id, user_id(user_id_raw)?)
            .await?
            .ok_or_else(|| ServiceError::NotFound(NotFound::id(Thing::Member, user_id_raw, true)))
    }

    /// Adds `email` to the caller's workspace as `role`: an existing
    /// account at once (one already a member is a conflict on `email`),
    /// anyone else by a one-time invitation link.
    pub async fn add_member(
        &self,
        caller: &Caller,
        email: &str,
        role: Role,
    ) -> ServiceResult<Invited> {
        self.authorize(caller, Need::Console { change: true })?;
        let (workspace_id, _) = caller.place()?;
        let email = normalize_email(email);
        check_email(&email).map_err(|e| ServiceError::invalid("email", e))?;
        let now = self.now();
        match self.store().user_by_email(&email).await? {
            Some(user) => {
                self.store()
                    .add_member(workspace_id, &user, role, &caller.audit, now)
                    .await?;
                Ok(Invited::Added)
            }
            None => {
                let link = self
                    .create_link(
                        caller,
                        LinkPurpose::Invite,
                        workspace_id,
                        Some(&email),
                        role,
                    )
                    .await?;
                Ok(Invited::Link(link))
            }
        }
    }

    /// Gives a member of the caller's workspace another role. The last
    /// owner stays an owner.
    pub async fn set_member_role(
        &self,
        caller: &Caller,
        user_id_raw: &str,
        role: Role,
    ) -> ServiceResult<Member> {
        self.authorize(caller, Need::Console { change: true })?;
        let (workspace_id, _) = caller.place()?;
        let id = user_id(user_id_raw)?;
        let change = self
            .store()
            .set_member_role(workspace_id, id, role, &caller.audit, self.now())
            .await?;
        member_changed(change, user_id_raw)
    }

    /// Removes a member from the caller's workspace, ending their sessions
    /// there at once. The last owner cannot be removed.
    pub async fn remove_member(&self, caller: &Caller, user_id_raw: &str) -> ServiceResult<Member> {
        self.authorize(caller, Need::Console { change: true })?;
        let (workspace_id, _) = caller.place()?;
        let id = user_id(user_id_raw)?;
        let change = self
            .store()
            .remove_member(workspace_id, id, &caller.audit, self.now())
            .await?;
        member_changed(change, user_id_raw)
    }

    /// Creates an account (the admin CLI): a member of the workspace named
    /// `workspace` with `role`. The password is asked for (`password`:
    /// the password and the same typed again) only once everything else
    /// is known to be fine.
    pub async fn create_user(
        &self,
        caller: &Caller,
        email: &str,
        name: &str,
        workspace: &str,
        role: Role,
        password: impl FnOnce() -> std::io::Result<(SecretString, SecretString)>,
    ) -> ServiceResult<User> {
        self.authorize(caller, Need::Console { change: true })?;
        let email = normalize_email(email);
        check_email(&email).map_err(|e| ServiceError::invalid("email", e))?;
        let name = name.trim();
        check_display_name(name).map_err(|e| ServiceError::invalid("name", e))?;
        let ws = self.workspace_named(caller, workspace).await?;
        if self.store().user_by_email(&email).await?.is_some() {
            return Err(ServiceError::Conflict {
                message: format!(
                    "a user with email {email} already exists: reset their password with \
                     `tooken admin users reset-password --email {email}`, or add them to \
                     {workspace:?} from the dashboard's Members page"
                ),
                field: Some("email".into()),
            });
        }
        let hash = self.new_password_hash(&email, password).await?;
        let new = NewUser {
            email: &email,
            name,
            password_hash: &hash,
        };
        Ok(self
            .store()
            .create_user(new, &ws.id, role, &caller.audit, self.now())
            .await?)
    }

    /// Sets the password of the account of `email` (asked for once the
    /// account is found) and ends all its sessions.
    pub async fn reset_password(
        &self,
        caller: &Caller,
        email: &str,
        password: impl FnOnce() -> std::io::Result<(SecretString, SecretString)>,
    ) -> ServiceResult<User> {
        self.authorize(caller, Need::Console { change: true })?;
        let email = normalize_email(email);
        let missing = || ServiceError::NotFound(NotFound::by(Thing::User, &email));
        if self.store().user_by_email(&email).await?.is_none() {
            return Err(missing());
        }
        let hash = self.new_password_hash(&email, password).await?;
        self.store()
            .set_password(&email, &hash, &caller.audit, self.now())
            .await?
            .ok_or_else(missing)
    }

    /// Asks for a new password (and its repetition), checks it, hashes it.
    async fn new_password_hash(
        &self,
        email: &str,
        password: impl FnOnce() -> std::io::Result<(SecretString, SecretString)>,
    ) -> ServiceResult<String> {
        use secrecy::ExposeSecret;
        let (password, confirm) = password().map_err(ServiceError::internal)?;
        check_new_password(password.expose_secret(), confirm.expose_secret(), email)
            .map_err(|e| ServiceError::invalid("password", e))?;
        self.hash_password(password).await
    }

    /// A password's argon2id hash, with the configured cost.
    pub(crate) async fn hash_password(&self, password: SecretString) -> ServiceResult<String> {
        hash_password(password, self.sign_in_policy().password_params.clone())
            .await
            .map_err(ServiceError::internal)
    }

    async fn create_link(
        &self,
        caller: &Caller,
        purpose: LinkPurpose,
        workspace_id: &str,
        email: Option<&str>,
        role: Role,
    ) -> ServiceResult<String> {
        let token = new_secret();
        let now = self.now();
        self.store()
            .create_link(
                NewLink {
                    token_hash: SecretHash::of(&token),
                    purpose,
                    workspace_id,
                    email,
                    role,
                    expires_at: now + LINK_LIFETIME,
                },
                &caller.audit,
                now,
            )
            .await?;
        Ok(token)
    }

    /// The first-run link: whoever opens it becomes an owner of
    /// `workspace_id`. Returns its token, shown once.
    pub async fn create_setup_link(
        &self,
        caller: &Caller,
        workspace_id: &str,
    ) -> ServiceResult<String> {
        self.authorize(caller, Need::Console { change: true })?;
        self.create_link(caller, LinkPurpose::Setup, workspace_id, None, Role::Owner)
            .await
    }

    /// The one-time link of `token` while it can be used, and the name of
    /// its workspace.
    pub async fn open_link(&self, token: &str) -> ServiceResult<(UserLink, String)> {
        let invalid = || ServiceError::NotFound(NotFound::id(Thing::Link, token, false));
        if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid());
        }
        let link = self
            .store()
            .usable_link(&SecretHash::of(token), self.now())
            .await?
            .ok_or_else(invalid)?;
        let workspace = self.workspace_by_id(&link.workspace_id).await?;
        Ok((link, workspace.name))
    }

    /// Uses the one-time link of `token`: creates the account it is for
    /// (with the link's email, if it names one) and makes it a member, in
    /// one transaction. A link used meanwhile is not found; an email that
    /// has an account is a conflict on `email`.
    pub async fn redeem_link(
        &self,
        token: &str,
        account: NewAccount,
        audit: &AuditContext,
    ) -> ServiceResult<(User, UserLink)> {
        account.check()?;
        let hash = self.hash_password(account.password).await?;
        let new = NewUser {
            email: &account.email,
            name: &account.name,
            password_hash: &hash,
        };
        match self
            .store()
            .redeem_link(&SecretHash::of(token), new, audit, self.now())
            .await
        {
            Ok(Some(redeemed)) => Ok(redeemed),
            Ok(None) => Err(ServiceError::NotFound(NotFound::id(
                Thing::Link,
                token,
                false,
            ))),
            Err(StoreError::Conflict(_)) => Err(ServiceError::Conflict {
                message: "An account with this email already exists. Sign in instead, or use \
                          another email."
                    .into(),
                field: Some("email".into()),
            }),
            Err(e) => Err(e.into()),
        }
    }
}

fn member_changed(change: MemberChange, raw: &str) -> ServiceResult<Member> {
    match change {
        MemberChange::Done(member) => Ok(member),
        MemberChange::NotFound => Err(ServiceError::NotFound(NotFound::id(
            Thing::Member,
            raw,
            true,
        ))),
        MemberChange::LastOwner => Err(last_owner()),
    }
}

impl Service {
    /// Has anyone an account yet? (Before the first owner set up the
    /// dashboard, its sign-in page says how.)
    pub async fn has_users(&self) -> ServiceResult<bool> {
        Ok(self.store().count_users().await? > 0)
    }
}
