//! Text a client names things with, validated once: each type is built
//! only through its `parse`, so a value of it has passed the rules, and
//! whatever holds one needs no second check.

use crate::ValidationError;

/// Longest name of a token or an API key.
pub const MAX_NAME_CHARS: usize = 128;
/// Longest description of a token.
pub const MAX_DESCRIPTION_CHARS: usize = 1024;
/// Longest reason given for a revocation.
pub const MAX_REASON_CHARS: usize = 256;

string_type!(
    /// The name of a token or an API key: 1–128 characters (counted as
    /// sent), no control characters, surrounding whitespace removed.
    Name,
    ValidationError
);

impl Name {
    pub fn parse(raw: &str) -> Result<Name, ValidationError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(ValidationError::new("name", "must not be empty"));
        }
        if raw.chars().count() > MAX_NAME_CHARS {
            return Err(ValidationError::new(
                "name",
                format!("must be at most {MAX_NAME_CHARS} characters"),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(ValidationError::new(
                "name",
                "must not contain control characters",
            ));
        }
        Ok(Name(name.to_owned()))
    }
}

string_type!(
    /// A token's description: at most 1024 characters of text.
    Description,
    ValidationError
);

impl Description {
    pub fn parse(raw: &str) -> Result<Description, ValidationError> {
        check_text("description", raw, MAX_DESCRIPTION_CHARS)?;
        Ok(Description(raw.to_owned()))
    }
}

string_type!(
    /// The reason given for a revocation: at most 256 characters of text.
    Reason,
    ValidationError
);

impl Reason {
    pub fn parse(raw: &str) -> Result<Reason, ValidationError> {
        check_text("reason", raw, MAX_REASON_CHARS)?;
        Ok(Reason(raw.to_owned()))
    }
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

string_type!(
    /// A workspace's name: 1–64 lowercase letters, digits or `-`.
    WorkspaceName,
    ValidationError
);

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
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_are_bounded() {
        assert_eq!(Name::parse("  ci  ").unwrap().as_str(), "ci");
        assert!(Name::parse("").is_err());
        assert!(Name::parse("   ").is_err());
        assert!(Name::parse(&"é".repeat(128)).is_ok());
        assert!(Name::parse(&"é".repeat(129)).is_err());
        assert!(Name::parse("a\u{0}b").is_err());
        assert!(Name::parse("<script>").is_ok());
    }

    #[test]
    fn free_text_allows_line_breaks_and_tabs_only() {
        assert!(Description::parse("two\nlines\r\n\tand a tab").is_ok());
        for bad in ["a\u{0}b", "bell\u{7}", "\u{1b}[31m", "\u{85}", "\u{7f}"] {
            assert_eq!(Description::parse(bad).unwrap_err().field, "description");
            assert_eq!(Reason::parse(bad).unwrap_err().field, "reason");
        }
        assert!(Reason::parse(&"r".repeat(256)).is_ok());
        assert!(Reason::parse(&"r".repeat(257)).is_err());
    }

    proptest! {
        #[test]
        fn accepted_text_is_bounded_and_storable(text in any::<String>()) {
            if let Ok(d) = Description::parse(&text) {
                prop_assert_eq!(d.as_str(), text.as_str());
                prop_assert!(d.chars().count() <= MAX_DESCRIPTION_CHARS);
                prop_assert!(!d.contains('\0'));
                prop_assert!(d.chars().all(|c| !c.is_control() || "\t\n\r".contains(c)));
            }
            if Reason::parse(&text).is_ok() {
                prop_assert!(text.chars().count() <= MAX_REASON_CHARS && !text.contains('\0'));
            }
        }

        #[test]
        fn accepted_names_are_trimmed_and_bounded(raw in any::<String>()) {
            if let Ok(name) = Name::parse(&raw) {
                prop_assert_eq!(name.as_str(), raw.trim());
                prop_assert!(!name.is_empty());
                prop_assert!(raw.chars().count() <= MAX_NAME_CHARS);
                prop_assert!(!name.chars().any(char::is_control));
            }
        }
    }

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
