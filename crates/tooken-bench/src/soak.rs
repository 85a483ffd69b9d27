//! `tooken-bench soak`: a long mixed load against one `tooken serve`, to
//! show that memory stays flat and nothing fails over time.
//!
//! C keep-alive connections each loop over a fixed mix: verify a live token
//! (expects `VALID`), verify a revoked one (expects `REVOKED`), create a
//! token (then verifiable), revoke a live one, and list tokens. Every
//! answer is checked, not only its status. Every S seconds it prints the
//! interval's throughput, latency, errors and the server's RSS; at the end
//! a summary, and the exit status is non-zero if anything failed.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::{rss_mib, seed, splitmix, start_server, tooken_binary, Http, SERVER_WARNINGS};

#[derive(Debug, clap::Args)]
pub(crate) struct SoakArgs {
    /// How long to run, in minutes.
    #[arg(long, default_value_t = 10)]
    minutes: u64,
    /// Tokens to seed before starting.
    #[arg(long, default_value_t = 10_000)]
    tokens: usize,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Seconds between progress lines.
    #[arg(long, default_value_t = 30)]
    every: u64,
    /// Store to seed and serve; default a fresh SQLite file. A postgres://
    /// URL must name an empty database.
    #[arg(long)]
    database: Option<String>,
    /// The tooken binary; default the one next to this program.
    #[arg(long)]
    tooken: Option<PathBuf>,
}

/// The operations of the mix, with their share of requests in percent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    VerifyLive,
    VerifyRevoked,
    Create,
    Revoke,
    List,
}

const MIX: [(Op, u64); 5] = [
    (Op::VerifyLive, 70),
    (Op::VerifyRevoked, 5),
    (Op::Create, 13),
    (Op::Revoke, 5),
    (Op::List, 7),
];

impl Op {
    fn pick(draw: u64) -> Op {
        let mut at = draw % 100;
        for (op, share) in MIX {
            if at < share {
                return op;
            }
            at -= share;
        }
        Op::List
    }

    fn index(self) -> usize {
        MIX.iter().position(|(op, _)| *op == self).unwrap_or(0)
    }

    fn name(self) -> &'static str {
        match self {
            Op::VerifyLive => "verify (live)",
            Op::VerifyRevoked => "verify (revoked)",
            Op::Create => "create",
            Op::Revoke => "revoke",
            Op::List => "list",
        }
    }
}

/// Tokens the load knows about: live ones (id, secret), the secrets of
/// those whose revocation was sent, and of those whose revocation was
/// acknowledged.
#[derive(Default)]
struct Tokens {
    live: Vec<(String, String)>,
    revoking: HashSet<String>,
    revoked: Vec<String>,
    revoked_set: HashSet<String>,
}

/// Counters for the current interval and the whole run.
#[derive(Default)]
struct Stats {
    latencies_us: Vec<u32>,
    interval_requests: u64,
    interval_errors: u64,
    requests: [u64; MIX.len()],
    errors: [u64; MIX.len()],
    first_errors: Vec<String>,
}

impl Stats {
    fn record(&mut self, op: Op, took: Duration, failure: Option<String>) {
        self.latencies_us.push(took.as_micros() as u32);
        self.interval_requests += 1;
        self.requests[op.index()] += 1;
        if let Some(message) = failure {
            self.interval_errors += 1;
            self.errors[op.index()] += 1;
            if self.first_errors.len() < 10 {
                self.first_errors.push(format!("{}: {message}", op.name()));
            }
        }
    }
}

pub(crate) async fn soak(args: SoakArgs) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("tooken-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let db_file = dir.join("soak.db");
    let url = args
        .database
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", db_file.display()));
    let (key, seeded) = seed(&url, args.tokens).await?;
    let bin = tooken_binary(args.tooken.as_ref())?;
    let (mut server, addr) = start_server(&bin, &url).await?;
    let pid = server.id().context("server pid")?;
    println!(
        "soak: {} min, {} connections, {} seeded tokens, server pid {pid} at {addr}",
        args.minutes, args.connections, args.tokens
    );
    println!(
        "mix: {}",
        MIX.iter()
            .map(|(op, share)| format!("{} {share}%", op.name()))
            .collect::<Vec<_>>()
            .join(", ")
    );

    let tokens = Arc::new(Mutex::new(Tokens {
        live: seeded,
        ..Tokens::default()
    }));
    let stats = Arc::new(Mutex::new(Stats::default()));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.minutes * 60);
    let mut workers = Vec::new();
    for c in 0..args.connections {
        let (addr, key) = (addr.clone(), key.clone());
        let (tokens, stats) = (tokens.clone(), stats.clone());
        workers.push(tokio::spawn(async move {
            let mut http = Http::connect(&addr, &key).await?;
            let mut i = (c as u64) << 40;
            while Instant::now() < deadline {
                i += 1;
                let op = Op::pick(splitmix(i));
                let t = Instant::now();
                let failure = step(&mut http, op, splitmix(!i), &tokens).await?;
                stats.lock().unwrap().record(op, t.elapsed(), failure);
            }
            anyhow::Ok(())
        }));
    }

    println!(
        "{:>6}  {:>7}  {:>8}  {:>8}  {:>6}  {:>8}  {:>11}  {:>8}",
        "time", "req/s", "p50 µs", "p99 µs", "errors", "RSS MiB", "live tokens", "store MiB"
    );
    let mut rss_samples = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(args.every.max(1)));
    tick.tick().await;
    let mut last = Instant::now();
    while Instant::now() < deadline {
        tick.tick().await;
        let (mut lat, requests, errors) = {
            let mut s = stats.lock().unwrap();
            let out = (
                std::mem::take(&mut s.latencies_us),
                s.interval_requests,
                s.interval_errors,
            );
            s.interval_requests = 0;
            s.interval_errors = 0;
            out
        };
        lat.sort_unstable();
        let pct = |p: f64| {
            lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0)
        };
        let rss = rss_mib(pid);
        rss_samples.push((started.elapsed(), rss));
        let live = tokens.lock().unwrap().live.len();
        println!(
            "{:>5}s  {:>7.0}  {:>8}  {:>8}  {:>6}  {:>8}  {:>11}  {:>8}",
            started.elapsed().as_secs(),
            requests as f64 / last.elapsed().as_secs_f64(),
            pct(0.50),
            pct(0.99),
            errors,
            rss,
            live,
            store_mib(&db_file),
        );
        last = Instant::now();
    }
    for w in workers {
        w.await??;
    }
    let elapsed = started.elapsed();
    let _ = server.kill().await;

    let s = stats.lock().unwrap();
    let total: u64 = s.requests.iter().sum();
    let errors: u64 = s.errors.iter().sum();
    println!();
    println!(
        "{total} requests in {:.0} s ({:.0} req/s), {errors} errors",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    for (op, _) in MIX {
        println!(
            "  {:<17} {:>9} requests  {:>4} errors",
            op.name(),
            s.requests[op.index()],
            s.errors[op.index()]
        );
    }
    for e in &s.first_errors {
        println!("  error: {e}");
    }
    let warnings = SERVER_WARNINGS.load(Ordering::Relaxed);
    println!("server warnings and errors logged: {warnings}");
    // Memory after the first minute (caches warm) against the end.
    let warm = rss_samples
        .iter()
        .find(|(t, _)| *t >= Duration::from_secs(60))
        .or(rss_samples.first())
        .map_or(0, |(_, r)| *r);
    let end = rss_samples.last().map_or(0, |(_, r)| *r);
    let max = rss_samples.iter().map(|(_, r)| *r).max().unwrap_or(0);
    println!(
        "server RSS: {warm} MiB after the first minute, {end} MiB at the end, {max} MiB at most"
    );
    drop(s);
    if args.database.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    if errors > 0 || warnings > 0 {
        bail!("{errors} requests failed and the server logged {warnings} warnings or errors");
    }
    Ok(())
}

/// Sends one request of the mix and checks its answer; `Some(reason)` when
/// it is wrong. Transport errors end the run.
async fn step(
    http: &mut Http,
    op: Op,
    draw: u64,
    tokens: &Mutex<Tokens>,
) -> anyhow::Result<Option<String>> {
    let pick = |v: usize| (draw % v.max(1) as u64) as usize;
    match op {
        Op::VerifyLive | Op::VerifyRevoked => {
            let picked = {
                let t = tokens.lock().unwrap();
                let secret = if op == Op::VerifyRevoked && !t.revoked.is_empty() {
                    Some(t.revoked[pick(t.revoked.len())].clone())
                } else {
                    t.live.get(pick(t.live.len())).map(|(_, s)| s.clone())
                };
                // Revoked, and acknowledged, before this request is sent.
                secret.map(|s| {
                    let acknowledged = t.revoked_set.contains(&s);
                    (s, acknowledged)
                })
            };
            let Some((secret, acknowledged)) = picked else {
                return Ok(None);
            };
            let (status, body) = http.post_verify(&secret).await?;
            if status != 200 {
                return Ok(Some(format!("{status} {body}")));
            }
            let valid = body.contains("\"VALID\"");
            let revoked = body.contains("\"REVOKED\"");
            let ok = if acknowledged {
                revoked
            } else {
                // Another connection may be revoking it right now.
                valid || (revoked && tokens.lock().unwrap().revoking.contains(&secret))
            };
            if !ok {
                let expected = if acknowledged { "REVOKED" } else { "VALID" };
                return Ok(Some(format!("expected {expected}: {body}")));
            }
            Ok(None)
        }
        Op::Create => {
            let (status, body) = http
                .send(
                    "POST",
                    "/v1/tokens",
                    &format!(r#"{{"name":"soak-{draw}","scopes":["soak:read"]}}"#),
                )
                .await?;
            if status != 201 {
                return Ok(Some(format!("{status} {body}")));
            }
            let created: serde_json::Value = serde_json::from_str(&body)?;
            let (Some(id), Some(secret)) = (created["id"].as_str(), created["secret"].as_str())
            else {
                return Ok(Some(format!("no id or secret in {body}")));
            };
            tokens
                .lock()
                .unwrap()
                .live
                .push((id.to_owned(), secret.to_owned()));
            Ok(None)
        }
        Op::Revoke => {
            let taken = {
                let mut t = tokens.lock().unwrap();
                // Keep a floor of live tokens for the verifications.
                if t.live.len() < 100 {
                    None
                } else {
                    let at = pick(t.live.len());
                    let taken = t.live.swap_remove(at);
                    t.revoking.insert(taken.1.clone());
                    Some(taken)
                }
            };
            let Some((id, secret)) = taken else {
                return Ok(None);
            };
            let (status, body) = http
                .send("POST", &format!("/v1/tokens/{id}/revoke"), "{}")
                .await?;
            if status != 200 {
                return Ok(Some(format!("{status} {body}")));
            }
            let mut t = tokens.lock().unwrap();
            t.revoked_set.insert(secret.clone());
            t.revoked.push(secret);
            Ok(None)
        }
        Op::List => {
            let (status, body) = http.send("GET", "/v1/tokens?limit=20", "").await?;
            if status != 200 || !body.contains("\"data\"") {
                return Ok(Some(format!("{status} {body}")));
            }
            Ok(None)
        }
    }
}

/// The SQLite store's size with its WAL, in MiB (0 for PostgreSQL).
fn store_mib(db: &std::path::Path) -> u64 {
    let size = |p: PathBuf| std::fs::metadata(p).map_or(0, |m| m.len());
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    (size(db.to_path_buf()) + size(wal)) / (1024 * 1024)
}
