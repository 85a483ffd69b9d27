//! `tooken tokens …`: issue and manage tokens through the API.

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use serde_json::Value;
use tooken_client::{CreateToken, ListTokens, TokenObject, TokenWithSecret, UpdateToken};

use crate::client::{
    connect, list_text, metadata_text, page_or_all, parse_metadata, parse_seconds, parse_time,
    ConnectArgs, PageArgs,
};
use crate::outcome::{emit, emit_json, Failure, Outcome};
use crate::table::{self, fields, truncate, Table};

#[derive(Debug, Args)]
pub struct TokensArgs {
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(subcommand)]
    command: TokensCommand,
}

#[derive(Debug, Subcommand)]
enum TokensCommand {
    /// Issue a token. Its secret is printed this once.
    Create(CreateArgs),
    /// List tokens, newest first.
    List(ListArgs),
    /// Show one token.
    Get { id: String },
    /// Change a token's name, description, scopes, metadata or expiry.
    Update(UpdateArgs),
    /// Give a token a new secret (printed this once); the old one stops
    /// working after the grace period.
    Rotate {
        id: String,
        /// How long the previous secret keeps working: seconds, or e.g. 15m,
        /// 1h (at most 7 days).
        #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, default_value = "0")]
        grace_period: i64,
    },
    /// Revoke a token, and every token created through it.
    Revoke {
        id: String,
        /// Why, for the audit log.
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Debug, Args)]
struct CreateArgs {
    #[arg(long)]
    name: String,
    #[arg(long)]
    description: Option<String>,
    /// A scope, e.g. invoices:read (repeat for several).
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// A JSON object returned with every verification.
    #[arg(long, value_name = "JSON", value_parser = parse_metadata)]
    metadata: Option<Value>,
    /// Lifetime: seconds, or e.g. 90m, 12h, 30d.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, conflicts_with = "expires_at")]
    expires_in: Option<i64>,
    /// Expiry as an RFC 3339 time, e.g. 2030-01-31T12:00:00Z.
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Args)]
struct ListArgs {
    /// active, expired or revoked.
    #[arg(long, value_parser = ["active", "expired", "revoked"])]
    status: Option<String>,
    /// Only tokens holding this scope.
    #[arg(long)]
    scope: Option<String>,
    /// Only tokens whose name starts with this.
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    page: PageArgs,
}

#[derive(Debug, Args)]
struct UpdateArgs {
    id: String,
    #[arg(long)]
    name: Option<String>,
    #[arg(long, conflicts_with = "clear_description")]
    description: Option<String>,
    /// Remove the description.
    #[arg(long)]
    clear_description: bool,
    /// The token's new scopes, replacing all of them (repeat for several).
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// A JSON object, replacing the metadata.
    #[arg(long, value_name = "JSON", value_parser = parse_metadata, conflicts_with = "clear_metadata")]
    metadata: Option<Value>,
    /// Remove the metadata.
    #[arg(long)]
    clear_metadata: bool,
    /// New expiry as an RFC 3339 time.
    #[arg(long, value_name = "RFC3339", value_parser = parse_time, conflicts_with = "no_expiry")]
    expires_at: Option<DateTime<Utc>>,
    /// Remove the expiry (if the workspace policy allows).
    #[arg(long)]
    no_expiry: bool,
}

pub async fn run(args: TokensArgs) -> Result<Outcome, Failure> {
    let json = args.json;
    // Everything that can be checked offline is checked before connecting.
    let update = match &args.command {
        TokensCommand::Update(u) => Some(update_body(u)?),
        _ => None,
    };
    let client = connect(&args.connect)?;
    match args.command {
        TokensCommand::Create(a) => {
            let issued = client
                .create_token(&CreateToken {
                    name: a.name,
                    description: a.description,
                    scopes: a.scopes,
                    metadata: a.metadata,
                    expires_at: a.expires_at,
                    expires_in: a.expires_in,
                })
                .await?;
            show_secret(&issued, json, "Created")?;
        }
        TokensCommand::List(a) => {
            let q = ListTokens {
                limit: a.page.limit,
                starting_after: a.page.starting_after,
                status: a.status,
                scope: a.scope,
                name: a.name,
            };
            let page =
                page_or_all(a.page.all, client.tokens_stream(&q), client.list_tokens(&q)).await?;
            if json {
                emit_json(&page)?;
            } else {
                emit(&token_table(&page.data))?;
                if let (true, Some(cursor)) = (page.has_more, &page.next_cursor) {
                    eprintln!(
                        "More tokens: add --all, or --starting-after {cursor} for the next page."
                    );
                }
            }
        }
        TokensCommand::Get { id } => show_token(&client.get_token(&id).await?, json)?,
        TokensCommand::Update(a) => {
            // Built above; `Some` exactly for this command.
            let body = update.unwrap_or_default();
            show_token(&client.update_token(&a.id, &body).await?, json)?;
        }
        TokensCommand::Rotate { id, grace_period } => {
            let rotated = client.rotate_token(&id, grace_period).await?;
            show_secret(&rotated, json, "Rotated")?;
            if !json && grace_period > 0 {
                emit(&format!(
                    "The previous secret keeps working for {grace_period} seconds.\n"
                ))?;
            }
        }
        TokensCommand::Revoke { id, reason } => {
            let token = client.revoke_token(&id, reason.as_deref()).await?;
            if json {
                emit_json(&token)?;
            } else {
                emit(&format!(
                    "Revoked {} ({}), and every token created through it.\n",
                    token.id, token.name
                ))?;
            }
        }
    }
    Ok(Outcome::Success)
}

fn update_body(a: &UpdateArgs) -> Result<UpdateToken, Failure> {
    let body = UpdateToken {
        name: a.name.clone(),
        description: match (&a.description, a.clear_description) {
            (_, true) => Some(None),
            (Some(d), false) => Some(Some(d.clone())),
            (None, false) => None,
        },
        metadata: match (&a.metadata, a.clear_metadata) {
            (_, true) => Some(None),
            (Some(m), false) => Some(Some(m.clone())),
            (None, false) => None,
        },
        scopes: (!a.scopes.is_empty()).then(|| a.scopes.clone()),
        expires_at: match (a.expires_at, a.no_expiry) {
            (_, true) => Some(None),
            (Some(t), false) => Some(Some(t)),
            (None, false) => None,
        },
    };
    let nothing = body.name.is_none()
        && body.description.is_none()
        && body.metadata.is_none()
        && body.scopes.is_none()
        && body.expires_at.is_none();
    if nothing {
        return Err(Failure::usage(
            "nothing to update: give --name, --description, --scope, --metadata or --expires-at",
        ));
    }
    Ok(body)
}

fn show_secret(issued: &TokenWithSecret, json: bool, verb: &str) -> Result<(), Failure> {
    if json {
        return emit_json(issued);
    }
    let t = &issued.token;
    emit(&format!(
        "{verb} token {} ({}).\n\n\
         Secret (shown only this once; Tooken keeps only its hash):\n\n    {}\n\n{}",
        t.id,
        t.name,
        issued.secret.expose(),
        token_fields(t)
    ))
}

fn show_token(t: &TokenObject, json: bool) -> Result<(), Failure> {
    if json {
        emit_json(t)
    } else {
        emit(&token_fields(t))
    }
}

fn token_fields(t: &TokenObject) -> String {
    fields(&[
        ("id", t.id.clone()),
        ("name", t.name.clone()),
        ("description", t.description.clone().unwrap_or("-".into())),
        ("status", t.status.as_str().to_owned()),
        ("mode", t.mode.to_string()),
        ("hint", t.hint.clone()),
        ("scopes", list_text(&t.scopes)),
        ("metadata", metadata_text(&t.metadata)),
        ("created", table::time(t.created_at)),
        ("created by", t.created_by.clone()),
        ("expires", table::time_or(t.expires_at, "never")),
        ("last used", table::time_or(t.last_used_at, "never")),
        ("revoked", table::time_or(t.revoked_at, "-")),
        ("parent", t.parent_id.clone().unwrap_or("-".into())),
    ])
}

fn token_table(tokens: &[TokenObject]) -> String {
    if tokens.is_empty() {
        return "No tokens.\n".into();
    }
    let mut t = Table::new(&[
        "ID",
        "NAME",
        "STATUS",
        "HINT",
        "SCOPES",
        "EXPIRES",
        "LAST USED",
    ]);
    for tok in tokens {
        t.row(vec![
            tok.id.clone(),
            truncate(&tok.name, 24),
            tok.status.as_str().to_owned(),
            tok.hint.clone(),
            truncate(&list_text(&tok.scopes), 40),
            table::time_or(tok.expires_at, "never"),
            table::time_or(tok.last_used_at, "never"),
        ]);
    }
    t.render()
}
