//! `tooken serve --tls-cert FILE --tls-key FILE`: HTTPS from the real
//! binary, with a CA and certificate made in the test; the client side
//! (`tooken-client`, `--ca-cert`); and a clear one-line error for each
//! way the certificate and key can be wrong.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use tooken_client::Client;

use crate::helpers::{first_key, start_server, Server, BIN};
use crate::run::tooken;
use tooken_testkit::TestCerts;

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `tooken serve` over TLS in `dir`, with its first API key.
fn start_tls(dir: &Path, certs: &TestCerts) -> (Server, String) {
    let server = start_server(
        dir,
        &[
            "--tls-cert",
            path(&certs.cert),
            "--tls-key",
            path(&certs.key),
        ],
        &[],
    );
    let key = first_key(&server.wait_for_stdout("shown only this once"));
    (server, key)
}

/// A client that trusts the test CA.
fn trusting_client(certs: &TestCerts, url: &str, key: &str) -> Client {
    Client::builder(url, key)
        .add_root_certificates_pem(&std::fs::read(&certs.ca).unwrap())
        .unwrap()
        .build()
        .unwrap()
}

async fn serves_https_to_clients_that_trust_its_ca() {
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::generate(dir.path());
    let (server, key) = start_tls(dir.path(), &certs);
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );

    let me = trusting_client(&certs, &server.url, &key)
        .whoami()
        .await
        .unwrap();
    assert_eq!(me.kind, "api_key");
    // Also by name: the certificate is for localhost too.
    let by_name = server.url.replace("127.0.0.1", "localhost");
    trusting_client(&certs, &by_name, &key)
        .whoami()
        .await
        .unwrap();

    // A client that does not trust the CA refuses the server.
    let err = Client::new(&server.url, &key)
        .unwrap()
        .whoami()
        .await
        .unwrap_err();
    assert!(matches!(err, tooken_client::Error::Transport(_)), "{err:?}");
    let (status, _) = server.stop_with("TERM");
    assert!(status.success(), "{status:?}");
}

async fn the_listening_line_and_the_setup_link_say_https() {
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::generate(dir.path());
    let (server, _) = start_tls(dir.path(), &certs);
    let out = server.wait_for_stdout("/dashboard/setup/");
    let port = server.addr().port();
    assert!(
        out.contains(&format!("    https://127.0.0.1:{port}/dashboard/setup/")),
        "{out}"
    );
    assert!(!out.contains("http://"), "{out}");
}

async fn the_cli_reaches_https_with_ca_cert_or_tooken_ca_cert() {
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::generate(dir.path());
    let (server, key) = start_tls(dir.path(), &certs);
    let env = [
        ("TOOKEN_URL", server.url.as_str()),
        ("TOOKEN_API_KEY", &key),
    ];

    let run = tooken(dir.path(), &env, &["whoami", "--ca-cert", path(&certs.ca)]);
    run.assert_code(0);
    assert!(run.stdout.contains("API key"), "{run:?}");
    // The flag after a subcommand's own arguments, too.
    tooken(
        dir.path(),
        &env,
        &["tokens", "list", "--ca-cert", path(&certs.ca)],
    )
    .assert_code(0);

    let mut with_env = env.to_vec();
    with_env.push(("TOOKEN_CA_CERT", path(&certs.ca)));
    tooken(dir.path(), &with_env, &["whoami"]).assert_code(0);
    tooken(dir.path(), &with_env, &["audit", "list"]).assert_code(0);

    // Without the CA, the server's certificate is not trusted.
    let run = tooken(dir.path(), &env, &["whoami"]);
    run.assert_code(2);
    let line = run.error_line();
    assert!(
        line.starts_with(&format!("error: cannot reach Tooken: {}: ", server.url)),
        "{line}"
    );
    assert!(line.contains("UnknownIssuer"), "{line}");
}

async fn a_missing_or_empty_ca_cert_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("TOOKEN_URL", "https://127.0.0.1:1"),
        ("TOOKEN_API_KEY", "tok_live_x"),
    ];
    let missing = dir.path().join("missing.pem");
    let run = tooken(dir.path(), &env, &["whoami", "--ca-cert", path(&missing)]);
    run.assert_code(2);
    assert_eq!(
        run.error_line(),
        format!(
            "error: cannot read the CA certificate {}: No such file or directory (os error 2)",
            missing.display()
        )
    );

    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let run = tooken(dir.path(), &env, &["whoami", "--ca-cert", path(&empty)]);
    run.assert_code(2);
    assert_eq!(
        run.error_line(),
        format!(
            "error: CA certificate {}: no certificate in it (expected a PEM \"BEGIN CERTIFICATE\" block)",
            empty.display()
        )
    );
}

async fn plain_http_to_the_tls_port_gets_no_api_answer() {
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::generate(dir.path());
    let (server, key) = start_tls(dir.path(), &certs);
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    // Half the server's TLS handshake timeout (10 s): a server that only
    // waited for it would still be silent when this read gives up.
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: tooken\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let read = stream.read_to_end(&mut answer);
    // Refused at once: a TLS alert record (content type 21), then closed.
    assert!(
        read.is_ok(),
        "the server did not close the connection: {read:?}"
    );
    assert_eq!(answer.first(), Some(&21), "{answer:?}");

    let http_url = server.url.replace("https://", "http://");
    let err = Client::new(&http_url, &key)
        .unwrap()
        .whoami()
        .await
        .unwrap_err();
    assert!(matches!(err, tooken_client::Error::Transport(_)), "{err:?}");
}

/// The `Set-Cookie` header for cookie `name` in `res`.
fn set_cookie<'a>(res: &'a reqwest::Response, name: &str) -> &'a str {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in {:?}", res.headers()))
}

async fn dashboard_cookies_are_secure_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::generate(dir.path());
    let (server, _) = start_tls(dir.path(), &certs);
    let email = "owner@example.com";
    let password = "a long enough password for the test";
    let mut admin = Command::new(BIN)
        .args([
            "admin", "users", "create", "--email", email, "--role", "owner",
        ])
        .current_dir(dir.path())
        .env_remove("TOOKEN_DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(admin.stdin.take().unwrap(), "{password}").unwrap();
    let out = admin.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");

    let http = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(&certs.ca).unwrap()).unwrap(),
        )
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http
        .get(format!("{}/dashboard/login", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let pre = set_cookie(&page, "tooken_pre");
    assert!(pre.ends_with("; Secure"), "{pre}");
    let csrf = pre
        .split(';')
        .next()
        .and_then(|c| c.split_once('='))
        .map(|(_, v)| v.to_owned())
        .unwrap();

    let res = http
        .post(format!("{}/dashboard/login", server.url))
        .header("cookie", format!("tooken_pre={csrf}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", email),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "signed in");
    let session = set_cookie(&res, "tooken_session");
    assert!(session.contains("; HttpOnly"), "{session}");
    assert!(session.ends_with("; Secure"), "{session}");
}

async fn tls_settings_come_from_the_environment_or_tooken_toml() {
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::generate(dir.path());
    let server = start_server(
        dir.path(),
        &[],
        &[
            ("TOOKEN_TLS_CERT", path(&certs.cert)),
            ("TOOKEN_TLS_KEY", path(&certs.key)),
        ],
    );
    let key = first_key(&server.wait_for_stdout("shown only this once"));
    assert!(server.url.starts_with("https://"), "{}", server.url);
    trusting_client(&certs, &server.url, &key)
        .whoami()
        .await
        .unwrap();
    server.stop_with("TERM");

    // Relative paths, from the directory tooken runs in.
    std::fs::write(
        dir.path().join("tooken.toml"),
        "tls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n",
    )
    .unwrap();
    let server = start_server(dir.path(), &[], &[]);
    assert!(server.url.starts_with("https://"), "{}", server.url);
    trusting_client(&certs, &server.url, &key)
        .whoami()
        .await
        .unwrap();
}

/// `tooken serve ARGS` in `dir`, expected to refuse to start: its one
/// error line. The store is not touched.
fn refused(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .current_dir(dir)
        .env_remove("TOOKEN_DATABASE_URL")
        .env_remove("TOOKEN_TLS_CERT")
        .env_remove("TOOKEN_TLS_KEY")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty(), "nothing printed: {out:?}");
    assert!(
        !dir.join("tooken.db").exists(),
        "the store is not created before TLS is checked"
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr:?}");
    lines[0].to_owned()
}

const BOTH: &str = "TLS needs both --tls-cert and --tls-key (or TOOKEN_TLS_CERT and \
                    TOOKEN_TLS_KEY, or tls_cert and tls_key in tooken.toml)";

/// Each way the certificate and key can be wrong, refused before the store
/// is touched with one line that says which.
fn a_wrong_certificate_or_key_is_refused_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::generate(dir.path());
    let missing = dir.path().join("missing.pem");
    let (cert, key, other, absent) = (
        path(&certs.cert),
        path(&certs.key),
        path(&certs.other_key),
        path(&missing),
    );
    let not_found = "No such file or directory (os error 2)";
    let cases: [(&str, &[&str], String); 7] = [
        (
            "a certificate without a key",
            &["--tls-cert", cert],
            format!("error: a TLS certificate is set but no key: {BOTH}"),
        ),
        (
            "a key without a certificate",
            &["--tls-key", key],
            format!("error: a TLS key is set but no certificate: {BOTH}"),
        ),
        (
            "a missing certificate file",
            &["--tls-cert", absent, "--tls-key", key],
            format!("error: cannot read the TLS certificate {absent}: {not_found}"),
        ),
        (
            "a missing key file",
            &["--tls-cert", cert, "--tls-key", absent],
            format!("error: cannot read the TLS key {absent}: {not_found}"),
        ),
        (
            "a key where the certificate should be",
            &["--tls-cert", key, "--tls-key", key],
            format!("error: no certificate in {key} (expected a PEM \"BEGIN CERTIFICATE\" block)"),
        ),
        (
            "a certificate where the key should be",
            &["--tls-cert", cert, "--tls-key", cert],
            format!(
                "error: no private key in {cert} (expected a PEM \"BEGIN PRIVATE KEY\", \
                 \"BEGIN RSA PRIVATE KEY\" or \"BEGIN EC PRIVATE KEY\" block)"
            ),
        ),
        (
            "a key that does not match the certificate",
            &["--tls-cert", cert, "--tls-key", other],
            format!("error: the TLS key in {other} does not match the certificate in {cert}"),
        ),
    ];
    for (what, args, expected) in cases {
        assert_eq!(refused(dir.path(), args), expected, "{what}");
    }
}

tooken_testkit::tests! {
    async serves_https_to_clients_that_trust_its_ca,
    async the_listening_line_and_the_setup_link_say_https,
    async the_cli_reaches_https_with_ca_cert_or_tooken_ca_cert,
    async a_missing_or_empty_ca_cert_is_a_usage_error,
    async plain_http_to_the_tls_port_gets_no_api_answer,
    async dashboard_cookies_are_secure_over_tls,
    async tls_settings_come_from_the_environment_or_tooken_toml,
    fn a_wrong_certificate_or_key_is_refused_with_one_line,
}
