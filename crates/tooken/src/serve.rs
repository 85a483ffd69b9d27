//! `tooken serve`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{ArgMatches, Args};
use tooken_core::{Clock, SystemClock};
use tooken_server::dashboard::{DashboardConfig, DashboardState};
use tooken_server::{AppState, Limits, TlsConfig};
use tooken_service::Service;
use tooken_store::{redact_url, Store};
use tracing_subscriber::EnvFilter;

use crate::config::{ConfigFile, ConfigPath, LogFormat, ServeConfig};

/// `tooken serve`'s arguments: where the configuration file is, and every
/// setting (see [`crate::config`] for how they are layered).
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    file: ConfigPath,
    #[command(flatten)]
    settings: ServeConfig,
}

pub async fn run(args: ServeArgs, matches: &ArgMatches) -> anyhow::Result<()> {
    let config = ConfigFile::load(&args.file)?.layer(args.settings, matches)?;
    let store_options = config.store.options()?;
    // Checked before the store is touched: a first start that fails here
    // must not have printed (and so lost) the first API key.
    let tls = tls_config(config.tls_cert.clone(), config.tls_key.clone())?;

    // PostgreSQL's notices ("relation … already exists, skipping" on every
    // start) are not news.
    let filter = EnvFilter::try_from_env("TOOKEN_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx::postgres::notice=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match config.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }

    let database = &config.store.database;
    let store = Store::open_with(database, &store_options)
        .await
        .with_context(|| format!("cannot open the store at {}", redact_url(database)))?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let listen = config.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr()?;
    let mut state = AppState::new(store.clone(), clock)
        .with_auth_limits(config.auth_limits())
        .with_gateway(config.gateway_options());
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
