//! Bearer authentication of API calls.
//!
//! Every `/v1` request carries `Authorization: Bearer <credential>`, exactly
//! one space after `Bearer`, no other whitespace. The credential is an API
//! key or a token ([`tooken_service::Service::authenticate`] decides);
//! every failure looks the same to the client, and an address that keeps
//! failing is slowed, then refused ([`crate::throttle`]).

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use tooken_core::Credential;
use tooken_service::{Caller, Rejection};

use crate::client::{audit_context, client_ip};
use crate::error::ApiError;
use crate::AppState;

/// The authenticated caller of an API request, with its audit context and
/// the store's change marker read once, before its first lookup.
impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let credential = presented(parts);
        authenticate(parts, state, credential).await
    }
}

/// The caller presenting `credential` (or failing to), with the request's
/// audit context: throttled by address, every refusal recorded and
/// answered alike. The API's `Authorization` header and a gateway's own
/// key ([`crate::authz`]) both go through here.
pub(crate) async fn authenticate(
    parts: &Parts,
    state: &AppState,
    credential: Result<Credential, Rejection>,
) -> Result<Caller, ApiError> {
    let service = &state.service;
    let now = service.now();
    let ip = client_ip(parts);
    let client_addr = ip.map(|ip| ip.to_string());
    if let Some(ip) = ip {
        if let Err(retry_after_seconds) = state.throttle.check(ip, now) {
            let refused = Rejection {
                reason: tooken_service::FailureReason::RateLimited,
                hint: None,
                owner: None,
            };
            service.record_rejection(refused, client_addr, now);
            return Err(ApiError::RateLimited {
                retry_after_seconds,
            });
        }
    }
    let marker = service.credentials().change_marker();
    let outcome = match credential {
        Ok(credential) => service.authenticate(&credential, marker, now).await?,
        Err(rejection) => Err(rejection),
    };
    let principal = match outcome {
        Ok(principal) => principal,
        Err(rejection) => {
            let presented = rejection.presented();
            service.record_rejection(rejection, client_addr, now);
            if let Some(ip) = ip {
                let delay = state.throttle.failure(ip, now);
                if !delay.is_zero() {
                    state.metrics.record_slowed_failure();
                    tokio::time::sleep(delay).await;
                }
            }
            return Err(ApiError::Unauthorized {
                credential_presented: presented,
            });
        }
    };
    let audit = audit_context(parts, principal.actor());
    Ok(Caller {
        principal,
        audit,
        marker,
    })
}

/// The one credential of the request's one `Authorization` header.
fn presented(parts: &Parts) -> Result<Credential, Rejection> {
    let mut values = parts.headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(Rejection::missing());
    };
    if values.next().is_some() {
        return Err(Rejection::malformed());
    }
    Credential::from_authorization(value.as_bytes()).map_err(|_| Rejection::malformed())
}
