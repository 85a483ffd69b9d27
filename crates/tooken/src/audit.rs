//! `tooken audit …`: read and export the audit log through the API, and
//! verify an export offline.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use futures_util::StreamExt;
use tooken_client::{AuditQuery, Event};

use crate::client::{connect, page_or_all, parse_time, ConnectArgs, PageArgs};
use crate::outcome::{emit, emit_bytes, emit_json, Failure, Outcome};
use crate::table::{self, Table};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List events, newest first.
    List(ListArgs),
    /// Every matching event as NDJSON, oldest first (the input of `audit verify`).
    Export(ExportArgs),
    /// Check the hash chain of an NDJSON export, offline: every event
    /// unaltered, none removed or reordered.
    Verify {
        /// An export from `tooken audit export` (or `-` for standard input).
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
struct Filters {
    /// e.g. token.revoked.
    #[arg(long)]
    action: Option<String>,
    /// The id of the API key or token that acted.
    #[arg(long)]
    actor: Option<String>,
    /// The id of the object acted on.
    #[arg(long)]
    target: Option<String>,
    /// Events at or after this RFC 3339 time.
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    since: Option<DateTime<Utc>>,
    /// Events before this RFC 3339 time.
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    until: Option<DateTime<Utc>>,
}

impl Filters {
    fn query(self) -> AuditQuery {
        AuditQuery {
            action: self.action,
            actor: self.actor,
            target: self.target,
            since: self.since,
            until: self.until,
            ..AuditQuery::default()
        }
    }
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    filters: Filters,
    #[command(flatten)]
    page: PageArgs,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    filters: Filters,
    /// Write to this file instead of standard output (replaced only once
    /// the export is complete).
    #[arg(long, short)]
    output: Option<PathBuf>,
    #[command(flatten)]
    connect: ConnectArgs,
}

pub async fn run(command: AuditCommand) -> Result<Outcome, Failure> {
    match command {
        AuditCommand::List(a) => list(a).await,
        AuditCommand::Export(a) => export(a).await,
        AuditCommand::Verify { file } => crate::audit_file::verify_file(&file),
    }
}

async fn list(a: ListArgs) -> Result<Outcome, Failure> {
    let client = connect(&a.connect)?;
    let q = AuditQuery {
        limit: a.page.limit,
        starting_after: a.page.starting_after,
        ..a.filters.query()
    };
    let page = page_or_all(
        a.page.all,
        client.audit_events_stream(&q),
        client.list_audit_events(&q),
    )
    .await?;
    if a.json {
        emit_json(&page)?;
    } else {
        emit(&event_table(&page.data))?;
        if let (true, Some(cursor)) = (page.has_more, &page.next_cursor) {
            eprintln!("More events: add --all, or --starting-after {cursor} for the next page.");
        }
    }
    Ok(Outcome::Success)
}

fn event_table(events: &[Event]) -> String {
    if events.is_empty() {
        return "No events.\n".into();
    }
    let mut t = Table::new(&["TIME", "SEQ", "ACTION", "ACTOR", "TARGET", "ID"]);
    for e in events {
        let actor = match (&e.actor.hint, &e.actor.id) {
            (Some(hint), _) => format!("{} {hint}", e.actor.kind),
            (None, Some(id)) => format!("{} {id}", e.actor.kind),
            (None, None) => e.actor.kind.clone(),
        };
        t.row(vec![
            table::time(e.occurred_at),
            e.seq.to_string(),
            e.action.clone(),
            actor,
            e.target
                .as_ref()
                .map(|t| t.id.clone())
                .unwrap_or_else(|| "-".into()),
            e.id.clone(),
        ]);
    }
    t.render()
}

async fn export(a: ExportArgs) -> Result<Outcome, Failure> {
    let client = connect(&a.connect)?;
    let mut chunks = std::pin::pin!(client.export_audit(&a.filters.query()).await?);
    match a.output {
        None => {
            while let Some(chunk) = chunks.next().await {
                emit_bytes(&chunk?)?;
            }
        }
        Some(path) => {
            use std::io::Write;
            // Written beside the target and renamed at the end, so a broken
            // export never leaves a file that looks complete.
            let partial = partial_path(&path);
            let write = async {
                let mut file = std::io::BufWriter::new(std::fs::File::create(&partial)?);
                while let Some(chunk) = chunks.next().await {
                    file.write_all(&chunk?)?;
                }
                file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                std::fs::rename(&partial, &path)?;
                Ok::<(), Failure>(())
            };
            if let Err(e) = write.await {
                let _ = std::fs::remove_file(&partial);
                return Err(Failure {
                    message: format!("export to {} failed: {}", path.display(), e.message),
                    ..e
                });
            }
        }
    }
    Ok(Outcome::Success)
}

fn partial_path(path: &std::path::Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}
