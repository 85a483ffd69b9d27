//! Secret hygiene: a scripted session against the real `tooken serve`,
//! logging at trace level (everything: sqlx, hyper, tower-http), issues and
//! uses every kind of secret — API keys, tokens (rotated, derived, revoked),
//! the dashboard's setup and invitation links, passwords, session, CSRF and
//! reveal cookies — and makes the mistakes that tempt a server to echo one.
//! Then no secret, nor any 16-character piece of one, may be found in the
//! server's log, `/metrics`, any error answer, any row of any table of the
//! store (nor its files), or the audit export.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, COOKIE, SET_COOKIE};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{json, Value};
use sqlx::{Connection, Row};
use tooken_core::audit::hex;
use tooken_core::credential::random_bytes;
use tooken_core::{Credential, Mode};

use crate::helpers::{admin, first_key, start_server, BIN};

/// The shortest piece of a secret that counts as leaked.
const WINDOW: usize = 16;

const OWNER_EMAIL: &str = "owner@example.com";
const VIEWER_EMAIL: &str = "viewer@example.com";
const CLI_USER_EMAIL: &str = "cli-user@example.com";

async fn no_secret_reaches_logs_metrics_errors_or_the_store_text_logs() {
    scripted_session(&[]).await;
}

async fn no_secret_reaches_logs_metrics_errors_or_the_store_json_logs() {
    scripted_session(&["--log-format", "json"]).await;
}

/// Every secret the session saw, by what it is; passwords also apart.
#[derive(Default)]
struct Secrets(Vec<(String, String)>, Vec<(String, String)>);

impl Secrets {
    fn add(&mut self, what: impl Into<String>, value: &str) -> String {
        let what = what.into();
        assert!(
            value.len() >= WINDOW,
            "{what} is shorter than {WINDOW} characters"
        );
        self.0.push((what, value.to_owned()));
        value.to_owned()
    }

    fn add_password(&mut self, what: &str, value: &str) -> String {
        self.1.push((what.to_owned(), value.to_owned()));
        self.add(what, value)
    }
}

/// Finds any [`WINDOW`]-byte piece of any secret in a haystack, in one pass.
struct Scanner<'a> {
    windows: HashMap<&'a [u8], usize>,
    secrets: &'a [(String, String)],
}

impl<'a> Scanner<'a> {
    fn new(secrets: &'a [(String, String)]) -> Scanner<'a> {
        let mut windows = HashMap::new();
        for (i, (_, value)) in secrets.iter().enumerate() {
            for w in value.as_bytes().windows(WINDOW) {
                windows.insert(w, i);
            }
        }
        Scanner { windows, secrets }
    }

    /// The first secret a piece of which is in `haystack`, and where.
    fn find(&self, haystack: &[u8]) -> Option<(&'a str, usize)> {
        haystack.windows(WINDOW).enumerate().find_map(|(at, w)| {
            self.windows
                .get(w)
                .map(|&i| (self.secrets[i].0.as_str(), at))
        })
    }
}

/// An HTTP answer.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn location(&self) -> String {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no location: {} {}", self.status, self.body))
            .to_owned()
    }

    /// The value of the first input named `name`.
    fn field(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no {name} field in {}", self.body))
            + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_owned()
    }

    /// The text of the element with `id`.
    fn text_of(&self, id: &str) -> String {
        let marker = format!("id=\"{id}\">");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no #{id} in {}", self.body))
            + marker.len();
        let end = self.body[start..].find('<').unwrap() + start;
        self.body[start..end].to_owned()
    }
}

/// An error answer: status, headers but `Set-Cookie`, body.
struct ErrorAnswer {
    text: String,
    /// A dashboard page, whose forms keep what the person typed.
    page: bool,
}

impl ErrorAnswer {
    /// The page without the values of its form fields: the person's own
    /// input (and the form's CSRF token) go back into the form they came
    /// from, and that is not a leak. Messages must not repeat them.
    fn without_form_values(&self) -> String {
        let mut out = String::with_capacity(self.text.len());
        let mut rest = self.text.as_str();
        while let Some(at) = rest.find("value=\"") {
            out.push_str(&rest[..at + 7]);
            rest = &rest[at + 7..];
            rest = &rest[rest.find('"').unwrap_or(rest.len())..];
        }
        out.push_str(rest);
        let mut text = String::new();
        let mut rest = out.as_str();
        while let Some(at) = rest.find("<textarea") {
            let open_end = rest[at..].find('>').map_or(rest.len(), |e| at + e + 1);
            text.push_str(&rest[..open_end]);
            rest = &rest[open_end..];
            rest = &rest[rest.find("</textarea>").unwrap_or(rest.len())..];
        }
        text.push_str(rest);
        text
    }
}

/// The session's HTTP client: keeps every error answer for scanning.
struct Client {
    url: String,
    http: reqwest::Client,
    errors: Vec<ErrorAnswer>,
    requests: usize,
}

impl Client {
    fn new(url: &str) -> Client {
        Client {
            url: url.to_owned(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .unwrap(),
            errors: Vec::new(),
            requests: 0,
        }
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.url))
    }

    async fn send(&mut self, what: &str, req: RequestBuilder) -> Answer {
        let res = req.send().await.unwrap_or_else(|e| panic!("{what}: {e}"));
        self.requests += 1;
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.text().await.unwrap();
        assert!(!status.is_server_error(), "{what}: {status} {body}");
        if status.is_client_error() {
            let mut kept = String::new();
            for (name, value) in &headers {
                if name != SET_COOKIE {
                    kept.push_str(&format!(
                        "{name}: {}\n",
                        String::from_utf8_lossy(value.as_bytes())
                    ));
                }
            }
            let page = headers
                .get("content-type")
                .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
            self.errors.push(ErrorAnswer {
                text: format!("{what}: {status}\n{kept}\n{body}"),
                page,
            });
        }
        Answer {
            status,
            headers,
            body,
        }
    }

    /// A `/v1` call with `key` as bearer credential.
    async fn api(
        &mut self,
        what: &str,
        method: Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> Answer {
        let mut req = self.request(method, path).bearer_auth(key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        self.send(what, req).await
    }

    /// Like [`Client::api`], expecting `expected`.
    async fn api_ok(
        &mut self,
        what: &str,
        method: Method,
        path: &str,
        key: &str,
        body: Option<Value>,
        expected: u16,
    ) -> Value {
        let a = self.api(what, method, path, key, body).await;
        assert_eq!(a.status.as_u16(), expected, "{what}: {}", a.body);
        a.json()
    }

    /// A raw body with a content type, for malformed JSON and forms.
    async fn raw(
        &mut self,
        what: &str,
        method: Method,
        path: &str,
        key: &str,
        content_type: &str,
        body: String,
    ) -> Answer {
        let req = self
            .request(method, path)
            .bearer_auth(key)
            .header("content-type", content_type)
            .body(body);
        self.send(what, req).await
    }
}

/// A dashboard visitor: cookies by hand, so every value set is known.
#[derive(Default)]
struct Browser {
    cookies: Vec<(String, String)>,
}

impl Browser {
    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Keeps the cookies `a` sets; each new value is a secret.
    fn take_cookies(&mut self, a: &Answer, secrets: &mut Secrets) {
        for value in a.headers.get_all(SET_COOKIE) {
            let text = value.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(k, _)| k != name);
            if !value.is_empty() && !text.contains("Max-Age=0") {
                secrets.add(format!("cookie {name}"), value);
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    async fn get(&mut self, c: &mut Client, s: &mut Secrets, what: &str, path: &str) -> Answer {
        let req = c
            .request(Method::GET, path)
            .header(COOKIE, self.cookie_header());
        let a = c.send(what, req).await;
        self.take_cookies(&a, s);
        a
    }

    async fn post(
        &mut self,
        c: &mut Client,
        s: &mut Secrets,
        what: &str,
        path: &str,
        form: &[(&str, &str)],
    ) -> Answer {
        let req = c
            .request(Method::POST, path)
            .header(COOKIE, self.cookie_header())
            .form(form);
        let a = c.send(what, req).await;
        self.take_cookies(&a, s);
        a
    }
}

/// A password no one else could type: random, with a marker.
fn password(label: &str) -> String {
    format!("{label}-{}", hex(&random_bytes::<16>()))
}

/// A server-side form submission that must redirect.
fn redirected(a: &Answer, what: &str) -> String {
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{what}: {}", a.body);
    a.location()
}

async fn scripted_session(args: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), args, &[("TOOKEN_LOG", "trace")]);
    let banner = server.wait_for_stdout("/dashboard/setup/");
    let mut s = Secrets::default();
    let mut c = Client::new(&server.url);

    // The bootstrap banner: a live API key and the dashboard setup link.
    let key1 = s.add("bootstrap API key", &first_key(&banner));
    let setup_line = banner
        .lines()
        .find(|l| l.contains("/dashboard/setup/"))
        .unwrap()
        .trim()
        .to_owned();
    let setup_token = s.add("setup link", setup_line.rsplit('/').next().unwrap());
    let banner_lines = [
        banner
            .lines()
            .find(|l| l.contains(&key1))
            .unwrap()
            .to_owned(),
        setup_line.clone(),
    ];

    api_session(&mut c, &mut s, &key1, dir.path()).await;
    let dashboard_export = dashboard_session(&mut c, &mut s, &setup_token, dir.path()).await;
    mistakes(&mut c, &mut s, &key1).await;

    // What the session leaves behind, read over HTTP while the server runs.
    let metrics = c.send("metrics", c.request(Method::GET, "/metrics")).await;
    assert_eq!(metrics.status, StatusCode::OK);
    // Four sign-ins (a wrong password, an unknown account, two right
    // ones): argon2id ran for each, the unknown account included.
    assert!(
        metrics
            .body
            .contains("tooken_dashboard_password_checks_total 4\n"),
        "{}",
        metrics.body
    );
    let export = c
        .api(
            "audit export",
            Method::GET,
            "/v1/audit-log/export",
            &key1,
            None,
        )
        .await;
    assert_eq!(export.status, StatusCode::OK, "{}", export.body);
    assert!(export.body.lines().count() > 20, "{}", export.body);

    let (status, stdout, logs) = server.stop_with_logs("TERM");
    assert!(status.success(), "{status:?}: {logs}");
    // The banner is the one place the first key and link may be printed.
    let mut rest_of_stdout = stdout.clone();
    for line in &banner_lines {
        assert_eq!(stdout.matches(line.as_str()).count(), 1, "{stdout}");
        rest_of_stdout = rest_of_stdout.replacen(line.as_str(), "", 1);
    }
    // Trace level lets everything through: sqlx's statements among them.
    let debug_marker = if args.contains(&"json") {
        "\"level\":\"DEBUG\""
    } else {
        " DEBUG "
    };
    assert!(
        logs.contains(debug_marker) && logs.contains("db.statement"),
        "not logging at trace level"
    );
    let log = format!("{logs}\n{rest_of_stdout}");

    let store = store_dump(dir.path()).await;
    let files = store_files(dir.path());

    let scanner = Scanner::new(&s.0);
    let passwords = Scanner::new(&s.1);

    let mut places: Vec<(String, &[u8])> = vec![
        ("the server log".into(), log.as_bytes()),
        ("GET /metrics".into(), metrics.body.as_bytes()),
        ("the audit export".into(), export.body.as_bytes()),
    ];
    let pages: Vec<(usize, String)> = c
        .errors
        .iter()
        .enumerate()
        .map(|(i, e)| {
            (
                i,
                if e.page {
                    e.without_form_values()
                } else {
                    e.text.clone()
                },
            )
        })
        .collect();
    for (i, text) in &pages {
        places.push((format!("error answer {i}"), text.as_bytes()));
    }
    places.push((
        "the dashboard's audit export".into(),
        dashboard_export.as_bytes(),
    ));
    for (table, cell) in &store {
        places.push((format!("table {table}"), cell.as_slice()));
    }
    for (name, bytes) in &files {
        places.push((format!("file {name}"), bytes.as_slice()));
    }
    let mut leaks = Vec::new();
    // Not even in a form: a password is never sent back.
    let raw_errors: Vec<(String, &[u8])> = c
        .errors
        .iter()
        .enumerate()
        .map(|(i, e)| {
            (
                format!("error answer {i} (with form values)"),
                e.text.as_bytes(),
            )
        })
        .collect();
    let checks = places
        .iter()
        .map(|(p, h)| (&scanner, p, h))
        .chain(raw_errors.iter().map(|(p, h)| (&passwords, p, h)));
    for (scanner, place, haystack) in checks {
        if let Some((what, at)) = scanner.find(haystack) {
            let from = at.saturating_sub(120);
            let to = (at + 120).min(haystack.len());
            leaks.push(format!(
                "{what} in {place}: …{}…",
                String::from_utf8_lossy(&haystack[from..to])
            ));
        }
    }
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n\n"));
    // Clean, as far as the scanner can tell: make sure it can tell.
    self_check(&scanner, &s, &metrics.body, &log);
    let scanned_store: usize = store.iter().map(|(_, b)| b.len()).sum();
    println!(
        "secret hygiene ({}): {} secrets checked ({} distinct {WINDOW}-character pieces); \
         {} requests; {} bytes of logs, {} of metrics, {} of audit export, {} error answers \
         ({} bytes), {} store cells ({scanned_store} bytes) and {} bytes of store files scanned",
        if args.contains(&"json") {
            "json logs"
        } else {
            "text logs"
        },
        s.0.len(),
        scanner.windows.len(),
        c.requests,
        log.len(),
        metrics.body.len(),
        export.body.len(),
        c.errors.len(),
        c.errors.iter().map(|e| e.text.len()).sum::<usize>(),
        store.len(),
        files.iter().map(|(_, b)| b.len()).sum::<usize>(),
    );
}

/// The scanner finds what it is meant to: every secret's piece planted in
/// a copy of a haystack, and one in a copy of the whole log.
fn self_check(scanner: &Scanner, s: &Secrets, small: &str, log: &str) {
    for (what, value) in &s.0 {
        let mid = value.len() / 2 - WINDOW / 2;
        let planted = format!(
            "{}{}{}",
            &small[..small.len() / 2],
            &value[mid..mid + WINDOW],
            &small[small.len() / 2..]
        );
        let found = scanner.find(planted.as_bytes()).map(|(w, _)| w);
        assert_eq!(found, Some(what.as_str()), "the scanner misses {what}");
        // One character short of a piece is not a piece.
        let short = format!("{small}{}", &value[mid..mid + WINDOW - 1]);
        assert!(scanner.find(&short.as_bytes()[small.len()..]).is_none());
    }
    let (what, value) = s.0.last().unwrap();
    // And in a page, outside its form fields.
    let page = ErrorAnswer {
        text: format!("<p>{value}</p><input value=\"{value}\">"),
        page: true,
    };
    assert!(scanner
        .find(page.without_form_values().as_bytes())
        .is_some());
    let page = ErrorAnswer {
        text: format!("<input name=\"x\" value=\"{value}\"><textarea id=\"t\">{value}</textarea>"),
        page: true,
    };
    assert!(scanner
        .find(page.without_form_values().as_bytes())
        .is_none());
    let planted = format!("{log}{}", &value[1..1 + WINDOW]);
    assert_eq!(
        scanner.find(planted.as_bytes()).map(|(w, _)| w),
        Some(what.as_str())
    );
}

/// Every cell of every table of the SQLite store, as bytes (text as its
/// UTF-8, blobs raw, numbers as text).
async fn store_dump(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let url = format!("sqlite://{}?mode=ro", dir.join("tooken.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let tables: Vec<String> = sqlx::query("SELECT name FROM sqlite_master WHERE type = 'table'")
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(tables.len() > 5, "{tables:?}");
    let mut cells = Vec::new();
    for table in tables {
        let columns: Vec<String> = sqlx::query("SELECT name FROM pragma_table_info(?)")
            .bind(&table)
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        for column in columns {
            let sql = format!("SELECT CAST(\"{column}\" AS BLOB) FROM \"{table}\"");
            for row in sqlx::query(&sql).fetch_all(&mut conn).await.unwrap() {
                if let Some(bytes) = row.get::<Option<Vec<u8>>, _>(0) {
                    cells.push((format!("{table}.{column}"), bytes));
                }
            }
        }
    }
    conn.close().await.unwrap();
    cells
}

/// The store's files as they lie on disk (database, journal, WAL).
fn store_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().starts_with("tooken.db"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// The API: tokens created, used, verified, introspected, rotated (with
/// and without grace), derived, revoked; API keys from the admin CLI,
/// regenerated; a test-mode key and token; a custom token prefix.
async fn api_session(c: &mut Client, s: &mut Secrets, key1: &str, dir: &Path) {
    c.api_ok("whoami", Method::GET, "/v1/whoami", key1, None, 200)
        .await;
    let a = c
        .api_ok(
            "create token A",
            Method::POST,
            "/v1/tokens",
            key1,
            Some(json!({"name": "service-a", "scopes": ["invoices:read", "tokens:read", "tokens:write", "tokens:verify"], "expires_in": 3600})),
            201,
        )
        .await;
    let a_id = a["id"].as_str().unwrap().to_owned();
    let a1 = s.add("token A", a["secret"].as_str().unwrap());
    let v = c
        .api_ok(
            "verify A",
            Method::POST,
            "/v1/tokens/verify",
            key1,
            Some(json!({"token": a1, "scopes": ["invoices:read"]})),
            200,
        )
        .await;
    assert_eq!(v["code"], "VALID");
    // A token verifying another (it holds tokens:verify) and listing.
    c.api_ok(
        "verify with A",
        Method::POST,
        "/v1/tokens/verify",
        &a1,
        Some(json!({"token": a1})),
        200,
    )
    .await;
    c.api_ok("list with A", Method::GET, "/v1/tokens", &a1, None, 200)
        .await;
    let req = c
        .request(Method::POST, "/v1/oauth/introspect")
        .bearer_auth(key1)
        .form(&[("token", a1.as_str())]);
    let i = c.send("introspect A", req).await;
    assert_eq!(i.json()["active"], true);

    // A child created through A, and its own child.
    let child = c
        .api_ok("child of A", Method::POST, "/v1/tokens", &a1, Some(json!({"name": "child", "scopes": ["invoices:read", "tokens:write"], "expires_in": 600})), 201)
        .await;
    let child1 = s.add("child token", child["secret"].as_str().unwrap());
    let grandchild = c
        .api_ok(
            "grandchild",
            Method::POST,
            "/v1/tokens",
            &child1,
            Some(json!({"name": "grandchild", "scopes": ["invoices:read"], "expires_in": 300})),
            201,
        )
        .await;
    let grandchild1 = s.add("grandchild token", grandchild["secret"].as_str().unwrap());

    // Rotations: with a grace period (old and new both work), then without.
    let r = c
        .api_ok(
            "rotate A (grace)",
            Method::POST,
            &format!("/v1/tokens/{a_id}/rotate"),
            key1,
            Some(json!({"grace_period_seconds": 60})),
            200,
        )
        .await;
    let a2 = s.add("token A, rotated", r["secret"].as_str().unwrap());
    for secret in [&a1, &a2] {
        let v = c
            .api_ok(
                "verify A in grace",
                Method::POST,
                "/v1/tokens/verify",
                key1,
                Some(json!({"token": secret})),
                200,
            )
            .await;
        assert_eq!(v["code"], "VALID");
    }
    let r = c
        .api_ok(
            "rotate A",
            Method::POST,
            &format!("/v1/tokens/{a_id}/rotate"),
            key1,
            None,
            200,
        )
        .await;
    let a3 = s.add("token A, rotated twice", r["secret"].as_str().unwrap());
    let v = c
        .api_ok(
            "verify rotated-away A",
            Method::POST,
            "/v1/tokens/verify",
            key1,
            Some(json!({"token": a2})),
            200,
        )
        .await;
    assert_eq!(v["code"], "NOT_FOUND");
    let a = c
        .api(
            "rotated-away A as bearer",
            Method::GET,
            "/v1/whoami",
            &a2,
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    c.api_ok("A3 as bearer", Method::GET, "/v1/whoami", &a3, None, 200)
        .await;

    // Revocation: B alone, then A with everything made through it.
    let b = c
        .api_ok(
            "create token B",
            Method::POST,
            "/v1/tokens",
            key1,
            Some(json!({"name": "service-b", "scopes": ["reports:read"]})),
            201,
        )
        .await;
    let b1 = s.add("token B", b["secret"].as_str().unwrap());
    let b_id = b["id"].as_str().unwrap();
    c.api_ok(
        "revoke B",
        Method::POST,
        &format!("/v1/tokens/{b_id}/revoke"),
        key1,
        Some(json!({"reason": "no longer used"})),
        200,
    )
    .await;
    let v = c
        .api_ok(
            "verify revoked B",
            Method::POST,
            "/v1/tokens/verify",
            key1,
            Some(json!({"token": b1})),
            200,
        )
        .await;
    assert_eq!(v["code"], "REVOKED");
    let a = c
        .api("revoked B as bearer", Method::GET, "/v1/whoami", &b1, None)
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    c.api_ok(
        "revoke A",
        Method::POST,
        &format!("/v1/tokens/{a_id}/revoke"),
        key1,
        None,
        200,
    )
    .await;
    for secret in [&child1, &grandchild1] {
        let v = c
            .api_ok(
                "verify revoked child",
                Method::POST,
                "/v1/tokens/verify",
                key1,
                Some(json!({"token": secret})),
                200,
            )
            .await;
        assert_eq!(v["code"], "REVOKED");
    }
    c.api_ok(
        "usage of A",
        Method::GET,
        &format!("/v1/tokens/{a_id}/usage"),
        key1,
        None,
        200,
    )
    .await;

    // A credential no one issued, well formed.
    let unknown = Credential::generate("tkn", Mode::Live);
    let unknown = s.add("unissued token", unknown.expose());
    let a = c
        .api("unknown bearer", Method::GET, "/v1/whoami", &unknown, None)
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let v = c
        .api_ok(
            "verify unknown",
            Method::POST,
            "/v1/tokens/verify",
            key1,
            Some(json!({"token": unknown})),
            200,
        )
        .await;
    assert_eq!(v["code"], "NOT_FOUND");

    // API keys from the admin CLI (on the store, while the server runs).
    let (ok, out, err) = admin(
        dir,
        &["api-keys", "create", "--name", "cli key", "--mode", "test"],
    );
    assert!(ok, "{err}");
    let test_key = s.add("admin CLI test API key", out.trim());
    let t = c
        .api_ok(
            "test-mode token",
            Method::POST,
            "/v1/tokens",
            &test_key,
            Some(json!({"name": "test token", "scopes": ["invoices:read"]})),
            201,
        )
        .await;
    s.add("test-mode token", t["secret"].as_str().unwrap());
    let (ok, list, err) = admin(dir, &["api-keys", "list", "--json"]);
    assert!(ok, "{err}");
    let keys: Value = serde_json::from_str(&list).unwrap();
    let cli_key_id = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "cli key")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (ok, out, err) = admin(dir, &["api-keys", "regenerate", &cli_key_id]);
    assert!(ok, "{err}");
    let regenerated = s.add("admin CLI API key, regenerated", out.trim());
    let a = c
        .api(
            "regenerated-away key",
            Method::GET,
            "/v1/whoami",
            &test_key,
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    c.api_ok(
        "regenerated key",
        Method::GET,
        "/v1/whoami",
        &regenerated,
        None,
        200,
    )
    .await;

    // A workspace prefix: tokens then read `acme_live_…`.
    c.api_ok(
        "set prefix",
        Method::PATCH,
        "/v1/settings",
        key1,
        Some(json!({"token_prefix": "acme"})),
        200,
    )
    .await;
    let p = c
        .api_ok(
            "prefixed token",
            Method::POST,
            "/v1/tokens",
            key1,
            Some(json!({"name": "prefixed", "scopes": ["invoices:read"]})),
            201,
        )
        .await;
    let prefixed = s.add(
        "token with a workspace prefix",
        p["secret"].as_str().unwrap(),
    );
    assert!(prefixed.starts_with("acme_live_"));
    let v = c
        .api_ok(
            "verify prefixed",
            Method::POST,
            "/v1/tokens/verify",
            key1,
            Some(json!({"token": prefixed})),
            200,
        )
        .await;
    assert_eq!(v["code"], "VALID");
    c.api_ok(
        "list audit",
        Method::GET,
        "/v1/audit-log?limit=100",
        key1,
        None,
        200,
    )
    .await;
}

/// The dashboard: first-run setup, tokens and API keys made, rotated and
/// regenerated (each shown once), an invitation, sign-out, failed and
/// successful sign-ins, the invited person's sign-up, a user made by the
/// admin CLI signing in, and the audit export.
async fn dashboard_session(
    c: &mut Client,
    s: &mut Secrets,
    setup_token: &str,
    dir: &Path,
) -> String {
    let owner_password = s.add_password("owner's password", &password("owner"));
    let mut b = Browser::default();
    let setup = format!("/dashboard/setup/{setup_token}");
    let page = b.get(c, s, "setup page", &setup).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let csrf = page.field("csrf");
    let a = b
        .post(
            c,
            s,
            "setup",
            &setup,
            &[
                ("csrf", &csrf),
                ("email", OWNER_EMAIL),
                ("name", "Olivia Owner"),
                ("password", &owner_password),
                ("confirm", &owner_password),
            ],
        )
        .await;
    redirected(&a, "setup");
    let used = b.get(c, s, "used setup link", &setup).await;
    assert_eq!(used.status, StatusCode::NOT_FOUND);

    let page = b.get(c, s, "tokens page", "/dashboard/tokens").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let csrf = s.add("session CSRF token", &page.field("csrf"));

    let a = b
        .post(
            c,
            s,
            "create token in dashboard",
            "/dashboard/tokens",
            &[
                ("csrf", &csrf),
                ("name", "dash token"),
                ("scopes", "invoices:read reports:read"),
                ("expiry", "7"),
            ],
        )
        .await;
    let to = redirected(&a, "create token in dashboard");
    let token_id = to.rsplit('/').next().unwrap().to_owned();
    let shown = b.get(c, s, "new token page", &to).await;
    s.add("dashboard token", &shown.text_of("new-secret"));
    let a = b
        .post(
            c,
            s,
            "rotate in dashboard",
            &format!("/dashboard/tokens/{token_id}/rotate"),
            &[("csrf", &csrf), ("grace_period_seconds", "3600")],
        )
        .await;
    let to = redirected(&a, "rotate in dashboard");
    let shown = b.get(c, s, "rotated token page", &to).await;
    s.add("dashboard token, rotated", &shown.text_of("new-secret"));

    let a = b
        .post(
            c,
            s,
            "create API key in dashboard",
            "/dashboard/settings/api-keys",
            &[("csrf", &csrf), ("name", "dash key"), ("mode", "live")],
        )
        .await;
    let to = redirected(&a, "create API key in dashboard");
    let key_id = to.rsplit('=').next().unwrap().to_owned();
    let shown = b.get(c, s, "new API key page", &to).await;
    let dash_key = s.add("dashboard API key", &shown.text_of("new-secret"));
    c.api_ok(
        "dashboard key works",
        Method::GET,
        "/v1/whoami",
        &dash_key,
        None,
        200,
    )
    .await;
    let a = b
        .post(
            c,
            s,
            "regenerate API key",
            &format!("/dashboard/settings/api-keys/{key_id}/regenerate"),
            &[("csrf", &csrf)],
        )
        .await;
    let to = redirected(&a, "regenerate API key");
    let shown = b.get(c, s, "regenerated API key page", &to).await;
    let dash_key2 = s.add(
        "dashboard API key, regenerated",
        &shown.text_of("new-secret"),
    );
    c.api_ok(
        "regenerated dashboard key",
        Method::GET,
        "/v1/whoami",
        &dash_key2,
        None,
        200,
    )
    .await;

    let a = b
        .post(
            c,
            s,
            "invite",
            "/dashboard/members",
            &[("csrf", &csrf), ("email", VIEWER_EMAIL), ("role", "viewer")],
        )
        .await;
    let to = redirected(&a, "invite");
    let shown = b.get(c, s, "invitation page", &to).await;
    let invite_url = shown.text_of("invite-link");
    let invite = s.add("invitation link", invite_url.rsplit('/').next().unwrap());

    // Mistakes a person makes in the dashboard.
    let a = b
        .post(
            c,
            s,
            "scope pasted wrong",
            "/dashboard/tokens",
            &[
                ("csrf", &csrf),
                ("name", "oops"),
                ("scopes", &dash_key2),
                ("expiry", "7"),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = b
        .get(
            c,
            s,
            "secret as token id",
            &format!("/dashboard/tokens/{dash_key2}"),
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = b
        .get(
            c,
            s,
            "secret as key id",
            &format!("/dashboard/settings/api-keys/{dash_key2}/regenerate"),
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = b
        .post(
            c,
            s,
            "secret as token id (revoke)",
            &format!("/dashboard/tokens/{dash_key2}/revoke"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = b
        .post(
            c,
            s,
            "secret as grace period",
            &format!("/dashboard/tokens/{token_id}/rotate"),
            &[("csrf", &csrf), ("grace_period_seconds", &dash_key2)],
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let mut typo = invite.clone().into_bytes();
    typo[40] = if typo[40] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    let a = b
        .get(
            c,
            s,
            "mistyped invitation",
            &format!("/dashboard/setup/{typo}"),
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = b
        .get(
            c,
            s,
            "secret in a dashboard path",
            &format!("/dashboard/{dash_key2}"),
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);

    let a = b
        .post(c, s, "sign out", "/dashboard/logout", &[("csrf", &csrf)])
        .await;
    redirected(&a, "sign out");

    // Sign-ins: a wrong password, an unknown account, then the right one.
    let login = b.get(c, s, "sign-in page", "/dashboard/login").await;
    let pre = login.field("csrf");
    let wrong = s.add_password("a mistyped password", &password("owner-typo"));
    let a = b
        .post(
            c,
            s,
            "wrong password",
            "/dashboard/login",
            &[("csrf", &pre), ("email", OWNER_EMAIL), ("password", &wrong)],
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let other = s.add_password("a password for no account", &password("nobody"));
    let a = b
        .post(
            c,
            s,
            "unknown account",
            "/dashboard/login",
            &[
                ("csrf", &pre),
                ("email", "nobody@example.com"),
                ("password", &other),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = b
        .post(
            c,
            s,
            "sign in",
            "/dashboard/login",
            &[
                ("csrf", &pre),
                ("email", OWNER_EMAIL),
                ("password", &owner_password),
            ],
        )
        .await;
    redirected(&a, "sign in");
    let page = b
        .get(c, s, "audit page", "/dashboard/settings/audit-log")
        .await;
    assert_eq!(page.status, StatusCode::OK);
    s.add("second session's CSRF token", &page.field("csrf"));
    let export = b
        .get(
            c,
            s,
            "dashboard audit export",
            "/dashboard/settings/audit-log/export",
        )
        .await;
    assert_eq!(export.status, StatusCode::OK);
    assert!(export.body.lines().count() > 20, "{}", export.body);

    // The invited person signs up through the link.
    let viewer_password = s.add_password("viewer's password", &password("viewer"));
    let mut v = Browser::default();
    let path = format!("/dashboard/setup/{invite}");
    let page = v.get(c, s, "invitation", &path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let a = v
        .post(
            c,
            s,
            "accept invitation",
            &path,
            &[
                ("csrf", &page.field("csrf")),
                ("name", "Victor Viewer"),
                ("password", &viewer_password),
                ("confirm", &viewer_password),
            ],
        )
        .await;
    redirected(&a, "accept invitation");

    // A user made by `tooken admin users create` (password on stdin).
    let cli_password = s.add_password("admin CLI user's password", &password("cli"));
    admin_user(dir, CLI_USER_EMAIL, &cli_password);
    let mut u = Browser::default();
    let pre = u
        .get(c, s, "sign-in page", "/dashboard/login")
        .await
        .field("csrf");
    let a = u
        .post(
            c,
            s,
            "CLI user signs in",
            "/dashboard/login",
            &[
                ("csrf", &pre),
                ("email", CLI_USER_EMAIL),
                ("password", &cli_password),
            ],
        )
        .await;
    redirected(&a, "CLI user signs in");
    export.body
}

/// `tooken admin users create`, the password on standard input.
fn admin_user(dir: &Path, email: &str, password: &str) {
    let mut child = Command::new(BIN)
        .args([
            "admin", "users", "create", "--email", email, "--role", "viewer",
        ])
        .current_dir(dir)
        .env_remove("TOOKEN_DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{password}\n").as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Mistakes that tempt a server to echo a secret: in the path, the query,
/// a malformed or wrongly typed body, as a scope, a field name or value,
/// in the wrong header, too long, with the wrong prefix.
async fn mistakes(c: &mut Client, s: &mut Secrets, key1: &str) {
    let t = c
        .api_ok(
            "token for mistakes",
            Method::POST,
            "/v1/tokens",
            key1,
            Some(json!({"name": "mistakes", "scopes": ["invoices:read"]})),
            201,
        )
        .await;
    let secret = s.add("token used in mistakes", t["secret"].as_str().unwrap());
    let id = t["id"].as_str().unwrap().to_owned();
    let json_ct = "application/json";

    let expect = |a: &Answer, status: u16, what: &str| {
        assert_eq!(a.status.as_u16(), status, "{what}: {}", a.body);
    };

    // In the path.
    for (method, path) in [
        (Method::GET, format!("/v1/tokens/{secret}")),
        (Method::PATCH, format!("/v1/tokens/{secret}")),
        (Method::POST, format!("/v1/tokens/{secret}/rotate")),
        (Method::POST, format!("/v1/tokens/{secret}/revoke")),
        (Method::GET, format!("/v1/tokens/{secret}/usage")),
        (Method::GET, format!("/v1/{secret}")),
        (Method::GET, format!("/{secret}")),
        (Method::GET, format!("/v1/tokens/verify/{secret}")),
    ] {
        let body = (method == Method::PATCH).then(|| json!({"name": "x"}));
        let a = c
            .api("secret in the path", method.clone(), &path, key1, body)
            .await;
        assert!(a.status.is_client_error(), "{method} {path}: {}", a.status);
    }
    // In the query string.
    for query in [
        format!("starting_after={secret}"),
        format!("status={secret}"),
        format!("scope={secret}"),
        format!("limit={secret}"),
        format!("name={secret}"),
        format!("token={secret}"),
        format!("{secret}=1"),
        secret.clone(),
    ] {
        c.api(
            "secret in the query",
            Method::GET,
            &format!("/v1/tokens?{query}"),
            key1,
            None,
        )
        .await;
    }
    for query in [
        format!("actor={secret}"),
        format!("target={secret}"),
        format!("since={secret}"),
        format!("action={secret}"),
        format!("{secret}=1"),
    ] {
        c.api(
            "secret in an audit query",
            Method::GET,
            &format!("/v1/audit-log?{query}"),
            key1,
            None,
        )
        .await;
    }
    c.api(
        "secret in an export query",
        Method::GET,
        &format!("/v1/audit-log/export?limit={secret}"),
        key1,
        None,
    )
    .await;
    // In bodies: malformed, wrongly typed, as a scope, a field name or value;
    // each is refused with 400.
    let token = format!("/v1/tokens/{id}");
    let rotate = format!("/v1/tokens/{id}/rotate");
    let revoke = format!("/v1/tokens/{id}/revoke");
    let bad_bodies: [(&str, Method, &str, Vec<String>); 6] = [
        (
            "bad token body",
            Method::POST,
            "/v1/tokens",
            vec![
                format!("{{\"name\": \"x\", \"scopes\": [\"{secret}"),
                format!("{{\"name\": {secret}}}"),
                format!("{{\"name\": \"x\"}} {secret}"),
                format!("[\"{secret}\"]"),
                format!("{{\"name\": \"x\", \"expires_in\": \"{secret}\"}}"),
                format!("{{\"name\": \"x\", \"expires_at\": \"{secret}\"}}"),
                format!("{{\"name\": \"x\", \"scopes\": [\"{secret}\"]}}"),
                format!("{{\"name\": \"x\", \"scopes\": \"{secret}\"}}"),
                format!("{{\"name\": \"x\", \"scopes\": [\"{secret}{secret}\"]}}"),
                format!("{{\"name\": \"x\", \"{secret}\": 1}}"),
                format!("{{\"name\": \"x\", \"secret\": \"{secret}\"}}"),
                format!("{{\"name\": \"x\", \"metadata\": \"{secret}\"}}"),
                format!("{{\"name\": \"x\", \"description\": [\"{secret}\"]}}"),
                format!("{{\"name\": \"{}\"}}", secret.repeat(5)),
                format!(
                    "{{\"name\": \"x\", \"description\": \"{}\"}}",
                    secret.repeat(40)
                ),
                format!("{{\"name\": [\"{secret}\"]}}"),
                format!("{{\"name\": \"x\", \"expires_in\": {secret}}}"),
            ],
        ),
        (
            "bad patch",
            Method::PATCH,
            &token,
            vec![
                format!("{{\"name\": \"{secret}\", \"scopes\": [\"{secret}\"]}}")
                    .replace("\"name\": \"", "\"nme\": \""),
                format!("{{\"scopes\": [\"{secret}\"]}}"),
                format!("{{\"expires_at\": \"{secret}\"}}"),
                format!("{{\"metadata\": \"{secret}\"}}"),
            ],
        ),
        (
            "bad rotate",
            Method::POST,
            &rotate,
            vec![
                format!("{{\"grace_period_seconds\": \"{secret}\"}}"),
                format!("{{\"{secret}\": 1}}"),
            ],
        ),
        (
            "bad revoke",
            Method::POST,
            &revoke,
            vec![
                format!("{{\"reason\": [\"{secret}\"]}}"),
                format!("{{\"reason\": \"x\", \"token\": \"{secret}\"}}"),
            ],
        ),
        (
            "bad verify",
            Method::POST,
            "/v1/tokens/verify",
            vec![
                format!("{{\"token\": \"{secret}\", \"scopes\": [\"{secret}\"]}}"),
                format!("{{\"token\": [\"{secret}\"]}}"),
                format!("{{\"tokens\": \"{secret}\"}}"),
                format!("{{\"token\": \"{secret}\", \"mode\": \"live\"}}"),
                format!("{{\"token\": \"{secret}\""),
                format!("token={secret}"),
            ],
        ),
        (
            "bad settings",
            Method::PATCH,
            "/v1/settings",
            vec![
                format!("{{\"token_prefix\": \"{secret}\"}}"),
                format!("{{\"token_prefix\": \"{}\"}}", secret.to_lowercase()),
                format!("{{\"require_expiration\": \"{secret}\"}}"),
                format!("{{\"{secret}\": true}}"),
            ],
        ),
    ];
    for (what, method, path, bodies) in bad_bodies {
        for body in bodies {
            let a = c
                .raw(what, method.clone(), path, key1, json_ct, body.clone())
                .await;
            expect(&a, 400, &format!("{what}: {body}"));
        }
    }
    for body in [
        format!("tokn={secret}"),
        format!("{{\"token\": \"{secret}\"}}"),
        format!("token={secret}&token={secret}"),
    ] {
        c.raw(
            "bad introspect",
            Method::POST,
            "/v1/oauth/introspect",
            key1,
            "application/x-www-form-urlencoded",
            body,
        )
        .await;
    }
    let a = c
        .api(
            "GET on verify",
            Method::GET,
            &format!("/v1/tokens/verify?token={secret}"),
            key1,
            None,
        )
        .await;
    expect(&a, 405, "GET on verify");

    // In the wrong header, the wrong scheme, too long, the wrong prefix.
    let wrong_prefix = format!("tkx{}", &secret[3..]);
    let header_mistakes: Vec<(HeaderName, String)> = vec![
        (HeaderName::from_static("x-api-key"), key1.to_owned()),
        (AUTHORIZATION, format!("Token {key1}")),
        (AUTHORIZATION, key1.to_owned()),
        (AUTHORIZATION, format!("bearer {key1}")),
        (AUTHORIZATION, format!("Bearer  {key1}")),
        (AUTHORIZATION, format!("Bearer {key1}{key1}")),
        (AUTHORIZATION, format!("Bearer {}", key1.repeat(200))),
        (AUTHORIZATION, format!("Bearer {wrong_prefix}")),
        (AUTHORIZATION, format!("Bearer {}", &key1[..key1.len() - 1])),
        (HeaderName::from_static("x-tooken-token"), secret.clone()),
    ];
    for (name, value) in header_mistakes {
        let req = c
            .request(Method::GET, "/v1/tokens")
            .header(name.clone(), HeaderValue::from_str(&value).unwrap());
        let a = c.send("credential in the wrong place", req).await;
        expect(&a, 401, &format!("{name}: {value}"));
    }
    let req = c
        .request(Method::GET, "/v1/tokens")
        .header(AUTHORIZATION, format!("Bearer {key1}"))
        .header(AUTHORIZATION, format!("Bearer {secret}"));
    let a = c.send("two credentials", req).await;
    expect(&a, 401, "two credentials");
    // A token without the scope, asked to do more.
    let a = c
        .api(
            "token lacking a scope",
            Method::POST,
            "/v1/tokens",
            &secret,
            Some(json!({"name": "x"})),
        )
        .await;
    expect(&a, 403, "token lacking a scope");
}

tooken_testkit::tests! {
    async no_secret_reaches_logs_metrics_errors_or_the_store_text_logs,
    async no_secret_reaches_logs_metrics_errors_or_the_store_json_logs,
}
