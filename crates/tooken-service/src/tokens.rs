//! Tokens: issue, list, read, change, rotate, revoke. Each operation
//! authorizes first, then parses what the client sent, then applies the
//! workspace policy and, when a token acts, attenuation: a token can only
//! hand out what it has, and manage only what was created through it.

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use tooken_core::api::{CreateToken, TokenObject, TokenUsage, TokenWithSecret, UpdateToken};
use tooken_core::id::TokenId;
use tooken_core::scope::{any_covers, parse_scopes, TOKENS_READ, TOKENS_WRITE};
use tooken_core::text::{Description, Name, Reason};
use tooken_core::token::{self, TokenStatus};
use tooken_core::{Credential, Scope};
use tooken_store::{NewToken, TokenFilter, TokenPatch, TokenRecord};

use crate::caller::{Caller, Need, Principal};
use crate::error::{NotFound, Thing};
use crate::views::token_object;
use crate::{Service, ServiceError, ServiceResult};

/// Longest grace period of a rotation: a week.
pub const MAX_GRACE_SECONDS: i64 = 604_800;

/// A token to issue, as the client asked for it (parsed by the operation).
#[derive(Debug, Clone, Default)]
pub struct IssueToken {
    pub name: String,
    pub description: Option<String>,
    pub scopes: Vec<String>,
    /// Must be a JSON object.
    pub metadata: Option<Value>,
    /// Give this or `expires_in`, or neither (the workspace policy decides).
    pub expires_at: Option<DateTime<Utc>>,
    pub expires_in: Option<i64>,
}

impl From<CreateToken> for IssueToken {
    fn from(r: CreateToken) -> IssueToken {
        IssueToken {
            name: r.name,
            description: r.description,
            scopes: r.scopes,
            metadata: r.metadata,
            expires_at: r.expires_at,
            expires_in: r.expires_in,
        }
    }
}

/// Changes to a token: `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct TokenChanges {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub metadata: Option<Option<Value>>,
    pub scopes: Option<Vec<String>>,
    pub expires_at: Option<Option<DateTime<Utc>>>,
}

impl From<UpdateToken> for TokenChanges {
    fn from(r: UpdateToken) -> TokenChanges {
        TokenChanges {
            name: r.name,
            description: r.description,
            metadata: r.metadata,
            scopes: r.scopes,
            expires_at: r.expires_at,
        }
    }
}

/// Which tokens to list, as the client asked (every value unparsed).
#[derive(Debug, Clone, Default)]
pub struct TokenQuery {
    /// 1–100, default 20.
    pub limit: Option<String>,
    /// A token id from a previous page.
    pub starting_after: Option<String>,
    /// `active`, `expired` or `revoked`.
    pub status: Option<String>,
    /// Only tokens carrying exactly this scope.
    pub scope: Option<String>,
    /// Only tokens whose name starts with this.
    pub name: Option<String>,
}

/// A page of tokens, and the moment their status was judged at.
#[derive(Debug, Clone)]
pub struct TokenPage {
    pub tokens: Vec<TokenRecord>,
    pub has_more: bool,
    pub at: DateTime<Utc>,
}

/// A revoked token, and how many tokens created through it went with it.
#[derive(Debug, Clone)]
pub struct Revoked {
    pub token: TokenObject,
    pub descendants: usize,
}

/// Parses a page size: 1–100, default 20.
pub(crate) fn parse_limit(raw: Option<&str>) -> ServiceResult<u32> {
    match raw {
        None => Ok(20),
        Some(s) => match s.parse::<u32>() {
            Ok(n @ 1..=100) => Ok(n),
            _ => Err(ServiceError::invalid(
                "limit",
                "limit must be an integer from 1 to 100",
            )),
        },
    }
}

/// Scopes asked for by a token creating or changing a token must be among
/// its own.
fn check_attenuation(parent: &TokenRecord, scopes: &[Scope]) -> ServiceResult<()> {
    if let Some(extra) = scopes.iter().find(|s| !any_covers(&parent.scopes, s)) {
        return Err(ServiceError::forbidden(format!(
            "scope {extra} exceeds the scopes of the token making this request"
        )));
    }
    Ok(())
}

/// A token created or changed by a token expires no later than it.
fn check_expiry_within_parent(
    parent: &TokenRecord,
    expires_at: Option<DateTime<Utc>>,
) -> ServiceResult<()> {
    match (parent.expires_at, expires_at) {
        (Some(limit), None) => Err(ServiceError::forbidden(format!(
            "expires_at: a token created by a token must expire no later than it does ({})",
            limit.to_rfc3339()
        ))),
        (Some(limit), Some(at)) if at > limit => Err(ServiceError::forbidden(format!(
            "expires_at exceeds the expiry of the token making this request ({})",
            limit.to_rfc3339()
        ))),
        _ => Ok(()),
    }
}

/// `grace_period_seconds` of a rotation: 0 to [`MAX_GRACE_SECONDS`].
fn check_grace_period(seconds: i64) -> ServiceResult<()> {
    if !(0..=MAX_GRACE_SECONDS).contains(&seconds) {
        return Err(ServiceError::invalid(
            "grace_period_seconds",
            format!("grace_period_seconds must be between 0 and {MAX_GRACE_SECONDS}"),
        ));
    }
    Ok(())
}

fn parse_metadata(value: Value) -> ServiceResult<serde_json::Map<String, Value>> {
    Ok(token::parse_metadata(value)?)
}

impl Service {
    /// Issues a token in the caller's workspace and mode: validation, the
    /// workspace policy on expiry, and, when a token makes the request,
    /// attenuation to its scopes and expiry (a child of an expiring token
    /// inherits its expiry). The secret is in the answer, once.
    pub async fn issue_token(
        &self,
        caller: &Caller,
        req: IssueToken,
    ) -> ServiceResult<TokenWithSecret> {
        self.authorize(caller, Need::Scope(TOKENS_WRITE))?;
        let (workspace_id, mode) = caller.place()?;
        let workspace = self.workspace_by_id(workspace_id).await?;
        let now = self.now();
        let name = Name::parse(&req.name)?;
        let description = req
            .description
            .as_deref()
            .map(Description::parse)
            .transpose()?;
        let scopes = parse_scopes("scopes", &req.scopes)?;
        let metadata = req.metadata.map(parse_metadata).transpose()?;
        let mut expires_at =
            token::expiry_for_new_token(now, req.expires_at, req.expires_in, &workspace.settings)?;
        let parent = caller.principal.token();
        if let Some(parent) = parent {
            check_attenuation(parent, &scopes)?;
            if expires_at.is_none() {
                expires_at = parent.expires_at;
            }
            check_expiry_within_parent(parent, expires_at)?;
        }
        let credential = Credential::generate(&workspace.settings.token_prefix, mode);
        let new = NewToken {
            workspace_id: workspace.id,
            mode,
            name,
            description,
            scopes,
            metadata,
            secret_hash: credential.hash(),
            hint: credential.hint(),
            created_by: caller.principal.id().unwrap_or_default().to_owned(),
            parent_id: parent.map(|p| p.id.clone()),
            expires_at,
        };
        let record = self.store().insert_token(new, &caller.audit, now).await?;
        Ok(TokenWithSecret {
            token: token_object(record, now),
            secret: (&credential).into(),
        })
    }

    /// Tokens of the caller's workspace and mode, newest first, a page at
    /// a time.
    pub async fn list_tokens(&self, caller: &Caller, q: TokenQuery) -> ServiceResult<TokenPage> {
        self.authorize(caller, Need::Scope(TOKENS_READ))?;
        let (workspace_id, mode) = caller.place()?;
        let now = self.now();
        let limit = parse_limit(q.limit.as_deref())?;
        let status = q
            .status
            .as_deref()
            .map(str::parse::<TokenStatus>)
            .transpose()
            .map_err(|e| ServiceError::invalid("status", e.to_string()))?;
        if let Some(scope) = &q.scope {
            Scope::parse(scope)
                .map_err(|e| ServiceError::invalid("scope", format!("scope: {e}")))?;
        }
        if let Some(cursor) = &q.starting_after {
            let known = match TokenId::parse(cursor) {
                Ok(id) => self.store().token(workspace_id, mode, &id).await?.is_some(),
                Err(_) => false,
            };
            if !known {
                return Err(ServiceError::invalid(
                    "starting_after",
                    "starting_after is not a token id from a previous page",
                ));
            }
        }
        let filter = TokenFilter {
            status,
            scope: q.scope,
            name_prefix: q.name,
            starting_after: q.starting_after,
            limit,
        };
        let (tokens, has_more) = self
            .store()
            .list_tokens(workspace_id, mode, &filter, now)
            .await?;
        Ok(TokenPage {
            tokens,
            has_more,
            at: now,
        })
    }

    /// One token of the caller's workspace and mode.
    pub async fn token(&self, caller: &Caller, id: &str) -> ServiceResult<TokenRecord> {
        self.authorize(caller, Need::Scope(TOKENS_READ))?;
        self.find_token(caller, id).await
    }

    /// A token of the caller's workspace and mode, or not found (naming
    /// `raw` only if it is a token id).
    async fn find_token(&self, caller: &Caller, raw: &str) -> ServiceResult<TokenRecord> {
        let (workspace_id, mode) = caller.place()?;
        let Ok(id) = TokenId::parse(raw) else {
            return Err(ServiceError::NotFound(NotFound::id(
                Thing::Token,
                raw,
                false,
            )));
        };
        self.store()
            .token(workspace_id, mode, &id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(NotFound::id(Thing::Token, raw, true)))
    }

    /// A token may manage only tokens created through it, at any depth.
    async fn require_manages(&self, caller: &Caller, target: &TokenRecord) -> ServiceResult<()> {
        if let Principal::Token(me) = &caller.principal {
            if me.id == target.id
                || !self
                    .store()
                    .is_descendant_or_self(&me.id, &target.id)
                    .await?
            {
                return Err(ServiceError::forbidden(
                    "a token may only manage tokens created through it",
                ));
            }
        }
        Ok(())
    }

    /// Changes a token's name, description, metadata, scopes or expiry.
    /// A revoked token cannot be changed.
    pub async fn update_token(
        &self,
        caller: &Caller,
        id: &str,
        changes: TokenChanges,
    ) -> ServiceResult<TokenObject> {
        self.authorize(caller, Need::Scope(TOKENS_WRITE))?;
        let now = self.now();
        let current = self.find_token(caller, id).await?;
        self.require_manages(caller, &current).await?;
        if current.revoked_at.is_some() {
            return Err(ServiceError::conflict(format!(
                "token {} is revoked and cannot be changed",
                current.id
            )));
        }
        let workspace = self.workspace_by_id(&current.workspace_id).await?;
        let mut patch = TokenPatch {
            name: changes.name.as_deref().map(Name::parse).transpose()?,
            description: match changes.description {
                Some(Some(d)) => Some(Some(Description::parse(&d)?)),
                other => other.map(|_| None),
            },
            metadata: match changes.metadata {
                Some(Some(m)) => Some(Some(parse_metadata(m)?)),
                other => other.map(|_| None),
            },
            scopes: changes
                .scopes
                .as_deref()
                .map(|s| parse_scopes("scopes", s))
                .transpose()?,
            expires_at: None,
        };
        if let Some(expires_at) = changes.expires_at {
            token::check_expiry(now, expires_at, &workspace.settings)?;
            patch.expires_at = Some(expires_at);
        }
        if let Some(me) = caller.principal.token() {
            if let Some(scopes) = &patch.scopes {
                check_attenuation(me, scopes)?;
            }
            if let Some(expires_at) = patch.expires_at {
                check_expiry_within_parent(me, expires_at)?;
            }
        }
        let updated = self
            .store()
            .update_token(
                &current.workspace_id,
                current.mode,
                &current.id,
                patch,
                &caller.audit,
                now,
            )
            .await?
            .ok_or_else(|| ServiceError::NotFound(NotFound::id(Thing::Token, id, true)))?;
        Ok(token_object(updated, now))
    }

    /// Gives an active token a new secret; the previous one keeps working
    /// for `grace_period_seconds` (0 to [`MAX_GRACE_SECONDS`]), then stops.
    /// The new secret keeps the token's own prefix. It is in the answer,
    /// once.
    pub async fn rotate_token(
        &self,
        caller: &Caller,
        id: &str,
        grace_period_seconds: i64,
    ) -> ServiceResult<TokenWithSecret> {
        self.authorize(caller, Need::Scope(TOKENS_WRITE))?;
        check_grace_period(grace_period_seconds)?;
        let current = self.find_token(caller, id).await?;
        self.require_manages(caller, &current).await?;
        let workspace = self.workspace_by_id(&current.workspace_id).await?;
        let now = self.now();
        let status = current.status_at(now);
        if status != TokenStatus::Active {
            return Err(ServiceError::conflict(format!(
                "token {} is {} and cannot be rotated",
                current.id,
                status.as_str()
            )));
        }
        // Rotating must not break whatever matches on the prefix.
        let prefix = current
            .hint
            .split('_')
            .next()
            .unwrap_or(&workspace.settings.token_prefix);
        let credential = Credential::generate(prefix, current.mode);
        let grace =
            (grace_period_seconds > 0).then(|| now + Duration::seconds(grace_period_seconds));
        let rotated = self
            .store()
            .rotate_token(
                &workspace.id,
                current.mode,
                &current.id,
                credential.hash(),
                credential.hint(),
                grace,
                &caller.audit,
                now,
            )
            .await?
            .ok_or_else(|| ServiceError::NotFound(NotFound::id(Thing::Token, id, true)))?;
        Ok(TokenWithSecret {
            token: token_object(rotated, now),
            secret: (&credential).into(),
        })
    }

    /// Revokes a token and every token created through it, at any depth.
    /// Idempotent. `reason` (at most 256 characters of text) is recorded.
    pub async fn revoke_token(
        &self,
        caller: &Caller,
        id: &str,
        reason: Option<&str>,
    ) -> ServiceResult<Revoked> {
        self.authorize(caller, Need::Scope(TOKENS_WRITE))?;
        let reason = reason.map(Reason::parse).transpose()?;
        let now = self.now();
        let current = self.find_token(caller, id).await?;
        self.require_manages(caller, &current).await?;
        let (token, revoked) = self
            .store()
            .revoke_token(
                &current.workspace_id,
                current.mode,
                &current.id,
                reason.as_ref(),
                &caller.audit,
                now,
            )
            .await?
            .ok_or_else(|| ServiceError::NotFound(NotFound::id(Thing::Token, id, true)))?;
        let descendants = revoked.iter().filter(|r| **r != token.id).count();
        Ok(Revoked {
            token: token_object(token, now),
            descendants,
        })
    }

    /// A token's use per day, the last `days` (1–90, default 30) days.
    pub async fn token_usage(
        &self,
        caller: &Caller,
        id: &str,
        days: Option<&str>,
    ) -> ServiceResult<TokenUsage> {
        self.authorize(caller, Need::Scope(TOKENS_READ))?;
        let days = match days {
            None => 30,
            Some(s) => match s.parse::<i64>() {
                Ok(n @ 1..=90) => n,
                _ => {
                    return Err(ServiceError::invalid(
                        "days",
                        "days must be an integer from 1 to 90",
                    ))
                }
            },
        };
        let token = self.find_token(caller, id).await?;
        let since = self.now().date_naive() - Duration::days(days - 1);
        let data = self.store().daily_usage(&token.id, since).await?;
        Ok(TokenUsage {
            token_id: token.id,
            last_used_at: token.last_used_at,
            data,
        })
    }

    /// The tokens created through token `id` (its direct children), newest
    /// first, at most `limit`.
    pub async fn token_children(
        &self,
        caller: &Caller,
        id: &str,
        limit: u32,
    ) -> ServiceResult<Vec<TokenRecord>> {
        self.authorize(caller, Need::Scope(TOKENS_READ))?;
        let (workspace_id, mode) = caller.place()?;
        Ok(self
            .store()
            .child_tokens(workspace_id, mode, id, limit)
            .await?)
    }

    /// How many tokens revoking token `id` would revoke with it.
    pub async fn tokens_revoked_with(&self, caller: &Caller, id: &str) -> ServiceResult<i64> {
        self.authorize(caller, Need::Scope(TOKENS_READ))?;
        let token = self.find_token(caller, id).await?;
        Ok(self.store().count_unrevoked_descendants(&token.id).await?)
    }
}
