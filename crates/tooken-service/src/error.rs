//! The one error of every operation. Each transport renders it in its own
//! voice (the API's error shape, a dashboard page, a CLI line); none of
//! them decides which it is.

use std::fmt;

use tooken_core::ValidationError;
use tooken_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A value breaks a rule; `field` names it when one is at fault.
    #[error("{message}")]
    Invalid {
        message: String,
        field: Option<String>,
    },
    /// The caller may not do this; `required_scope` names the built-in
    /// scope that would allow it, when one would.
    #[error("{message}")]
    Forbidden {
        message: String,
        required_scope: Option<String>,
    },
    #[error("{0}")]
    NotFound(NotFound),
    /// The change conflicts with the state of things (a revoked token
    /// changed, a name taken); `field` names the value at fault, if any.
    #[error("{message}")]
    Conflict {
        message: String,
        field: Option<String>,
    },
    /// The store cannot serve this now; worth a retry soon.
    #[error("the store is unavailable")]
    Unavailable,
    /// Anything else: a bug, or a store holding what it should not. Its
    /// cause is logged by whoever renders it, never shown.
    #[error(transparent)]
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

pub type ServiceResult<T> = Result<T, ServiceError>;

impl ServiceError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ServiceError {
        ServiceError::Invalid {
            message: message.into(),
            field: Some(field.into()),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> ServiceError {
        ServiceError::Forbidden {
            message: message.into(),
            required_scope: None,
        }
    }

    /// Refused for want of the built-in scope `scope`.
    pub fn missing_scope(scope: &str) -> ServiceError {
        ServiceError::Forbidden {
            message: format!("this token lacks the scope {scope} required for this operation"),
            required_scope: Some(scope.to_owned()),
        }
    }

    pub fn conflict(message: impl Into<String>) -> ServiceError {
        ServiceError::Conflict {
            message: message.into(),
            field: None,
        }
    }

    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> ServiceError {
        ServiceError::Internal(Box::new(e))
    }

    /// An invariant did not hold (a credential's workspace is missing).
    pub(crate) fn broken(what: impl Into<String>) -> ServiceError {
        ServiceError::internal(std::io::Error::other(what.into()))
    }

    /// What is wrong, without the field's name in front (for showing it
    /// next to its field).
    pub fn reason(&self) -> String {
        let message = self.to_string();
        match self.field() {
            Some(field) => message
                .strip_prefix(&format!("{field}: "))
                .unwrap_or(&message)
                .to_owned(),
            None => message,
        }
    }

    /// The field at fault, for `Invalid` and `Conflict`.
    pub fn field(&self) -> Option<&str> {
        match self {
            ServiceError::Invalid { field, .. } | ServiceError::Conflict { field, .. } => {
                field.as_deref()
            }
            _ => None,
        }
    }
}

impl From<ValidationError> for ServiceError {
    fn from(e: ValidationError) -> Self {
        ServiceError::Invalid {
            message: format!("{}: {}", e.field, e.message),
            field: Some(e.field),
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(c) => ServiceError::Conflict {
                message: c.to_string(),
                field: c.field().map(str::to_owned),
            },
            e if e.is_unavailable() => {
                tracing::error!(error = %e, "store unavailable");
                ServiceError::Unavailable
            }
            other => ServiceError::internal(other),
        }
    }
}

/// What was looked for and not found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotFound {
    pub thing: Thing,
    pub given: Given,
}

/// The kinds of thing an operation looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Thing {
    Token,
    ApiKey,
    Member,
    User,
    Workspace,
    /// A one-time link (setup or invitation).
    Link,
}

/// What the caller gave to find it by, as it may be repeated: a secret
/// pasted where an id goes is never sent back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Given {
    /// An id of the right kind, an email, a name.
    Key(String),
    /// A credential, where an id goes.
    Credential,
    /// Anything else, shown only if it cannot be a secret
    /// (see [`tooken_core::redact::shown`]).
    Other(String),
}

impl NotFound {
    /// `raw` was given as the id of a `thing` and nothing matched; `is_id`
    /// says whether it has the shape of one.
    pub(crate) fn id(thing: Thing, raw: &str, is_id: bool) -> NotFound {
        let given = if is_id {
            Given::Key(raw.to_owned())
        } else if tooken_core::credential::is_well_formed(raw) {
            Given::Credential
        } else {
            Given::Other(tooken_core::redact::shown(raw).to_owned())
        };
        NotFound { thing, given }
    }

    /// Looked for by a value that may be repeated (an email, a name).
    pub(crate) fn by(thing: Thing, value: &str) -> NotFound {
        NotFound {
            thing,
            given: Given::Key(value.to_owned()),
        }
    }

    /// The id (email, name) given, when it may be repeated and is one.
    pub fn key(&self) -> Option<&str> {
        match &self.given {
            Given::Key(k) => Some(k),
            _ => None,
        }
    }
}

/// The API's wording (the admin CLI's too).
impl fmt::Display for NotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, prefix) = match self.thing {
            Thing::Token => ("token", "tk_"),
            Thing::ApiKey => ("API key", "key_"),
            Thing::Member => return f.write_str("no such member"),
            Thing::User => {
                return match self.key() {
                    Some(email) => write!(f, "no user with email {email}"),
                    None => f.write_str("no such user"),
                }
            }
            Thing::Link => return f.write_str("this link is not valid"),
            Thing::Workspace => {
                return match self.key() {
                    Some(name) => write!(f, "no workspace named {name:?}"),
                    None => f.write_str("no such workspace"),
                }
            }
        };
        match &self.given {
            Given::Key(id) => write!(f, "no {name} with id {id}"),
            Given::Credential => {
                write!(
                f,
                "no such {name}: this is a credential, not {} id ({name} ids start with {prefix})",
                if name == "token" { "a token" } else { "an API key" }
            )
            }
            Given::Other(shown) => {
                write!(
                    f,
                    "no {name} with id {shown} ({name} ids start with {prefix})"
                )
            }
        }
    }
}
