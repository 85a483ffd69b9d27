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
//!
//! Lists come a page at a time ([`Client::list_tokens`],
//! [`Client::list_audit_events`]) or as a stream that follows the cursor:
//!
//! ```no_run
//! # async fn demo(tooken: tooken_client::Client) -> Result<(), tooken_client::Error> {
//! use futures_util::{StreamExt, TryStreamExt};
//! use tooken_client::{AuditQuery, ListTokens};
//!
//! let active = ListTokens { status: Some("active".into()), ..Default::default() };
//! let mut tokens = std::pin::pin!(tooken.tokens_stream(&active));
//! while let Some(token) = tokens.try_next().await? {
//!     println!("{} {}", token.id, token.name);
//! }
//!
//! // The whole audit log as NDJSON, oldest first, without holding it in memory.
//! let mut export = std::pin::pin!(tooken.export_audit(&AuditQuery::default()).await?);
//! while let Some(chunk) = export.next().await {
//!     std::io::Write::write_all(&mut std::io::stdout(), &chunk?).ok();
//! }
//! # Ok(()) }
//! ```
//!
//! Over `https://`, the server's certificate must chain to one of the public
//! webpki roots or to a CA added with [`ClientBuilder::add_root_certificates_pem`]
//! (see [`Client::builder`]).

use std::future::Future;

use chrono::{DateTime, Utc};
use futures_util::stream::{self, Stream, TryStreamExt};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use bytes::Bytes;
pub use tooken_core::audit::Event;

pub use tooken_core::api::*;
pub use tooken_core::authz::{MethodsSpec, RuleSpec, RuleWarning, RulesAnswer, RulesSpec};
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

/// Filters and paging for the audit log ([`Client::list_audit_events`],
/// [`Client::audit_events_stream`], [`Client::export_audit`]).
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditQuery {
    /// 1–100 events per page (default 20). Not used by the export.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// An event id from a previous page. Not used by the export.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub starting_after: Option<String>,
    /// e.g. `token.revoked`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The id of the API key or token that acted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The id of the object acted on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Events at or after this time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// Events before this time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
}

impl AuditQuery {
    /// The same filters without paging: what the export accepts.
    fn filters_only(&self) -> AuditQuery {
        AuditQuery {
            limit: None,
            starting_after: None,
            ..self.clone()
        }
    }
}

/// Builds a [`Client`] with options beyond [`Client::new`]'s.
///
/// HTTPS servers are trusted when their certificate chains to one of the
/// usual public roots (webpki-roots), or to a certificate added with
/// [`ClientBuilder::add_root_certificates_pem`]:
///
/// ```no_run
/// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let ca = std::fs::read("/etc/tooken/ca.pem")?;
/// let tooken = tooken_client::Client::builder("https://tooken.internal:7878", "tok_live_…")
///     .add_root_certificates_pem(&ca)?
///     .build()?;
/// # drop(tooken); Ok(()) }
/// ```
pub struct ClientBuilder {
    base: String,
    credential: SecretString,
    roots: Vec<reqwest::Certificate>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("base", &self.base)
            .field("roots", &self.roots.len())
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// A builder configured from `TOOKEN_API_KEY` and `TOOKEN_URL`
    /// (default [`DEFAULT_URL`]).
    pub fn from_env() -> Result<ClientBuilder> {
        let key = std::env::var("TOOKEN_API_KEY")
            .ok()
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                Error::Config(
                    "TOOKEN_API_KEY is not set: export an API key (tok_live_…, tok_test_…) \
                     or a token in it"
                        .into(),
                )
            })?;
        let url = std::env::var("TOOKEN_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| DEFAULT_URL.to_owned());
        check_url(&url).map_err(|e| match e {
            Error::Config(msg) => Error::Config(format!("TOOKEN_URL: {msg}")),
            e => e,
        })?;
        Ok(Client::builder(&url, &key))
    }

    /// Also trusts the CA certificate(s) in `pem` (one or more `BEGIN
    /// CERTIFICATE` blocks), e.g. a private CA that signed the server's
    /// certificate.
    pub fn add_root_certificates_pem(mut self, pem: &[u8]) -> Result<ClientBuilder> {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| Error::Config(format!("not a PEM certificate: {}", root_message(&e))))?;
        if certs.is_empty() {
            return Err(Error::Config(
                "no certificate in it (expected a PEM \"BEGIN CERTIFICATE\" block)".into(),
            ));
        }
        self.roots.extend(certs);
        Ok(self)
    }

    pub fn build(self) -> Result<Client> {
        check_url(&self.base)?;
        let mut http = reqwest::Client::builder()
            .user_agent(concat!("tooken-client/", env!("CARGO_PKG_VERSION")));
        for cert in self.roots {
            http = http.add_root_certificate(cert);
        }
        Ok(Client {
            http: http.build().map_err(Error::Transport)?,
            base: self.base.trim_end_matches('/').to_owned(),
            credential: self.credential,
        })
    }
}

fn check_url(base_url: &str) -> Result<()> {
    match reqwest::Url::parse(base_url) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => Ok(()),
        _ => Err(Error::Config(format!(
            "{base_url:?} is not an http:// or https:// URL"
        ))),
    }
}

/// The innermost cause of a reqwest error.
fn root_message(e: &reqwest::Error) -> String {
    let mut inner: &dyn std::error::Error = e;
    while let Some(source) = inner.source() {
        inner = source;
    }
    inner.to_string()
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
        Client::builder(base_url, credential).build()
    }

    /// A client configured from `TOOKEN_API_KEY` and `TOOKEN_URL`.
    pub fn from_env() -> Result<Client> {
        ClientBuilder::from_env()?.build()
    }

    /// A [`ClientBuilder`], for options such as a private CA's certificate.
    pub fn builder(base_url: &str, credential: &str) -> ClientBuilder {
        ClientBuilder {
            base: base_url.to_owned(),
            credential: SecretString::from(credential.to_owned()),
            roots: Vec::new(),
        }
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
        Err(api_error(status, &bytes))
    }

    /// Sends `req`; a success answer is handed back unread, for streaming.
    async fn send_streaming(&self, req: RequestBuilder) -> Result<Response> {
        let res = req.send().await.map_err(Error::Transport)?;
        let status = res.status();
        if status.is_success() {
            return Ok(res);
        }
        let bytes = res.bytes().await.map_err(Error::Transport)?;
        Err(api_error(status, &bytes))
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
        self.tokens_stream(q).try_collect().await
    }

    /// Every token matching `q`, newest first, as a stream that fetches the
    /// next page (`q.limit` tokens each) only when it is needed.
    pub fn tokens_stream(&self, q: &ListTokens) -> impl Stream<Item = Result<TokenObject>> + '_ {
        let q = q.clone();
        paginate(move |cursor| {
            let q = ListTokens {
                starting_after: cursor.or_else(|| q.starting_after.clone()),
                ..q.clone()
            };
            async move { self.list_tokens(&q).await }
        })
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
            token: token.into(),
            token_type_hint: None,
        };
        self.send(
            self.request(Method::POST, "/v1/oauth/introspect")
                .form(&form),
        )
        .await
    }

    /// The gateway route rules of the key's workspace and mode (an API
    /// key), with warnings about rules that can never match.
    pub async fn authz_rules(&self) -> Result<RulesAnswer> {
        self.send(self.request(Method::GET, "/v1/authz/rules"))
            .await
    }

    /// Replaces the gateway route rules of the key's workspace and mode
    /// (an API key); answers them as stored, with their warnings.
    pub async fn set_authz_rules(&self, rules: &RulesSpec) -> Result<RulesAnswer> {
        self.send(self.request(Method::PUT, "/v1/authz/rules").json(rules))
            .await
    }

    pub async fn settings(&self) -> Result<Settings> {
        self.send(self.request(Method::GET, "/v1/settings")).await
    }

    pub async fn update_settings(&self, req: &UpdateSettings) -> Result<Settings> {
        self.send(self.request(Method::PATCH, "/v1/settings").json(req))
            .await
    }

    /// One page of audit events, newest first. Needs `audit:read`.
    pub async fn list_audit_events(&self, q: &AuditQuery) -> Result<Page<Event>> {
        self.send(self.request(Method::GET, "/v1/audit-log").query(q))
            .await
    }

    /// Every audit event matching `q`, newest first, following the cursor.
    pub fn audit_events_stream(&self, q: &AuditQuery) -> impl Stream<Item = Result<Event>> + '_ {
        let q = q.clone();
        paginate(move |cursor| {
            let q = AuditQuery {
                starting_after: cursor.or_else(|| q.starting_after.clone()),
                ..q.clone()
            };
            async move { self.list_audit_events(&q).await }
        })
    }

    /// Every audit event matching `q`'s filters as NDJSON (one
    /// [`Event`] per line, oldest first, in chain order), streamed as the
    /// server sends it. `limit` and `starting_after` are not used.
    ///
    /// An error answer (401, 403, 400) is returned before any byte; a
    /// stream that breaks off later yields an [`Error::Transport`] item.
    pub async fn export_audit(
        &self,
        q: &AuditQuery,
    ) -> Result<impl Stream<Item = Result<Bytes>> + use<>> {
        let res = self
            .send_streaming(
                self.request(Method::GET, "/v1/audit-log/export")
                    .query(&q.filters_only()),
            )
            .await?;
        Ok(stream::try_unfold(res, |mut res| async move {
            let chunk = res.chunk().await.map_err(Error::Transport)?;
            Ok(chunk.map(|c| (c, res)))
        }))
    }

    pub async fn whoami(&self) -> Result<Whoami> {
        self.send(self.request(Method::GET, "/v1/whoami")).await
    }

    /// A token's use per day over the last `days` (default 30, at most 90).
    pub async fn token_usage(&self, id: &str, days: Option<u32>) -> Result<TokenUsage> {
        let mut req = self.request(Method::GET, &format!("/v1/tokens/{}/usage", segment(id)));
        if let Some(d) = days {
            req = req.query(&[("days", d)]);
        }
        self.send(req).await
    }

    /// The OpenAPI 3 document.
    pub async fn openapi(&self) -> Result<serde_json::Value> {
        self.send(self.request(Method::GET, "/v1/openapi.json"))
            .await
    }
}

/// The error an answer with a non-success `status` and body `bytes` stands for.
fn api_error(status: StatusCode, bytes: &[u8]) -> Error {
    let body = serde_json::from_slice::<ErrorBody>(bytes).unwrap_or_else(|_| ErrorBody {
        error: fallback_code(status).into(),
        message: format!("HTTP {status}"),
        field: None,
        required_scope: None,
    });
    Error::Api {
        status: status.as_u16(),
        body,
    }
}

/// Every item of every page, fetching the next page (by its cursor) only
/// when the items before it have been consumed.
fn paginate<T, F, Fut>(mut fetch: F) -> impl Stream<Item = Result<T>>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<Page<T>>>,
{
    // `None` once the last page has been fetched; `Some(cursor)` before.
    let first: Option<Option<String>> = Some(None);
    stream::try_unfold(first, move |cursor| {
        let page = cursor.map(&mut fetch);
        async move {
            let Some(page) = page else {
                return Ok(None);
            };
            let page = page.await?;
            let next = match page.next_cursor {
                Some(cursor) if page.has_more => Some(Some(cursor)),
                _ => None,
            };
            Ok(Some((stream::iter(page.data.into_iter().map(Ok)), next)))
        }
    })
    .try_flatten()
}

fn fallback_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "invalid_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        408 => "request_timeout",
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
