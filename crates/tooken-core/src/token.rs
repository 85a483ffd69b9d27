//! Tokens: their states, and the rules for the values clients send.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::policy::{Settings, MAX_TTL_SECONDS};
use crate::ValidationError;

pub const MAX_METADATA_BYTES: usize = 4096;

/// A token's state at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TokenStatus {
    Active,
    Expired,
    Revoked,
}

impl TokenStatus {
    /// Revocation wins over expiry: a revoked token stays revoked.
    pub fn at(
        now: DateTime<Utc>,
        revoked_at: Option<DateTime<Utc>>,
        expires_at: Option<DateTime<Utc>>,
    ) -> TokenStatus {
        if revoked_at.is_some() {
            TokenStatus::Revoked
        } else if expires_at.is_some_and(|e| e <= now) {
            TokenStatus::Expired
        } else {
            TokenStatus::Active
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TokenStatus::Active => "active",
            TokenStatus::Expired => "expired",
            TokenStatus::Revoked => "revoked",
        }
    }
}

/// A status name that is not `active`, `expired` or `revoked`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("status must be active, expired or revoked")]
pub struct UnknownStatus;

impl std::str::FromStr for TokenStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<TokenStatus, UnknownStatus> {
        match s {
            "active" => Ok(TokenStatus::Active),
            "expired" => Ok(TokenStatus::Expired),
            "revoked" => Ok(TokenStatus::Revoked),
            _ => Err(UnknownStatus),
        }
    }
}

/// The outcome of verifying a token for a downstream service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VerifyCode {
    Valid,
    Malformed,
    NotFound,
    Expired,
    Revoked,
    InsufficientScope,
}

/// Metadata is a JSON object of at most 4 KiB (serialized).
pub fn parse_metadata(value: Value) -> Result<Map<String, Value>, ValidationError> {
    let Value::Object(map) = value else {
        return Err(ValidationError::new("metadata", "must be a JSON object"));
    };
    let size = serde_json::to_vec(&map)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_METADATA_BYTES {
        return Err(ValidationError::new(
            "metadata",
            format!("must be at most {MAX_METADATA_BYTES} bytes when serialized, got {size}"),
        ));
    }
    Ok(map)
}

/// The expiry of a new token, from what the client asked and the policy.
pub fn expiry_for_new_token(
    now: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    expires_in: Option<i64>,
    settings: &Settings,
) -> Result<Option<DateTime<Utc>>, ValidationError> {
    let requested = match (expires_at, expires_in) {
        (Some(_), Some(_)) => {
            return Err(ValidationError::new(
                "expires_in",
                "give either expires_at or expires_in, not both",
            ))
        }
        (Some(at), None) => Some(at),
        (None, Some(secs)) => {
            if !(1..=MAX_TTL_SECONDS).contains(&secs) {
                return Err(ValidationError::new(
                    "expires_in",
                    format!("must be between 1 and {MAX_TTL_SECONDS} seconds"),
                ));
            }
            Some(now + Duration::seconds(secs))
        }
        (None, None) => settings
            .default_token_ttl_seconds
            .map(|secs| now + Duration::seconds(secs)),
    };
    check_expiry(now, requested, settings)?;
    Ok(requested)
}

/// Checks an expiry (new or changed) against the clock and the policy.
pub fn check_expiry(
    now: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    settings: &Settings,
) -> Result<(), ValidationError> {
    match expires_at {
        None if settings.require_expiration => Err(ValidationError::new(
            "expires_at",
            "the workspace setting require_expiration is on: give expires_at or expires_in",
        )),
        None => Ok(()),
        Some(at) if at <= now => Err(ValidationError::new("expires_at", "must be in the future")),
        Some(at) if at > now + Duration::seconds(MAX_TTL_SECONDS) => Err(ValidationError::new(
            "expires_at",
            "must be at most ten years from now",
        )),
        Some(at) => match settings.max_token_ttl_seconds {
            Some(max) if at > now + Duration::seconds(max) => Err(ValidationError::new(
                "expires_at",
                format!(
                    "exceeds the workspace setting max_token_ttl_seconds ({max} seconds from now)"
                ),
            )),
            _ => Ok(()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn t0() -> DateTime<Utc> {
        "2030-01-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn statuses_parse_by_name() {
        for s in [
            TokenStatus::Active,
            TokenStatus::Expired,
            TokenStatus::Revoked,
        ] {
            assert_eq!(s.as_str().parse(), Ok(s));
        }
        assert_eq!("Active".parse::<TokenStatus>(), Err(UnknownStatus));
    }

    #[test]
    fn status_prefers_revoked_then_expired() {
        let now = t0();
        let past = Some(now - Duration::seconds(1));
        assert_eq!(TokenStatus::at(now, None, None), TokenStatus::Active);
        assert_eq!(TokenStatus::at(now, None, past), TokenStatus::Expired);
        assert_eq!(TokenStatus::at(now, None, Some(now)), TokenStatus::Expired);
        assert_eq!(TokenStatus::at(now, past, past), TokenStatus::Revoked);
        assert_eq!(
            TokenStatus::at(now, None, Some(now + Duration::milliseconds(1))),
            TokenStatus::Active
        );
    }

    #[test]
    fn metadata_must_be_a_small_object() {
        assert!(parse_metadata(json!({"a": 1})).is_ok());
        assert!(parse_metadata(json!([1])).is_err());
        assert!(parse_metadata(json!("x")).is_err());
        assert!(parse_metadata(json!({"a": "x".repeat(4100)})).is_err());
    }

    #[test]
    fn expiry_rules() {
        let now = t0();
        let s = Settings::default();
        assert_eq!(expiry_for_new_token(now, None, None, &s).unwrap(), None);
        assert_eq!(
            expiry_for_new_token(now, None, Some(60), &s).unwrap(),
            Some(now + Duration::seconds(60))
        );
        let e = expiry_for_new_token(now, Some(now + Duration::seconds(5)), Some(5), &s);
        assert_eq!(e.unwrap_err().field, "expires_in");
        assert!(expiry_for_new_token(now, Some(now), None, &s).is_err());
        assert!(expiry_for_new_token(now, None, Some(0), &s).is_err());

        let strict = Settings {
            require_expiration: true,
            max_token_ttl_seconds: Some(3600),
            ..Default::default()
        };
        let err = expiry_for_new_token(now, None, None, &strict).unwrap_err();
        assert!(err.message.contains("require_expiration"));
        let err = expiry_for_new_token(now, None, Some(7200), &strict).unwrap_err();
        assert!(err.message.contains("max_token_ttl_seconds"));
        assert!(expiry_for_new_token(now, None, Some(3600), &strict).is_ok());

        let defaulted = Settings {
            default_token_ttl_seconds: Some(10),
            ..Default::default()
        };
        assert_eq!(
            expiry_for_new_token(now, None, None, &defaulted).unwrap(),
            Some(now + Duration::seconds(10))
        );
    }

    proptest! {
        /// Whatever a client asks for, an accepted expiry is in the future,
        /// within the policy, and computing it never overflows.
        #[test]
        fn accepted_expiries_follow_the_policy(
            at_offset in prop::option::of(any::<i32>()),
            expires_in in prop::option::of(any::<i64>()),
            max in prop::option::of(1..=MAX_TTL_SECONDS),
            required in any::<bool>(),
        ) {
            let now = t0();
            let settings = Settings {
                require_expiration: required,
                max_token_ttl_seconds: max,
                ..Default::default()
            };
            let at = at_offset.map(|s| now + Duration::seconds(i64::from(s) * 1000));
            if let Ok(expiry) = expiry_for_new_token(now, at, expires_in, &settings) {
                prop_assert!(!(at.is_some() && expires_in.is_some()));
                prop_assert!(expiry.is_some() || !required);
                if let Some(e) = expiry {
                    prop_assert!(e > now);
                    prop_assert!(e <= now + Duration::seconds(max.unwrap_or(MAX_TTL_SECONDS)));
                }
            }
        }
    }
}
