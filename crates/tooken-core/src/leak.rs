//! Leak reports (SPEC §13, `POST /v1/leaks`): finding the Tooken
//! credentials among strings someone found exposed.
//!
//! A report holds at most [`MAX_LEAK_SECRETS`] strings of at most
//! [`MAX_LEAK_STRING_BYTES`] bytes each. Each string is taken whole first
//! (surrounding whitespace removed); if it is not a credential, it is
//! scanned for credentials inside it, so `Authorization: Bearer tkn_live_…`
//! or a line of code still count. A candidate is a maximal run of word
//! characters (`[A-Za-z0-9_]`) that [`Credential::parse`] accepts: the
//! format and the checksum are checked first, offline, so random strings
//! never reach a lookup. What comes back are the distinct credentials, in
//! the order first seen; the caller looks them up (in every workspace) and
//! answers only how many strings it received.

#![warn(missing_docs)]

use serde::{Deserialize, Serialize};

use crate::credential::{Credential, BODY_LEN};
use crate::ValidationError;

/// Most strings in one report.
pub const MAX_LEAK_SECRETS: usize = 10_000;
/// Longest string in a report, in bytes.
pub const MAX_LEAK_STRING_BYTES: usize = 4_096;
/// Longest `source`, in characters.
pub const MAX_SOURCE_CHARS: usize = 256;

/// Shortest and longest credential: `<2–12>_live_<36>`.
const MIN_CREDENTIAL_LEN: usize = 2 + 6 + BODY_LEN;
const MAX_CREDENTIAL_LEN: usize = 12 + 6 + BODY_LEN;

/// The body of `POST /v1/leaks`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeakReport {
    /// What was found: credentials, or text holding them.
    #[schema(max_items = 10_000)]
    pub secrets: Vec<String>,
    /// Where it was found (a URL, a scanner's name), for the audit log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 256)]
    pub source: Option<String>,
}

/// The answer to a report: how many strings were received, and nothing
/// about what matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LeakReceived {
    /// How many strings the report held.
    pub received: usize,
}

/// A validated report: the credentials found, and the source.
#[derive(Debug)]
pub struct Leaks {
    /// Distinct credentials, in the order first seen.
    pub credentials: Vec<Credential>,
    /// The reporter's `source`, if given.
    pub source: Option<String>,
    /// How many strings were received.
    pub received: usize,
}

impl LeakReport {
    /// Validates the report and finds its credentials. Errors name
    /// `secrets`, `secrets[i]` or `source`, and never repeat a string.
    pub fn parse(&self) -> Result<Leaks, ValidationError> {
        if let Some(source) = &self.source {
            check_source(source)?;
        }
        Ok(Leaks {
            credentials: find_credentials(&self.secrets)?,
            source: self.source.clone(),
            received: self.secrets.len(),
        })
    }
}

fn check_source(source: &str) -> Result<(), ValidationError> {
    if source.chars().count() > MAX_SOURCE_CHARS {
        return Err(ValidationError::new(
            "source",
            format!("must be at most {MAX_SOURCE_CHARS} characters"),
        ));
    }
    if source.chars().any(char::is_control) {
        return Err(ValidationError::new(
            "source",
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// The distinct Tooken credentials among `secrets` (see the module
/// documentation), in the order first seen.
pub fn find_credentials(secrets: &[String]) -> Result<Vec<Credential>, ValidationError> {
    if secrets.len() > MAX_LEAK_SECRETS {
        return Err(ValidationError::new(
            "secrets",
            format!(
                "at most {MAX_LEAK_SECRETS} strings per report, got {}",
                secrets.len()
            ),
        ));
    }
    let mut found: Vec<Credential> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, s) in secrets.iter().enumerate() {
        if s.len() > MAX_LEAK_STRING_BYTES {
            return Err(ValidationError::new(
                format!("secrets[{i}]"),
                format!("must be at most {MAX_LEAK_STRING_BYTES} bytes"),
            ));
        }
        let whole = Credential::parse(s.trim()).ok();
        let candidates: Vec<Credential> = match whole {
            Some(c) => vec![c],
            None => credentials_in(s).collect(),
        };
        for c in candidates {
            if seen.insert(c.hash()) {
                found.push(c);
            }
        }
    }
    Ok(found)
}

/// The credentials inside `text`: maximal runs of `[A-Za-z0-9_]` of a
/// credential's length that parse as one (format and checksum).
pub fn credentials_in(text: &str) -> impl Iterator<Item = Credential> + '_ {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|run| (MIN_CREDENTIAL_LEN..=MAX_CREDENTIAL_LEN).contains(&run.len()))
        .filter_map(|run| Credential::parse(run).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::is_well_formed;
    use crate::Mode;
    use proptest::prelude::*;

    fn secret(prefix: &str) -> String {
        Credential::generate(prefix, Mode::Live).expose().to_owned()
    }

    #[test]
    fn credentials_are_found_whole_and_inside_text() {
        let (a, b, c) = (secret("tkn"), secret("tok"), secret("acme"));
        let report = LeakReport {
            secrets: vec![
                format!("  {a}\n"),
                format!("Authorization: Bearer {b}"),
                format!("const KEY = \"{c}\"; // and again {a}"),
                "not a credential".into(),
                a.clone(),
            ],
            source: Some("https://github.com/acme/app/blob/main/config.js".into()),
        };
        let leaks = report.parse().unwrap();
        assert_eq!(leaks.received, 5);
        let found: Vec<&str> = leaks.credentials.iter().map(Credential::expose).collect();
        assert_eq!(found, [a.as_str(), b.as_str(), c.as_str()]);
        assert_eq!(
            leaks.source.as_deref(),
            Some("https://github.com/acme/app/blob/main/config.js")
        );
    }

    #[test]
    fn look_alikes_are_not_candidates() {
        let good = secret("tkn");
        let mut typo = good.clone().into_bytes();
        let last = typo.len() - 1;
        typo[last] = if typo[last] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(typo).unwrap();
        let secrets = vec![
            typo.clone(),
            format!("x{good}"),
            format!("{good}_x"),
            good.to_uppercase(),
            "tkn_live_000000000000000000000000000000000000".into(),
            String::new(),
        ];
        assert!(find_credentials(&secrets).unwrap().is_empty());
        // Word boundaries are punctuation or spaces, not letters.
        assert_eq!(credentials_in(&format!("({good})")).count(), 1);
        assert_eq!(credentials_in(&format!("{good}{good}")).count(), 0);
    }

    #[test]
    fn reports_are_bounded() {
        let many = vec!["x".to_string(); MAX_LEAK_SECRETS];
        assert_eq!(find_credentials(&many).unwrap().len(), 0);
        let over = vec!["x".to_string(); MAX_LEAK_SECRETS + 1];
        assert_eq!(find_credentials(&over).unwrap_err().field, "secrets");
        let long = vec![secret("tkn"), "y".repeat(MAX_LEAK_STRING_BYTES + 1)];
        assert_eq!(find_credentials(&long).unwrap_err().field, "secrets[1]");
        let source = |s: String| LeakReport {
            secrets: vec![],
            source: Some(s),
        };
        assert_eq!(source("s".repeat(257)).parse().unwrap_err().field, "source");
        assert_eq!(
            source("a\u{0}b".into()).parse().unwrap_err().field,
            "source"
        );
        assert!(source("s".repeat(256)).parse().is_ok());
        // Refusals never repeat what was sent.
        let pasted = secret("tkn");
        let e = find_credentials(&[format!("{pasted}{}", "z".repeat(5000))]).unwrap_err();
        assert!(!e.message.contains(&pasted[9..25]));
    }

    #[test]
    fn the_body_has_the_spec_shape() {
        let r: LeakReport =
            crate::api::parse_json_object(br#"{"secrets": ["a"], "source": "scanner"}"#).unwrap();
        assert_eq!(r.secrets, ["a"]);
        let e = crate::api::parse_json_object::<LeakReport>(br#"{"secret": ["a"]}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("secret"));
        assert_eq!(
            serde_json::to_value(LeakReceived { received: 3 }).unwrap(),
            serde_json::json!({"received": 3})
        );
    }

    proptest! {
        /// Whatever the text around it, a credential is found, and nothing
        /// but well-formed credentials ever is.
        #[test]
        fn credentials_are_found_in_any_surroundings(
            before in "\\PC{0,30}",
            after in "\\PC{0,30}",
            prefix in "[a-z0-9]{2,12}",
        ) {
            let c = secret(&prefix);
            let text = format!("{before} {c} {after}");
            let found: Vec<String> = find_credentials(&[text]).unwrap().iter().map(|f| f.expose().to_owned()).collect();
            prop_assert!(found.contains(&c));
            for f in &found {
                prop_assert!(is_well_formed(f));
            }
        }

        #[test]
        fn random_text_yields_no_credentials(text in "[A-Za-z0-9_ ]{0,200}") {
            prop_assert!(find_credentials(&[text]).unwrap().is_empty());
        }
    }
}
