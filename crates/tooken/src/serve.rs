//! `tooken serve`.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use tooken_core::{Clock, SystemClock};
use tooken_server::dashboard::{DashboardConfig, DashboardState};
use tooken_server::throttle::AuthLimits;
use tooken_server::{AppState, Limits, TlsConfig};
use tooken_service::Service;
use tooken_store::{redact_url, Store, StoreOptions};
use tracing_subscriber::EnvFilter;

/// Each setting comes from its flag, else its `TOOKEN_*` variable (both
/// through clap), else `tooken.toml`, else the default named in its help.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Configuration file [default: ./tooken.toml if it exists].
    #[arg(long, env = "TOOKEN_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:7878].
    #[arg(long, env = "TOOKEN_LISTEN")]
    listen: Option<SocketAddr>,
    /// Store: sqlite://PATH (created if missing) or postgres://…
    /// (TLS per the URL's sslmode) [default: sqlite://tooken.db].
    #[arg(long, env = "TOOKEN_DATABASE_URL")]
    database: Option<String>,
    /// Connections in the store's pool (SQLite uses at most 8) [default: 16].
    #[arg(long, env = "TOOKEN_DATABASE_POOL_SIZE", value_name = "N")]
    database_pool_size: Option<u32>,
    /// How long a request waits for a database connection before it is
    /// answered 503, in milliseconds; also bounds connecting at start
    /// [default: 5000].
    #[arg(long, env = "TOOKEN_DATABASE_ACQUIRE_TIMEOUT_MS", value_name = "MS")]
    database_acquire_timeout_ms: Option<u64>,
    /// PostgreSQL: statements running longer are cancelled, in
    /// milliseconds; 0 for no limit [default: 10000].
    #[arg(long, env = "TOOKEN_DATABASE_STATEMENT_TIMEOUT_MS", value_name = "MS")]
    database_statement_timeout_ms: Option<u64>,
    /// Authentication failures per client address, per window, before its
    /// answers are slowed down [default: 10].
    #[arg(long, env = "TOOKEN_AUTH_SLOW_AFTER")]
    auth_slow_after: Option<u32>,
    /// Authentication failures per client address, per window, before it is
    /// answered 429 until the window ends [default: 30].
    #[arg(long, env = "TOOKEN_AUTH_BLOCK_AFTER")]
    auth_block_after: Option<u32>,
    /// Length of the brute-force window, in seconds [default: 60].
    #[arg(long, env = "TOOKEN_AUTH_WINDOW_SECONDS")]
    auth_window_seconds: Option<u64>,
    /// Serve HTTPS with this PEM certificate chain (the server's
    /// certificate first, then intermediates); needs --tls-key.
    #[arg(long, env = "TOOKEN_TLS_CERT", value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// The certificate's PEM private key (PKCS#8, RSA or EC); needs
    /// --tls-cert.
    #[arg(long, env = "TOOKEN_TLS_KEY", value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Log format [default: text].
    #[arg(long, env = "TOOKEN_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
}

pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 7878));

#[derive(Debug, Clone, Copy, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let file = crate::config::load_for_serve(args.config.as_deref())?;
    let listen = args.listen.or(file.listen).unwrap_or(DEFAULT_LISTEN);
    let database = args
        .database
        .or(file.database)
        .unwrap_or_else(|| crate::DEFAULT_DATABASE.to_owned());
    let defaults = StoreOptions::default();
    let pool_size = args
        .database_pool_size
        .or(file.database_pool_size)
        .unwrap_or(defaults.max_connections);
    if pool_size == 0 {
        anyhow::bail!("database pool size must be at least 1");
    }
    let acquire_timeout_ms = args
        .database_acquire_timeout_ms
        .or(file.database_acquire_timeout_ms)
        .unwrap_or(defaults.acquire_timeout.as_millis() as u64);
    if acquire_timeout_ms == 0 {
        anyhow::bail!("database acquire timeout must be at least 1 ms");
    }
    let statement_timeout_ms = args
        .database_statement_timeout_ms
        .or(file.database_statement_timeout_ms)
        .or(defaults.statement_timeout.map(|t| t.as_millis() as u64))
        .unwrap_or(0);
    let store_options = StoreOptions {
        max_connections: pool_size,
        acquire_timeout: Duration::from_millis(acquire_timeout_ms),
        statement_timeout: (statement_timeout_ms > 0)
            .then(|| Duration::from_millis(statement_timeout_ms)),
    };
    let auth_slow_after = args.auth_slow_after.or(file.auth_slow_after).unwrap_or(10);
    let auth_block_after = args
        .auth_block_after
        .or(file.auth_block_after)
        .unwrap_or(30);
    let auth_window_seconds = args
        .auth_window_seconds
        .or(file.auth_window_seconds)
        .unwrap_or(60);
    let log_format = args
        .log_format
        .or(file.log_format)
        .unwrap_or(LogFormat::Text);
    // Checked before the store is touched: a first start that fails here
    // must not have printed (and so lost) the first API key.
    let tls = tls_config(
        args.tls_cert.or(file.tls_cert),
        args.tls_key.or(file.tls_key),
    )?;

    // PostgreSQL's notices ("relation … already exists, skipping" on every
    // start) are not news.
    let filter = EnvFilter::try_from_env("TOOKEN_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx::postgres::notice=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }

    let limits = AuthLimits {
        window: Duration::from_secs(auth_window_seconds.max(1)),
        slow_after: auth_slow_after,
        block_after: auth_block_after.max(1),
        ..AuthLimits::default()
    };
    let store = Store::open_with(&database, &store_options)
        .await
        .with_context(|| format!("cannot open the store at {}", redact_url(&database)))?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr()?;
    let mut state = AppState::new(store.clone(), clock).with_auth_limits(limits);
    if tls.is_some() {
        // Over HTTPS, session cookies must never travel over plain HTTP.
        state = state.with_dashboard(DashboardState::new(DashboardConfig {
            secure_cookies: true,
            ..DashboardConfig::default()
        }));
    }
    bootstrap(&state.service, address, tls.is_some()).await?;
    if tls.is_some() {
        tracing::info!(address = %address, tls = true, "tooken is listening");
    } else {
        tracing::info!(address = %address, "tooken is listening");
    }
    tooken_server::serve_with(listener, state, Limits::default(), tls, shutdown_signal()).await?;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// The TLS certificate and key, when both are set; an error when only one
/// is.
fn tls_config(cert: Option<PathBuf>, key: Option<PathBuf>) -> anyhow::Result<Option<TlsConfig>> {
    const BOTH: &str = "TLS needs both --tls-cert and --tls-key \
                        (or TOOKEN_TLS_CERT and TOOKEN_TLS_KEY, or tls_cert and tls_key in tooken.toml)";
    match (cert, key) {
        (None, None) => Ok(None),
        (Some(_), None) => anyhow::bail!("a TLS certificate is set but no key: {BOTH}"),
        (None, Some(_)) => anyhow::bail!("a TLS key is set but no certificate: {BOTH}"),
        (Some(cert), Some(key)) => Ok(Some(TlsConfig::from_pem_files(&cert, &key)?)),
    }
}

/// On an empty store: the `default` workspace, its first live API key and
/// the dashboard's setup link, each shown this once (printed, never
/// logged: logs are kept and shipped).
async fn bootstrap(
    service: &Service,
    address: std::net::SocketAddr,
    tls: bool,
) -> anyhow::Result<()> {
    let Some(made) = service.bootstrap().await? else {
        return Ok(());
    };
    println!();
    println!(
        "Created workspace `{}` and its first live API key:",
        made.workspace.name
    );
    println!();
    println!("    {}", made.api_key.secret.expose());
    println!();
    println!("It is shown only this once. Store it now, e.g. as TOOKEN_API_KEY.");
    println!();
    // The dashboard's first owner signs up through a one-time link (only
    // its hash is stored; it expires in 24 hours).
    println!("Set up the dashboard with this one-time link (it works once, within 24 hours):");
    println!();
    // A wildcard listen address is not one a browser can open.
    let host = if address.ip().is_unspecified() {
        std::net::SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), address.port())
    } else {
        address
    };
    println!(
        "    {}://{host}{}",
        if tls { "https" } else { "http" },
        tooken_server::dashboard::setup::link_path(&made.setup_token)
    );
    println!();
    println!("(Behind a proxy, use its address with the same path. Lost it? Run");
    println!("`tooken admin users create --email you@example.com --role owner`.)");
    println!();
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
