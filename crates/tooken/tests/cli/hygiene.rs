//! Secret hygiene: a scripted session against the real `tooken serve`,
//! logging at trace level (everything: sqlx, hyper, tower-http), issues and
//! uses every kind of secret — API keys, tokens (rotated, derived, revoked),
//! the dashboard's setup and invitation links, passwords, session, CSRF and
//! reveal cookies — and makes the mistakes that tempt a server to echo one.
//! Then no secret, nor any 16-character piece of one, may be found in the
//! server's log, `/metrics`, any error answer, any row of any table of the
//! store (nor its files), or the audit export.

use std::collections::HashMap;
use std::path::Path;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, COOKIE, SET_COOKIE};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{json, Value};
use sqlx::{Connection, Row};
use tooken_core::audit::hex;
use tooken_core::credential::random_bytes;
use tooken_core::{Credential, Mode};

use tooken_testkit::html;

use crate::helpers::{first_key, start_server};
use crate::run::tooken_with_stdin;

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
        html::field_value(&self.body, name)
            .unwrap_or_else(|| panic!("no {name} field in {}", self.body))
    }

    /// The text of the element with `id`.
    fn text_of(&self, id: &str) -> String {
        html::text_of(&self.body, id).unwrap_or_else(|| panic!("no #{id} in {}", self.body))
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
        form: &[(&'static str, String)],
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

    // What the steps use: the banner's secrets, a well-formed token no one
    // issued, and passwords no one else could type.
    let mut kept: HashMap<&'static str, String> = HashMap::new();
    kept.insert("bootstrap API key", key1.clone());
    kept.insert("setup link", setup_token.clone());
    let unissued = Credential::generate("tkn", Mode::Live);
    kept.insert("unissued token", s.add("unissued token", unissued.expose()));
    for (name, label) in [
        ("owner's password", "owner"),
        ("a mistyped password", "owner-typo"),
        ("a password for no account", "nobody"),
        ("viewer's password", "viewer"),
        ("admin CLI user's password", "cli"),
    ] {
        kept.insert(name, s.add_password(name, &password(label)));
    }
    let mut steps = api_steps();
    steps.extend(dashboard_steps());
    run_steps(steps, &mut c, &mut s, &mut kept, dir.path()).await;
    assert!(kept["prefixed token"].starts_with("acme_live_"));
    let dashboard_export = kept["dashboard export"].clone();
    assert!(dashboard_export.lines().count() > 20, "{dashboard_export}");
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

/// Who sends a step.
#[derive(Clone, Copy)]
enum By {
    /// A `/v1` call with the credential kept under this name.
    Key(&'static str),
    /// A dashboard visitor, by name (each keeps its own cookies).
    Browser(&'static str),
    /// `tooken admin` with these arguments, on the store.
    Admin(&'static [&'static str]),
}

/// What a step sends. Every string is a template: `<name>` stands for
/// what was kept under that name.
#[derive(Clone, Copy)]
enum Body {
    None,
    Json(&'static str),
    /// `{"token": …}` with what is kept under this name.
    Token(&'static str),
    /// A browser's form, or an urlencoded body to the API.
    Form(&'static [(&'static str, &'static str)]),
    /// `tooken admin`'s standard input.
    Stdin(&'static str),
}

/// What the answer must be.
#[derive(Clone, Copy)]
enum Then {
    Status(u16),
    /// `303 See Other`, somewhere.
    Redirect,
    /// A verification: `200` with this `code`.
    Code(&'static str),
    /// An introspection: `200` with this `active`.
    Active(bool),
    /// `tooken admin` succeeded.
    Done,
}

/// Where in an answer a kept value is.
#[derive(Clone, Copy)]
enum From {
    /// A JSON pointer into the body.
    Json(&'static str),
    /// The value of a form field of the page.
    Field(&'static str),
    /// The text of the page element with this id.
    Text(&'static str),
    /// The last path segment of that text.
    TextTail(&'static str),
    /// Where the redirect goes.
    Location,
    /// What follows the last `c` of where the redirect goes.
    LocationTail(char),
    /// `tooken admin`'s standard output, trimmed.
    Stdout,
    /// The id of the API key with this name in `api-keys list --json`.
    KeyNamed(&'static str),
    /// The body.
    Body,
    /// Not from the answer: what is kept under this name, one character
    /// changed.
    Mistyped(&'static str),
}

/// What to keep from an answer: a secret (every one is looked for
/// everywhere at the end) or a value needed later.
#[derive(Clone, Copy)]
enum Keep {
    Secret(&'static str, From),
    Value(&'static str, From),
}

/// One step of the session: a request, what its answer must be, and what
/// to keep from it.
struct Step {
    what: &'static str,
    by: By,
    method: Method,
    path: &'static str,
    body: Body,
    then: Then,
    keep: &'static [Keep],
}

/// A step by `by`.
fn step(
    what: &'static str,
    by: By,
    method: Method,
    path: &'static str,
    body: Body,
    then: Then,
) -> Step {
    Step {
        what,
        by,
        method,
        path,
        body,
        then,
        keep: &[],
    }
}

impl Step {
    fn keep(self, keep: &'static [Keep]) -> Step {
        Step { keep, ..self }
    }
}

/// `POST /v1/tokens/verify` of the secret kept as `token`, by the bootstrap
/// key, expecting `code`.
fn verify(what: &'static str, token: &'static str, code: &'static str) -> Step {
    step(
        what,
        KEY1,
        Method::POST,
        "/v1/tokens/verify",
        Body::Token(token),
        Then::Code(code),
    )
}

const KEY1: By = By::Key("bootstrap API key");
const GET: Method = Method::GET;
const POST: Method = Method::POST;
const PATCH: Method = Method::PATCH;
const OWNER: By = By::Browser("owner");

/// The API: tokens created, used, verified, introspected, rotated (with
/// and without grace), derived, revoked; API keys from the admin CLI,
/// regenerated; a test-mode key and token; a custom token prefix.
#[rustfmt::skip]
fn api_steps() -> Vec<Step> {
    use Keep::{Secret, Value};
    let (ok, created) = (Then::Status(200), Then::Status(201));
    let refused = Then::Status(401);
    let whoami = |what, key| step(what, By::Key(key), GET, "/v1/whoami", Body::None, Then::Status(200));
    let whoami_refused = |what, key| step(what, By::Key(key), GET, "/v1/whoami", Body::None, refused);
    vec![
        whoami("whoami", "bootstrap API key"),
        step("create token A", KEY1, POST, "/v1/tokens", Body::Json(
            r#"{"name": "service-a", "scopes": ["invoices:read", "tokens:read", "tokens:write", "tokens:verify"], "expires_in": 3600}"#,
        ), created)
        .keep(&[Secret("token A", From::Json("/secret")), Value("A", From::Json("/id"))]),
        step("verify A", KEY1, POST, "/v1/tokens/verify",
            Body::Json(r#"{"token": "<token A>", "scopes": ["invoices:read"]}"#), Then::Code("VALID")),
        // A token verifying another (it holds tokens:verify) and listing.
        step("verify with A", By::Key("token A"), POST, "/v1/tokens/verify", Body::Token("token A"), ok),
        step("list with A", By::Key("token A"), GET, "/v1/tokens", Body::None, ok),
        step("introspect A", KEY1, POST, "/v1/oauth/introspect", Body::Form(&[("token", "<token A>")]), Then::Active(true)),
        // A child created through A, and its own child.
        step("child of A", By::Key("token A"), POST, "/v1/tokens", Body::Json(
            r#"{"name": "child", "scopes": ["invoices:read", "tokens:write"], "expires_in": 600}"#,
        ), created)
        .keep(&[Secret("child token", From::Json("/secret"))]),
        step("grandchild", By::Key("child token"), POST, "/v1/tokens", Body::Json(
            r#"{"name": "grandchild", "scopes": ["invoices:read"], "expires_in": 300}"#,
        ), created)
        .keep(&[Secret("grandchild token", From::Json("/secret"))]),
        // Rotations: with a grace period (old and new both work), then without.
        step("rotate A (grace)", KEY1, POST, "/v1/tokens/<A>/rotate", Body::Json(r#"{"grace_period_seconds": 60}"#), ok)
            .keep(&[Secret("token A, rotated", From::Json("/secret"))]),
        verify("verify A in grace", "token A", "VALID"),
        verify("verify A, rotated, in grace", "token A, rotated", "VALID"),
        step("rotate A", KEY1, POST, "/v1/tokens/<A>/rotate", Body::None, ok)
            .keep(&[Secret("token A, rotated twice", From::Json("/secret"))]),
        verify("verify rotated-away A", "token A, rotated", "NOT_FOUND"),
        whoami_refused("rotated-away A as bearer", "token A, rotated"),
        whoami("A rotated twice as bearer", "token A, rotated twice"),
        // Revocation: B alone, then A with everything made through it.
        step("create token B", KEY1, POST, "/v1/tokens", Body::Json(r#"{"name": "service-b", "scopes": ["reports:read"]}"#), created)
            .keep(&[Secret("token B", From::Json("/secret")), Value("B", From::Json("/id"))]),
        step("revoke B", KEY1, POST, "/v1/tokens/<B>/revoke", Body::Json(r#"{"reason": "no longer used"}"#), ok),
        verify("verify revoked B", "token B", "REVOKED"),
        whoami_refused("revoked B as bearer", "token B"),
        step("revoke A", KEY1, POST, "/v1/tokens/<A>/revoke", Body::None, ok),
        verify("verify revoked child", "child token", "REVOKED"),
        verify("verify revoked grandchild", "grandchild token", "REVOKED"),
        step("usage of A", KEY1, GET, "/v1/tokens/<A>/usage", Body::None, ok),
        // A credential no one issued, well formed.
        whoami_refused("unknown bearer", "unissued token"),
        verify("verify unknown", "unissued token", "NOT_FOUND"),
        // API keys from the admin CLI (on the store, while the server runs).
        step("admin CLI key", By::Admin(&["api-keys", "create", "--name", "cli key", "--mode", "test"]), GET, "", Body::None, Then::Done)
            .keep(&[Secret("admin CLI test API key", From::Stdout)]),
        step("test-mode token", By::Key("admin CLI test API key"), POST, "/v1/tokens",
            Body::Json(r#"{"name": "test token", "scopes": ["invoices:read"]}"#), created)
            .keep(&[Secret("test-mode token", From::Json("/secret"))]),
        step("admin CLI list", By::Admin(&["api-keys", "list", "--json"]), GET, "", Body::None, Then::Done)
            .keep(&[Value("cli key", From::KeyNamed("cli key"))]),
        step("admin CLI regenerate", By::Admin(&["api-keys", "regenerate", "<cli key>"]), GET, "", Body::None, Then::Done)
            .keep(&[Secret("admin CLI API key, regenerated", From::Stdout)]),
        whoami_refused("regenerated-away key", "admin CLI test API key"),
        whoami("regenerated key", "admin CLI API key, regenerated"),
        // A workspace prefix: tokens then read `acme_live_…`.
        step("set prefix", KEY1, PATCH, "/v1/settings", Body::Json(r#"{"token_prefix": "acme"}"#), ok),
        step("prefixed token", KEY1, POST, "/v1/tokens", Body::Json(r#"{"name": "prefixed", "scopes": ["invoices:read"]}"#), created)
            .keep(&[Secret("prefixed token", From::Json("/secret"))]),
        verify("verify prefixed", "prefixed token", "VALID"),
        step("list audit", KEY1, GET, "/v1/audit-log?limit=100", Body::None, ok),
    ]
}

/// The dashboard: first-run setup, tokens and API keys made, rotated and
/// regenerated (each shown once), an invitation, mistakes a person makes,
/// sign-out, failed and successful sign-ins, the invited person's sign-up,
/// a user made by the admin CLI signing in, and the audit export.
#[rustfmt::skip]
fn dashboard_steps() -> Vec<Step> {
    use Keep::{Secret, Value};
    let page = |what, by, path| step(what, by, GET, path, Body::None, Then::Status(200));
    let post = |what, by, path, form| step(what, by, POST, path, Body::Form(form), Then::Redirect);
    let refused = |what, method, path, form, status| step(what, OWNER, method, path, Body::Form(form), Then::Status(status));
    vec![
        page("setup page", OWNER, "/dashboard/setup/<setup link>").keep(&[Value("setup form", From::Field("csrf"))]),
        post("setup", OWNER, "/dashboard/setup/<setup link>", &[
            ("csrf", "<setup form>"), ("email", OWNER_EMAIL), ("name", "Olivia Owner"),
            ("password", "<owner's password>"), ("confirm", "<owner's password>"),
        ]),
        step("used setup link", OWNER, GET, "/dashboard/setup/<setup link>", Body::None, Then::Status(404)),
        page("tokens page", OWNER, "/dashboard/tokens").keep(&[Secret("session CSRF token", From::Field("csrf"))]),
        post("create token in dashboard", OWNER, "/dashboard/tokens", &[
            ("csrf", "<session CSRF token>"), ("name", "dash token"), ("scopes", "invoices:read reports:read"), ("expiry", "7"),
        ])
        .keep(&[Value("new token page", From::Location), Value("dash token", From::LocationTail('/'))]),
        page("new token page", OWNER, "<new token page>").keep(&[Secret("dashboard token", From::Text("new-secret"))]),
        post("rotate in dashboard", OWNER, "/dashboard/tokens/<dash token>/rotate", &[
            ("csrf", "<session CSRF token>"), ("grace_period_seconds", "3600"),
        ])
        .keep(&[Value("rotated token page", From::Location)]),
        page("rotated token page", OWNER, "<rotated token page>").keep(&[Secret("dashboard token, rotated", From::Text("new-secret"))]),
        post("create API key in dashboard", OWNER, "/dashboard/settings/api-keys", &[
            ("csrf", "<session CSRF token>"), ("name", "dash key"), ("mode", "live"),
        ])
        .keep(&[Value("new key page", From::Location), Value("dash key", From::LocationTail('='))]),
        page("new API key page", OWNER, "<new key page>").keep(&[Secret("dashboard API key", From::Text("new-secret"))]),
        step("dashboard key works", By::Key("dashboard API key"), GET, "/v1/whoami", Body::None, Then::Status(200)),
        post("regenerate API key", OWNER, "/dashboard/settings/api-keys/<dash key>/regenerate", &[("csrf", "<session CSRF token>")])
            .keep(&[Value("regenerated key page", From::Location)]),
        page("regenerated API key page", OWNER, "<regenerated key page>").keep(&[Secret("dashboard API key, regenerated", From::Text("new-secret"))]),
        step("regenerated dashboard key", By::Key("dashboard API key, regenerated"), GET, "/v1/whoami", Body::None, Then::Status(200)),
        post("invite", OWNER, "/dashboard/members", &[
            ("csrf", "<session CSRF token>"), ("email", VIEWER_EMAIL), ("role", "viewer"),
        ])
        .keep(&[Value("invitation page", From::Location)]),
        page("invitation page", OWNER, "<invitation page>").keep(&[
            Secret("invitation link", From::TextTail("invite-link")),
            Value("mistyped invitation", From::Mistyped("invitation link")),
        ]),
        // Mistakes a person makes in the dashboard.
        refused("scope pasted wrong", POST, "/dashboard/tokens", &[
            ("csrf", "<session CSRF token>"), ("name", "oops"), ("scopes", "<dashboard API key, regenerated>"), ("expiry", "7"),
        ], 400),
        refused("secret as token id", GET, "/dashboard/tokens/<dashboard API key, regenerated>", &[], 404),
        refused("secret as key id", GET, "/dashboard/settings/api-keys/<dashboard API key, regenerated>/regenerate", &[], 404),
        refused("secret as token id (revoke)", POST, "/dashboard/tokens/<dashboard API key, regenerated>/revoke",
            &[("csrf", "<session CSRF token>")], 404),
        refused("secret as grace period", POST, "/dashboard/tokens/<dash token>/rotate", &[
            ("csrf", "<session CSRF token>"), ("grace_period_seconds", "<dashboard API key, regenerated>"),
        ], 400),
        refused("mistyped invitation", GET, "/dashboard/setup/<mistyped invitation>", &[], 404),
        refused("secret in a dashboard path", GET, "/dashboard/<dashboard API key, regenerated>", &[], 404),
        post("sign out", OWNER, "/dashboard/logout", &[("csrf", "<session CSRF token>")]),
        // Sign-ins: a wrong password, an unknown account, then the right one.
        page("sign-in page", OWNER, "/dashboard/login").keep(&[Value("sign-in form", From::Field("csrf"))]),
        refused("wrong password", POST, "/dashboard/login", &[
            ("csrf", "<sign-in form>"), ("email", OWNER_EMAIL), ("password", "<a mistyped password>"),
        ], 400),
        refused("unknown account", POST, "/dashboard/login", &[
            ("csrf", "<sign-in form>"), ("email", "nobody@example.com"), ("password", "<a password for no account>"),
        ], 400),
        post("sign in", OWNER, "/dashboard/login", &[
            ("csrf", "<sign-in form>"), ("email", OWNER_EMAIL), ("password", "<owner's password>"),
        ]),
        page("audit page", OWNER, "/dashboard/settings/audit-log").keep(&[Secret("second session's CSRF token", From::Field("csrf"))]),
        page("dashboard audit export", OWNER, "/dashboard/settings/audit-log/export").keep(&[Value("dashboard export", From::Body)]),
        // The invited person signs up through the link.
        page("invitation", By::Browser("viewer"), "/dashboard/setup/<invitation link>").keep(&[Value("invitation form", From::Field("csrf"))]),
        post("accept invitation", By::Browser("viewer"), "/dashboard/setup/<invitation link>", &[
            ("csrf", "<invitation form>"), ("name", "Victor Viewer"),
            ("password", "<viewer's password>"), ("confirm", "<viewer's password>"),
        ]),
        // A user made by `tooken admin users create` (password on stdin).
        step("admin CLI user", By::Admin(&["users", "create", "--email", CLI_USER_EMAIL, "--role", "viewer"]), GET, "",
            Body::Stdin("<admin CLI user's password>\n"), Then::Done),
        page("sign-in page", By::Browser("cli user"), "/dashboard/login").keep(&[Value("cli sign-in form", From::Field("csrf"))]),
        post("CLI user signs in", By::Browser("cli user"), "/dashboard/login", &[
            ("csrf", "<cli sign-in form>"), ("email", CLI_USER_EMAIL), ("password", "<admin CLI user's password>"),
        ]),
    ]
}

/// `template` with each `<name>` replaced by what is kept under it.
fn fill(template: &str, kept: &HashMap<&'static str, String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find('<') {
        let end = rest[start..]
            .find('>')
            .map(|e| start + e)
            .unwrap_or_else(|| panic!("unclosed < in {template}"));
        out.push_str(&rest[..start]);
        let name = &rest[start + 1..end];
        out.push_str(
            kept.get(name)
                .unwrap_or_else(|| panic!("nothing kept as {name:?} for {template}")),
        );
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Runs the steps in order: each request, its expected answer, what it
/// keeps (secrets into `s`).
async fn run_steps(
    steps: Vec<Step>,
    c: &mut Client,
    s: &mut Secrets,
    kept: &mut HashMap<&'static str, String>,
    dir: &Path,
) {
    let mut browsers: HashMap<&'static str, Browser> = HashMap::new();
    for step in steps {
        let what = step.what;
        let answer = match step.by {
            By::Key(key) => {
                let path = fill(step.path, kept);
                let mut req = c
                    .request(step.method.clone(), &path)
                    .bearer_auth(&kept[key]);
                req = match step.body {
                    Body::None => req,
                    Body::Json(json) => req
                        .header("content-type", "application/json")
                        .body(fill(json, kept)),
                    Body::Token(name) => req.json(&json!({ "token": kept[name] })),
                    Body::Form(form) => req.form(&filled(form, kept)),
                    Body::Stdin(_) => panic!("{what}: stdin is for admin steps"),
                };
                c.send(what, req).await
            }
            By::Browser(name) => {
                let b = browsers.entry(name).or_default();
                let path = fill(step.path, kept);
                match (step.method.clone(), step.body) {
                    (Method::GET, Body::None) => b.get(c, s, what, &path).await,
                    (Method::GET, Body::Form([])) => b.get(c, s, what, &path).await,
                    (Method::POST, Body::Form(form)) => {
                        let form = filled(form, kept);
                        b.post(c, s, what, &path, &form).await
                    }
                    _ => panic!("{what}: a browser GETs pages and POSTs forms"),
                }
            }
            By::Admin(args) => {
                let args: Vec<String> = args.iter().map(|a| fill(a, kept)).collect();
                let stdin = match step.body {
                    Body::Stdin(input) => fill(input, kept),
                    _ => String::new(),
                };
                admin_with_stdin(dir, &args, &stdin)
            }
        };
        match step.then {
            Then::Status(code) => {
                assert_eq!(answer.status.as_u16(), code, "{what}: {}", answer.body)
            }
            Then::Redirect => {
                redirected(&answer, what);
            }
            Then::Code(code) => {
                assert_eq!(answer.status, StatusCode::OK, "{what}: {}", answer.body);
                assert_eq!(answer.json()["code"], code, "{what}");
            }
            Then::Active(active) => {
                assert_eq!(answer.status, StatusCode::OK, "{what}: {}", answer.body);
                assert_eq!(answer.json()["active"], active, "{what}");
            }
            Then::Done => assert!(answer.status.is_success(), "{what}: {}", answer.body),
        }
        for keep in step.keep {
            let (name, from, secret) = match *keep {
                Keep::Secret(name, from) => (name, from, true),
                Keep::Value(name, from) => (name, from, false),
            };
            let value = match from {
                From::Json(pointer) => answer
                    .json()
                    .pointer(pointer)
                    .and_then(Value::as_str)
                    .unwrap_or_else(|| panic!("{what}: no {pointer}"))
                    .to_owned(),
                From::Field(field) => answer.field(field),
                From::Text(id) => answer.text_of(id),
                From::TextTail(id) => answer.text_of(id).rsplit('/').next().unwrap().to_owned(),
                From::Location => answer.location(),
                From::LocationTail(c) => answer.location().rsplit(c).next().unwrap().to_owned(),
                From::Stdout | From::Body => answer.body.trim().to_owned(),
                From::KeyNamed(key) => {
                    let keys: Value = serde_json::from_str(&answer.body).unwrap();
                    let found = keys.as_array().unwrap().iter().find(|k| k["name"] == key);
                    found.unwrap_or_else(|| panic!("{what}: no key {key}"))["id"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                }
                From::Mistyped(of) => {
                    let mut typo = kept[of].clone().into_bytes();
                    typo[40] = if typo[40] == b'a' { b'b' } else { b'a' };
                    String::from_utf8(typo).unwrap()
                }
            };
            if secret {
                s.add(name, &value);
            }
            kept.insert(name, value);
        }
    }
}

/// A form's fields, their values filled in.
fn filled(
    form: &[(&'static str, &'static str)],
    kept: &HashMap<&'static str, String>,
) -> Vec<(&'static str, String)> {
    form.iter().map(|(k, v)| (*k, fill(v, kept))).collect()
}

/// `tooken admin ARGS…` in `dir` with `stdin`, which must succeed: its
/// stdout as an answer's body (status 200).
fn admin_with_stdin(dir: &Path, args: &[String], stdin: &str) -> Answer {
    let mut all = vec!["admin"];
    all.extend(args.iter().map(String::as_str));
    let run = tooken_with_stdin(dir, &[], &all, stdin);
    run.assert_code(0);
    Answer {
        status: StatusCode::OK,
        headers: HeaderMap::new(),
        body: run.stdout,
    }
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
