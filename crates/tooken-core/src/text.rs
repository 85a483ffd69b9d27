//! Text a client names things with, validated once: each type is built
//! only through its `parse`, so a value of it has passed the rules, and
//! whatever holds one needs no second check.

use std::fmt;
use std::str::FromStr;

use crate::ValidationError;

/// A workspace's name: 1–64 lowercase letters, digits or `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WorkspaceName(String);

impl WorkspaceName {
    pub fn parse(raw: &str) -> Result<WorkspaceName, ValidationError> {
        let valid = (1..=64).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if valid {
            Ok(WorkspaceName(raw.to_owned()))
        } else {
            Err(ValidationError::new(
                "name",
                format!(
                    "invalid workspace name {:?}: use 1–64 lowercase letters, digits or '-'",
                    crate::redact::shown(raw)
                ),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for WorkspaceName {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<WorkspaceName, ValidationError> {
        WorkspaceName::parse(s)
    }
}

impl fmt::Display for WorkspaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_names_are_short_lowercase_words() {
        for ok in ["default", "acme-2", "a", &"x".repeat(64)] {
            assert_eq!(WorkspaceName::parse(ok).unwrap().as_str(), ok);
        }
        for bad in ["", "Acme", "a b", "a_b", "é", &"x".repeat(65)] {
            assert_eq!(WorkspaceName::parse(bad).unwrap_err().field, "name");
        }
    }
}
