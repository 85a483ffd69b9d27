//! `tooken admin`: local administration straight on the store, for
//! bootstrapping and recovery. Safe to use while the server runs.

use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{ArgMatches, Args, Subcommand};
use secrecy::SecretString;
use serde::Serialize;
use tooken_core::audit::ChainBreak;
use tooken_core::{Mode, SystemClock};
use tooken_service::{Caller, NewApiKeyRequest, Service};
use tooken_store::{ApiKey, Role, Store, DEFAULT_WORKSPACE};

use crate::config::{ConfigFile, ConfigPath, StoreConfig};

/// `tooken admin`'s arguments: the store, configured as for `tooken serve`
/// (the same flags, variables and `tooken.toml`), and the command.
#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(flatten)]
    file: ConfigPath,
    #[command(flatten)]
    store: StoreConfig,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Workspace API keys.
    #[command(subcommand, name = "api-keys")]
    ApiKeys(ApiKeyCommand),
    /// Workspaces.
    #[command(subcommand)]
    Workspaces(WorkspaceCommand),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Dashboard users (for bootstrapping and recovery).
    #[command(subcommand)]
    Users(UserCommand),
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a dashboard user, a member of a workspace. The password is
    /// read from standard input (prompted for on a terminal), never a flag.
    Create {
        #[arg(long)]
        email: String,
        /// Display name [default: the part of the email before `@`].
        #[arg(long)]
        name: Option<String>,
        #[arg(long, default_value = DEFAULT_WORKSPACE)]
        workspace: String,
        #[arg(long, value_parser = ["owner", "viewer"])]
        role: String,
    },
    /// Set a user's password (read from standard input, prompted for on a
    /// terminal) and end all their sessions.
    ResetPassword {
        #[arg(long)]
        email: String,
    },
}

#[derive(Debug, Subcommand)]
enum ApiKeyCommand {
    /// Create a key; prints only the new secret, shown this once.
    Create {
        #[arg(long, default_value = DEFAULT_WORKSPACE)]
        workspace: String,
        #[arg(long, default_value = "live")]
        mode: Mode,
        #[arg(long)]
        name: String,
    },
    /// List a workspace's keys.
    List {
        #[arg(long, default_value = DEFAULT_WORKSPACE)]
        workspace: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Replace a key's secret; the old one stops working at once.
    Regenerate { id: String },
    /// Delete a key; it stops working at once.
    Delete { id: String },
}

#[derive(Debug, Subcommand)]
enum WorkspaceCommand {
    /// Create a workspace.
    Create { name: String },
    /// List workspaces.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the hash chain of every workspace's audit log (or one's).
    Verify {
        #[arg(long)]
        workspace: Option<String>,
    },
}

pub async fn run(args: AdminArgs, matches: &ArgMatches) -> anyhow::Result<()> {
    let config = ConfigFile::load(&args.file)?.layer(args.store, matches)?;
    let database = &config.database;
    let store = Store::open_with(database, &config.options()?)
        .await
        .with_context(|| {
            format!(
                "cannot open the store at {}",
                tooken_store::redact_url(database)
            )
        })?;
    let service = Service::new(store.clone(), Arc::new(SystemClock));
    let result = dispatch(&service, args.command).await;
    store.close().await;
    result
}

async fn dispatch(service: &Service, command: AdminCommand) -> anyhow::Result<()> {
    let admin = Caller::admin();
    match command {
        AdminCommand::Users(command) => users(service, &admin, command).await?,
        AdminCommand::ApiKeys(ApiKeyCommand::Create {
            workspace,
            mode,
            name,
        }) => {
            let ws = service.workspace_named(&admin, &workspace).await?;
            let request = NewApiKeyRequest {
                workspace_id: &ws.id,
                mode,
                name: &name,
            };
            let created = service.create_api_key(&admin, request).await?;
            eprintln!(
                "Created API key {} ({}). The secret is shown only this once:",
                created.key.id, created.key.hint
            );
            println!("{}", created.secret.expose());
        }
        AdminCommand::ApiKeys(ApiKeyCommand::List { workspace, json }) => {
            let ws = service.workspace_named(&admin, &workspace).await?;
            let keys = service.api_keys(&admin, &ws.id).await?;
            if json {
                let rows: Vec<KeyRow> = keys.iter().map(KeyRow::from).collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print_keys(&keys);
            }
        }
        AdminCommand::ApiKeys(ApiKeyCommand::Regenerate { id }) => {
            let made = service.regenerate_api_key(&admin, &id).await?;
            eprintln!("Regenerated {id}: the old value no longer works. The new secret is shown only this once:");
            println!("{}", made.secret.expose());
        }
        AdminCommand::ApiKeys(ApiKeyCommand::Delete { id }) => {
            let key = service.delete_api_key(&admin, &id).await?;
            eprintln!(
                "Deleted API key {} ({}): it no longer works.",
                key.id, key.hint
            );
        }
        AdminCommand::Workspaces(WorkspaceCommand::Create { name }) => {
            let ws = service.create_workspace(&admin, &name).await?;
            println!("{}", ws.id);
        }
        AdminCommand::Workspaces(WorkspaceCommand::List { json }) => {
            let all = service.workspaces(&admin).await?;
            if json {
                let rows: Vec<_> = all
                    .iter()
                    .map(|w| serde_json::json!({ "id": w.id, "name": w.name, "created_at": w.created_at }))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!("{:<32} {:<24} CREATED", "ID", "NAME");
                for w in all {
                    println!("{:<32} {:<24} {}", w.id, w.name, w.created_at.to_rfc3339());
                }
            }
        }
        AdminCommand::Audit(AuditCommand::Verify { workspace }) => {
            let mut broken = false;
            for chain in service.verify_chains(&admin, workspace.as_deref()).await? {
                let name = chain.name;
                let from = if chain.anchor_seq > 0 {
                    format!(", after pruned event #{}", chain.anchor_seq)
                } else {
                    String::new()
                };
                match chain.result {
                    Ok(n) => println!("{name}: intact ({n} events{from})"),
                    Err(b) => {
                        broken = true;
                        let seq = match &b {
                            ChainBreak::Altered { seq, .. } | ChainBreak::Broken { seq, .. } => {
                                *seq
                            }
                        };
                        println!("{name}: BROKEN at event #{seq}: {b}");
                    }
                }
            }
            if broken {
                bail!("the audit log has been tampered with");
            }
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct KeyRow<'a> {
    id: &'a str,
    name: &'a str,
    mode: Mode,
    hint: &'a str,
    created_at: chrono::DateTime<chrono::Utc>,
    regenerated_at: Option<chrono::DateTime<chrono::Utc>>,
    last_used_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl<'a> From<&'a ApiKey> for KeyRow<'a> {
    fn from(k: &'a ApiKey) -> Self {
        KeyRow {
            id: &k.id,
            name: &k.name,
            mode: k.mode,
            hint: &k.hint,
            created_at: k.created_at,
            regenerated_at: k.regenerated_at,
            last_used_at: k.last_used_at,
        }
    }
}

fn print_keys(keys: &[ApiKey]) {
    if keys.is_empty() {
        println!("No API keys. Create one with: tooken admin api-keys create --name NAME");
        return;
    }
    println!(
        "{:<31} {:<20} {:<5} {:<16} {:<20} LAST USED",
        "ID", "NAME", "MODE", "HINT", "CREATED"
    );
    for k in keys {
        println!(
            "{:<31} {:<20} {:<5} {:<16} {:<20} {}",
            k.id,
            truncate(&k.name, 20),
            k.mode,
            k.hint,
            k.created_at.format("%Y-%m-%d %H:%M:%S"),
            k.last_used_at
                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_else(|| "never".into())
        );
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

async fn users(service: &Service, admin: &Caller, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Create {
            email,
            name,
            workspace,
            role,
        } => {
            // The display name defaults to the part of the email before `@`.
            let name = name.unwrap_or_else(|| {
                let email = tooken_service::normalize_email(&email);
                email.split('@').next().unwrap_or_default().to_owned()
            });
            let role: Role = role.parse()?;
            let user = service
                .create_user(admin, &email, &name, &workspace, role, || {
                    read_new_password()
                })
                .await?;
            eprintln!(
                "Created {} ({}), {} of workspace {:?}. Sign in at /dashboard/login.",
                user.email, user.id, role, workspace
            );
        }
        UserCommand::ResetPassword { email } => {
            let user = service
                .reset_password(admin, &email, read_new_password)
                .await?;
            eprintln!(
                "Password of {} changed; their sessions have ended.",
                user.email
            );
        }
    }
    Ok(())
}

/// A new password from standard input, and the same again: one line when
/// piped (taken for both); typed twice, without echo, at a terminal.
fn read_new_password() -> std::io::Result<(SecretString, SecretString)> {
    use std::io::{BufRead, IsTerminal, Write};
    let stdin = std::io::stdin();
    let read_line = |prompt: &str| -> std::io::Result<String> {
        let terminal = stdin.is_terminal();
        if terminal {
            eprint!("{prompt}: ");
            let _ = std::io::stderr().flush();
        }
        let echo_off = terminal && set_echo(false);
        let mut line = String::new();
        let read = stdin.lock().read_line(&mut line);
        if echo_off {
            set_echo(true);
            eprintln!();
        }
        read?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    };
    let password = read_line("New password")?;
    let confirm = if stdin.is_terminal() {
        read_line("Repeat it")?
    } else {
        password.clone()
    };
    Ok((SecretString::from(password), SecretString::from(confirm)))
}

/// Turns terminal echo off or on (Unix `stty`); `false` when it could not.
fn set_echo(on: bool) -> bool {
    std::process::Command::new("stty")
        .arg(if on { "echo" } else { "-echo" })
        .stdin(std::process::Stdio::inherit())
        .status()
        .is_ok_and(|s| s.success())
}
