//! Signing in to the dashboard, and the sessions that follow.
//!
//! A failed sign-in says the same thing, in the same time, whether the
//! account exists or not: an unknown email is checked against a dummy hash
//! of the same cost. Failures are counted per client address and per
//! submitted email (existing or not, so the count reveals nothing); past
//! the limit, further attempts are refused without checking the password
//! until the window ends. A session id is a random secret of which the
//! store keeps only the SHA-256.

use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use secrecy::SecretString;
use tooken_core::{Mode, SecretHash};
use tooken_store::{AuditContext, Membership, NewReveal, NewSession, Role, User, Workspace};

use crate::caller::{Caller, Principal, SignedIn};
use crate::failures::{Failure, FailureReason};
use crate::password::{verify_password, Params, MAX_PASSWORD_BYTES};
use crate::users::{new_secret, normalize_email};
use crate::windows::FailureWindows;
use crate::{Service, ServiceError, ServiceResult};

/// How signing in and sessions behave.
#[derive(Debug, Clone)]
pub struct SignInPolicy {
    /// argon2id cost for new password hashes. Checking always uses the
    /// cost recorded in the stored hash.
    pub password_params: Params,
    /// A session unused this long ends.
    pub session_idle: std::time::Duration,
    /// A session ends this long after sign-in, used or not.
    pub session_max: std::time::Duration,
    /// Failed sign-ins allowed per account, and per client address, within
    /// `window`, before further attempts are refused until it ends.
    pub failures_per_account: u32,
    pub failures_per_address: u32,
    pub window: std::time::Duration,
}

impl Default for SignInPolicy {
    fn default() -> Self {
        SignInPolicy {
            password_params: Params::default(),
            session_idle: std::time::Duration::from_secs(12 * 3600),
            session_max: std::time::Duration::from_secs(7 * 24 * 3600),
            failures_per_account: 5,
            failures_per_address: 20,
            window: std::time::Duration::from_secs(15 * 60),
        }
    }
}

impl SignInPolicy {
    fn duration(d: std::time::Duration, otherwise: Duration) -> Duration {
        Duration::from_std(d).unwrap_or(otherwise)
    }

    fn idle(&self) -> Duration {
        Self::duration(self.session_idle, Duration::hours(12))
    }

    fn max(&self) -> Duration {
        Self::duration(self.session_max, Duration::days(7))
    }

    fn window(&self) -> Duration {
        Self::duration(self.window, Duration::minutes(15))
    }
}

/// Why a sign-in was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInRefused {
    /// Too many failures for the address or the account: try again in
    /// this many seconds.
    Throttled { retry_after_seconds: i64 },
    /// Wrong email or password (which, is not told).
    Wrong,
    /// The password is right, but the account belongs to no workspace.
    NoWorkspace,
}

/// A session's `last_seen_at` is written at most this often.
const TOUCH_EVERY_SECONDS: i64 = 60;

/// What signing in keeps in memory.
#[derive(Debug)]
pub(crate) struct SignIn {
    policy: SignInPolicy,
    by_address: FailureWindows<IpAddr>,
    by_account: FailureWindows<String>,
    /// A hash of no one's password, checked when the account does not
    /// exist, so that a wrong email takes as long as a wrong password.
    dummy_hash: tokio::sync::OnceCell<String>,
}

impl Default for SignIn {
    fn default() -> Self {
        SignIn::new(SignInPolicy::default())
    }
}

impl SignIn {
    pub(crate) fn new(policy: SignInPolicy) -> SignIn {
        SignIn {
            by_address: FailureWindows::new(policy.window()),
            by_account: FailureWindows::new(policy.window()),
            policy,
            dummy_hash: tokio::sync::OnceCell::new(),
        }
    }

    pub(crate) fn policy(&self) -> &SignInPolicy {
        &self.policy
    }

    /// `Err(seconds)` when the address or the account is refused for now.
    fn check(&self, ip: Option<IpAddr>, account: &str, now: DateTime<Utc>) -> Result<(), i64> {
        let p = &self.policy;
        let by_address = ip.and_then(|ip| {
            self.by_address
                .blocked_for(&ip, p.failures_per_address, now)
        });
        let by_account =
            self.by_account
                .blocked_for(&account.to_owned(), p.failures_per_account, now);
        match by_address.max(by_account) {
            Some(left) => Err(left.num_seconds().max(1)),
            None => Ok(()),
        }
    }

    fn failure(&self, ip: Option<IpAddr>, account: &str, now: DateTime<Utc>) {
        if let Some(ip) = ip {
            self.by_address.count(ip, now);
        }
        self.by_account.count(account.to_owned(), now);
    }

    fn success(&self, account: &str) {
        self.by_account.forget(&account.to_owned());
    }

    /// The hash checked when an account does not exist: made once, with
    /// the configured cost, from a random password no one knows.
    async fn dummy_hash(&self) -> ServiceResult<&str> {
        self.dummy_hash
            .get_or_try_init(|| {
                crate::password::hash_password(
                    SecretString::from(new_secret()),
                    self.policy.password_params.clone(),
                )
            })
            .await
            .map(String::as_str)
            .map_err(ServiceError::internal)
    }
}

/// A live session, resumed: who, and what the dashboard shows.
#[derive(Debug, Clone)]
pub struct SessionState {
    pub id_hash: SecretHash,
    pub user: User,
    pub workspace: Workspace,
    pub role: Role,
    pub mode: Mode,
    /// Every workspace the user belongs to, by name.
    pub memberships: Vec<Membership>,
}

impl SessionState {
    /// The session's user as the caller of an operation, acting with
    /// `audit`.
    pub fn caller(&self, audit: AuditContext) -> Caller {
        Caller::new(
            Principal::User(std::sync::Arc::new(SignedIn {
                user: self.user.clone(),
                workspace_id: self.workspace.id.clone(),
                mode: self.mode,
                role: self.role,
            })),
            audit,
        )
    }
}

impl Service {
    /// Checks a sign-in from `ip`: the account of `email` if `password` is
    /// its password, and the workspace to show first. Every refusal is
    /// recorded for the audit log, and counted towards throttling.
    pub async fn sign_in(
        &self,
        email: &str,
        password: SecretString,
        ip: Option<IpAddr>,
    ) -> ServiceResult<Result<(User, String), SignInRefused>> {
        use secrecy::ExposeSecret;
        let now = self.now();
        let email = normalize_email(email);
        let sign_in = &self.0.sign_in;
        let record = |workspace_id: Option<String>, reason| {
            self.failures().record(
                Failure {
                    workspace_id,
                    mode: None,
                    client_addr: ip.map(|ip| ip.to_string()),
                    reason,
                    hint: None,
                },
                now,
            );
        };
        if let Err(seconds) = sign_in.check(ip, &email, now) {
            record(None, FailureReason::DashboardLoginThrottled);
            return Ok(Err(SignInRefused::Throttled {
                retry_after_seconds: seconds,
            }));
        }
        // Always made before the lookup, so the first attempt costs the same
        // whether or not the account exists.
        let dummy = sign_in.dummy_hash().await?.to_owned();
        let found = if password.expose_secret().len() > MAX_PASSWORD_BYTES {
            None
        } else {
            self.store().user_with_password(&email).await?
        };
        let (user, hash) = match found {
            Some((user, hash)) => (Some(user), hash),
            None => (None, dummy),
        };
        let checked = verify_password(password, hash)
            .await
            .map_err(ServiceError::internal)?;
        if checked.is_some() {
            self.0.observer.password_check();
        }
        let user = match user {
            Some(user) if checked == Some(true) => user,
            other => {
                sign_in.failure(ip, &email, now);
                // The same lookup whether or not the account exists (no one's
                // id is empty), so a failure takes the same time either way.
                let user_id = other.as_ref().map_or("", |u| u.id.as_str());
                let workspace = self
                    .store()
                    .memberships(user_id)
                    .await?
                    .first()
                    .map(|m| m.workspace_id.clone());
                record(workspace, FailureReason::DashboardLogin);
                return Ok(Err(SignInRefused::Wrong));
            }
        };
        sign_in.success(&email);
        let Some(membership) = self.store().memberships(&user.id).await?.into_iter().next() else {
            return Ok(Err(SignInRefused::NoWorkspace));
        };
        self.forget_stale_sessions(now).await;
        Ok(Ok((user, membership.workspace_id)))
    }

    /// The hash an unknown account's password is checked against (made
    /// once, with the configured cost, from a password no one knows).
    pub async fn dummy_password_hash(&self) -> ServiceResult<String> {
        Ok(self.0.sign_in.dummy_hash().await?.to_owned())
    }

    /// Sessions past their time are deleted now and then (at each sign-in).
    async fn forget_stale_sessions(&self, now: DateTime<Utc>) {
        let p = self.sign_in_policy();
        if let Err(e) = self
            .store()
            .delete_stale_sessions(now - p.idle(), now - p.max(), now)
            .await
        {
            tracing::warn!(error = %e, "could not delete stale sessions");
        }
    }

    /// Starts a session for `user` showing `workspace_id`'s live data,
    /// recording the login; returns the session id (the cookie's value,
    /// never stored).
    pub async fn start_session(
        &self,
        user: &User,
        workspace_id: &str,
        audit: &AuditContext,
    ) -> ServiceResult<String> {
        let session_id = new_secret();
        self.store()
            .create_session(
                NewSession {
                    id_hash: SecretHash::of(&session_id),
                    user,
                    workspace_id,
                    mode: Mode::Live,
                    client_addr: audit.client_addr.as_deref(),
                    user_agent: audit.user_agent.as_deref(),
                },
                audit,
                self.now(),
            )
            .await?;
        Ok(session_id)
    }

    /// The session of `session_id`, if it is still live: ended when idle
    /// or old past the policy, or when its user belongs to no workspace; a
    /// session whose workspace its user was removed from shows another.
    pub async fn resume_session(&self, session_id: &str) -> ServiceResult<Option<SessionState>> {
        let id_hash = SecretHash::of(session_id);
        let Some(record) = self.store().session(&id_hash).await? else {
            return Ok(None);
        };
        let now = self.now();
        let policy = self.sign_in_policy();
        if now - record.last_seen_at > policy.idle() || now - record.created_at > policy.max() {
            self.store().forget_session(&id_hash).await?;
            return Ok(None);
        }
        let memberships = self.store().memberships(&record.user.id).await?;
        let membership = match memberships
            .iter()
            .find(|m| m.workspace_id == record.workspace_id)
            .or(memberships.first())
        {
            Some(m) => m.clone(),
            None => {
                self.store().forget_session(&id_hash).await?;
                return Ok(None);
            }
        };
        if membership.workspace_id != record.workspace_id {
            self.store()
                .switch_session(&id_hash, &membership.workspace_id, record.mode)
                .await?;
        }
        let workspace = self.workspace_by_id(&membership.workspace_id).await?;
        if (now - record.last_seen_at).num_seconds() >= TOUCH_EVERY_SECONDS {
            self.store().touch_session(&id_hash, now).await?;
        }
        Ok(Some(SessionState {
            id_hash,
            user: record.user,
            workspace,
            role: membership.role,
            mode: record.mode,
            memberships,
        }))
    }

    /// Shows another of the user's workspaces (`None`: the same), in
    /// `mode`.
    pub async fn switch_session(
        &self,
        session: &SessionState,
        workspace_id: Option<&str>,
        mode: Mode,
    ) -> ServiceResult<()> {
        let workspace_id = workspace_id.unwrap_or(&session.workspace.id);
        if !session
            .memberships
            .iter()
            .any(|m| m.workspace_id == workspace_id)
        {
            return Err(ServiceError::forbidden(
                "You are not a member of that workspace.",
            ));
        }
        Ok(self
            .store()
            .switch_session(&session.id_hash, workspace_id, mode)
            .await?)
    }

    /// Ends a session (sign-out), recording it.
    pub async fn end_session(
        &self,
        session: &SessionState,
        audit: &AuditContext,
    ) -> ServiceResult<()> {
        self.store()
            .end_session(&session.id_hash, audit, self.now())
            .await?;
        Ok(())
    }

    /// Keeps a sealed secret of `session`'s, for `target_kind`
    /// `target_id`'s page to show once, until `expires_at`; `id_hash`
    /// names it.
    pub async fn keep_reveal(
        &self,
        session: &SessionState,
        id_hash: SecretHash,
        target: (&str, &str),
        sealed: &[u8],
        expires_at: DateTime<Utc>,
    ) -> ServiceResult<()> {
        Ok(self
            .store()
            .put_reveal(NewReveal {
                id_hash,
                session_hash: session.id_hash,
                target_kind: target.0,
                target_id: target.1,
                sealed,
                expires_at,
            })
            .await?)
    }

    /// Takes (reads and deletes) what [`Service::keep_reveal`] kept, if it
    /// is still there and in time: a second take finds nothing.
    pub async fn take_reveal(
        &self,
        session: &SessionState,
        id_hash: &SecretHash,
        target: (&str, &str),
    ) -> ServiceResult<Option<Vec<u8>>> {
        Ok(self
            .store()
            .take_reveal(id_hash, &session.id_hash, target.0, target.1, self.now())
            .await?)
    }
}
