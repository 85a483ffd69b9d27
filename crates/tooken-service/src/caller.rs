//! Who acts, and what they may do. Every operation names what it needs
//! ([`Need`]) and asks [`Service::authorize`] first, so a rule about who
//! may do what is written here once, for every transport.

use std::sync::Arc;

use tooken_core::audit::Actor;
use tooken_core::scope::{any_covers, TOKENS_WRITE};
use tooken_core::{Mode, Scope};
use tooken_store::{ApiKey, AuditContext, Role, TokenRecord, User};

use crate::failures::{Failure, FailureReason};
use crate::{Service, ServiceError, ServiceResult};

/// Who is acting.
///
/// API keys and tokens share their record with the credential cache:
/// authenticating a request copies nothing.
#[derive(Debug, Clone)]
pub enum Principal {
    /// Full access to its workspace, in its mode.
    ApiKey(Arc<ApiKey>),
    /// Limited to its scopes, in its workspace and mode.
    Token(Arc<TokenRecord>),
    /// A person signed in to the dashboard, in the workspace and mode it
    /// shows.
    User(Arc<SignedIn>),
    /// The local admin CLI, working on the store: every workspace.
    Admin,
    /// Tooken itself: the first start, background work.
    System,
}

/// A dashboard user where their session is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub user: User,
    pub workspace_id: String,
    pub mode: Mode,
    pub role: Role,
}

impl Principal {
    /// The workspace and mode it acts in; `None` for the admin CLI and the
    /// system, which name a workspace with each operation.
    pub fn place(&self) -> Option<(&str, Mode)> {
        match self {
            Principal::ApiKey(k) => Some((&k.workspace_id, k.mode)),
            Principal::Token(t) => Some((&t.workspace_id, t.mode)),
            Principal::User(u) => Some((&u.workspace_id, u.mode)),
            Principal::Admin | Principal::System => None,
        }
    }

    /// `api_key`, `token`, `user`, `admin` or `system`.
    pub fn kind(&self) -> &'static str {
        match self {
            Principal::ApiKey(_) => "api_key",
            Principal::Token(_) => "token",
            Principal::User(_) => "user",
            Principal::Admin => "admin",
            Principal::System => "system",
        }
    }

    /// Its id (an API key's, a token's, a user's), if it has one.
    pub fn id(&self) -> Option<&str> {
        match self {
            Principal::ApiKey(k) => Some(&k.id),
            Principal::Token(t) => Some(&t.id),
            Principal::User(u) => Some(&u.user.id),
            Principal::Admin | Principal::System => None,
        }
    }

    /// As the actor of an audit event.
    pub fn actor(&self) -> Actor {
        match self {
            Principal::ApiKey(k) => credential_actor("api_key", &k.id, &k.hint),
            Principal::Token(t) => credential_actor("token", &t.id, &t.hint),
            Principal::User(u) => u.user.actor(),
            Principal::Admin => Actor::admin_cli(),
            Principal::System => Actor::system(),
        }
    }

    /// The token making the request, when a token makes it.
    pub fn token(&self) -> Option<&TokenRecord> {
        match self {
            Principal::Token(t) => Some(t),
            _ => None,
        }
    }
}

fn credential_actor(kind: &str, id: &str, hint: &str) -> Actor {
    Actor {
        kind: kind.to_owned(),
        id: Some(id.to_owned()),
        hint: Some(hint.to_owned()),
    }
}

/// The acting principal and the audit context of its request: what every
/// operation takes first.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    /// Recorded with every event the operation writes.
    pub audit: AuditContext,
    /// The store's change marker when the request began: its later
    /// credential lookups (verifying a token) trust the cache under it.
    pub marker: Option<u64>,
}

impl Caller {
    /// `principal`, acting with `audit` as its context.
    pub fn new(principal: Principal, audit: AuditContext) -> Caller {
        Caller {
            principal,
            audit,
            marker: None,
        }
    }

    /// The local admin CLI.
    pub fn admin() -> Caller {
        Caller::new(Principal::Admin, AuditContext::new(Actor::admin_cli()))
    }

    /// Tooken itself.
    pub fn system() -> Caller {
        Caller::new(Principal::System, AuditContext::new(Actor::system()))
    }

    /// The workspace and mode it acts in; an operation that works in the
    /// caller's place refuses the admin CLI and the system, which have
    /// none.
    pub(crate) fn place(&self) -> ServiceResult<(&str, Mode)> {
        self.principal
            .place()
            .ok_or_else(|| ServiceError::forbidden("this needs a workspace's credential"))
    }
}

/// What an operation needs of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    /// A built-in scope (API keys hold them all; dashboard members hold
    /// the reading ones, owners `tokens:write` too).
    Scope(&'static str),
    /// The workspace's policy: an API key or a dashboard member (an owner
    /// to change it); never a token.
    Settings { change: bool },
    /// What belongs to one mode of the workspace (its gateway route
    /// rules): an API key of that mode, or a member (an owner to change);
    /// never a token.
    ModeSettings { change: bool },
    /// What only the dashboard and the admin CLI manage (API keys,
    /// members): a member (an owner to change), the admin CLI, the system.
    Console { change: bool },
}

const OWNERS_ONLY: &str = "Only owners of this workspace can do this. You are a viewer.";

impl Service {
    /// Checks that `caller` may do what `need` says; a credential's
    /// refusal is recorded for the audit log (with the request's address
    /// and the credential's hint).
    pub(crate) fn authorize(&self, caller: &Caller, need: Need) -> ServiceResult<()> {
        let refusal = match (&caller.principal, need) {
            (Principal::Admin | Principal::System, _) => None,
            (
                Principal::ApiKey(_),
                Need::Scope(_) | Need::Settings { .. } | Need::ModeSettings { .. },
            ) => None,
            (Principal::ApiKey(_), Need::Console { .. }) => {
                return Err(ServiceError::forbidden(
                    "this is done in the dashboard or with tooken admin",
                ))
            }
            (Principal::Token(t), Need::Scope(scope)) => {
                let wanted = Scope::parse(scope).map_err(ServiceError::internal)?;
                (!any_covers(&t.scopes, &wanted)).then(|| {
                    (
                        ServiceError::missing_scope(scope),
                        FailureReason::InsufficientScope,
                    )
                })
            }
            (
                Principal::Token(_),
                Need::Settings { .. } | Need::ModeSettings { .. } | Need::Console { .. },
            ) => Some((
                ServiceError::forbidden("only an API key may do this"),
                FailureReason::ApiKeyRequired,
            )),
            (Principal::User(u), need) => {
                let change = match need {
                    Need::Scope(scope) => scope == TOKENS_WRITE,
                    Need::Settings { change }
                    | Need::ModeSettings { change }
                    | Need::Console { change } => change,
                };
                if change && u.role != Role::Owner {
                    return Err(ServiceError::forbidden(OWNERS_ONLY));
                }
                None
            }
        };
        let Some((error, reason)) = refusal else {
            return Ok(());
        };
        if let Some((workspace_id, mode)) = caller.principal.place() {
            self.failures().record(
                Failure {
                    workspace_id: Some(workspace_id.to_owned()),
                    mode: Some(mode),
                    client_addr: caller.audit.client_addr.clone(),
                    reason,
                    hint: caller.principal.actor().hint,
                },
                self.now(),
            );
        }
        Err(error)
    }
}
