//! Tokens: their states, and the rules for the values clients send.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::policy::{Settings, MAX_TTL_SECONDS};
use crate::ValidationError;

pub const MAX_NAME_CHARS: usize = 128;
pub const MAX_DESCRIPTION_CHARS: usize = 1024;
pub const MAX_REASON_CHARS: usize = 256;
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

/// A token's display name: 1–128 characters (counted as sent), no control
/// characters, surrounding whitespace removed.
pub fn parse_name(field: &str, raw: &str) -> Result<String, ValidationError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if raw.chars().count() > MAX_NAME_CHARS {
        return Err(ValidationError::new(
            field,
            format!("must be at most {MAX_NAME_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(name.to_owned())
}

/// A token's description: at most 1024 characters of text.
pub fn parse_description(raw: &str) -> Result<String, ValidationError> {
    check_text("description", raw, MAX_DESCRIPTION_CHARS)?;
    Ok(raw.to_owned())
}

/// The reason given for a revocation: at most 256 characters of text.
pub fn check_revoke_reason(raw: &str) -> Result<(), ValidationError> {
    check_text("reason", raw, MAX_REASON_CHARS)
}

/// Free text: at most `max` characters, and no control characters but tab
/// and line breaks (a NUL, for one, cannot even be stored in PostgreSQL).
fn check_text(field: &str, raw: &str, max: usize) -> Result<(), ValidationError> {
    if raw.chars().count() > max {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if raw
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(ValidationError::new(
            field,
            "must not contain control characters other than tab and line breaks",
        ));
    }
    Ok(())
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
    fn names_are_bounded() {
        assert_eq!(parse_name("name", "  ci  ").unwrap(), "ci");
        assert!(parse_name("name", "").is_err());
        assert!(parse_name("name", "   ").is_err());
        assert!(parse_name("name", &"é".repeat(128)).is_ok());
        assert!(parse_name("name", &"é".repeat(129)).is_err());
        assert!(parse_name("name", "a\u{0}b").is_err());
        assert!(parse_name("name", "<script>").is_ok());
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

    #[test]
    fn free_text_allows_line_breaks_and_tabs_only() {
        assert!(parse_description("two\nlines\r\n\tand a tab").is_ok());
        for bad in ["a\u{0}b", "bell\u{7}", "\u{1b}[31m", "\u{85}", "\u{7f}"] {
            assert_eq!(parse_description(bad).unwrap_err().field, "description");
            assert_eq!(check_revoke_reason(bad).unwrap_err().field, "reason");
        }
        assert!(check_revoke_reason(&"r".repeat(256)).is_ok());
        assert!(check_revoke_reason(&"r".repeat(257)).is_err());
    }

    proptest! {
        #[test]
        fn accepted_text_is_bounded_and_storable(text in any::<String>()) {
            if let Ok(d) = parse_description(&text) {
                prop_assert_eq!(&d, &text);
                prop_assert!(d.chars().count() <= MAX_DESCRIPTION_CHARS);
                prop_assert!(!d.contains('\0'));
                prop_assert!(d.chars().all(|c| !c.is_control() || "\t\n\r".contains(c)));
            }
            if check_revoke_reason(&text).is_ok() {
                prop_assert!(text.chars().count() <= MAX_REASON_CHARS && !text.contains('\0'));
            }
        }

        #[test]
        fn accepted_names_are_trimmed_and_bounded(raw in any::<String>()) {
            if let Ok(name) = parse_name("name", &raw) {
                prop_assert_eq!(name.as_str(), raw.trim());
                prop_assert!(!name.is_empty());
                prop_assert!(raw.chars().count() <= MAX_NAME_CHARS);
                prop_assert!(!name.chars().any(char::is_control));
            }
        }

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
