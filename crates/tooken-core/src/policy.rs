//! Workspace policy: the settings that constrain every token a workspace
//! issues, and the rules for changing them.

use serde::{Deserialize, Serialize};

use crate::credential::{is_valid_prefix, API_KEY_PREFIX, DEFAULT_TOKEN_PREFIX};
use crate::ValidationError;

/// Longest token lifetime any policy may allow or default to: ten years.
pub const MAX_TTL_SECONDS: i64 = 10 * 365 * 24 * 3600;

/// A workspace's token policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Settings {
    /// Every new token must have an expiry (given, or the default TTL).
    pub require_expiration: bool,
    /// Longest lifetime a new or updated token may have.
    pub max_token_ttl_seconds: Option<i64>,
    /// Lifetime given to new tokens that do not ask for one.
    pub default_token_ttl_seconds: Option<i64>,
    /// Prefix of new tokens: 2–12 lowercase letters or digits, not `tok`.
    pub token_prefix: String,
    /// Audit events older than this are pruned; `null` keeps them forever.
    pub audit_retention_days: Option<i64>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            require_expiration: false,
            max_token_ttl_seconds: None,
            default_token_ttl_seconds: None,
            token_prefix: DEFAULT_TOKEN_PREFIX.to_owned(),
            audit_retention_days: None,
        }
    }
}

impl Settings {
    /// Checks the settings as a whole.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if !is_valid_prefix(&self.token_prefix) {
            return Err(ValidationError::new(
                "token_prefix",
                "must be 2–12 lowercase letters or digits",
            ));
        }
        if self.token_prefix == API_KEY_PREFIX {
            return Err(ValidationError::new(
                "token_prefix",
                "`tok` is reserved for API keys",
            ));
        }
        for (field, value) in [
            ("max_token_ttl_seconds", self.max_token_ttl_seconds),
            ("default_token_ttl_seconds", self.default_token_ttl_seconds),
        ] {
            if let Some(v) = value {
                if !(1..=MAX_TTL_SECONDS).contains(&v) {
                    return Err(ValidationError::new(
                        field,
                        format!("must be between 1 and {MAX_TTL_SECONDS} seconds"),
                    ));
                }
            }
        }
        if let (Some(default), Some(max)) =
            (self.default_token_ttl_seconds, self.max_token_ttl_seconds)
        {
            if default > max {
                return Err(ValidationError::new(
                    "default_token_ttl_seconds",
                    "must not exceed max_token_ttl_seconds",
                ));
            }
        }
        if let Some(days) = self.audit_retention_days {
            if !(1..=36500).contains(&days) {
                return Err(ValidationError::new(
                    "audit_retention_days",
                    "must be between 1 and 36500 days",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Settings::default().validate().unwrap();
    }

    #[test]
    fn each_bad_setting_is_named() {
        let cases: Vec<(Settings, &str)> = vec![
            (
                Settings {
                    token_prefix: "T".into(),
                    ..Default::default()
                },
                "token_prefix",
            ),
            (
                Settings {
                    token_prefix: "tok".into(),
                    ..Default::default()
                },
                "token_prefix",
            ),
            (
                Settings {
                    max_token_ttl_seconds: Some(0),
                    ..Default::default()
                },
                "max_token_ttl_seconds",
            ),
            (
                Settings {
                    default_token_ttl_seconds: Some(-5),
                    ..Default::default()
                },
                "default_token_ttl_seconds",
            ),
            (
                Settings {
                    default_token_ttl_seconds: Some(100),
                    max_token_ttl_seconds: Some(10),
                    ..Default::default()
                },
                "default_token_ttl_seconds",
            ),
            (
                Settings {
                    audit_retention_days: Some(0),
                    ..Default::default()
                },
                "audit_retention_days",
            ),
        ];
        for (settings, field) in cases {
            assert_eq!(settings.validate().unwrap_err().field, field);
        }
    }
}
