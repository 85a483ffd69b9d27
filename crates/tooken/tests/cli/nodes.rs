//! Several `tooken serve` nodes on one PostgreSQL database, and the means
//! to disturb it: a TCP proxy the test can stop and restart, queries on
//! pg_stat_activity.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::{Connection, Row};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

use crate::helpers::{start_server, Server, TOOKEN};
pub use tooken_testkit::eventually;
pub use tooken_testkit::TestDatabase;

/// A fresh database (the test needs PostgreSQL).
pub async fn database() -> TestDatabase {
    TestDatabase::create().await
}

/// `url` with `application_name` set, so that a node's sessions (and its
/// listener, `NAME-listener`) can be told apart in pg_stat_activity.
pub fn named(url: &str, name: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}application_name={name}")
}

/// Starts a node on `url` in `dir`, with extra flags.
pub fn start_node(dir: &Path, url: &str, extra: &[&str]) -> Server {
    let mut args = vec!["--database", url];
    args.extend_from_slice(extra);
    start_server(dir, &args, &[])
}

/// Runs `tooken ARGS…` to its end (at most `limit`); returns its exit
/// status, stdout and stderr.
pub fn run_to_exit(
    dir: &Path,
    args: &[&str],
    limit: Duration,
) -> (std::process::ExitStatus, String, String) {
    TOOKEN.run_to_exit(dir, args, limit)
}

/// `tooken admin --database URL ARGS…`; panics unless it succeeds; returns
/// stdout.
pub fn admin_ok(dir: &Path, url: &str, args: &[&str]) -> String {
    let mut all = vec!["--database", url];
    all.extend_from_slice(args);
    TOOKEN.admin_ok(dir, &all)
}

/// Runs one statement on the test database; returns the first column of
/// every row as text.
pub async fn query(url: &str, sql: &str) -> Vec<String> {
    let mut conn = sqlx::postgres::PgConnection::connect(url).await.unwrap();
    let rows = sqlx::query(sql).fetch_all(&mut conn).await.unwrap();
    rows.iter()
        .map(|r| {
            r.try_get::<Option<String>, _>(0)
                .unwrap()
                .unwrap_or_default()
        })
        .collect()
}

/// How many sessions on the test database have `application_name`.
pub async fn sessions_named(url: &str, name: &str) -> usize {
    query(
        url,
        &format!(
            "SELECT pid::text FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = '{name}'"
        ),
    )
    .await
    .len()
}

/// A metric's value on a node's /metrics (0 when absent).
pub async fn metric(url: &str, line_start: &str) -> f64 {
    let text = reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// The host:port of a PostgreSQL URL.
pub fn upstream_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    }
}

/// `url` pointed at `127.0.0.1:port` instead of its own host and port.
pub fn through(url: &str, port: u16) -> String {
    let upstream = upstream_of(url);
    url.replacen(&upstream, &format!("127.0.0.1:{port}"), 1)
}

/// A TCP proxy in front of PostgreSQL, on its own runtime so that blocking
/// test code cannot stall it. `stop` cuts every connection through it and
/// resets new ones at once (its port stays bound: nothing else can take it
/// meanwhile); `restart` lets connections through again.
pub struct Proxy {
    runtime: Option<tokio::runtime::Runtime>,
    pub port: u16,
    up: Arc<AtomicBool>,
    /// Connections being forwarded, to cut on `stop`.
    live: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Proxy {
    pub fn start(upstream: &str) -> Proxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (up, live) = (
            Arc::new(AtomicBool::new(true)),
            Arc::<Mutex<Vec<AbortHandle>>>::default(),
        );
        let (upstream, flag, forwards) = (upstream.to_owned(), up.clone(), live.clone());
        runtime.spawn(async move {
            let listener = TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                if !flag.load(Ordering::SeqCst) {
                    // Down: reset the connection, as a dead server would.
                    let _ = client.set_zero_linger();
                    continue;
                }
                let upstream = upstream.clone();
                let forward = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let mut client = client;
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                forwards.lock().unwrap().push(forward.abort_handle());
            }
        });
        Proxy {
            runtime: Some(runtime),
            port,
            up,
            live,
        }
    }

    /// Cuts every live connection; new ones are reset until `restart`.
    pub fn stop(&self) {
        self.up.store(false, Ordering::SeqCst);
        for task in self.live.lock().unwrap().drain(..) {
            task.abort();
        }
        // Aborted tasks drop their sockets when next scheduled: wait until
        // each has.
        let start = Instant::now();
        while self.live_connections() > 0 {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "proxy did not stop"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Lets connections through again.
    pub fn restart(&self) {
        self.up.store(true, Ordering::SeqCst);
    }

    /// Forwarded connections whose tasks have not finished.
    fn live_connections(&self) -> usize {
        let metrics = self.runtime.as_ref().unwrap().metrics();
        // The accept loop is one task; each forward is another.
        metrics.num_alive_tasks().saturating_sub(1)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
