//! A typed async client for the Tooken HTTP API.
//!
//! ```no_run
//! # async fn demo() -> Result<(), tooken_client::Error> {
//! use tooken_client::{Client, CreateToken, VerifyRequest};
//!
//! // Reads TOOKEN_API_KEY and TOOKEN_URL (default http://127.0.0.1:7878).
//! let tooken = Client::from_env()?;
//! let issued = tooken
//!     .create_token(&CreateToken {
//!         name: "billing-sync".into(),
//!         scopes: vec!["invoices:read".into()],
//!         expires_in: Some(3600),
//!         ..Default::default()
//!     })
//!     .await?;
//! let verdict = tooken
//!     .verify(&VerifyRequest { token: issued.secret.clone(), scopes: vec!["invoices:read".into()] })
//!     .await?;
//! assert!(verdict.valid);
//! tooken.revoke_token(&issued.token.id, None).await?;
//! # Ok(()) }
//! ```

use reqwest::{Method, RequestBuilder, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use tooken_core::api::*;
pub use tooken_core::token::{TokenStatus, VerifyCode};
pub use tooken_core::{Mode, Scope, Settings};

/// Where the API is when `TOOKEN_URL` is not set.
pub const DEFAULT_URL: &str = "http://127.0.0.1:7878";

/// Everything that can go wrong calling the API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API answered with an error (`code` is its `error` field).
    #[error("{} ({})", body.message, body.error)]
    Api { status: u16, body: ErrorBody },
    /// The request did not get an answer (connection refused, timeout, …).
    #[error("cannot reach Tooken: {0}")]
    Transport(#[source] reqwest::Error),
    /// The answer was not what the API promises.
    #[error("unexpected response from Tooken: {0}")]
    Decode(String),
    /// The client is not configured (e.g. no API key).
    #[error("{0}")]
    Config(String),
}

impl Error {
    /// The API's error code (`unauthorized`, `not_found`, …), if it answered.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { body, .. } => Some(&body.error),
            _ => None,
        }
    }

    /// The HTTP status, if the API answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Filters and paging for [`Client::list_tokens`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct ListTokens {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub starting_after: Option<String>,
    /// `active`, `expired` or `revoked`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Name prefix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A Tooken API client. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    credential: SecretString,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for the API at `base_url`, authenticating with `credential`
    /// (an API key, or a token with the scopes the calls need).
    pub fn new(base_url: &str, credential: &str) -> Result<Client> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("tooken-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(Error::Transport)?;
        Ok(Client {
            http,
            base: base_url.trim_end_matches('/').to_owned(),
            credential: SecretString::from(credential.to_owned()),
        })
    }

    /// A client configured from `TOOKEN_API_KEY` and `TOOKEN_URL`.
    pub fn from_env() -> Result<Client> {
        let key = std::env::var("TOOKEN_API_KEY")
            .ok()
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                Error::Config("TOOKEN_API_KEY is not set: export your API key in it".into())
            })?;
        let url = std::env::var("TOOKEN_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
        Client::new(&url, &key)
    }

    /// The base URL this client talks to.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The same client with another credential.
    pub fn with_credential(&self, credential: &str) -> Client {
        Client {
            credential: SecretString::from(credential.to_owned()),
            ..self.clone()
        }
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(self.credential.expose_secret())
    }

    async fn send<T: DeserializeOwned>(&self, req: RequestBuilder) -> Result<T> {
        let res = req.send().await.map_err(Error::Transport)?;
        let status = res.status();
        let bytes = res.bytes().await.map_err(Error::Transport)?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| Error::Decode(e.to_string()));
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => Err(Error::Api {
                status: status.as_u16(),
                body,
            }),
            Err(_) => Err(Error::Api {
                status: status.as_u16(),
                body: ErrorBody {
                    error: fallback_code(status).into(),
                    message: format!("HTTP {status}"),
                    field: None,
                    required_scope: None,
                },
            }),
        }
    }

    /// Issues a token. The secret is in the response, and only there.
    pub async fn create_token(&self, req: &CreateToken) -> Result<TokenWithSecret> {
        self.send(self.request(Method::POST, "/v1/tokens").json(req))
            .await
    }

    /// One page of tokens, newest first.
    pub async fn list_tokens(&self, q: &ListTokens) -> Result<Page<TokenObject>> {
        self.send(self.request(Method::GET, "/v1/tokens").query(q))
            .await
    }

    /// Every token matching `q`, following the cursor page by page.
    pub async fn list_all_tokens(&self, q: &ListTokens) -> Result<Vec<TokenObject>> {
        let mut q = q.clone();
        let mut all = Vec::new();
        loop {
            let page = self.list_tokens(&q).await?;
            all.extend(page.data);
            match page.next_cursor {
                Some(cursor) if page.has_more => q.starting_after = Some(cursor),
                _ => return Ok(all),
            }
        }
    }

    pub async fn get_token(&self, id: &str) -> Result<TokenObject> {
        self.send(self.request(Method::GET, &format!("/v1/tokens/{}", segment(id))))
            .await
    }

    pub async fn update_token(&self, id: &str, req: &UpdateToken) -> Result<TokenObject> {
        self.send(
            self.request(Method::PATCH, &format!("/v1/tokens/{}", segment(id)))
                .json(req),
        )
        .await
    }

    /// A new secret for the same token; the old one works for `grace_period_seconds`.
    pub async fn rotate_token(
        &self,
        id: &str,
        grace_period_seconds: i64,
    ) -> Result<TokenWithSecret> {
        let body = RotateToken {
            grace_period_seconds,
        };
        self.send(
            self.request(Method::POST, &format!("/v1/tokens/{}/rotate", segment(id)))
                .json(&body),
        )
        .await
    }

    /// Revokes the token and every token created through it. Idempotent.
    pub async fn revoke_token(&self, id: &str, reason: Option<&str>) -> Result<TokenObject> {
        let body = RevokeToken {
            reason: reason.map(str::to_owned),
        };
        self.send(
            self.request(Method::POST, &format!("/v1/tokens/{}/revoke", segment(id)))
                .json(&body),
        )
        .await
    }

    /// Verifies a token presented to your service.
    pub async fn verify(&self, req: &VerifyRequest) -> Result<VerifyResponse> {
        self.send(self.request(Method::POST, "/v1/tokens/verify").json(req))
            .await
    }

    /// RFC 7662 introspection.
    pub async fn introspect(&self, token: &str) -> Result<IntrospectResponse> {
        let form = IntrospectRequest {
            token: token.to_owned(),
            token_type_hint: None,
        };
        self.send(
            self.request(Method::POST, "/v1/oauth/introspect")
                .form(&form),
        )
        .await
    }

    pub async fn settings(&self) -> Result<Settings> {
        self.send(self.request(Method::GET, "/v1/settings")).await
    }

    pub async fn update_settings(&self, req: &UpdateSettings) -> Result<Settings> {
        self.send(self.request(Method::PATCH, "/v1/settings").json(req))
            .await
    }

    pub async fn whoami(&self) -> Result<Whoami> {
        self.send(self.request(Method::GET, "/v1/whoami")).await
    }

    /// The OpenAPI 3 document.
    pub async fn openapi(&self) -> Result<serde_json::Value> {
        self.send(self.request(Method::GET, "/v1/openapi.json"))
            .await
    }
}

fn fallback_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "invalid_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        409 => "conflict",
        413 => "payload_too_large",
        429 => "rate_limited",
        503 => "unavailable",
        _ => "internal",
    }
}

/// Ids go into paths; anything but an id's characters is percent-encoded.
fn segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
