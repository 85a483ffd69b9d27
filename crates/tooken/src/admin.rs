//! `tooken admin`: local administration straight on the store, for
//! bootstrapping and recovery. Safe to use while the server runs.

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde::Serialize;
use tooken_core::audit::{Actor, ChainBreak};
use tooken_core::credential::API_KEY_PREFIX;
use tooken_core::{Clock, Credential, Mode, SystemClock};
use tooken_store::{
    ApiKey, AuditContext, NewApiKey, Store, Workspace, DEFAULT_WORKSPACE, SERVER_CHAIN,
};

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// Store: sqlite://PATH, the same as `tooken serve` uses.
    #[arg(long, env = "TOOKEN_DATABASE_URL", default_value = crate::DEFAULT_DATABASE, global = true)]
    database: String,
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

pub async fn run(args: AdminArgs) -> anyhow::Result<()> {
    let store = Store::open(&args.database).await.with_context(|| {
        format!(
            "cannot open the store at {}",
            tooken_store::redact_url(&args.database)
        )
    })?;
    let result = dispatch(&store, args.command).await;
    store.close().await;
    result
}

async fn dispatch(store: &Store, command: AdminCommand) -> anyhow::Result<()> {
    let now = SystemClock.now();
    let ctx = AuditContext::new(Actor::admin_cli());
    match command {
        AdminCommand::Users(command) => users(store, command, &ctx, now).await?,
        AdminCommand::ApiKeys(ApiKeyCommand::Create {
            workspace,
            mode,
            name,
        }) => {
            let name = tooken_core::token::parse_name("name", &name)?;
            let ws = workspace_named(store, &workspace).await?;
            let key = Credential::generate(API_KEY_PREFIX, mode);
            let new = NewApiKey {
                workspace_id: &ws.id,
                mode,
                name: &name,
                secret_hash: key.hash(),
                hint: key.hint(),
            };
            let created = store.create_api_key(new, &ctx, now).await?;
            eprintln!(
                "Created API key {} ({}). The secret is shown only this once:",
                created.id, created.hint
            );
            println!("{}", key.expose());
        }
        AdminCommand::ApiKeys(ApiKeyCommand::List { workspace, json }) => {
            let ws = workspace_named(store, &workspace).await?;
            let keys = store.list_api_keys(&ws.id).await?;
            if json {
                let rows: Vec<KeyRow> = keys.iter().map(KeyRow::from).collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print_keys(&keys);
            }
        }
        AdminCommand::ApiKeys(ApiKeyCommand::Regenerate { id }) => {
            let key = store
                .api_key(&id)
                .await?
                .with_context(|| format!("no API key with id {id}"))?;
            let secret = Credential::generate(API_KEY_PREFIX, key.mode);
            store
                .regenerate_api_key(&id, secret.hash(), secret.hint(), &ctx, now)
                .await?
                .with_context(|| format!("no API key with id {id}"))?;
            eprintln!("Regenerated {id}: the old value no longer works. The new secret is shown only this once:");
            println!("{}", secret.expose());
        }
        AdminCommand::ApiKeys(ApiKeyCommand::Delete { id }) => {
            let key = store
                .delete_api_key(&id, &ctx, now)
                .await?
                .with_context(|| format!("no API key with id {id}"))?;
            eprintln!(
                "Deleted API key {} ({}): it no longer works.",
                key.id, key.hint
            );
        }
        AdminCommand::Workspaces(WorkspaceCommand::Create { name }) => {
            let name: tooken_core::WorkspaceName = name.parse()?;
            if store.workspace_by_name(name.as_str()).await?.is_some() {
                bail!("a workspace named {:?} already exists", name.as_str());
            }
            let ws = store.create_workspace(&name, &ctx, now).await?;
            println!("{}", ws.id);
        }
        AdminCommand::Workspaces(WorkspaceCommand::List { json }) => {
            let all = store.list_workspaces().await?;
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
            // Every workspace's chain, and the server's own (authentication
            // failures that belong to no workspace).
            let chains: Vec<(String, String)> = match workspace {
                Some(name) => {
                    let ws = workspace_named(store, &name).await?;
                    vec![(ws.id, ws.name)]
                }
                None => {
                    let mut all: Vec<(String, String)> = store
                        .list_workspaces()
                        .await?
                        .into_iter()
                        .map(|w| (w.id, w.name))
                        .collect();
                    if store
                        .audit_chains()
                        .await?
                        .iter()
                        .any(|c| c == SERVER_CHAIN)
                    {
                        all.push((SERVER_CHAIN.to_owned(), format!("({SERVER_CHAIN})")));
                    }
                    all
                }
            };
            let mut broken = false;
            for (id, name) in chains {
                let (_, anchor_seq) = store.audit_anchor(&id).await?;
                let from = if anchor_seq > 0 {
                    format!(", after pruned event #{anchor_seq}")
                } else {
                    String::new()
                };
                match store.verify_audit_chain(&id).await? {
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

async fn workspace_named(store: &Store, name: &str) -> anyhow::Result<Workspace> {
    store
        .workspace_by_name(name)
        .await?
        .with_context(|| format!("no workspace named {name:?}"))
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

async fn users(
    store: &Store,
    command: UserCommand,
    ctx: &AuditContext,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<()> {
    use tooken_server::dashboard::{login::normalize_email, password, setup, DashboardConfig};
    let params = DashboardConfig::default().password_params;
    match command {
        UserCommand::Create {
            email,
            name,
            workspace,
            role,
        } => {
            let email = normalize_email(&email);
            setup::check_email(&email).map_err(anyhow::Error::msg)?;
            let name = name
                .unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_owned())
                .trim()
                .to_owned();
            setup::check_name(&name).map_err(anyhow::Error::msg)?;
            let role: tooken_store::Role = role.parse()?;
            let ws = workspace_named(store, &workspace).await?;
            if store.user_by_email(&email).await?.is_some() {
                bail!(
                    "a user with email {email} already exists: reset their password with \
                     `tooken admin users reset-password --email {email}`, or add them to \
                     {workspace:?} from the dashboard's Members page"
                );
            }
            let pw = read_new_password(&email)?;
            let hash = password::hash_password(pw, params).await?;
            let new = tooken_store::NewUser {
                email: &email,
                name: &name,
                password_hash: &hash,
            };
            let user = store.create_user(new, &ws.id, role, ctx, now).await?;
            eprintln!(
                "Created {} ({}), {} of workspace {:?}. Sign in at /dashboard/login.",
                user.email, user.id, role, ws.name
            );
        }
        UserCommand::ResetPassword { email } => {
            let email = normalize_email(&email);
            if store.user_by_email(&email).await?.is_none() {
                bail!("no user with email {email}");
            }
            let pw = read_new_password(&email)?;
            let hash = password::hash_password(pw, params).await?;
            store
                .set_password(&email, &hash, ctx, now)
                .await?
                .with_context(|| format!("no user with email {email}"))?;
            eprintln!("Password of {email} changed; their sessions have ended.");
        }
    }
    Ok(())
}

/// A new password from standard input: one line when piped; typed twice,
/// without echo, at a terminal.
fn read_new_password(email: &str) -> anyhow::Result<secrecy::SecretString> {
    use std::io::{BufRead, IsTerminal, Write};
    let stdin = std::io::stdin();
    let read_line = |prompt: &str| -> anyhow::Result<String> {
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
    tooken_server::dashboard::password::check_new_password(&password, &confirm, email)
        .map_err(anyhow::Error::msg)?;
    Ok(secrecy::SecretString::from(password))
}

/// Turns terminal echo off or on (Unix `stty`); `false` when it could not.
fn set_echo(on: bool) -> bool {
    std::process::Command::new("stty")
        .arg(if on { "echo" } else { "-echo" })
        .stdin(std::process::Stdio::inherit())
        .status()
        .is_ok_and(|s| s.success())
}
