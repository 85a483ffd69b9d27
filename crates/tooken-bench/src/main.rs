//! `tooken-bench`: seeds a fresh store with N tokens, starts the real
//! `tooken serve` (the release binary next to this one) on it, drives
//! HTTP/1.1 keep-alive load from C connections for D seconds against
//! `/healthz`, `POST /v1/tokens/verify` (tokens drawn at random from all N)
//! and `POST /v1/tokens`, and prints requests/s, latency percentiles,
//! errors, the server's RSS, and the ratios to healthz of the same run.
//!
//! The load generator speaks raw HTTP/1.1 over keep-alive sockets so that it
//! costs as little CPU as possible on a machine it shares with the server.
//!
//! `tooken-bench propagation --database postgres://…` measures instead how
//! fast a revocation on one node is in force on another: it seeds N
//! tokens, starts two nodes on the same PostgreSQL database, verifies every
//! token on node B (so B has them cached), then for each one revokes it on
//! node A and at once verifies it on node B until B rejects it.
//!
//! `tooken-bench soak --minutes 10` runs a mixed load (verify, create,
//! revoke, list) and prints throughput, errors and the server's memory
//! over time (see soak.rs).

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tooken_bench::seed;

mod soak;

/// Warnings and errors the servers started here have logged.
static SERVER_WARNINGS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[derive(Debug, Parser)]
#[command(about = "Tooken load harness", args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    load: Args,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Two nodes on one PostgreSQL database: how soon after a revocation on
    /// node A does node B reject the token?
    Propagation(PropagationArgs),
    /// A long mixed load (verify, create, revoke, list) against one node:
    /// throughput, errors and the server's memory over time.
    Soak(soak::SoakArgs),
}

#[derive(Debug, clap::Args)]
struct PropagationArgs {
    /// An empty PostgreSQL database.
    #[arg(long)]
    database: String,
    /// Tokens to revoke, one after another.
    #[arg(long, default_value_t = 1000)]
    revocations: usize,
    /// The tooken binary; default the one next to this program.
    #[arg(long)]
    tooken: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
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
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Propagation(args)) => propagation(args).await,
        Some(Command::Soak(args)) => soak::soak(args).await,
        None => load(cli.load).await,
    }
}

async fn load(args: Args) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("tooken-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let url = args
        .database
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.join("bench.db").display()));

    println!("seeding {} tokens into {}", args.tokens, redact(&url));
    let started = Instant::now();
    let (api_key, tokens) = seed(&url, args.tokens).await?;
    let secrets: Vec<String> = tokens.into_iter().map(|(_, secret)| secret).collect();
    println!("seeded in {:.1} s", started.elapsed().as_secs_f64());

    let bin = tooken_binary(args.tooken.as_ref())?;
    let started = Instant::now();
    let (mut server, addr) = start_server(&bin, &url).await?;
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

/// The tooken binary: `explicit`, or the one next to this program.
fn tooken_binary(explicit: Option<&PathBuf>) -> anyhow::Result<PathBuf> {
    let bin = match explicit {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("tooken"),
    };
    if !bin.exists() {
        bail!(
            "{} not found: run `cargo build --release` first, or pass --tooken",
            bin.display()
        );
    }
    Ok(bin)
}

/// Starts `tooken serve` on `url` and a free loopback port; returns the
/// process and the address it listens on.
async fn start_server(bin: &PathBuf, url: &str) -> anyhow::Result<(tokio::process::Child, String)> {
    let mut server = tokio::process::Command::new(bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--database", url])
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
    // Warnings (e.g. a change not acknowledged in time) stay visible.
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("WARN") || line.contains("ERROR") {
                SERVER_WARNINGS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                eprintln!("{line}");
            }
        }
    });
    Ok((server, addr))
}

/// Two nodes on one PostgreSQL database; for each of N cached tokens,
/// revoke on A, then verify on B until rejected.
async fn propagation(args: PropagationArgs) -> anyhow::Result<()> {
    if !args.database.starts_with("postgres") {
        bail!("propagation needs a postgres:// database (several nodes share it)");
    }
    let bin = tooken_binary(args.tooken.as_ref())?;
    println!(
        "seeding {} tokens into {}",
        args.revocations,
        redact(&args.database)
    );
    let (key, tokens) = seed(&args.database, args.revocations).await?;
    let (_a, addr_a) = start_server(&bin, &args.database).await?;
    let (_b, addr_b) = start_server(&bin, &args.database).await?;
    println!("node A {addr_a}, node B {addr_b}");
    let mut a = Http::connect(&addr_a, &key).await?;
    let mut b = Http::connect(&addr_b, &key).await?;

    // Warm B's cache: every token verified (and so cached) there.
    for (_, secret) in &tokens {
        let body = b.verify(secret).await?;
        if !body.contains("\"VALID\"") {
            bail!("a fresh token did not verify on B: {body}");
        }
    }
    let mut delays = Vec::with_capacity(tokens.len());
    let mut revoke_latency = Vec::with_capacity(tokens.len());
    let mut first_request = 0usize;
    let mut attempts_total = 0usize;
    for (id, secret) in &tokens {
        // Cached on B right before the revocation.
        b.verify(secret).await?;
        let started = Instant::now();
        let (status, body) = a
            .send("POST", &format!("/v1/tokens/{id}/revoke"), "{}")
            .await?;
        if status != 200 {
            bail!("revoke answered {status}: {body}");
        }
        let revoked = Instant::now();
        revoke_latency.push(revoked.duration_since(started));
        let mut attempts = 0;
        loop {
            attempts += 1;
            let body = b.verify(secret).await?;
            if body.contains("\"REVOKED\"") {
                break;
            }
            if revoked.elapsed() > Duration::from_secs(10) {
                bail!("B still accepts a token revoked 10 s ago");
            }
        }
        delays.push(revoked.elapsed());
        attempts_total += attempts;
        if attempts == 1 {
            first_request += 1;
        }
    }
    let n = tokens.len();
    println!();
    println!(
        "rejected by B on the very first request after the revoke response: {first_request} of {n} \
         ({} verifications in all)",
        attempts_total
    );
    print_percentiles("revoke response → B's first rejection", &mut delays);
    print_percentiles(
        "revoke request on A (includes the wait for acknowledgements)",
        &mut revoke_latency,
    );
    Ok(())
}

fn print_percentiles(name: &str, values: &mut [Duration]) {
    values.sort_unstable();
    let pct = |p: f64| {
        values
            .get(((values.len() as f64 * p) as usize).min(values.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "{name}: p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        pct(0.50),
        pct(0.99),
        values.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    );
}

/// One keep-alive HTTP/1.1 connection with an API key.
struct Http {
    conn: BufReader<TcpStream>,
    key: String,
}

impl Http {
    async fn connect(addr: &str, key: &str) -> anyhow::Result<Http> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Http {
            conn: BufReader::new(stream),
            key: key.to_owned(),
        })
    }

    async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: &str,
    ) -> anyhow::Result<(u16, String)> {
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.key,
            body.len()
        );
        self.conn.get_mut().write_all(request.as_bytes()).await?;
        let (status, body) = read_response_body(&mut self.conn).await?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    /// `POST /v1/tokens/verify` of `secret`: the status and body.
    async fn post_verify(&mut self, secret: &str) -> anyhow::Result<(u16, String)> {
        let body = format!(r#"{{"token":"{secret}"}}"#);
        self.send("POST", "/v1/tokens/verify", &body).await
    }

    async fn verify(&mut self, secret: &str) -> anyhow::Result<String> {
        let (status, body) = self.post_verify(secret).await?;
        if status != 200 {
            bail!("verify answered {status}: {body}");
        }
        Ok(body)
    }
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
        "{name:<24} {rps:>9.0} req/s  p50 {:>6} µs  p99 {:>6} µs  p99.9 {:>6} µs  errors {errors}  server RSS {} MiB (peak so far {} MiB)",
        pct(0.50),
        pct(0.99),
        pct(0.999),
        rss_mib(pid),
        peak_rss_mib(pid)
    );
    Ok(Outcome { rps })
}

async fn read_response(conn: &mut BufReader<TcpStream>) -> anyhow::Result<u16> {
    Ok(read_response_body(conn).await?.0)
}

async fn read_response_body(conn: &mut BufReader<TcpStream>) -> anyhow::Result<(u16, Vec<u8>)> {
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
    Ok((status, body))
}

/// The process's resident memory now, in MiB.
fn rss_mib(pid: u32) -> u64 {
    status_mib(pid, "VmRSS:")
}

/// The most the process has been resident so far, in MiB.
fn peak_rss_mib(pid: u32) -> u64 {
    status_mib(pid, "VmHWM:")
}

/// A `… kB` line of /proc/PID/status, in MiB (0 where there is none).
fn status_mib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).map(str::to_owned))
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
