//! Hostile and broken clients, over real TCP, against a server whose time
//! limits are cut from seconds to about one: oversized heads, too many
//! headers, heads and bodies sent a byte at a time, idle connections,
//! malformed HTTP, the connection cap, and TLS clients that never finish a
//! handshake. Each test bounds everything it waits for (`PATIENCE`, a hang
//! guard), but asserts no upper bound on how long an answer takes: on a
//! busy machine anything can be slow. That others are served while hostile
//! clients hold connections is shown by order: they are answered while
//! those connections are still open.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tooken_server::{Limits, TlsConfig};

use tooken_testkit::{Backend, TestApp, TestCerts};

/// What the shortened time limits are set to.
const LIMIT: Duration = Duration::from_millis(1000);

/// The longest any step may take before the test fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(10);

fn short_limits() -> Limits {
    Limits {
        header_read_timeout: LIMIT,
        request_timeout: LIMIT,
        tls_handshake_timeout: LIMIT,
        ..Limits::default()
    }
}

async fn start(limits: Limits) -> TestApp {
    TestApp::on(Backend::Sqlite).limits(limits).start().await
}

/// Reads until the server closes the connection (a reset counts as
/// closing); everything it sent before.
async fn read_until_closed(stream: &mut (impl AsyncRead + Unpin)) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let read = tokio::time::timeout(PATIENCE, stream.read(&mut buf))
            .await
            .expect("the server never closed the connection");
        match read {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// Sends `request` on a new connection; everything the server sends back
/// until it closes the connection.
async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // The server may answer and close before reading all of it; what it
    // answered is what the test checks.
    let _ = stream.write_all(request).await;
    String::from_utf8_lossy(&read_until_closed(&mut stream).await).into_owned()
}

/// The status code of a raw HTTP/1.1 answer.
fn status_of(answer: &str) -> u16 {
    answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP/1.1 answer: {answer:?}"))
}

/// The body of a raw answer, as JSON.
fn json_body_of(answer: &str) -> Value {
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body)
        .unwrap_or_else(|| panic!("no body in {answer:?}"));
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {answer:?}"))
}

/// Reads one whole answer with a `Content-Length` body from a connection
/// that stays open; its status.
async fn read_answer(stream: &mut TcpStream) -> u16 {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut buf))
            .await
            .expect("no answer")
            .expect("the connection broke");
        assert!(n > 0, "closed before a whole answer: {got:?}");
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .expect("a content-length");
            if body.len() >= length {
                return status_of(&text);
            }
        }
    }
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: tooken\r\n\r\n";

/// A GET /healthz whose head is `extra` headers longer than usual.
fn healthz_with(extra: &str) -> Vec<u8> {
    format!("GET /healthz HTTP/1.1\r\nHost: tooken\r\nConnection: close\r\n{extra}\r\n")
        .into_bytes()
}

/// A well-behaved client: GET /healthz on a new connection, answered 200.
async fn assert_served(addr: SocketAddr) {
    let answer = tokio::time::timeout(PATIENCE, exchange(addr, &healthz_with("")))
        .await
        .expect("a well-behaved client was never answered");
    assert_eq!(status_of(&answer), 200, "{answer}");
}

/// The server has neither closed `stream` nor sent anything on it.
fn still_open(stream: &tokio::net::tcp::OwnedReadHalf) -> bool {
    let mut buf = [0u8; 1];
    matches!(stream.try_read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

async fn a_request_head_over_16_kib_is_431_and_one_under_is_served() {
    let app = start(short_limits()).await;
    let huge = format!("X-Padding: {}\r\n", "a".repeat(17 * 1024));
    let answer = exchange(app.addr, &healthz_with(&huge)).await;
    assert_eq!(status_of(&answer), 431, "{answer}");

    let large = format!("X-Padding: {}\r\n", "a".repeat(15 * 1024));
    let answer = exchange(app.addr, &healthz_with(&large)).await;
    assert_eq!(status_of(&answer), 200, "{answer}");
}

async fn after_refusing_a_request_the_server_reads_on_instead_of_resetting() {
    let app = start(short_limits()).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    // Far more than the server reads before it answers 431.
    let huge = healthz_with(&format!("X-Padding: {}\r\n", "a".repeat(48 * 1024)));
    stream.write_all(&huge).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer))
        .await
        .expect("the server never closed its side");
    let answer = String::from_utf8_lossy(&answer);
    // A reset here could have destroyed the answer before it was read.
    assert!(read.is_ok(), "reset, not closed ({read:?}): {answer}");
    assert_eq!(status_of(&answer), 431, "{answer}");
    // The client is still sending: read and discarded, not reset.
    for _ in 0..3 {
        stream
            .write_all(&[b'a'; 1024])
            .await
            .expect("the server still reads");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_long_request_line_counts_toward_the_head_limit() {
    let app = start(short_limits()).await;
    let path = format!("/healthz?{}", "q".repeat(20 * 1024));
    let request = format!("GET {path} HTTP/1.1\r\nHost: tooken\r\nConnection: close\r\n\r\n");
    let answer = exchange(app.addr, request.as_bytes()).await;
    assert_eq!(status_of(&answer), 431, "{answer}");
}

async fn more_than_100_headers_is_431_and_100_are_served() {
    let app = start(short_limits()).await;
    // Host and Connection are two of them.
    let headers = |n: usize| (0..n).map(|i| format!("X-H{i}: v\r\n")).collect::<String>();
    let answer = exchange(app.addr, &healthz_with(&headers(99))).await;
    assert_eq!(status_of(&answer), 431, "101 headers: {answer}");
    let answer = exchange(app.addr, &healthz_with(&headers(98))).await;
    assert_eq!(status_of(&answer), 200, "100 headers: {answer}");
}

/// Sends `bytes` on `writer` one at a time, `every` apart, until done or
/// the server stops reading.
fn trickle(
    mut writer: tokio::net::tcp::OwnedWriteHalf,
    bytes: &'static [u8],
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        for byte in bytes {
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(every).await;
        }
        // Then hold the connection, saying nothing more.
        std::future::pending::<()>().await;
    })
}

const SLOW_HEAD: &[u8] =
    b"GET /healthz HTTP/1.1\r\nHost: tooken\r\nX-Slow: abcdefghijklmnopqrstuvwxyz";

async fn a_head_sent_a_byte_at_a_time_is_cut_off() {
    let app = start(short_limits()).await;
    let (mut reader, writer) = TcpStream::connect(app.addr).await.unwrap().into_split();
    let started = Instant::now();
    // Four bytes a second, never finishing the head.
    let trickling = trickle(writer, SLOW_HEAD, Duration::from_millis(250));
    let answer = read_until_closed(&mut reader).await;
    let lasted = started.elapsed();
    assert!(
        answer.is_empty(),
        "no answer, just closed: {:?}",
        String::from_utf8_lossy(&answer)
    );
    assert!(
        lasted >= LIMIT - Duration::from_millis(100),
        "closed after {lasted:?}, the limit is {LIMIT:?}"
    );
    trickling.abort();
}

async fn others_are_served_while_slow_and_idle_clients_hold_connections() {
    // Limits long enough that no held connection is cut during the test.
    let app = start(Limits {
        header_read_timeout: PATIENCE,
        request_timeout: PATIENCE,
        ..Limits::default()
    })
    .await;
    let mut held = Vec::new();
    let mut trickling = Vec::new();
    // A head and a body sent a byte at a time.
    let body_head = format!(
        "POST /v1/tokens HTTP/1.1\r\nHost: tooken\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n",
        app.api_key
    );
    for (head, rest) in [
        ("", SLOW_HEAD),
        (body_head.as_str(), &b"{{{{{{{{{{{{{{{{{{{{"[..]),
    ] {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        let (reader, writer) = stream.into_split();
        trickling.push(trickle(writer, rest, Duration::from_millis(100)));
        held.push(reader);
    }
    // Idle connections, and some that sent half a head.
    for i in 0..100 {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        if i % 5 == 0 {
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHo")
                .await
                .unwrap();
        }
        let (reader, writer) = stream.into_split();
        trickling.push(tokio::spawn(async move {
            let _writer = writer;
            std::future::pending::<()>().await
        }));
        held.push(reader);
    }
    for _ in 0..3 {
        assert_served(app.addr).await;
    }
    for (i, stream) in held.iter().enumerate() {
        assert!(
            still_open(stream),
            "held connection {i} was closed before others were served"
        );
    }
    for t in trickling {
        t.abort();
    }
}

async fn an_idle_kept_alive_connection_is_closed_after_the_header_timeout() {
    // Longer than the others' limit: the pause below must stay well within it.
    const IDLE: Duration = Duration::from_secs(3);
    let app = start(Limits {
        header_read_timeout: IDLE,
        ..short_limits()
    })
    .await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(HEALTHZ).await.unwrap();
    assert_eq!(read_answer(&mut stream).await, 200);
    let idle_since = Instant::now();
    // Still open a moment later: a second request on it is served.
    tokio::time::sleep(IDLE / 3).await;
    stream.write_all(HEALTHZ).await.unwrap();
    assert_eq!(read_answer(&mut stream).await, 200, "kept alive");
    let idle_since_second = Instant::now();
    let rest = read_until_closed(&mut stream).await;
    assert!(rest.is_empty(), "{rest:?}");
    let idle = idle_since_second.elapsed();
    assert!(
        idle >= IDLE - Duration::from_millis(100),
        "closed after {idle:?} idle, the limit is {IDLE:?}"
    );
    assert!(
        idle_since.elapsed() >= IDLE + IDLE / 3,
        "the second request reset the clock"
    );
}

/// The soft limit on open files, where the system says (Linux).
fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

async fn hundreds_of_idle_connections_are_closed_after_the_header_timeout() {
    let app = start(short_limits()).await;
    // Both ends of each connection are in this process: a quarter of the
    // descriptors allowed, at most 500 connections, leaves room for the
    // tests running beside this one.
    let idle = open_files_limit().map_or(500, |n| (n / 4).min(500));
    assert!(
        idle >= 100,
        "too few file descriptors for this test: {idle}"
    );
    let mut connections = Vec::with_capacity(idle);
    for _ in 0..idle {
        connections.push(TcpStream::connect(app.addr).await.unwrap());
    }
    // A few that sent half a head, too.
    for c in connections.iter_mut().take(20) {
        c.write_all(b"GET /healthz HTTP/1.1\r\nHo").await.unwrap();
    }
    let closing = connections
        .into_iter()
        .map(|mut c| tokio::spawn(async move { read_until_closed(&mut c).await.is_empty() }));
    for c in closing.collect::<Vec<_>>() {
        assert!(c.await.unwrap(), "an idle connection got an answer");
    }
    assert_served(app.addr).await;
}

async fn a_body_sent_too_slowly_is_408_in_the_error_shape() {
    let app = start(short_limits()).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let body = br#"{"name":"slow","scopes":["a:b"]}"#;
    let head = format!(
        "POST /v1/tokens HTTP/1.1\r\nHost: tooken\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        app.api_key,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let (mut reader, mut writer) = stream.into_split();
    let trickle = tokio::spawn(async move {
        for byte in body {
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let answer = String::from_utf8_lossy(&read_until_closed(&mut reader).await).into_owned();
    let lasted = started.elapsed();
    trickle.abort();
    assert_eq!(status_of(&answer), 408, "{answer}");
    let lower = answer.to_ascii_lowercase();
    assert!(lower.contains("\r\nconnection: close\r\n"), "{answer}");
    assert!(lower.contains("\r\nx-request-id: req_"), "{answer}");
    let body = json_body_of(&answer);
    assert_eq!(body["error"], "request_timeout", "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(
        lasted >= LIMIT - Duration::from_millis(100),
        "answered after {lasted:?}, the limit is {LIMIT:?}"
    );
    let page = app.client.list_tokens(&Default::default()).await.unwrap();
    assert!(page.data.is_empty(), "nothing was created");
}

async fn a_garbage_request_line_is_400() {
    let app = start(short_limits()).await;
    let answer = exchange(app.addr, b"HELLO THERE\r\n\r\n").await;
    assert_eq!(status_of(&answer), 400, "{answer}");
}

async fn binary_noise_is_400() {
    let app = start(short_limits()).await;
    let noise: Vec<u8> = (0u8..=255).cycle().skip(1).take(600).collect();
    let answer = exchange(app.addr, &noise).await;
    assert_eq!(status_of(&answer), 400, "{answer}");
}

async fn a_malformed_header_line_is_400() {
    let app = start(short_limits()).await;
    let answer = exchange(
        app.addr,
        b"GET /healthz HTTP/1.1\r\nHost: tooken\r\nNo colon here\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&answer), 400, "{answer}");
}

async fn an_unknown_http_version_is_400() {
    let app = start(short_limits()).await;
    let answer = exchange(app.addr, b"GET /healthz HTTP/7.1\r\nHost: tooken\r\n\r\n").await;
    assert_eq!(status_of(&answer), 400, "{answer}");
}

async fn an_invalid_content_length_is_400() {
    let app = start(short_limits()).await;
    let answer = exchange(
        app.addr,
        b"POST /v1/tokens HTTP/1.1\r\nHost: tooken\r\nContent-Length: ten\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&answer), 400, "{answer}");
}

async fn beyond_the_connection_cap_a_client_waits_and_is_then_served() {
    let app = start(Limits {
        max_connections: 2,
        // Long enough that the idle connections below stay open.
        header_read_timeout: PATIENCE,
        ..short_limits()
    })
    .await;
    // Both are served once, so the server has surely taken them, and kept
    // open.
    let mut first = TcpStream::connect(app.addr).await.unwrap();
    let mut second = TcpStream::connect(app.addr).await.unwrap();
    for c in [&mut first, &mut second] {
        c.write_all(HEALTHZ).await.unwrap();
        assert_eq!(read_answer(c).await, 200);
    }
    let addr = app.addr;
    let waiting = tokio::spawn(async move {
        let started = Instant::now();
        let answer = exchange(addr, &healthz_with("")).await;
        (answer, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "a third connection was served");
    drop(first);
    let (answer, waited) = tokio::time::timeout(PATIENCE, waiting)
        .await
        .expect("the waiting client was never served")
        .unwrap();
    assert_eq!(status_of(&answer), 200, "{answer}");
    assert!(waited >= Duration::from_millis(500), "{waited:?}");
    drop(second);
}

async fn shutdown_finishes_the_request_in_flight_and_closes_idle_connections() {
    let mut app = start(Limits {
        header_read_timeout: PATIENCE,
        request_timeout: PATIENCE,
        ..Limits::default()
    })
    .await;
    let mut idle = TcpStream::connect(app.addr).await.unwrap();
    let mut busy = TcpStream::connect(app.addr).await.unwrap();
    let body = br#"{"name":"in-flight"}"#;
    let head = format!(
        "POST /v1/tokens HTTP/1.1\r\nHost: tooken\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        app.api_key,
        body.len()
    );
    busy.write_all(head.as_bytes()).await.unwrap();
    // The server asks for the body once the handler reads it: the request
    // is in flight.
    let mut continued = [0u8; 25];
    tokio::time::timeout(PATIENCE, busy.read_exact(&mut continued))
        .await
        .expect("an interim answer")
        .unwrap();
    assert_eq!(&continued, b"HTTP/1.1 100 Continue\r\n\r\n");
    busy.write_all(&body[..5]).await.unwrap();
    app.begin_stop();
    let closed = read_until_closed(&mut idle).await;
    assert!(closed.is_empty(), "{closed:?}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!app.stopped(), "the server waits for the request in flight");
    busy.write_all(&body[5..]).await.unwrap();
    let answer = String::from_utf8_lossy(&read_until_closed(&mut busy).await).into_owned();
    assert_eq!(status_of(&answer), 201, "{answer}");
    tokio::time::timeout(PATIENCE, app.stop())
        .await
        .expect("the server stopped");
    assert!(
        TcpStream::connect(app.addr).await.is_err(),
        "no longer accepting"
    );
}

async fn a_tls_client_that_never_finishes_its_handshake_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::generate(dir.path());
    let tls = TlsConfig::from_pem_files(&certs.cert, &certs.key).unwrap();
    let app = TestApp::on(Backend::Sqlite)
        .limits(short_limits())
        .tls(tls)
        .start()
        .await;
    let mut silent = TcpStream::connect(app.addr).await.unwrap();
    let started = Instant::now();
    // Half a ClientHello record header, then nothing.
    silent.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
    let answer = read_until_closed(&mut silent).await;
    let lasted = started.elapsed();
    assert!(answer.is_empty(), "{answer:?}");
    assert!(
        lasted >= LIMIT - Duration::from_millis(100),
        "dropped after {lasted:?}, the limit is {LIMIT:?}"
    );
}

tooken_testkit::tests! {
    async a_request_head_over_16_kib_is_431_and_one_under_is_served,
    async after_refusing_a_request_the_server_reads_on_instead_of_resetting,
    async a_long_request_line_counts_toward_the_head_limit,
    async more_than_100_headers_is_431_and_100_are_served,
    async a_head_sent_a_byte_at_a_time_is_cut_off,
    async others_are_served_while_slow_and_idle_clients_hold_connections,
    async an_idle_kept_alive_connection_is_closed_after_the_header_timeout,
    async hundreds_of_idle_connections_are_closed_after_the_header_timeout,
    async a_body_sent_too_slowly_is_408_in_the_error_shape,
    async a_garbage_request_line_is_400,
    async binary_noise_is_400,
    async a_malformed_header_line_is_400,
    async an_unknown_http_version_is_400,
    async an_invalid_content_length_is_400,
    async beyond_the_connection_cap_a_client_waits_and_is_then_served,
    async shutdown_finishes_the_request_in_flight_and_closes_idle_connections,
    async a_tls_client_that_never_finishes_its_handshake_is_dropped,
}
