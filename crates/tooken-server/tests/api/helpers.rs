use std::net::SocketAddr;
use std::sync::Arc;

use chrono::Utc;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tooken_client::{Client, CreateToken, TokenWithSecret};
use tooken_core::audit::Actor;
use tooken_core::credential::API_KEY_PREFIX;
use tooken_core::{Clock, Credential, ManualClock, Mode};
use tooken_server::{AppState, Limits, TlsConfig};
use tooken_store::{ApiKey, AuditContext, NewApiKey, Store};

pub use crate::pg::TestDatabase;

pub const UNAUTHORIZED_BODY: &str =
    r#"{"error":"unauthorized","message":"Invalid or missing API key"}"#;

/// A running server on a fresh store, with a live API key for `default`.
pub struct TestApp {
    pub addr: SocketAddr,
    pub url: String,
    pub store: Store,
    pub clock: Arc<ManualClock>,
    pub workspace_id: String,
    /// A live API key's secret.
    pub api_key: String,
    pub api_key_id: String,
    /// A client authenticated with `api_key`.
    pub client: Client,
    pub http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    /// The server's shared state: for flushing usage or running retention.
    pub state: AppState,
    _dir: TempDir,
    _database: Option<TestDatabase>,
}

/// Which store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Starts the server on a fresh store of `backend`, with its state passed
/// through `adjust` first. `None` when PostgreSQL is not available and not
/// required (a notice is printed); with `TOOKEN_TEST_REQUIRE_ALL=1` a missing
/// PostgreSQL fails the test instead.
pub async fn spawn_app_on(
    backend: Backend,
    adjust: impl FnOnce(AppState) -> AppState,
) -> Option<TestApp> {
    spawn_app_with(backend, adjust, Limits::default(), None).await
}

/// Like [`spawn_app_on`], serving under `limits`, and over TLS when `tls`
/// is given (then `url` and `client` still say `http://`: such tests talk
/// to `addr` themselves).
pub async fn spawn_app_with(
    backend: Backend,
    adjust: impl FnOnce(AppState) -> AppState,
    limits: Limits,
    tls: Option<TlsConfig>,
) -> Option<TestApp> {
    let dir = tempfile::tempdir().unwrap();
    let (url, database) = match backend {
        Backend::Sqlite => (
            format!("sqlite://{}", dir.path().join("tooken.db").display()),
            None,
        ),
        Backend::Postgres => {
            let db = TestDatabase::create().await?;
            (db.url.clone(), Some(db))
        }
    };
    let store = Store::open(&url).await.unwrap();
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let ctx = AuditContext::new(Actor::system());
    let ws = store
        .create_workspace(&"default".parse().unwrap(), &ctx, clock.now())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let state = adjust(AppState::new(store.clone(), clock.clone()));
    let server = tokio::spawn(tooken_server::serve_with(
        listener,
        state.clone(),
        limits,
        tls,
        async {
            let _ = rx.await;
        },
    ));
    let url = format!("http://{addr}");
    let mut app = TestApp {
        addr,
        url: url.clone(),
        store,
        clock,
        workspace_id: ws.id,
        api_key: String::new(),
        api_key_id: String::new(),
        client: Client::new(&url, "unset").unwrap(),
        http: reqwest::Client::new(),
        shutdown: Some(tx),
        server: Some(server),
        state,
        _dir: dir,
        _database: database,
    };
    let (secret, key) = app.new_api_key(Mode::Live).await;
    app.client = Client::new(&url, &secret).unwrap();
    app.api_key = secret;
    app.api_key_id = key.id;
    Some(app)
}

impl TestApp {
    /// Creates an API key straight in the store, as `tooken admin` does.
    pub async fn new_api_key(&self, mode: Mode) -> (String, ApiKey) {
        self.new_api_key_in(&self.workspace_id, mode).await
    }

    pub async fn new_api_key_in(&self, workspace_id: &str, mode: Mode) -> (String, ApiKey) {
        let secret = Credential::generate(API_KEY_PREFIX, mode);
        let key = self
            .store
            .create_api_key(
                NewApiKey {
                    workspace_id,
                    mode,
                    name: "test",
                    secret_hash: secret.hash(),
                    hint: secret.hint(),
                },
                &AuditContext::new(Actor::admin_cli()),
                self.clock.now(),
            )
            .await
            .unwrap();
        (secret.expose().to_owned(), key)
    }

    /// Issues a token with the given scopes through the API key.
    pub async fn token(&self, name: &str, scopes: &[&str]) -> TokenWithSecret {
        self.client
            .create_token(&CreateToken {
                name: name.into(),
                scopes: scopes.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            })
            .await
            .unwrap()
    }

    /// A raw request: for checking exact status, headers and body.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        authorization: Option<&str>,
        body: Option<&str>,
    ) -> (StatusCode, HeaderMap, String) {
        let mut req = self.http.request(method, format!("{}{}", self.url, path));
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_owned());
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        (status, headers, res.text().await.unwrap())
    }

    /// A raw JSON request with the API key.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        let auth = format!("Bearer {}", self.api_key);
        let (status, _, text) = self.raw(method, path, Some(&auth), body).await;
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, json)
    }

    /// Tells the server to stop, without waiting for it.
    pub fn begin_stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Whether the server has stopped.
    pub fn stopped(&self) -> bool {
        self.server.as_ref().is_none_or(|s| s.is_finished())
    }

    /// Stops the server gracefully (flushing usage) and waits for it.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }
}

/// Asserts a `400 invalid_request` naming `field`.
pub fn assert_invalid(status: StatusCode, body: &Value, field: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_request", "{body}");
    assert_eq!(body["field"], field, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

impl TestApp {
    /// Writes out usage and authentication failures gathered in memory.
    pub async fn flush(&self) {
        self.state.usage.flush(&self.store).await;
        self.state
            .failures
            .flush(&self.store, self.clock_now(), true)
            .await;
    }

    /// All events of a chain, oldest first.
    pub async fn events(&self, chain: &str) -> Vec<tooken_core::audit::Event> {
        self.store.chain(chain).await.unwrap()
    }

    pub fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }
}
