//! `tooken healthcheck`: exit 0 when the server answers `200`, 1 when it
//! does not (error status, refused, silent), 2 for bad usage.

use std::io::{Read, Write};
use std::net::TcpListener;

use crate::helpers::start_server;
use crate::run::{tooken, Api};
use tooken_testkit::{RefusingPort, TestCerts};

fn a_running_server_is_healthy_and_ready() {
    let api = Api::start();
    let url = api.server.url.clone();
    let run = api.run(&["healthcheck", "--url", &url]);
    run.assert_code(0);
    assert_eq!(run.stdout, format!("{url}/healthz: 200 OK\n"));
    let run = api.run(&["healthcheck", "--ready", "--url", &format!("{url}/")]);
    run.assert_code(0);
    assert_eq!(run.stdout, format!("{url}/readyz: 200 OK\n"));
}

/// Without `--url`: the server `tooken serve` would run with the same
/// settings; a wildcard listen address is asked on loopback.
fn the_address_comes_from_the_serve_settings() {
    let api = Api::start();
    let port = api.server.addr().port();
    let wildcard = format!("0.0.0.0:{port}");
    let run = tooken(
        api.dir.path(),
        &[("TOOKEN_LISTEN", &wildcard)],
        &["healthcheck"],
    );
    run.assert_code(0);
    assert_eq!(
        run.stdout,
        format!("http://127.0.0.1:{port}/healthz: 200 OK\n")
    );

    let listen = format!("127.0.0.1:{port}");
    let run = tooken(api.dir.path(), &[], &["healthcheck", "--listen", &listen]);
    run.assert_code(0);

    std::fs::write(
        api.dir.path().join("tooken.toml"),
        format!("listen = \"{wildcard}\"\n"),
    )
    .unwrap();
    let run = tooken(api.dir.path(), &[], &["healthcheck"]);
    run.assert_code(0);
    assert!(run.stdout.starts_with("http://127.0.0.1:"), "{run:?}");
}

/// A server serving HTTPS (its certificate names no loopback address a
/// health check could ask for) is asked over https.
fn a_tls_server_is_asked_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::generate(dir.path());
    let cert = certs.cert.to_str().unwrap();
    let key = certs.key.to_str().unwrap();
    let server = start_server(dir.path(), &["--tls-cert", cert, "--tls-key", key], &[]);
    let listen = server.addr().to_string();
    let run = tooken(
        dir.path(),
        &[("TOOKEN_LISTEN", &listen), ("TOOKEN_TLS_CERT", cert)],
        &["healthcheck"],
    );
    run.assert_code(0);
    assert_eq!(run.stdout, format!("https://{listen}/healthz: 200 OK\n"));
    // Plain HTTP to a TLS port gets no answer: unhealthy.
    let run = tooken(
        dir.path(),
        &[("TOOKEN_LISTEN", &listen)],
        &["healthcheck", "--timeout", "2s"],
    );
    run.assert_code(1);
}

fn an_error_status_is_unhealthy() {
    let (url, _answerer) =
        answering("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n");
    let dir = tempfile::tempdir().unwrap();
    let run = tooken(dir.path(), &[], &["healthcheck", "--url", &url]);
    run.assert_code(1);
    assert_eq!(
        run.error_line(),
        format!("error: {url}/healthz: 503 Service Unavailable")
    );
    assert_eq!(run.stdout, "");
}

fn nothing_listening_is_unhealthy() {
    let port = RefusingPort::new();
    let url = port.url();
    let dir = tempfile::tempdir().unwrap();
    let run = tooken(dir.path(), &[], &["healthcheck", "--url", &url]);
    run.assert_code(1);
    let line = run.error_line();
    assert!(
        line.starts_with(&format!("error: {url}/healthz: ")),
        "{line}"
    );
    assert!(line.contains("refused"), "{line}");
}

fn a_silent_server_is_unhealthy_after_the_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    // Accepted by the kernel, never answered.
    let run = tooken(
        dir.path(),
        &[],
        &["healthcheck", "--url", &url, "--timeout", "300ms"],
    );
    run.assert_code(1);
    assert_eq!(
        run.error_line(),
        format!("error: {url}/healthz: no answer within 300ms")
    );
    drop(listener);
}

fn bad_usage_is_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        "ftp://127.0.0.1:1",
        "127.0.0.1:7878",
        "http://",
        "not a url",
    ] {
        let run = tooken(dir.path(), &[], &["healthcheck", "--url", url]);
        run.assert_code(2);
        assert!(
            run.error_line()
                .contains("is not an http:// or https:// URL"),
            "{run:?}"
        );
    }
    for timeout in ["0", "5h", "fast", "-1s"] {
        let arg = format!("--timeout={timeout}");
        let run = tooken(dir.path(), &[], &["healthcheck", &arg]);
        run.assert_code(2);
        assert!(run.stderr.contains("--timeout"), "{run:?}");
    }
    let run = tooken(
        dir.path(),
        &[("TOOKEN_LISTEN", "nowhere")],
        &["healthcheck"],
    );
    run.assert_code(2);
    let run = tooken(
        dir.path(),
        &[],
        &["healthcheck", "--config", "missing.toml"],
    );
    run.assert_code(2);
    assert!(run.error_line().contains("missing.toml"), "{run:?}");
}

/// A one-request HTTP server that sends `response` to whoever connects.
fn answering(response: &'static str) -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            request.extend_from_slice(&buf[..n]);
        }
        stream.write_all(response.as_bytes()).unwrap();
    });
    (url, handle)
}

tooken_testkit::tests! {
    fn a_running_server_is_healthy_and_ready,
    fn the_address_comes_from_the_serve_settings,
    fn a_tls_server_is_asked_over_https,
    fn an_error_status_is_unhealthy,
    fn nothing_listening_is_unhealthy,
    fn a_silent_server_is_unhealthy_after_the_timeout,
    fn bad_usage_is_exit_2,
}
