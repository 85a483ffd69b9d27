//! `tooken-bench`: seeds a fresh store with N tokens, starts the real
//! `tooken serve` (the release binary next to this one) on it, drives
//! HTTP/1.1 keep-alive load from C connections for D seconds against
//! `/healthz`, `POST /v1/tokens/verify` (tokens drawn at random from all N)
//! and `POST /v1/tokens`, and prints requests/s, latency percentiles,
//! errors, the server's RSS, and the ratios to healthz of the same run.
//!
//! The load generator speaks raw HTTP/1.1 over keep-alive sockets so that it
//! costs as little CPU as possible on a machine it shares with the server.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tooken_core::audit::Actor;
use tooken_core::{Clock, Credential, Mode, SystemClock};
use tooken_store::{AuditContext, NewApiKey, Store};

#[derive(Debug, Parser)]
#[command(about = "Tooken load harness")]
struct Args {
    /// Tokens to seed.
    #[arg(long, default_value_t = 100_000)]
    tokens: usize,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds per scenario.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Store to seed and serve; default a fresh SQLite file. A postgres://
    /// URL must name an empty database.
    #[arg(long)]
    database: Option<String>,
    /// The tooken binary; default the one next to this program.
    #[arg(long)]
    tooken: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("tooken-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let url = args
        .database
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.join("bench.db").display()));

    println!("seeding {} tokens into {}", args.tokens, redact(&url));
    let started = Instant::now();
    let (api_key, secrets) = seed(&url, args.tokens).await?;
    println!("seeded in {:.1} s", started.elapsed().as_secs_f64());

    let bin = match &args.tooken {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("tooken"),
    };
    if !bin.exists() {
        bail!(
            "{} not found: run `cargo build --release` first, or pass --tooken",
            bin.display()
        );
    }
    let started = Instant::now();
    let mut server = tokio::process::Command::new(&bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--database", &url])
        .env("TOOKEN_LOG", "warn,tooken::serve=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("start {}", bin.display()))?;
    let mut lines = BufReader::new(server.stderr.take().context("stderr")?).lines();
    let addr = loop {
        let line = lines
            .next_line()
            .await?
            .context("server exited before listening")?;
        if let Some(a) = line.split("address=").nth(1) {
            break a.split_whitespace().next().unwrap_or_default().to_owned();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let pid = server.id().context("server pid")?;
    println!(
        "server ready in {} ms (pid {pid}, {addr})",
        started.elapsed().as_millis()
    );

    let secrets = Arc::new(secrets);
    let dur = Duration::from_secs(args.duration);
    let health = run("GET /healthz", &addr, args.connections, dur, pid, |_| {
        "GET /healthz HTTP/1.1\r\nHost: b\r\n\r\n".to_owned()
    })
    .await?;
    let verify = {
        let (secrets, key) = (secrets.clone(), api_key.clone());
        run("POST /v1/tokens/verify", &addr, args.connections, dur, pid, move |i| {
            let token = &secrets[(splitmix(i) % secrets.len() as u64) as usize];
            let body = format!(r#"{{"token":"{token}","scopes":["bench:read"]}}"#);
            format!(
                "POST /v1/tokens/verify HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        })
        .await?
    };
    let create = {
        let key = api_key.clone();
        run("POST /v1/tokens", &addr, args.connections, dur, pid, move |i| {
            let body = format!(r#"{{"name":"load-{i}","scopes":["bench:read"]}}"#);
            format!(
                "POST /v1/tokens HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        })
        .await?
    };
    println!();
    println!("verify/healthz = {:.2}", verify.rps / health.rps);
    println!("create/healthz = {:.2}", create.rps / health.rps);
    let _ = server.kill().await;
    if args.database.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

/// Creates a workspace, an API key and `n` tokens (scope `bench:read`),
/// straight in the store and in large transactions; returns the key and
/// the token secrets.
async fn seed(url: &str, n: usize) -> anyhow::Result<(String, Vec<String>)> {
    let store = Store::open(url).await?;
    let now = SystemClock.now();
    let ctx = AuditContext::new(Actor::system());
    let ws = store.create_workspace("default", &ctx, now).await?;
    let key = Credential::generate("tok", Mode::Live);
    store
        .create_api_key(
            NewApiKey {
                workspace_id: &ws.id,
                mode: Mode::Live,
                name: "bench",
                secret_hash: key.hash(),
                hint: key.hint(),
            },
            &ctx,
            now,
        )
        .await?;
    let mut secrets = Vec::with_capacity(n);
    let ms = now.timestamp_millis();
    for chunk_start in (0..n).step_by(50_000) {
        let mut tx = store.pool().begin().await?;
        for batch_start in (chunk_start..(chunk_start + 50_000).min(n)).step_by(500) {
            let count = 500.min(n - batch_start);
            let mut sql = String::from(
                "INSERT INTO tokens (id, workspace_id, mode, name, scopes, secret_hash, hint, created_at, created_by) VALUES ",
            );
            let mut rows = Vec::with_capacity(count);
            for i in 0..count {
                let c = Credential::generate("tkn", Mode::Live);
                let id = tooken_core::id::new_id(tooken_core::id::IdKind::Token, now);
                let p = i * 4;
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!(
                    "(${}, '{}', 'live', 'bench', '[\"bench:read\"]', ${}, ${}, {ms}, ${})",
                    p + 1,
                    ws.id,
                    p + 2,
                    p + 3,
                    p + 4
                ));
                rows.push((id, c.hash().as_bytes().to_vec(), c.hint()));
                secrets.push(c.expose().to_owned());
            }
            let mut q = sqlx::query(&sql);
            for (id, hash, hint) in &rows {
                q = q
                    .bind(id.as_str())
                    .bind(hash.as_slice())
                    .bind(hint.as_str())
                    .bind("bench");
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
    }
    store.close().await;
    Ok((key.expose().to_owned(), secrets))
}

struct Outcome {
    rps: f64,
}

/// Drives `connections` keep-alive connections for `dur`, each sending the
/// request `make(i)` for its i-th request, and prints the figures.
async fn run(
    name: &str,
    addr: &str,
    connections: usize,
    dur: Duration,
    pid: u32,
    make: impl Fn(u64) -> String + Send + Sync + 'static,
) -> anyhow::Result<Outcome> {
    let make = Arc::new(make);
    let deadline = Instant::now() + dur;
    let mut tasks = Vec::new();
    for c in 0..connections {
        let (addr, make) = (addr.to_owned(), make.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            let mut conn = BufReader::new(TcpStream::connect(&addr).await?);
            conn.get_mut().set_nodelay(true)?;
            let mut i = (c as u64) << 40;
            while Instant::now() < deadline {
                let req = make(i);
                i += 1;
                let t = Instant::now();
                conn.get_mut().write_all(req.as_bytes()).await?;
                let status = read_response(&mut conn).await?;
                lat.push(t.elapsed().as_micros() as u32);
                if !(200..300).contains(&status) {
                    errors += 1;
                }
            }
            anyhow::Ok((lat, errors))
        }));
    }
    let mut lat = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await??;
        lat.extend(l);
        errors += e;
    }
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    let rps = lat.len() as f64 / dur.as_secs_f64();
    println!(
        "{name:<24} {rps:>9.0} req/s  p50 {:>6} µs  p99 {:>6} µs  p99.9 {:>6} µs  errors {errors}  server RSS {} MiB",
        pct(0.50),
        pct(0.99),
        pct(0.999),
        rss_mib(pid)
    );
    Ok(Outcome { rps })
}

async fn read_response(conn: &mut BufReader<TcpStream>) -> anyhow::Result<u16> {
    let mut line = String::new();
    conn.read_line(&mut line).await?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .context("bad status line")?
        .parse()?;
    let mut len = 0usize;
    loop {
        line.clear();
        conn.read_line(&mut line).await?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse()?;
        }
    }
    let mut body = vec![0; len];
    conn.read_exact(&mut body).await?;
    Ok(status)
}

fn rss_mib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(str::to_owned)
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb / 1024)
        .unwrap_or(0)
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn redact(url: &str) -> String {
    match url.split_once('@') {
        Some((head, tail)) if head.contains("://") => {
            format!("{}://…@{tail}", head.split("://").next().unwrap_or(""))
        }
        _ => url.to_owned(),
    }
}
