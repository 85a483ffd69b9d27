//! `tooken`: the server, local administration, and (later) the API client,
//! in one binary.

mod admin;
mod serve;

use clap::{Parser, Subcommand};

/// Default store: an embedded SQLite file in the current directory.
pub const DEFAULT_DATABASE: &str = "sqlite://tooken.db";

#[derive(Debug, Parser)]
#[command(
    name = "tooken",
    version,
    about = "Self-hosted credential service: scoped, expiring, revocable tokens"
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
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
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
            Command::Serve(args) => serve::run(args).await,
            Command::Admin(args) => admin::run(args).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
