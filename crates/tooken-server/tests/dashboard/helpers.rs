//! A real server in-process on port 0 with a fresh store, and a little
//! "browser" over reqwest with a cookie jar, for the dashboard's HTTP tests.

use std::sync::Arc;

use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use tooken_core::audit::Actor;
use tooken_core::Clock;
use tooken_server::AppState;
use tooken_store::{AuditContext, Role};
use tooken_testkit::{fast_dashboard, Backend, Fixture, TestApp};

pub const OWNER_EMAIL: &str = "owner@example.com";
pub const OWNER_PASSWORD: &str = "correct horse battery staple";

/// A running server with the dashboard, on a fresh store with workspace
/// `default`, a live API key, and an unused setup link.
pub struct DashApp {
    app: TestApp,
    pub setup_token: String,
}

impl std::ops::Deref for DashApp {
    type Target = TestApp;

    fn deref(&self) -> &TestApp {
        &self.app
    }
}

impl std::ops::DerefMut for DashApp {
    fn deref_mut(&mut self) -> &mut TestApp {
        &mut self.app
    }
}

impl Fixture for DashApp {
    async fn start(backend: Backend, adjust: impl FnOnce(AppState) -> AppState) -> Self {
        let app = TestApp::on(backend)
            .dashboard(fast_dashboard())
            .setup_link()
            .start_adjusted(adjust)
            .await;
        DashApp {
            setup_token: app.setup_token.clone().expect("asked for"),
            app,
        }
    }
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
        let hash = tooken_service::password::hash_password(
            password.to_owned().into(),
            fast_dashboard().sign_in.password_params,
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
        tooken_testkit::get_status(&self.url, "/v1/whoami", key).await
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
        tooken_testkit::html::field_value(&self.body, name)
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
        tooken_testkit::html::text_of(&self.body, id)
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
