//! The dashboard in a real browser: headless Chromium, driven through
//! chromedriver (WebDriver) with fantoccini, against the real server.
//!
//! Needs Chromium and chromedriver (reported ignored without them, unless
//! `TOOKEN_TEST_REQUIRE_ALL=1`). Every wait is bounded, and the whole run
//! too. A screenshot of each page is written to
//! `docs/screenshots/` (overwritten on each run).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::response::Html;
use fantoccini::wd::{Capabilities, TimeoutConfiguration};
use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::FutureExt;
use serde_json::{json, Value};
use tooken_core::token::VerifyCode;
use tooken_core::Mode;
use tooken_store::Role;

use tooken_testkit::service::{CHROMEDRIVER, CHROMIUM};
use tooken_testkit::{Backend, Fixture};

use crate::helpers::{DashApp, OWNER_EMAIL, OWNER_PASSWORD};
/// Longest wait for any one element, page or process.
const WAIT: Duration = Duration::from_secs(20);
/// Longest the whole browser run may take.
const WHOLE_RUN: Duration = Duration::from_secs(240);

type Res<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// chromedriver as a child process, killed when dropped.
struct Driver {
    child: Child,
    url: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts chromedriver on a port of its choosing (`--port=0`), read back
/// from its first line of output.
async fn start_driver() -> Driver {
    let mut child = Command::new(CHROMEDRIVER)
        .arg("--port=0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok);
        let port = lines.find_map(|line| {
            let rest = line.split("started successfully on port ").nth(1)?;
            rest.trim_end_matches('.').trim().parse::<u16>().ok()
        });
        let _ = tx.send(port);
        // Keep reading, so that chromedriver never blocks on a full pipe.
        lines.for_each(drop);
    });
    let port = tokio::task::spawn_blocking(move || rx.recv_timeout(WAIT))
        .await
        .unwrap()
        .ok()
        .flatten()
        .expect("chromedriver says which port it listens on");
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _profile: tempfile::tempdir().unwrap(),
    };
    // Ready when its status endpoint answers: polled, within a bound.
    let status = format!("{}/status", driver.url);
    let ready =
        || async { matches!(reqwest::get(&status).await, Ok(r) if r.status().is_success()) };
    tooken_testkit::eventually("chromedriver answers", WAIT, ready).await;
    driver
}

async fn open_browser(driver: &Driver) -> Client {
    let mut caps = Capabilities::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1360,900",
                "--hide-scrollbars",
                format!("--user-data-dir={}", driver._profile.path().display()),
            ],
        }),
    );
    let client = tokio::time::timeout(
        WAIT,
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&driver.url),
    )
    .await
    .expect("a browser session within the time limit")
    .expect("a browser session");
    client
        .update_timeouts(TimeoutConfiguration::new(
            Some(WAIT),
            Some(WAIT),
            Some(Duration::ZERO),
        ))
        .await
        .unwrap();
    client
}

fn screenshots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What the test drives: the browser, the app, and where screenshots go.
struct Run<'a> {
    c: &'a Client,
    app: &'a DashApp,
    shots: PathBuf,
}

impl Run<'_> {
    async fn goto(&self, path: &str) -> Res {
        self.c.goto(&format!("{}{path}", self.app.url)).await?;
        Ok(())
    }

    /// Waits (bounded) for an element.
    async fn find(&self, css: &str) -> Res<fantoccini::elements::Element> {
        Ok(self
            .c
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await?)
    }

    async fn text(&self, css: &str) -> Res<String> {
        Ok(self.find(css).await?.text().await?)
    }

    /// Is there such an element now (no waiting)?
    async fn has(&self, css: &str) -> Res<bool> {
        Ok(!self.c.find_all(Locator::Css(css)).await?.is_empty())
    }

    async fn body(&self) -> Res<String> {
        self.text("body").await
    }

    async fn path(&self) -> Res<String> {
        Ok(self.c.current_url().await?.path().to_owned())
    }

    /// Fills the form matching `form` with `fields` and clicks its submit
    /// button, as a person would.
    async fn fill_and_submit(&self, form: &str, fields: &[(&str, &str)]) -> Res {
        self.find(form).await?;
        let f = self.c.form(Locator::Css(form)).await?;
        for (name, value) in fields {
            f.set_by_name(name, value).await?;
        }
        f.submit().await?;
        Ok(())
    }

    async fn click(&self, css: &str) -> Res {
        self.find(css).await?.click().await?;
        Ok(())
    }

    async fn shot(&self, name: &str) -> Res {
        let png = self.c.screenshot().await?;
        std::fs::write(self.shots.join(format!("{name}.png")), png)?;
        Ok(())
    }

    async fn script(&self, js: &str) -> Res<Value> {
        Ok(self.c.execute(js, vec![]).await?)
    }
}

/// A page on another site (`localhost` rather than `127.0.0.1`) that posts
/// a form to the dashboard as soon as it loads: a cross-site request
/// forgery attempt.
async fn attacker_site(target: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let page = format!(
        "<!doctype html><title>Win a prize</title>\
         <form id=f method=post action=\"{target}\"><input name=reason value=forged></form>\
         <script>document.getElementById('f').submit()</script>"
    );
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let page = page.clone();
            async move { Html(page) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://localhost:{port}/")
}

async fn flow(r: &Run<'_>) -> Res {
    let app = r.app;

    // First run: the setup link.
    r.goto(&format!("/dashboard/setup/{}", app.setup_token))
        .await?;
    r.find("form input[name=email]").await?;
    r.shot("01-setup").await?;
    r.fill_and_submit(
        "form[action^='/dashboard/setup/']",
        &[
            ("email", OWNER_EMAIL),
            ("name", "Olivia Owner"),
            ("password", OWNER_PASSWORD),
            ("confirm", OWNER_PASSWORD),
        ],
    )
    .await?;
    r.find("h1").await?;
    assert_eq!(r.path().await?, "/dashboard/tokens");
    assert!(r.body().await?.contains("No live tokens yet"));
    // The stylesheet loaded under the CSP, and nothing came from elsewhere.
    let bg = r
        .script("return getComputedStyle(document.querySelector('.sidebar')).backgroundColor")
        .await?;
    assert_eq!(bg, json!("rgb(17, 24, 39)"), "app.css applies");
    let resources = r
        .script("return performance.getEntriesByType('resource').map(e => e.name)")
        .await?;
    for url in resources.as_array().unwrap() {
        assert!(
            url.as_str().unwrap().starts_with(&app.url),
            "only the dashboard's own files: {url}"
        );
    }
    r.shot("02-tokens-empty").await?;

    // Create a token: its secret is shown once, with a copy button.
    r.click("a[href='/dashboard/tokens/new']").await?;
    r.find("form[action='/dashboard/tokens'] input[name=name]")
        .await?;
    r.fill_and_submit(
        "form[action='/dashboard/tokens']",
        &[
            ("name", "billing-sync"),
            ("description", "Nightly invoice export"),
            ("scopes", "invoices:read, invoices:write"),
            ("expiry", "30"),
        ],
    )
    .await?;
    let secret = r.text("#new-secret").await?;
    assert!(secret.starts_with("tkn_live_"), "{secret}");
    assert!(r.body().await?.contains("You will not see it again"));
    let copy = r.find("button[data-copy]").await?;
    assert!(
        copy.is_displayed().await?,
        "app.js ran and showed the copy button"
    );
    copy.click().await?;
    r.shot("03-token-created").await?;
    assert_eq!(app.verify_code(&secret).await, VerifyCode::Valid);
    let token_path = r.path().await?;
    // A reload shows the token but never its secret again.
    r.c.refresh().await?;
    r.find("h1").await?;
    assert!(!r.has("#new-secret").await?, "the secret is gone on reload");
    assert!(!r.body().await?.contains(&secret));
    r.shot("04-token-detail").await?;

    // A second token, to see a list and to be the forgery's target.
    r.goto("/dashboard/tokens/new").await?;
    r.shot("05-token-new").await?;
    r.fill_and_submit(
        "form[action='/dashboard/tokens']",
        &[
            ("name", "partner-acme"),
            ("scopes", "orders:read"),
            ("expiry", "90"),
        ],
    )
    .await?;
    r.find("#new-secret").await?;
    let target_path = r.path().await?;
    r.goto("/dashboard/tokens").await?;
    r.find("table").await?;
    r.shot("06-tokens").await?;

    // Revoke the first, with its confirmation page.
    r.goto(&token_path).await?;
    r.click(&format!("a[href='{token_path}/revoke']")).await?;
    r.find("button.danger").await?;
    assert!(r.body().await?.contains("stops working immediately"));
    r.shot("07-token-revoke").await?;
    r.fill_and_submit(
        &format!("form[action='{token_path}/revoke']"),
        &[("reason", "Replaced by a per-service token")],
    )
    .await?;
    r.find(".notice.ok").await?;
    assert!(r.text(".badge.revoked").await?.contains("revoked"));
    assert_eq!(app.verify_code(&secret).await, VerifyCode::Revoked);

    // API keys: create, then regenerate; the old value gets 401 at once.
    r.goto("/dashboard/settings/api-keys").await?;
    r.fill_and_submit(
        "form[action='/dashboard/settings/api-keys']",
        &[("name", "ci-pipeline"), ("mode", "live")],
    )
    .await?;
    let old_key = r.text("#new-secret").await?;
    assert!(old_key.starts_with("tok_live_"));
    assert_eq!(app.whoami_status(&old_key).await, 200);
    r.shot("08-api-key-created").await?;
    let key = app
        .store
        .list_api_keys(&app.workspace_id)
        .await?
        .into_iter()
        .find(|k| k.name == "ci-pipeline")
        .unwrap();
    r.goto("/dashboard/settings/api-keys").await?;
    r.click(&format!(
        "a[href='/dashboard/settings/api-keys/{}/regenerate']",
        key.id
    ))
    .await?;
    r.find("button.danger").await?;
    assert!(r.body().await?.contains("stops working immediately"));
    r.shot("09-api-key-regenerate").await?;
    r.click("button.danger").await?;
    let new_key = r.text("#new-secret").await?;
    assert_ne!(new_key, old_key);
    assert_eq!(app.whoami_status(&old_key).await, 401);
    assert_eq!(app.whoami_status(&new_key).await, 200);
    r.c.refresh().await?;
    r.find("table").await?;
    assert!(!r.has("#new-secret").await?);
    r.shot("10-api-keys").await?;

    // The audit log shows all of it, and its chain is intact.
    r.goto("/dashboard/settings/audit-log").await?;
    let log = r.body().await?;
    for action in [
        "user.login",
        "token.created",
        "token.revoked",
        "api_key.created",
        "api_key.regenerated",
    ] {
        assert!(log.contains(action), "{action} in the audit log");
    }
    assert!(log.contains("Hash chain intact"));
    r.shot("11-audit-log").await?;

    r.goto("/dashboard/settings/general").await?;
    r.find("form").await?;
    r.shot("12-general").await?;

    // A forged cross-site POST arrives without the session cookie
    // (SameSite=Strict) and changes nothing. The CSRF token itself is
    // checked on every POST route by http.rs's route-table test.
    let target_id = target_path.rsplit('/').next().unwrap().to_owned();
    let evil = attacker_site(format!("{}{target_path}/revoke", app.url)).await;
    r.c.goto(&evil).await?;
    r.c.wait()
        .at_most(WAIT)
        .for_url(&format!("{}{target_path}/revoke", app.url).parse()?)
        .await?;
    r.find("h1").await?;
    assert!(r.body().await?.contains("Not allowed"));
    let target = app
        .store
        .token(&app.workspace_id, Mode::Live, &target_id)
        .await?
        .unwrap();
    assert!(
        target.revoked_at.is_none(),
        "the forged POST revoked nothing"
    );

    // Members, then sign out.
    app.user("viewer@example.com", Role::Viewer, "viewer password")
        .await;
    r.goto("/dashboard/members").await?;
    r.find("table").await?;
    r.shot("13-members").await?;
    r.click(".me button[type=submit]").await?;
    r.find("form[action='/dashboard/login']").await?;
    assert!(r.body().await?.contains("You have signed out"));

    // A viewer sees everything and can change nothing.
    r.fill_and_submit(
        "form[action='/dashboard/login']",
        &[
            ("email", "viewer@example.com"),
            ("password", "wrong password"),
        ],
    )
    .await?;
    assert!(r
        .text(".notice.bad")
        .await?
        .contains("Incorrect email or password"));
    r.shot("14-login").await?;
    r.fill_and_submit(
        "form[action='/dashboard/login']",
        &[
            ("email", "viewer@example.com"),
            ("password", "viewer password"),
        ],
    )
    .await?;
    r.find("table").await?;
    assert!(!r.has("a[href='/dashboard/tokens/new']").await?);
    r.shot("15-viewer-tokens").await?;
    r.goto(&target_path).await?;
    r.find("h1").await?;
    assert!(!r.has(&format!("a[href='{target_path}/revoke']")).await?);
    // Even a hand-made form with the viewer's own CSRF token is refused.
    r.script(&format!(
        "const f = document.createElement('form'); f.method = 'post'; \
         f.action = '{target_path}/revoke'; \
         const c = document.querySelector('input[name=csrf]').cloneNode(); f.appendChild(c); \
         document.body.appendChild(f); f.submit(); return true;"
    ))
    .await?;
    r.c.wait()
        .at_most(WAIT)
        .for_url(&format!("{}{target_path}/revoke", app.url).parse()?)
        .await?;
    assert!(r.body().await?.contains("Only owners"));
    let target = app
        .store
        .token(&app.workspace_id, Mode::Live, &target_id)
        .await?
        .unwrap();
    assert!(target.revoked_at.is_none(), "the viewer revoked nothing");

    // Narrow screens.
    r.c.set_window_size(420, 900).await?;
    r.goto("/dashboard/tokens").await?;
    r.find("table").await?;
    r.shot("16-mobile-tokens").await?;
    Ok(())
}

async fn the_dashboard_works_in_a_real_browser() {
    let driver = start_driver().await;
    let mut app = DashApp::start(Backend::Sqlite, |s| s).await;
    let client = open_browser(&driver).await;
    let run = Run {
        c: &client,
        app: &app,
        shots: screenshots_dir(),
    };
    let outcome = tokio::time::timeout(
        WHOLE_RUN,
        std::panic::AssertUnwindSafe(flow(&run)).catch_unwind(),
    )
    .await;
    drop(run);
    // Always end the browser session, whatever happened.
    let url = client.current_url().await.map(|u| u.to_string());
    let _ = client.close().await;
    drop(driver);
    app.stop().await;
    match outcome {
        Err(_) => panic!("the browser run took longer than {WHOLE_RUN:?} (at {url:?})"),
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Ok(Ok(Err(e))) => panic!("browser step failed at {url:?}: {e}"),
        Ok(Ok(Ok(()))) => {}
    }
}

tooken_testkit::tests! {
    #[needs(Chromium)] async the_dashboard_works_in_a_real_browser,
}
