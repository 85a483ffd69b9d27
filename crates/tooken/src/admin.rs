//! `tooken admin`: local administration straight on the store, for
//! bootstrapping and recovery. Safe to use while the server runs.

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde::Serialize;
use tooken_core::audit::{verify_chain, Actor, ChainBreak, GENESIS};
use tooken_core::credential::API_KEY_PREFIX;
use tooken_core::{Clock, Credential, Mode, SystemClock};
use tooken_store::{ApiKey, AuditContext, NewApiKey, Store, Workspace, DEFAULT_WORKSPACE};

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
    let store = Store::open(&args.database)
        .await
        .with_context(|| format!("cannot open the store at {}", args.database))?;
    let result = dispatch(&store, args.command).await;
    store.close().await;
    result
}

async fn dispatch(store: &Store, command: AdminCommand) -> anyhow::Result<()> {
    let now = SystemClock.now();
    let ctx = AuditContext::new(Actor::admin_cli());
    match command {
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
            if store.workspace_by_name(&name).await?.is_some() {
                bail!("a workspace named {name:?} already exists");
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
            let workspaces = match workspace {
                Some(name) => vec![workspace_named(store, &name).await?],
                None => store.list_workspaces().await?,
            };
            let mut broken = false;
            for ws in workspaces {
                let events = store.chain(&ws.id).await?;
                match verify_chain((GENESIS, 0), &events) {
                    Ok(n) => println!("{}: intact ({n} events)", ws.name),
                    Err(ChainBreak::Altered { seq, id }) => {
                        broken = true;
                        println!(
                            "{}: BROKEN at event #{seq} ({id}): its contents were altered",
                            ws.name
                        );
                    }
                    Err(ChainBreak::Broken { seq, id }) => {
                        broken = true;
                        println!(
                            "{}: BROKEN at event #{seq} ({id}): the event before it was removed, reordered or altered",
                            ws.name
                        );
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
