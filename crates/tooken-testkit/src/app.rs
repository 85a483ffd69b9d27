//! The real server in-process on port 0, on a fresh store.

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::sync::oneshot;
use tooken_client::{
    Client, CreateToken, TokenWithSecret, VerifyCode, VerifyRequest, VerifyResponse,
};
use tooken_core::audit::Actor;
use tooken_core::credential::API_KEY_PREFIX;
use tooken_core::{Clock, Credential, ManualClock, Mode};
use tooken_server::dashboard::{DashboardConfig, DashboardState};
use tooken_server::{AppState, Limits, TlsConfig};
use tooken_store::{ApiKey, AuditContext, NewApiKey, Store};

use crate::database::{Backend, TestStore};

/// Section 3's one 401 body.
pub const UNAUTHORIZED_BODY: &str =
    r#"{"error":"unauthorized","message":"Invalid or missing API key"}"#;

/// What [`store_test!`](crate::store_test) starts for each run: a server
/// (or whatever the binary tests) on a fresh store of `backend`, its state
/// passed through `adjust` before it serves.
pub trait Fixture: Sized {
    #[allow(async_fn_in_trait)]
    async fn start(backend: Backend, adjust: impl FnOnce(AppState) -> AppState) -> Self;
}

/// The dashboard as a server behind nothing would have it, but with a
/// cheap password hash (the cost is a parameter; the code path is the
/// same).
pub fn fast_dashboard() -> DashboardConfig {
    DashboardConfig {
        sign_in: tooken_service::SignInPolicy {
            password_params: argon2::Params::new(1024, 1, 1, None)
                .expect("valid argon2 parameters"),
            ..Default::default()
        },
        ..DashboardConfig::default()
    }
}

/// A running server on a fresh store, with workspace `default` and a live
/// API key for it. The clock is a [`ManualClock`]: tests move time.
pub struct TestApp {
    pub addr: SocketAddr,
    /// `http://ADDRESS` (also when it serves TLS: such tests talk to
    /// `addr` themselves).
    pub url: String,
    pub store: Store,
    pub clock: Arc<ManualClock>,
    pub workspace_id: String,
    /// A live API key's secret.
    pub api_key: String,
    pub api_key_id: String,
    /// The first dashboard setup link's token, when asked for.
    pub setup_token: Option<String>,
    /// Authenticated with `api_key`.
    pub client: Client,
    pub http: reqwest::Client,
    /// The server's shared state: for flushing usage or running retention.
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    test_store: Arc<TestStore>,
}

/// How to start a [`TestApp`].
pub struct TestAppBuilder {
    backend: Backend,
    limits: Limits,
    tls: Option<TlsConfig>,
    dashboard: Option<DashboardConfig>,
    setup_link: bool,
}

impl TestApp {
    /// A server on a fresh store of `backend`.
    pub fn on(backend: Backend) -> TestAppBuilder {
        TestAppBuilder {
            backend,
            limits: Limits::default(),
            tls: None,
            dashboard: None,
            setup_link: false,
        }
    }
}

impl TestAppBuilder {
    /// Serves under `limits`.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Serves over TLS.
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The dashboard with `config` (default: [`DashboardConfig::default`]).
    pub fn dashboard(mut self, config: DashboardConfig) -> Self {
        self.dashboard = Some(config);
        self
    }

    /// Makes the first dashboard setup link ([`TestApp::setup_token`]).
    pub fn setup_link(mut self) -> Self {
        self.setup_link = true;
        self
    }

    /// Starts it.
    pub async fn start(self) -> TestApp {
        self.start_adjusted(|state| state).await
    }

    /// Starts it, its state passed through `adjust` first.
    pub async fn start_adjusted(self, adjust: impl FnOnce(AppState) -> AppState) -> TestApp {
        let test_store = Arc::new(TestStore::create(self.backend).await);
        let store = test_store.open().await;
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let ctx = AuditContext::new(Actor::system());
        let ws = store
            .create_workspace(
                &tooken_store::DEFAULT_WORKSPACE.parse().unwrap(),
                &ctx,
                clock.now(),
            )
            .await
            .unwrap();
        let (api_key, key) = create_api_key(&store, &ws.id, Mode::Live, "test", clock.now()).await;
        let setup_token = match self.setup_link {
            true => Some(
                tooken_service::Service::new(store.clone(), clock.clone())
                    .create_setup_link(&tooken_service::Caller::system(), &ws.id)
                    .await
                    .unwrap(),
            ),
            false => None,
        };
        let mut state = AppState::new(store.clone(), clock.clone());
        if let Some(config) = self.dashboard {
            state = state.with_dashboard(DashboardState::new(config));
        }
        let mut app = serve(
            adjust(state),
            clock,
            self.limits,
            self.tls,
            test_store,
            api_key,
            key.id,
        )
        .await;
        app.workspace_id = ws.id;
        app.setup_token = setup_token;
        app
    }
}

/// Serves `state` on a new port-0 listener.
async fn serve(
    state: AppState,
    clock: Arc<ManualClock>,
    limits: Limits,
    tls: Option<TlsConfig>,
    test_store: Arc<TestStore>,
    api_key: String,
    api_key_id: String,
) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
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
    TestApp {
        addr,
        client: Client::new(&url, &api_key).unwrap(),
        url,
        store: state.service.store().clone(),
        clock,
        workspace_id: String::new(),
        api_key,
        api_key_id,
        setup_token: None,
        http: reqwest::Client::new(),
        state,
        shutdown: Some(tx),
        server: Some(server),
        test_store,
    }
}

/// Creates an API key named `name` straight in the store, as `tooken
/// admin` does; its secret and what the store holds.
pub async fn create_api_key(
    store: &Store,
    workspace_id: &str,
    mode: Mode,
    name: &str,
    now: DateTime<Utc>,
) -> (String, ApiKey) {
    let secret = Credential::generate(API_KEY_PREFIX, mode);
    let name = name.parse().expect("a valid API key name");
    let key = store
        .create_api_key(
            NewApiKey {
                workspace_id,
                mode,
                name: &name,
                secret_hash: secret.hash(),
                hint: secret.hint(),
            },
            &AuditContext::new(Actor::admin_cli()),
            now,
        )
        .await
        .unwrap();
    (secret.expose().to_owned(), key)
}

impl Fixture for TestApp {
    async fn start(backend: Backend, adjust: impl FnOnce(AppState) -> AppState) -> Self {
        TestApp::on(backend).start_adjusted(adjust).await
    }
}

impl TestApp {
    /// The store's URL (`tooken serve --database` takes it).
    pub fn store_url(&self) -> &str {
        &self.test_store.url
    }

    /// Which store it runs on.
    pub fn backend(&self) -> Backend {
        self.test_store.backend
    }

    /// A second server on the same store, with its own connections (and,
    /// on PostgreSQL, its own change listener) and the same clock: another
    /// node of the same service.
    pub async fn another_node(&self) -> TestApp {
        let store = self.test_store.open().await;
        let state = AppState::new(store, self.clock.clone());
        let mut node = serve(
            state,
            self.clock.clone(),
            Limits::default(),
            None,
            self.test_store.clone(),
            self.api_key.clone(),
            self.api_key_id.clone(),
        )
        .await;
        node.workspace_id = self.workspace_id.clone();
        node
    }

    /// Waits until the store follows its changes, so that caches are
    /// trusted (at once on SQLite; on PostgreSQL once the change listener
    /// is subscribed, until then every lookup bypasses the cache).
    pub async fn wait_for_change_feed(&self) {
        let store = self.store.clone();
        crate::eventually(
            "the store follows its changes",
            std::time::Duration::from_secs(10),
            || std::future::ready(store.change_marker().is_some()),
        )
        .await;
    }

    /// Creates an API key straight in the store, as `tooken admin` does.
    pub async fn new_api_key(&self, mode: Mode) -> (String, ApiKey) {
        self.new_api_key_in(&self.workspace_id, mode).await
    }

    pub async fn new_api_key_in(&self, workspace_id: &str, mode: Mode) -> (String, ApiKey) {
        create_api_key(&self.store, workspace_id, mode, "test", self.clock.now()).await
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

    /// `POST /v1/tokens/verify` of `secret` with the API key, for no scope.
    pub async fn verify(&self, secret: &str) -> VerifyResponse {
        self.client
            .verify(&VerifyRequest {
                token: secret.into(),
                scopes: Vec::new(),
            })
            .await
            .unwrap()
    }

    /// The verification code of `secret`.
    pub async fn verify_code(&self, secret: &str) -> VerifyCode {
        self.verify(secret).await.code
    }

    /// A raw request: for checking exact status, headers and body.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        authorization: Option<&str>,
        body: Option<&str>,
    ) -> (StatusCode, HeaderMap, String) {
        let url = format!("{}{path}", self.url);
        raw(&self.http, method, &url, authorization, body).await
    }

    /// A raw JSON request with the API key: its status and body (JSON, or
    /// the text as a JSON string).
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

    /// Writes out usage and authentication failures gathered in memory.
    pub async fn flush(&self) {
        self.state.service.flush(true).await;
    }

    /// All events of a chain, oldest first.
    pub async fn events(&self, chain: &str) -> Vec<tooken_core::audit::Event> {
        self.store.chain(chain).await.unwrap()
    }

    pub fn clock_now(&self) -> DateTime<Utc> {
        self.clock.now()
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

    /// Stops the server gracefully (writing out usage) and waits for it.
    pub async fn stop(&mut self) {
        self.begin_stop();
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }
}

/// A request with a raw `Authorization` value and JSON body, if any: its
/// status, headers and body.
pub async fn raw(
    http: &reqwest::Client,
    method: Method,
    url: &str,
    authorization: Option<&str>,
    body: Option<&str>,
) -> (StatusCode, HeaderMap, String) {
    let mut req = http.request(method, url);
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
