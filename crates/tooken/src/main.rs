//! `tooken`: the server, local administration, and the API client, in one
//! binary.
//!
//! Exit codes: 0 success; 1 when the answer is "no" (the API refused, a
//! token is not valid, an audit chain is broken, `scan` found credentials);
//! 2 for usage errors, missing configuration and unreachable servers.

mod admin;
mod audit;
mod audit_file;
mod client;
mod config;
mod healthcheck;
mod outcome;
mod scan;
mod serve;
mod table;
mod tokens;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::outcome::{Failure, Outcome};

/// `tooken --version`: the version and the commit it was built from (see
/// `build.rs`), e.g. `tooken 0.1.0 (commit 3f2a9c1d8e7b)`.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("TOOKEN_GIT_COMMIT"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "tooken",
    version = VERSION,
    about = "Self-hosted credential service: scoped, expiring, revocable tokens",
    after_help = "Client commands read TOOKEN_API_KEY (an API key or a token), \
                  TOOKEN_URL (default http://127.0.0.1:7878) and, for an https:// URL \
                  whose certificate a private CA signed, TOOKEN_CA_CERT (or --ca-cert) \
                  from the environment."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve(serve::ServeArgs),
    /// Administer the store directly (works while the server runs).
    Admin(admin::AdminArgs),
    /// Issue, list and manage tokens through the API.
    Tokens(tokens::TokensArgs),
    /// Check a token, as your services do (exit 1 when it is not valid).
    Verify(client::VerifyArgs),
    /// Read, export and verify the audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Show the credential in TOOKEN_API_KEY as the API sees it.
    Whoami(client::WhoamiArgs),
    /// Find Tooken API keys and tokens in files (exit 1 when any is found).
    Scan(scan::ScanArgs),
    /// Ask a running server whether it is alive (exit 0) or not (exit 1),
    /// e.g. as a container health check.
    Healthcheck(healthcheck::HealthcheckArgs),
    /// Check the configuration file.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Print a shell completion script, e.g. `tooken completions bash`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // The matches too: a setting's source (flag, environment or default)
    // decides whether tooken.toml may set it (see `config`).
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let sub = matches
        .subcommand()
        .map(|(_, m)| m.clone())
        .unwrap_or_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(args, &sub)
                .await
                .map(|()| Outcome::Success)
                .map_err(Failure::failed),
            Command::Admin(args) => admin::run(args, &sub)
                .await
                .map(|()| Outcome::Success)
                .map_err(Failure::failed),
            Command::Tokens(args) => tokens::run(args).await,
            Command::Verify(args) => client::verify(args).await,
            Command::Audit(command) => audit::run(command).await,
            Command::Whoami(args) => client::whoami(args).await,
            Command::Scan(args) => scan::run(args),
            Command::Healthcheck(args) => healthcheck::run(args).await,
            Command::Config(command) => config::run(command),
            Command::Completions { shell } => {
                let mut out = Vec::new();
                clap_complete::generate(shell, &mut Cli::command(), "tooken", &mut out);
                outcome::emit_bytes(&out).map(|()| Outcome::Success)
            }
        }
    });
    match result {
        Ok(Outcome::Success) => std::process::ExitCode::SUCCESS,
        Ok(Outcome::Negative) => std::process::ExitCode::from(1),
        Err(failure) => {
            // One line, whatever the cause chain held.
            eprintln!("error: {}", failure.message.replace('\n', " "));
            std::process::ExitCode::from(failure.code)
        }
    }
}
