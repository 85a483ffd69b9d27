use std::net::SocketAddr;

use axum::Router;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tooken_axum::{Tooken, TookenBuilder};
use tooken_client::{CreateToken, TokenWithSecret};
use tooken_testkit::{Backend, TestApp};

use crate::invoices;

pub use tooken_testkit::UNAUTHORIZED_BODY;
pub const INVALID_TOKEN: &str = r#"Bearer realm="tooken", error="invalid_token""#;

/// A running Tooken server on a fresh store, with a live API key. Its
/// clock is shared with the layers made by [`TookenServer::layer`], so that
/// expiry is tested by moving it, not by sleeping.
pub struct TookenServer(TestApp);

impl std::ops::Deref for TookenServer {
    type Target = TestApp;

    fn deref(&self) -> &TestApp {
        &self.0
    }
}

pub async fn spawn_tooken() -> TookenServer {
    TookenServer(TestApp::on(Backend::Sqlite).start().await)
}

impl TookenServer {
    /// Issues a token through the API key.
    pub async fn issue(
        &self,
        scopes: &[&str],
        metadata: Option<Value>,
        expires_in: Option<i64>,
    ) -> TokenWithSecret {
        self.client
            .create_token(&CreateToken {
                name: "client".into(),
                scopes: scopes.iter().map(|s| s.to_string()).collect(),
                metadata,
                expires_in,
                ..Default::default()
            })
            .await
            .unwrap()
    }

    /// Revokes `token` through the API key.
    pub async fn revoke(&self, token: &TokenWithSecret) {
        self.client
            .revoke_token(&token.token.id, None)
            .await
            .unwrap();
    }

    /// A verifier credential: a token that can only verify.
    pub async fn verifier(&self) -> String {
        self.issue(&["tokens:verify"], None, None)
            .await
            .secret
            .expose()
            .to_owned()
    }

    /// A layer talking to this server with a fresh verifier, on its clock.
    pub async fn layer(&self) -> TookenBuilder {
        let verifier = self.verifier().await;
        Tooken::builder(&self.url, &verifier)
            .unwrap()
            .clock(self.clock.clone())
    }
}

impl std::ops::DerefMut for TookenServer {
    fn deref_mut(&mut self) -> &mut TestApp {
        &mut self.0
    }
}

/// A running service: the example's app behind the given layer.
pub struct Service {
    pub url: String,
    http: reqwest::Client,
}

pub async fn spawn_service(tooken: Tooken) -> Service {
    spawn_router(invoices::app(tooken)).await
}

pub async fn spawn_router(app: Router) -> Service {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Service {
        url: format!("http://{addr}"),
        http: reqwest::Client::new(),
    }
}

/// An answer: status, headers, body.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.body))
    }

    pub fn www_authenticate(&self) -> Option<&str> {
        self.headers
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap())
    }

    /// Asserts Tooken's exact 401 for a presented credential.
    pub fn assert_invalid_token(&self) {
        assert_eq!(self.status, StatusCode::UNAUTHORIZED, "{}", self.body);
        assert_eq!(self.body, UNAUTHORIZED_BODY);
        assert_eq!(self.www_authenticate(), Some(INVALID_TOKEN));
    }

    /// Asserts the fail-closed 503.
    pub fn assert_unavailable(&self) {
        assert_eq!(
            self.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            self.body
        );
        let body = self.json();
        assert_eq!(body["error"], "unavailable", "{body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(self.headers["retry-after"], "1");
    }
}

impl Service {
    /// A request with a raw `Authorization` value, if any.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        authorization: Option<&str>,
        body: Option<&str>,
    ) -> Answer {
        let url = format!("{}{path}", self.url);
        let (status, headers, body) =
            tooken_testkit::raw(&self.http, method, &url, authorization, body).await;
        Answer {
            status,
            headers,
            body,
        }
    }

    /// `GET path` with `Authorization: Bearer <token>`.
    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.raw(Method::GET, path, Some(&format!("Bearer {token}")), None)
            .await
    }

    /// The status of `GET /invoices` with `token`.
    pub async fn invoices(&self, token: &str) -> StatusCode {
        self.get("/invoices", token).await.status
    }

    /// `POST path` with a JSON body and `Authorization: Bearer <token>`.
    pub async fn post(&self, path: &str, token: &str, body: &str) -> Answer {
        self.raw(
            Method::POST,
            path,
            Some(&format!("Bearer {token}")),
            Some(body),
        )
        .await
    }
}
