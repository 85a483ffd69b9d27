//! A real server in-process on port 0 with a fresh store, and a little
//! "browser" over reqwest with a cookie jar, for the dashboard's HTTP tests.

use std::sync::Arc;

use crate::pg::TestDatabase;
use chrono::Utc;
use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tooken_core::audit::Actor;
use tooken_core::credential::API_KEY_PREFIX;
use tooken_core::{Clock, Credential, ManualClock, Mode};
use tooken_server::dashboard::{DashboardConfig, DashboardState};
use tooken_server::AppState;
use tooken_store::{AuditContext, NewApiKey, Role, Store};

pub const OWNER_EMAIL: &str = "owner@example.com";
pub const OWNER_PASSWORD: &str = "correct horse battery staple";

/// Which store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A running server on a fresh store with workspace `default`, a live API
/// key, and an unused setup link.
pub struct DashApp {
    pub url: String,
    pub store: Store,
    pub clock: Arc<ManualClock>,
    pub workspace_id: String,
    pub api_key: String,
    pub setup_token: String,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dir: TempDir,
    _database: Option<TestDatabase>,
}

/// Cheap argon2 for tests: the cost is a parameter, the code path is the
/// same.
pub fn test_config() -> DashboardConfig {
    DashboardConfig {
        password_params: argon2::Params::new(1024, 1, 1, None).unwrap(),
        ..DashboardConfig::default()
    }
}

pub async fn spawn(backend: Backend) -> Option<DashApp> {
    spawn_with(backend, test_config()).await
}

pub async fn spawn_with(backend: Backend, config: DashboardConfig) -> Option<DashApp> {
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
    let secret = Credential::generate(API_KEY_PREFIX, Mode::Live);
    store
        .create_api_key(
            NewApiKey {
                workspace_id: &ws.id,
                mode: Mode::Live,
                name: "first key",
                secret_hash: secret.hash(),
                hint: secret.hint(),
            },
            &ctx,
            clock.now(),
        )
        .await
        .unwrap();
    let setup_token = tooken_server::dashboard::create_setup_link(&store, &ws.id, clock.now())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let state =
        AppState::new(store.clone(), clock.clone()).with_dashboard(DashboardState::new(config));
    let server = tokio::spawn(tooken_server::serve(listener, state, async {
        let _ = rx.await;
    }));
    Some(DashApp {
        url: format!("http://{addr}"),
        store,
        clock,
        workspace_id: ws.id,
        api_key: secret.expose().to_owned(),
        setup_token,
        shutdown: Some(tx),
        server: Some(server),
        _dir: dir,
        _database: database,
    })
}

impl DashApp {
    pub fn browser(&self) -> Browser {
        Browser::new(&self.url)
    }

    /// A browser signed in as the first owner, made through the setup link.
    pub async fn owner(&self) -> Browser {
        let b = self.browser();
        let path = format!("/dashboard/setup/{}", self.setup_token);
        let page = b.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let res = b
            .post(
                &path,
                &[
                    ("csrf", &page.csrf()),
                    ("email", OWNER_EMAIL),
                    ("name", "Olivia Owner"),
                    ("password", OWNER_PASSWORD),
                    ("confirm", OWNER_PASSWORD),
                ],
            )
            .await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
        b
    }

    /// Creates a user straight in the store, as `tooken admin users create`.
    pub async fn user(&self, email: &str, role: Role, password: &str) {
        let hash = tooken_server::dashboard::password::hash_password(
            password.to_owned().into(),
            test_config().password_params,
        )
        .await
        .unwrap();
        self.store
            .create_user(
                tooken_store::NewUser {
                    email,
                    name: "Test User",
                    password_hash: &hash,
                },
                &self.workspace_id,
                role,
                &AuditContext::new(Actor::admin_cli()),
                self.clock.now(),
            )
            .await
            .unwrap();
    }

    /// A browser signed in as `email`.
    pub async fn signed_in(&self, email: &str, password: &str) -> Browser {
        let b = self.browser();
        let res = b.login(email, password).await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
        b
    }

    /// `GET /v1/whoami` with `key`: its status.
    pub async fn whoami_status(&self, key: &str) -> StatusCode {
        reqwest::Client::new()
            .get(format!("{}/v1/whoami", self.url))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
            .status()
    }

    /// The actions of the workspace's audit events, oldest first.
    pub async fn actions(&self) -> Vec<String> {
        self.store
            .chain(&self.workspace_id)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect()
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }
}

/// An answer, with what a test reads from it.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    /// The value of the page's first `csrf` hidden field.
    pub fn csrf(&self) -> String {
        self.field_value("csrf")
            .unwrap_or_else(|| panic!("no csrf field in {}", self.body))
    }

    /// The `value` of the first input named `name`.
    pub fn field_value(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&marker)? + marker.len();
        let end = self.body[start..].find('"')? + start;
        Some(self.body[start..end].to_owned())
    }

    /// Where a redirect goes.
    pub fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no location: {:?} {}", self.status, self.body))
    }

    /// The text of the element with `id` (up to its closing tag).
    pub fn text_of(&self, id: &str) -> Option<String> {
        let marker = format!("id=\"{id}\">");
        let start = self.body.find(&marker)? + marker.len();
        let end = self.body[start..].find('<')? + start;
        Some(self.body[start..end].to_owned())
    }
}

/// A cookie-keeping HTTP client that does not follow redirects, so each
/// step's status is seen.
pub struct Browser {
    pub base: String,
    pub jar: Arc<Jar>,
    client: reqwest::Client,
}

impl Browser {
    pub fn new(base: &str) -> Browser {
        let jar = Arc::new(Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Browser {
            base: base.to_owned(),
            jar,
            client,
        }
    }

    /// The cookies the browser would send to the dashboard.
    pub fn cookies(&self) -> String {
        let url = format!("{}/dashboard/", self.base).parse().unwrap();
        self.jar
            .cookies(&url)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }

    /// The value of one cookie.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies()
            .split("; ")
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
    }

    pub async fn get(&self, path: &str) -> Page {
        let res = self
            .client
            .get(format!("{}{}", self.base, path))
            .send()
            .await
            .unwrap();
        page(res).await
    }

    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let res = self
            .client
            .post(format!("{}{}", self.base, path))
            .form(fields)
            .send()
            .await
            .unwrap();
        page(res).await
    }

    /// GETs `path`, then POSTs its form with the page's CSRF token and
    /// `fields`.
    pub async fn submit(&self, form_page: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.get(form_page).await.csrf();
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post(action, &all).await
    }

    /// Follows a redirect answer (one step).
    pub async fn follow(&self, res: &Page) -> Page {
        self.get(res.location()).await
    }

    pub async fn login(&self, email: &str, password: &str) -> Page {
        let csrf = self.get("/dashboard/login").await.csrf();
        self.post(
            "/dashboard/login",
            &[("csrf", &csrf), ("email", email), ("password", password)],
        )
        .await
    }
}

async fn page(res: reqwest::Response) -> Page {
    Page {
        status: res.status(),
        headers: res.headers().clone(),
        body: res.text().await.unwrap(),
    }
}
