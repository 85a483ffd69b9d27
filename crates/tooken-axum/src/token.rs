//! The verified token, as handlers see it.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use tooken_core::api::VerifiedToken;
use tooken_core::scope::any_covers;
use tooken_core::{Mode, Scope};

use crate::Rejection;

/// The token a request was authenticated with, as Tooken verified it.
///
/// The layer puts it in the request's extensions; take it as a handler
/// argument. It never holds the secret.
///
/// ```
/// use tooken_axum::TookenToken;
///
/// async fn handler(token: TookenToken) -> String {
///     format!("hello, {} ({})", token.name, token.id)
/// }
/// # let _: axum::routing::MethodRouter = axum::routing::get(handler);
/// ```
///
/// On a route without the layer the extractor answers `500` (and logs why):
/// a misconfiguration must not let requests through.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TookenToken {
    /// The token's id (`tk_…`): stable across rotations, never a secret.
    pub id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    /// The JSON object given when the token was issued, if any.
    pub metadata: Option<Map<String, Value>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub mode: Mode,
}

impl TookenToken {
    /// Does the token hold a scope covering `required` (`invoices:*`
    /// covers `invoices:read`)? An invalid scope string is never covered.
    pub fn has_scope(&self, required: &str) -> bool {
        Scope::parse(required).is_ok_and(|r| self.covers(&r))
    }

    /// Does the token hold a scope covering `required`?
    pub fn covers(&self, required: &Scope) -> bool {
        any_covers(&self.scopes, required)
    }

    /// `Ok` when the token covers `required`, else the `403` naming it: for
    /// checks inside a handler, e.g. `token.require(&scope)?`.
    pub fn require(&self, required: &Scope) -> Result<(), Rejection> {
        if self.covers(required) {
            Ok(())
        } else {
            Err(Rejection::missing_scope(required.clone()))
        }
    }

    /// One metadata value, e.g. `token.metadata_value("customer")`.
    pub fn metadata_value(&self, key: &str) -> Option<&Value> {
        self.metadata.as_ref()?.get(key)
    }

    /// Has the token expired at `now`? (Expiry is inclusive, as in Tooken.)
    pub fn is_expired_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }
}

impl From<VerifiedToken> for TookenToken {
    fn from(t: VerifiedToken) -> Self {
        TookenToken {
            id: t.id,
            name: t.name,
            scopes: t.scopes,
            metadata: t.metadata,
            expires_at: t.expires_at,
            mode: t.mode,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for TookenToken {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<TookenToken>() {
            Some(token) => Ok(token.clone()),
            None => {
                tracing::error!(
                    path = %parts.uri.path(),
                    "a handler takes TookenToken on a route without the Tooken layer; \
                     add `.layer(tooken)` or `.route_layer(tooken.require(…))`"
                );
                Err(Rejection::Internal)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(scopes: &[&str]) -> TookenToken {
        TookenToken {
            id: "tk_1".into(),
            name: "t".into(),
            scopes: scopes.iter().map(|s| Scope::parse(s).unwrap()).collect(),
            metadata: None,
            expires_at: None,
            mode: Mode::Live,
        }
    }

    #[test]
    fn scopes_are_covered_by_wildcards() {
        let t = token(&["invoices:*", "users:read"]);
        assert!(t.has_scope("invoices:read"));
        assert!(t.has_scope("invoices:write"));
        assert!(t.has_scope("users:read"));
        assert!(!t.has_scope("users:write"));
        assert!(!t.has_scope("invoices"));
        assert!(!t.has_scope("Not A Scope"));
    }

    #[test]
    fn require_names_the_missing_scope() {
        let t = token(&["users:read"]);
        let wanted = Scope::parse("invoices:read").unwrap();
        assert_eq!(
            t.require(&wanted),
            Err(Rejection::Forbidden {
                required_scope: wanted
            })
        );
    }
}
