//! The tower layers: [`Tooken`] itself (authenticate every request) and
//! [`RequireScope`] (authenticate, then require a scope).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::http::Request;
use axum::response::{IntoResponse, Response};
use tooken_core::Scope;
use tower::{Layer, Service};

use crate::{Tooken, TookenToken};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S> Layer<S> for Tooken {
    type Service = TookenService<S>;

    fn layer(&self, inner: S) -> TookenService<S> {
        TookenService {
            inner,
            check: Check {
                tooken: self.clone(),
                scope: None,
            },
        }
    }
}

/// Requires a valid token holding a scope (checked by coverage:
/// `invoices:*` covers `invoices:read`), answering `403` otherwise.
///
/// Made by [`Tooken::require`]. It authenticates the request itself when no
/// outer [`Tooken`] layer has, so it is safe in any order with `.layer()`.
#[derive(Clone, Debug)]
pub struct RequireScope {
    tooken: Tooken,
    scope: Scope,
}

impl RequireScope {
    pub(crate) fn new(tooken: Tooken, scope: Scope) -> RequireScope {
        RequireScope { tooken, scope }
    }

    /// The scope this layer requires.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }
}

impl<S> Layer<S> for RequireScope {
    type Service = TookenService<S>;

    fn layer(&self, inner: S) -> TookenService<S> {
        TookenService {
            inner,
            check: Check {
                tooken: self.tooken.clone(),
                scope: Some(self.scope.clone()),
            },
        }
    }
}

#[derive(Clone, Debug)]
struct Check {
    tooken: Tooken,
    scope: Option<Scope>,
}

/// The service made by the [`Tooken`] and [`RequireScope`] layers.
///
/// It verifies the bearer token unless an outer layer already has (the
/// [`TookenToken`] is in the request's extensions), puts the token in the
/// extensions, checks the required scope if any, and only then calls the
/// inner service. Refusals never reach it.
#[derive(Clone, Debug)]
pub struct TookenService<S> {
    inner: S,
    check: Check,
}

impl<S, B> Service<Request<B>> for TookenService<S>
where
    S: Service<Request<B>> + Clone + Send + 'static,
    S::Response: IntoResponse,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        // The clone that was driven to readiness serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let check = self.check.clone();
        Box::pin(async move {
            let token = match req.extensions().get::<TookenToken>() {
                Some(token) => token.clone(),
                None => match check.tooken.authenticate(req.headers()).await {
                    Ok(token) => {
                        req.extensions_mut().insert(token.clone());
                        token
                    }
                    Err(rejection) => return Ok(rejection.into_response()),
                },
            };
            if let Some(scope) = &check.scope {
                if let Err(rejection) = token.require(scope) {
                    tracing::debug!(token_id = %token.id, scope = %scope, "scope missing");
                    return Ok(rejection.into_response());
                }
            }
            inner.call(req).await.map(IntoResponse::into_response)
        })
    }
}
