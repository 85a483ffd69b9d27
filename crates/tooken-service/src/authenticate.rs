//! Authenticating a credential presented to the API: an API key (full
//! access to its workspace, in its mode) or a token (limited to its
//! scopes). Every refusal looks the same to the client; why it was refused
//! goes to the audit log only.

use chrono::{DateTime, Utc};
use tooken_core::{Credential, CredentialKind, Mode};
use tooken_store::Acceptance;

use crate::caller::Principal;
use crate::failures::{Failure, FailureReason};
use crate::usage::Use;
use crate::{Service, ServiceResult};

/// Why a presented credential (or its absence) was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: FailureReason,
    /// The credential's display hint when it parses; never the secret.
    pub hint: Option<String>,
    /// The workspace and mode of the credential, when it is known.
    pub owner: Option<(String, Mode)>,
}

impl Rejection {
    fn new(reason: FailureReason) -> Rejection {
        Rejection {
            reason,
            hint: None,
            owner: None,
        }
    }

    /// No credential at all.
    pub fn missing() -> Rejection {
        Rejection::new(FailureReason::Missing)
    }

    /// Something that is not one well-formed credential.
    pub fn malformed() -> Rejection {
        Rejection::new(FailureReason::Malformed)
    }

    /// Was a credential presented (as opposed to none at all)?
    pub fn presented(&self) -> bool {
        self.reason != FailureReason::Missing
    }
}

impl Service {
    /// The principal `credential` belongs to, judged at `now` through the
    /// cache under `marker`; `Ok(Err(_))` says why it is refused. An
    /// accepted credential's use is counted.
    pub async fn authenticate(
        &self,
        credential: &Credential,
        marker: Option<u64>,
        now: DateTime<Utc>,
    ) -> ServiceResult<Result<Principal, Rejection>> {
        // Only refusals are recorded with the hint.
        let refused = |reason, owner: Option<(&str, Mode)>| Rejection {
            reason,
            hint: Some(credential.hint()),
            owner: owner.map(|(w, m)| (w.to_owned(), m)),
        };
        let hash = credential.hash();
        let principal = match credential.kind() {
            CredentialKind::ApiKey => {
                match self.credentials().api_key_by_secret(marker, &hash).await? {
                    Some(key) => Principal::ApiKey(key),
                    None => return Ok(Err(refused(FailureReason::Unknown, None))),
                }
            }
            CredentialKind::Token => {
                let Some(found) = self
                    .credentials()
                    .token_by_secret(marker, &hash, now)
                    .await?
                else {
                    return Ok(Err(refused(FailureReason::Unknown, None)));
                };
                let owner = Some((found.token.workspace_id.as_str(), found.token.mode));
                match found.acceptance_at(now) {
                    Acceptance::Accepted => Principal::Token(found.token.clone()),
                    Acceptance::RotatedAway => {
                        return Ok(Err(refused(FailureReason::Rotated, owner)))
                    }
                    Acceptance::Revoked => return Ok(Err(refused(FailureReason::Revoked, owner))),
                    Acceptance::Expired => return Ok(Err(refused(FailureReason::Expired, owner))),
                }
            }
        };
        match &principal {
            Principal::ApiKey(k) => self.usage().record_api_key(&k.id, now),
            Principal::Token(t) => self.usage().record_token(&t.id, now, Use::ApiCall),
            _ => {}
        }
        Ok(Ok(principal))
    }

    /// Records a refused attempt from `client_addr` for the audit log
    /// (aggregated: see [`crate::FailureLog`]).
    pub fn record_rejection(
        &self,
        rejection: Rejection,
        client_addr: Option<String>,
        now: DateTime<Utc>,
    ) {
        let (workspace_id, mode) = rejection
            .owner
            .map_or((None, None), |(w, m)| (Some(w), Some(m)));
        self.failures().record(
            Failure {
                workspace_id,
                mode,
                client_addr,
                reason: rejection.reason,
                hint: rejection.hint,
            },
            now,
        );
    }
}
