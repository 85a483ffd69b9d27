//! Tooken's domain, free of I/O: the credential format, scopes and how they
//! cover each other, token states, request validation and workspace policy,
//! token caveats and rate limiting ([`caveat`]), gateway route rules
//! ([`authz`]), webhook signing and delivery rules ([`webhook`]) and leak
//! reports ([`leak`]). Time is always a parameter (`now`), so expiry is
//! testable without sleeping.

/// A validated string type: a `String` inside, built only by its `parse`
/// (returning `Result<$name, $err>`), read as `&str`, shown as itself.
macro_rules! string_type {
    ($(#[$doc:meta])* $name:ident, $err:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = $err;
            fn from_str(s: &str) -> Result<$name, $err> {
                $name::parse(s)
            }
        }
    };
}

pub mod api;
pub mod audit;
pub mod authz;
pub mod caveat;
pub mod clock;
pub mod credential;
pub mod id;
pub mod leak;
pub mod policy;
pub mod redact;
pub mod scope;
pub mod text;
pub mod token;
pub mod webhook;

pub use clock::{Clock, ManualClock, SystemClock};
pub use credential::{Credential, CredentialKind, Malformed, Mode, Secret, SecretHash};
pub use policy::Settings;
pub use scope::Scope;
pub use text::WorkspaceName;

/// A client-supplied value that breaks a rule; `field` names where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ValidationError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// For tests: every `$ref` in the OpenAPI schema of `T`, and in the schemas
/// it names, is a schema it names, so a document listing `T` is complete.
#[cfg(test)]
pub(crate) fn assert_schema_complete<T: utoipa::ToSchema>() {
    use utoipa::openapi::{schema::Schema, RefOr};
    fn refs(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(serde_json::Value::String(r)) = m.get("$ref") {
                    out.push(r.trim_start_matches("#/components/schemas/").to_owned());
                }
                m.values().for_each(|x| refs(x, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut named: Vec<(String, RefOr<Schema>)> = vec![(T::name().into_owned(), T::schema())];
    T::schemas(&mut named);
    let names: Vec<&str> = named.iter().map(|(n, _)| n.as_str()).collect();
    let mut wanted = Vec::new();
    for (_, schema) in &named {
        refs(&serde_json::to_value(schema).unwrap(), &mut wanted);
    }
    for w in wanted {
        assert!(
            names.contains(&w.as_str()),
            "{} refers to {w}, which it does not name",
            T::name()
        );
    }
}
