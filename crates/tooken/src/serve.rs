//! `tooken serve`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use tooken_core::audit::Actor;
use tooken_core::{Clock, Credential, Mode, SystemClock};
use tooken_server::throttle::AuthLimits;
use tooken_server::AppState;
use tooken_store::{AuditContext, NewApiKey, Store, DEFAULT_WORKSPACE};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "TOOKEN_LISTEN", default_value = "127.0.0.1:7878")]
    listen: SocketAddr,
    /// Store: sqlite://PATH (created if missing).
    #[arg(long, env = "TOOKEN_DATABASE_URL", default_value = crate::DEFAULT_DATABASE)]
    database: String,
    /// Authentication failures per client address, per window, before its
    /// answers are slowed down.
    #[arg(long, env = "TOOKEN_AUTH_SLOW_AFTER", default_value_t = 10)]
    auth_slow_after: u32,
    /// Authentication failures per client address, per window, before it is
    /// answered 429 until the window ends.
    #[arg(long, env = "TOOKEN_AUTH_BLOCK_AFTER", default_value_t = 30)]
    auth_block_after: u32,
    /// Length of the brute-force window, in seconds.
    #[arg(long, env = "TOOKEN_AUTH_WINDOW_SECONDS", default_value_t = 60)]
    auth_window_seconds: u64,
    /// Log format.
    #[arg(long, env = "TOOKEN_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_env("TOOKEN_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match args.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }

    let store = Store::open(&args.database)
        .await
        .with_context(|| format!("cannot open the store at {}", args.database))?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    bootstrap(&store, clock.now()).await?;

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(address = %listener.local_addr()?, "tooken is listening");
    let limits = AuthLimits {
        window: Duration::from_secs(args.auth_window_seconds.max(1)),
        slow_after: args.auth_slow_after,
        block_after: args.auth_block_after.max(1),
        ..AuthLimits::default()
    };
    let state = AppState::new(store.clone(), clock).with_auth_limits(limits);
    tooken_server::serve(listener, state, shutdown_signal()).await?;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// On an empty store: create the `default` workspace and a first live API
/// key, shown this once.
async fn bootstrap(store: &Store, now: chrono::DateTime<chrono::Utc>) -> anyhow::Result<()> {
    if !store.list_workspaces().await?.is_empty() {
        return Ok(());
    }
    let ctx = AuditContext::new(Actor::system());
    let workspace = store.create_workspace(DEFAULT_WORKSPACE, &ctx, now).await?;
    let key = Credential::generate(tooken_core::credential::API_KEY_PREFIX, Mode::Live);
    store
        .create_api_key(
            NewApiKey {
                workspace_id: &workspace.id,
                mode: Mode::Live,
                name: "first key",
                secret_hash: key.hash(),
                hint: key.hint(),
            },
            &ctx,
            now,
        )
        .await?;
    // Printed, never logged: logs are kept and shipped; this is shown once.
    println!();
    println!("Created workspace `{DEFAULT_WORKSPACE}` and its first live API key:");
    println!();
    println!("    {}", key.expose());
    println!();
    println!("It is shown only this once. Store it now, e.g. as TOOKEN_API_KEY.");
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
