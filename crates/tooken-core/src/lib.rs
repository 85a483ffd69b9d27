//! Tooken's domain, free of I/O: the credential format, scopes and how they
//! cover each other, token states, request validation and workspace policy.
//! Time is always a parameter (`now`), so expiry is testable without sleeping.

pub mod api;
pub mod audit;
pub mod clock;
pub mod credential;
pub mod id;
pub mod policy;
pub mod redact;
pub mod scope;
pub mod text;
pub mod token;

pub use clock::{Clock, ManualClock, SystemClock};
pub use credential::{Credential, CredentialKind, Malformed, Mode, SecretHash};
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
