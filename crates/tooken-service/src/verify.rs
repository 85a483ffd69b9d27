//! Verification for downstream services: the one judgement of a presented
//! token, which the API's verify and introspection endpoints (and every
//! later transport that verifies) share. A rule that decides whether a
//! token is good at verification belongs in [`Service::judge`].

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tooken_core::scope::{any_covers, parse_scopes, TOKENS_VERIFY};
use tooken_core::token::VerifyCode;
use tooken_core::{Credential, CredentialKind, Scope, Secret};
use tooken_store::{Acceptance, TokenMatch};

use crate::caller::{Caller, Need};
use crate::usage::Use;
use crate::{Service, ServiceResult};

/// The verdict on a presented token, for the caller's workspace and mode.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub code: VerifyCode,
    /// The token, whenever it exists in the caller's workspace and mode.
    /// Shared with the credential cache: judging copies nothing.
    pub token: Option<Arc<TokenMatch>>,
}

impl Verdict {
    pub(crate) fn bare(code: VerifyCode) -> Verdict {
        Verdict { code, token: None }
    }

    pub fn is_valid(&self) -> bool {
        self.code == VerifyCode::Valid
    }
}

impl Service {
    /// `POST /v1/tokens/verify`: is `token` good, with `scopes`, for the
    /// caller's workspace and mode? Needs `tokens:verify`.
    pub async fn verify(
        &self,
        caller: &Caller,
        token: &Secret,
        scopes: &[String],
    ) -> ServiceResult<Verdict> {
        self.authorize(caller, Need::Scope(TOKENS_VERIFY))?;
        let required = parse_scopes("scopes", scopes)?;
        let verdict = self.judge(caller, token, &required, self.now()).await?;
        self.0.observer.verification(verdict.code);
        Ok(verdict)
    }

    /// RFC 7662 introspection: the same judgement, without scopes. Needs
    /// `tokens:verify`.
    pub async fn introspect(&self, caller: &Caller, token: &Secret) -> ServiceResult<Verdict> {
        self.authorize(caller, Need::Scope(TOKENS_VERIFY))?;
        self.judge(caller, token, &[], self.now()).await
    }

    /// Judges `candidate` as a token of the caller's workspace and mode at
    /// `now`, trusting the cache under the caller's marker. Tokens
    /// elsewhere, API keys, and secrets rotated away past their grace
    /// period are all simply not found. A valid answer counts as a use.
    pub async fn judge(
        &self,
        caller: &Caller,
        candidate: &str,
        required: &[Scope],
        now: DateTime<Utc>,
    ) -> ServiceResult<Verdict> {
        let (workspace_id, mode) = caller.place()?;
        let Ok(credential) = Credential::parse(candidate) else {
            return Ok(Verdict::bare(VerifyCode::Malformed));
        };
        let not_found = Verdict::bare(VerifyCode::NotFound);
        if credential.kind() != CredentialKind::Token || credential.mode() != mode {
            return Ok(not_found);
        }
        let Some(found) = self
            .credentials()
            .token_by_secret(caller.marker, &credential.hash(), now)
            .await?
        else {
            return Ok(not_found);
        };
        let token = &found.token;
        if token.workspace_id != workspace_id || token.mode != mode {
            return Ok(not_found);
        }
        let code = match found.acceptance_at(now) {
            Acceptance::RotatedAway => return Ok(not_found),
            Acceptance::Revoked => VerifyCode::Revoked,
            Acceptance::Expired => VerifyCode::Expired,
            Acceptance::Accepted if required.iter().all(|r| any_covers(&token.scopes, r)) => {
                VerifyCode::Valid
            }
            Acceptance::Accepted => VerifyCode::InsufficientScope,
        };
        if code == VerifyCode::Valid {
            self.usage().record_token(&token.id, now, Use::Verification);
        }
        Ok(Verdict {
            code,
            token: Some(found),
        })
    }
}
