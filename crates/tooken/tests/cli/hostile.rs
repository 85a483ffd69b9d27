//! The real binary, with its default limits, against hostile and broken
//! clients over raw TCP. (The time limits themselves are exercised, cut
//! short, in tooken-server's `api` tests.)

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::helpers::start_server;

/// Sends `request` on a new connection; everything the server sends back
/// until it closes the connection.
fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // The server may answer and close before reading all of it.
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                panic!("the server neither answered nor closed: {answer:?}")
            }
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

fn status_of(answer: &str) -> &str {
    answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .unwrap_or_else(|| panic!("not an HTTP/1.1 answer: {answer:?}"))
}

fn a_huge_header_is_431() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), &[], &[]);
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: tooken\r\nCookie: {}\r\n\r\n",
        "c".repeat(20 * 1024)
    );
    let answer = exchange(server.addr(), request.as_bytes());
    assert_eq!(status_of(&answer), "431", "{answer}");
}

fn malformed_http_is_400() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), &[], &[]);
    let answer = exchange(server.addr(), b"\x01\x02 not http at all\r\n\r\n");
    assert_eq!(status_of(&answer), "400", "{answer}");
}

fn idle_connections_do_not_block_others() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), &[], &[]);
    // Some say nothing; some send half a request head and stall.
    let mut idle: Vec<TcpStream> = (0..50)
        .map(|_| TcpStream::connect(server.addr()).unwrap())
        .collect();
    for stream in idle.iter_mut().take(25) {
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHo").unwrap();
    }
    let answer = exchange(
        server.addr(),
        b"GET /healthz HTTP/1.1\r\nHost: tooken\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status_of(&answer), "200", "{answer}");
    // Answered while every one of them was still held open: it did not
    // wait for them to time out.
    for (i, stream) in idle.iter().enumerate() {
        stream.set_nonblocking(true).unwrap();
        let read = (&*stream).read(&mut [0u8; 1]);
        assert!(
            matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "idle connection {i} was closed or answered first: {read:?}"
        );
    }
}

tooken_testkit::tests! {
    fn a_huge_header_is_431,
    fn malformed_http_is_400,
    fn idle_connections_do_not_block_others,
}
