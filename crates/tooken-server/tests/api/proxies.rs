//! The real nginx and Caddy, as the distribution packages them, in front of
//! a small upstream service, asking the real server (in-process, its clock
//! in the test's hands) about every request, with the configurations
//! docs/gateways.md documents (`deploy/gateways/`), only their addresses
//! changed: each gateway listens on a Unix socket in its own temporary
//! directory (no port to pick), the upstream and Tooken on port 0.
//!
//! Without nginx or Caddy the tests are reported ignored (required under
//! `TOOKEN_TEST_REQUIRE_ALL=1`, as in CI, which installs both).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::Request;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tooken_client::CreateToken;
use tooken_testkit::{eventually, Backend};

use crate::helpers::TestApp;

fn repository_file(path: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The upstream API: answers every request with what it received, as JSON.
async fn upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(|req: Request| async move {
        let mut headers: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in req.headers() {
            headers
                .entry(k.as_str().to_owned())
                .or_default()
                .push(String::from_utf8_lossy(v.as_bytes()).into_owned());
        }
        axum::Json(json!({
            "upstream": true,
            "method": req.method().as_str(),
            "uri": req.uri().to_string(),
            "headers": headers,
        }))
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// A gateway process listening on a Unix socket; killed when dropped.
struct Gateway {
    name: &'static str,
    child: Child,
    socket: PathBuf,
    logs: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gateway {
    fn start(
        name: &'static str,
        mut command: Command,
        socket: PathBuf,
        dir: tempfile::TempDir,
    ) -> Gateway {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        let logs = Arc::new(Mutex::new(String::new()));
        for out in [
            child
                .stdout
                .take()
                .map(|o| Box::new(o) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|e| Box::new(e) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let logs = logs.clone();
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                    let mut l = logs.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            });
        }
        Gateway {
            name,
            child,
            socket,
            logs,
            _dir: dir,
        }
    }

    /// Waits until the gateway answers on its socket.
    async fn ready(&mut self) {
        let socket = self.socket.clone();
        let name = self.name;
        let logs = self.logs.clone();
        eventually(&format!("{name} listens"), Duration::from_secs(20), || {
            let socket = socket.clone();
            let exited = self.child.try_wait().ok().flatten();
            let logs = logs.clone();
            async move {
                if let Some(status) = exited {
                    panic!("{name} exited ({status}): {}", logs.lock().unwrap());
                }
                tokio::net::UnixStream::connect(&socket).await.is_ok()
            }
        })
        .await;
    }

    async fn get(&self, uri: &str, headers: &[(&str, &str)]) -> Reply {
        send(&self.socket, "GET", uri, headers).await
    }
}

/// nginx with `deploy/gateways/nginx.conf`, in a main configuration of
/// the test's own (no daemon, one process, files in its directory).
fn nginx(tooken: SocketAddr, api: SocketAddr, key: &str) -> Gateway {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let socket = d.join("nginx.sock");
    let key_file = d.join("tooken-gateway-key.conf");
    std::fs::write(
        &key_file,
        format!("proxy_set_header Tooken-Gateway-Key \"{key}\";\n"),
    )
    .unwrap();
    let site = repository_file("deploy/gateways/nginx.conf")
        .replace("server 127.0.0.1:8080;", &format!("server {api};"))
        .replace("server 127.0.0.1:7878;", &format!("server {tooken};"))
        .replace(
            "    listen 80;",
            &format!("    listen unix:{};", socket.display()),
        )
        .replace(
            "/etc/nginx/tooken-gateway-key.conf",
            &key_file.display().to_string(),
        );
    assert!(site.contains(&socket.display().to_string()));
    std::fs::write(d.join("site.conf"), site).unwrap();
    let main = format!(
        "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log stderr warn;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  \
         fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  \
         include {d}/site.conf;\n}}\n",
        d = d.display()
    );
    let conf = d.join("nginx.conf");
    std::fs::write(&conf, main).unwrap();
    let mut command = Command::new("nginx");
    command.arg("-c").arg(&conf).arg("-p").arg(d);
    Gateway::start("nginx", command, socket, dir)
}

/// Caddy with `deploy/gateways/Caddyfile`.
fn caddy(tooken: SocketAddr, api: SocketAddr, key: &str) -> Gateway {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let socket = d.join("caddy.sock");
    let file = repository_file("deploy/gateways/Caddyfile")
        .replace(
            "forward_auth 127.0.0.1:7878",
            &format!("forward_auth {tooken}"),
        )
        .replace(
            "reverse_proxy 127.0.0.1:8080",
            &format!("reverse_proxy {api}"),
        )
        .replace("\tadmin off\n", "\tadmin off\n\tauto_https off\n")
        .replace(
            ":80 {\n",
            &format!("http:// {{\n\tbind unix/{}\n", socket.display()),
        );
    assert!(file.contains(&socket.display().to_string()));
    let path = d.join("Caddyfile");
    std::fs::write(&path, file).unwrap();
    let mut command = Command::new("caddy");
    command
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(&path)
        .env("TOOKEN_GATEWAY_KEY", key)
        .env("HOME", d)
        .env("XDG_DATA_HOME", d.join("data"))
        .env("XDG_CONFIG_HOME", d.join("config"));
    Gateway::start("caddy", command, socket, dir)
}

/// An answer through a gateway.
#[derive(Debug)]
struct Reply {
    status: u16,
    /// Lowercase names.
    headers: HashMap<String, String>,
    body: Value,
}

impl Reply {
    /// What the upstream received, if the request reached it.
    fn upstream(&self) -> Option<&Value> {
        (self.body["upstream"] == true).then_some(&self.body)
    }

    /// A request header as the upstream received it (every value).
    fn upstream_header(&self, name: &str) -> Option<Vec<String>> {
        let values = self.upstream()?["headers"].get(name)?;
        Some(serde_json::from_value(values.clone()).unwrap())
    }
}

/// One HTTP/1.1 request over the Unix socket at `socket`.
async fn send(socket: &Path, method: &str, uri: &str, headers: &[(&str, &str)]) -> Reply {
    let mut stream = tokio::net::UnixStream::connect(socket).await.unwrap();
    let mut req = format!("{method} {uri} HTTP/1.1\r\nhost: api.example\r\nconnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let mut map = HashMap::new();
    for (k, v) in lines.filter_map(|l| l.split_once(':')) {
        map.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
    }
    if map
        .get("transfer-encoding")
        .is_some_and(|t| t.contains("chunked"))
    {
        body = dechunk(&body);
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    Reply {
        status,
        headers: map,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = raw.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = std::str::from_utf8(&raw[..end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap().trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 {
            return out;
        }
        raw = &raw[end + 2..];
        out.extend_from_slice(&raw[..size.min(raw.len())]);
        raw = &raw[(size + 2).min(raw.len())..];
    }
}

/// The rules every case runs under.
fn rules() -> Value {
    json!({"rules": [
        {"methods": ["GET"], "path": "/invoices/**", "scopes": ["invoices:read"]},
        {"methods": "*", "path": "/public/**", "anonymous": true},
    ]})
}

/// Every case of the issue, through `gateway`, with `app` deciding.
async fn the_cases(app: &TestApp, gateway: &Gateway) {
    let name = gateway.name;
    let logs = || gateway.logs.lock().unwrap().clone();
    let (status, body) = app
        .call(
            reqwest::Method::PUT,
            "/v1/authz/rules",
            Some(&rules().to_string()),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let issue = |name: &str, scopes: &[&str], expires_in: Option<i64>| CreateToken {
        name: name.into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        metadata: Some(json!({"customer": "acme"})),
        expires_in,
        ..Default::default()
    };
    let reader = app
        .client
        .create_token(&issue("reader", &["invoices:read"], None))
        .await
        .unwrap();
    let bearer = |secret: &str| format!("Bearer {secret}");
    let reader_auth = bearer(reader.secret.expose());

    // A valid token reaches the API with Tooken's headers, and only those:
    // what the client sent under the same names is gone.
    let r = gateway
        .get(
            "/invoices/42?page=2",
            &[
                ("authorization", &reader_auth),
                ("x-tooken-token-id", "tk_forged"),
                ("x-tooken-scopes", "admin"),
                ("x-tooken-metadata-omitted", "too-large"),
                ("x-tooken-code", "VALID"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{name}: {r:?}\n{}", logs());
    let up = r.upstream().unwrap_or_else(|| panic!("{name}: {r:?}"));
    assert_eq!(up["uri"], "/invoices/42?page=2", "{name}");
    assert_eq!(
        r.upstream_header("x-tooken-token-id"),
        Some(vec![reader.token.id.clone()]),
        "{name}: {up}"
    );
    assert_eq!(
        r.upstream_header("x-tooken-scopes"),
        Some(vec!["invoices:read".to_owned()]),
        "{name}"
    );
    assert_eq!(
        r.upstream_header("x-tooken-metadata"),
        Some(vec!["eyJjdXN0b21lciI6ImFjbWUifQ".to_owned()]),
        "{name}"
    );
    assert_eq!(
        r.upstream_header("x-tooken-metadata-omitted"),
        None,
        "{name}"
    );
    assert_eq!(r.upstream_header("x-tooken-code"), None, "{name}");
    assert_eq!(
        r.upstream_header("tooken-gateway-key"),
        None,
        "{name}: the key stays with the gateway"
    );

    // A missing token: 401 with section 3's challenge.
    let r = gateway.get("/invoices/42", &[]).await;
    assert_eq!(r.status, 401, "{name}: {r:?}");
    assert!(r.upstream().is_none());
    assert_eq!(r.body["error"], "unauthorized", "{name}: {r:?}");
    assert_eq!(
        r.headers.get("www-authenticate").map(String::as_str),
        Some(r#"Bearer realm="tooken""#),
        "{name}"
    );

    // A wrong scope: 403, naming why.
    let other = app
        .client
        .create_token(&issue("other", &["customers:read"], None))
        .await
        .unwrap();
    let r = gateway
        .get(
            "/invoices/42",
            &[("authorization", &bearer(other.secret.expose()))],
        )
        .await;
    assert_eq!(r.status, 403, "{name}: {r:?}");
    assert!(r.upstream().is_none());
    assert_eq!(
        r.headers.get("x-tooken-code").map(String::as_str),
        Some("INSUFFICIENT_SCOPE"),
        "{name}"
    );

    // A public route: through, with no X-Tooken-* header whatever came.
    for auth in [None, Some(reader_auth.as_str())] {
        let mut headers = vec![("x-tooken-token-id", "tk_forged")];
        headers.extend(auth.map(|a| ("authorization", a)));
        let r = gateway.get("/public/status", &headers).await;
        assert_eq!(r.status, 200, "{name}: {r:?}");
        assert!(r.upstream().is_some(), "{name}");
        assert_eq!(
            r.upstream_header("x-tooken-token-id"),
            None,
            "{name}: {r:?}"
        );
        assert_eq!(r.upstream_header("x-tooken-scopes"), None, "{name}");
    }

    // An unmatched route: refused, whatever the token.
    let r = gateway
        .get("/customers/1", &[("authorization", &reader_auth)])
        .await;
    assert_eq!(r.status, 403, "{name}: {r:?}");
    assert!(r.upstream().is_none());
    assert_eq!(
        r.headers.get("x-tooken-code").map(String::as_str),
        Some("NO_MATCHING_RULE"),
        "{name}"
    );
    // A path the rules refuse to match.
    let r = gateway
        .get(
            "/public/..%2Finvoices/1",
            &[("authorization", &reader_auth)],
        )
        .await;
    assert_ne!(r.status, 200, "{name}: {r:?}");
    assert!(r.upstream().is_none(), "{name}");

    // Revoked: refused on the very next request, 10 rounds.
    for round in 0..10 {
        let t = app
            .client
            .create_token(&issue(&format!("r{round}"), &["invoices:read"], None))
            .await
            .unwrap();
        let auth = bearer(t.secret.expose());
        let r = gateway
            .get("/invoices/1", &[("authorization", &auth)])
            .await;
        assert_eq!(r.status, 200, "{name} round {round}: {r:?}");
        app.client.revoke_token(&t.token.id, None).await.unwrap();
        let r = gateway
            .get("/invoices/1", &[("authorization", &auth)])
            .await;
        assert_eq!(r.status, 401, "{name} round {round}: {r:?}");
        assert!(r.upstream().is_none());
    }

    // Expired: refused once its time has passed (the server's clock moves).
    let short = app
        .client
        .create_token(&issue("short", &["invoices:read"], Some(60)))
        .await
        .unwrap();
    let auth = bearer(short.secret.expose());
    assert_eq!(
        gateway
            .get("/invoices/1", &[("authorization", &auth)])
            .await
            .status,
        200,
        "{name}"
    );
    app.clock.advance(chrono::Duration::seconds(61));
    let r = gateway
        .get("/invoices/1", &[("authorization", &auth)])
        .await;
    assert_eq!(r.status, 401, "{name}: {r:?}");
    assert!(r.upstream().is_none());

    // A bad gateway key is not the client's fault: the gateway logs it.
    let _ = logs();
}

async fn through(start: fn(SocketAddr, SocketAddr, &str) -> Gateway) {
    let app = TestApp::on(Backend::Sqlite).start().await;
    let api = upstream().await;
    let mut gateway = start(app.addr, api, &app.api_key);
    gateway.ready().await;
    the_cases(&app, &gateway).await;
}

async fn nginx_enforces_the_rules() {
    through(nginx).await;
}

async fn caddy_enforces_the_rules() {
    through(caddy).await;
}

tooken_testkit::tests! {
    #[needs(Nginx)] async nginx_enforces_the_rules,
    #[needs(Caddy)] async caddy_enforces_the_rules,
}

/// docs/gateways.md shows the files these tests run, as they are.
fn the_documented_configurations_are_the_tested_ones() {
    let docs = repository_file("docs/gateways.md");
    for file in ["deploy/gateways/nginx.conf", "deploy/gateways/Caddyfile"] {
        let text = repository_file(file);
        assert!(
            docs.contains(&format!("# {file}\n{text}```")),
            "docs/gateways.md does not show {file} as it is"
        );
    }
}

tooken_testkit::tests! {
    fn the_documented_configurations_are_the_tested_ones,
}
