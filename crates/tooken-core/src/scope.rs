//! Scopes: strings such as `invoices:read`, and how they cover each other.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// Most scopes a token may carry.
pub const MAX_SCOPES: usize = 50;
/// Longest scope, in bytes (scopes are ASCII).
pub const MAX_SCOPE_LEN: usize = 64;

/// Built-in scope: list and get tokens.
pub const TOKENS_READ: &str = "tokens:read";
/// Built-in scope: create, update, rotate and revoke tokens one created.
pub const TOKENS_WRITE: &str = "tokens:write";
/// Built-in scope: call the verify and introspection endpoints.
pub const TOKENS_VERIFY: &str = "tokens:verify";
/// Built-in scope: read and export the audit log.
pub const AUDIT_READ: &str = "audit:read";

/// The pattern every scope matches (as the OpenAPI document states it).
pub const SCOPE_PATTERN: &str = "^[a-z][a-z0-9_.-]*(:[a-z0-9_.*-]+)*$";

/// A validated scope: `^[a-z][a-z0-9_.-]*(:[a-z0-9_.*-]+)*$`, at most 64 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Scope(String);

/// In the OpenAPI document: a string with the pattern and length limits.
impl utoipa::PartialSchema for Scope {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some(SCOPE_PATTERN))
            .min_length(Some(1))
            .max_length(Some(MAX_SCOPE_LEN))
            .examples(["invoices:read"])
            .into()
    }
}

impl utoipa::ToSchema for Scope {}

impl Scope {
    pub fn parse(s: &str) -> Result<Scope, ScopeError> {
        if s.is_empty() {
            return Err(ScopeError::Empty);
        }
        if s.len() > MAX_SCOPE_LEN {
            return Err(ScopeError::TooLong);
        }
        let mut segments = s.split(':');
        let resource = segments.next().unwrap_or_default().as_bytes();
        let resource_ok = resource.first().is_some_and(u8::is_ascii_lowercase)
            && resource
                .iter()
                .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b));
        let rest_ok = segments.all(|seg| {
            !seg.is_empty()
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.*-".contains(&b))
        });
        if resource_ok && rest_ok {
            Ok(Scope(s.to_owned()))
        } else {
            Err(ScopeError::Pattern)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Does holding `self` satisfy a requirement for `required`?
    ///
    /// Segments are compared one by one; a `*` segment matches any single
    /// segment, and a `*` as the last segment matches one or more. So
    /// `invoices:*` covers `invoices:read` and `invoices:read:own`, but not
    /// `invoices` itself.
    pub fn covers(&self, required: &Scope) -> bool {
        if self.0 == required.0 {
            return true;
        }
        let granted: Vec<&str> = self.0.split(':').collect();
        let wanted: Vec<&str> = required.0.split(':').collect();
        for (i, g) in granted.iter().enumerate() {
            let last = i == granted.len() - 1;
            match wanted.get(i) {
                None => return false,
                Some(_) if *g == "*" && last => return true,
                Some(w) if *g == "*" || g == w => continue,
                Some(_) => return false,
            }
        }
        granted.len() == wanted.len()
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Scope::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("a scope must not be empty")]
    Empty,
    #[error("a scope must be at most 64 characters")]
    TooLong,
    #[error("a scope must match ^[a-z][a-z0-9_.-]*(:[a-z0-9_.*-]+)*$, e.g. invoices:read")]
    Pattern,
}

/// Does any of `granted` cover `required`?
pub fn any_covers(granted: &[Scope], required: &Scope) -> bool {
    granted.iter().any(|g| g.covers(required))
}

/// Validates a list of scope strings from a request: at most 50, each valid.
/// Duplicates are dropped; order is kept.
pub fn parse_scopes(field: &str, raw: &[String]) -> Result<Vec<Scope>, ValidationError> {
    if raw.len() > MAX_SCOPES {
        return Err(ValidationError::new(
            field,
            format!("at most {MAX_SCOPES} scopes are allowed, got {}", raw.len()),
        ));
    }
    let mut out: Vec<Scope> = Vec::with_capacity(raw.len());
    for (i, s) in raw.iter().enumerate() {
        let scope = Scope::parse(s).map_err(|e| {
            // A secret pasted as a scope is not sent back.
            let message = if crate::redact::may_repeat(s) {
                format!("{e} (got {s:?})")
            } else {
                e.to_string()
            };
            ValidationError::new(format!("{field}[{i}]"), message)
        })?;
        if !out.contains(&scope) {
            out.push(scope);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(x: &str) -> Scope {
        Scope::parse(x).unwrap()
    }

    #[test]
    fn accepts_the_documented_pattern() {
        for ok in [
            "invoices:read",
            "tokens:write",
            "a",
            "a.b-c_d",
            "invoices:*",
            "org:acme:repo.x:read",
            "x:1",
        ] {
            assert!(Scope::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "",
            "Invoices:read",
            "1invoices",
            "invoices:",
            ":read",
            "invoices::read",
            "invoices read",
            "invoices:READ",
            "*:read",
            "in*voices",
            "invoices:read ",
            "é:read",
        ] {
            assert!(Scope::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Scope::parse(&"a".repeat(65)), Err(ScopeError::TooLong));
        assert!(Scope::parse(&"a".repeat(64)).is_ok());
    }

    #[test]
    fn wildcards_cover_what_they_should() {
        assert!(s("invoices:read").covers(&s("invoices:read")));
        assert!(s("invoices:*").covers(&s("invoices:read")));
        assert!(s("invoices:*").covers(&s("invoices:read:own")));
        assert!(!s("invoices:*").covers(&s("invoices")));
        assert!(!s("invoices:*").covers(&s("payments:read")));
        assert!(!s("invoices:read").covers(&s("invoices:write")));
        assert!(!s("invoices:read").covers(&s("invoices:*")));
        assert!(!s("invoices").covers(&s("invoices:read")));
        assert!(s("org:*:read").covers(&s("org:acme:read")));
        assert!(!s("org:*:read").covers(&s("org:acme:write")));
        assert!(s("invoices:*").covers(&s("invoices:*")));
    }

    #[test]
    fn scope_lists_are_bounded_and_deduplicated() {
        let many: Vec<String> = (0..51).map(|i| format!("s{i}")).collect();
        assert_eq!(parse_scopes("scopes", &many).unwrap_err().field, "scopes");
        let bad = vec!["ok".to_string(), "Bad".to_string()];
        assert_eq!(parse_scopes("scopes", &bad).unwrap_err().field, "scopes[1]");
        let dup = vec!["a:b".to_string(), "a:b".to_string()];
        assert_eq!(parse_scopes("scopes", &dup).unwrap().len(), 1);
    }

    #[test]
    fn refusals_show_a_bad_scope_unless_it_could_be_a_secret() {
        let bad = vec!["Invoices:Read".to_string()];
        let e = parse_scopes("scopes", &bad).unwrap_err();
        assert!(
            e.message.contains(r#"(got "Invoices:Read")"#),
            "{}",
            e.message
        );
        let secret = crate::Credential::generate("tkn", crate::Mode::Live);
        for pasted in [secret.expose().to_owned(), secret.expose().repeat(2)] {
            let e = parse_scopes("scopes", std::slice::from_ref(&pasted)).unwrap_err();
            assert_eq!(e.field, "scopes[0]");
            assert!(!e.message.contains(&pasted[9..25]), "{}", e.message);
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(x in "\\PC{0,80}") {
            let _ = Scope::parse(&x);
        }

        #[test]
        fn every_valid_scope_covers_itself(x in "[a-z][a-z0-9_.-]{0,10}(:[a-z0-9_.*-]{1,8}){0,3}") {
            let scope = Scope::parse(&x).unwrap();
            prop_assert!(scope.covers(&scope));
            prop_assert_eq!(Scope::parse(&scope.to_string()), Ok(scope.clone()));
            let json = serde_json::to_string(&scope).unwrap();
            prop_assert_eq!(serde_json::from_str::<Scope>(&json).unwrap(), scope);
        }

        /// Accepted is exactly what the documented pattern and length allow.
        #[test]
        fn parse_accepts_exactly_the_documented_pattern(x in "[a-zA-Z0-9:_.*\\- é]{0,70}") {
            let oracle = regex_automata::meta::Regex::new(SCOPE_PATTERN).unwrap();
            let documented = oracle.is_match(&x) && x.len() <= MAX_SCOPE_LEN;
            prop_assert_eq!(Scope::parse(&x).is_ok(), documented, "{:?}", x);
        }

        #[test]
        fn a_trailing_wildcard_covers_everything_below(
            base in "[a-z][a-z0-9]{0,5}(:[a-z0-9]{1,5}){0,2}",
            below in "(:[a-z0-9*]{1,5}){1,3}",
        ) {
            let wildcard = s(&format!("{base}:*"));
            let deeper = s(&format!("{base}{below}"));
            prop_assert!(wildcard.covers(&deeper));
            prop_assert!(!wildcard.covers(&s(&base)));
        }

        /// No way around a narrower grant: what a scope covers, every scope
        /// covering it covers too. (A small alphabet makes overlaps common.)
        #[test]
        fn covering_is_transitive(
            a in "[ab](:[ab*]){0,3}",
            b in "[ab](:[ab*]){0,3}",
            c in "[ab](:[ab*]){0,3}",
        ) {
            let (a, b, c) = (s(&a), s(&b), s(&c));
            if a.covers(&b) && b.covers(&c) {
                prop_assert!(a.covers(&c), "{} covers {}, which covers {}", a, b, c);
            }
            prop_assert_eq!(any_covers(&[a.clone(), b.clone()], &c), a.covers(&c) || b.covers(&c));
        }

        #[test]
        fn scope_lists_keep_their_order_without_duplicates(
            raw in prop::collection::vec("[ab](:[ab*]){0,2}", 0..60),
        ) {
            match parse_scopes("scopes", &raw) {
                Ok(list) => {
                    prop_assert!(raw.len() <= MAX_SCOPES);
                    let mut expected: Vec<&str> = Vec::new();
                    for r in &raw {
                        if !expected.contains(&r.as_str()) {
                            expected.push(r);
                        }
                    }
                    let got: Vec<&str> = list.iter().map(Scope::as_str).collect();
                    prop_assert_eq!(got, expected);
                }
                Err(e) => {
                    prop_assert!(raw.len() > MAX_SCOPES);
                    prop_assert_eq!(e.field, "scopes");
                }
            }
        }
    }
}
