//! Addresses for tests, and waiting for something to become true.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A port on 127.0.0.1 that refuses connections for as long as this is
/// kept: bound (so nothing else can take it) but never listening. A port
/// picked, released and used later might meanwhile belong to another test.
pub struct RefusingPort {
    _socket: tokio::net::TcpSocket,
    pub addr: SocketAddr,
}

impl RefusingPort {
    pub fn new() -> RefusingPort {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(([127, 0, 0, 1], 0).into()).unwrap();
        let addr = socket.local_addr().unwrap();
        RefusingPort {
            _socket: socket,
            addr,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://ADDRESS`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Default for RefusingPort {
    fn default() -> Self {
        RefusingPort::new()
    }
}

/// Polls `check` every 20 ms until it holds; panics, naming `what`, once
/// `limit` has passed. A bound on how long to wait for something that
/// happens on its own (a process starting, a connection dropping), never a
/// measurement.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
