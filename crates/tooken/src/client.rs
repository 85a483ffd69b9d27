//! What the client commands share: the connection to the API (from
//! `TOOKEN_API_KEY` and `TOOKEN_URL`, and `--ca-cert`/`TOOKEN_CA_CERT` for
//! a server whose certificate a private CA signed), argument parsers, and
//! the small commands `tooken verify` and `tooken whoami`.
//!
//! The API key is read from the environment only: a flag's value would land
//! in shell history and in every `ps` listing.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::Args;
use serde_json::{Map, Value};
use tooken_client::{Client, ClientBuilder, VerifyCode, VerifyRequest, VerifyResponse, Whoami};

use crate::outcome::{emit, emit_json, Failure, Outcome};
use crate::table::{self, fields};

/// Options every client command takes.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Also trust the CA certificate(s) in this PEM file, for an https://
    /// TOOKEN_URL whose certificate a private CA signed.
    #[arg(long, env = "TOOKEN_CA_CERT", value_name = "FILE", global = true)]
    ca_cert: Option<PathBuf>,
}

/// A client for the API named by `TOOKEN_URL`, authenticated with
/// `TOOKEN_API_KEY`; a clear error when the key is missing.
pub fn connect(args: &ConnectArgs) -> Result<Client, Failure> {
    let mut builder = ClientBuilder::from_env()?;
    if let Some(path) = &args.ca_cert {
        let shown = path.display();
        let pem = std::fs::read(path)
            .map_err(|e| Failure::usage(format!("cannot read the CA certificate {shown}: {e}")))?;
        builder = builder
            .add_root_certificates_pem(&pem)
            .map_err(|e| Failure::usage(format!("CA certificate {shown}: {e}")))?;
    }
    let client = builder.build()?;
    if let Some(warning) = cleartext_warning(client.base_url()) {
        eprintln!("warning: {warning}");
    }
    Ok(client)
}

/// Which page of a list to show.
#[derive(Debug, Args)]
pub struct PageArgs {
    /// How many per page (1–100).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub limit: Option<u32>,
    /// Start after this id (the `next_cursor` of a previous page).
    #[arg(long, value_name = "ID", conflicts_with = "all")]
    pub starting_after: Option<String>,
    /// Follow the cursor and list everything that matches.
    #[arg(long)]
    pub all: bool,
}

/// One page, or (`--all`) every item of every page as one page.
pub async fn page_or_all<T>(
    all: bool,
    every: impl futures_util::Stream<Item = Result<T, tooken_client::Error>>,
    one: impl std::future::Future<Output = Result<tooken_client::Page<T>, tooken_client::Error>>,
) -> Result<tooken_client::Page<T>, Failure> {
    use futures_util::TryStreamExt;
    if !all {
        return Ok(one.await?);
    }
    Ok(tooken_client::Page {
        data: every.try_collect().await?,
        has_more: false,
        next_cursor: None,
    })
}

/// Plain `http://` to another machine sends the credential in clear text.
fn cleartext_warning(base_url: &str) -> Option<String> {
    let url = reqwest::Url::parse(base_url).ok()?;
    if url.scheme() != "http" {
        return None;
    }
    let host = url
        .host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']');
    let local = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    (!local).then(|| {
        format!(
            "TOOKEN_URL ({base_url}) is plain http to another host: \
             the API key travels unencrypted"
        )
    })
}

/// `--metadata '{"team":"billing"}'`: a JSON object.
pub fn parse_metadata(raw: &str) -> Result<Value, String> {
    match serde_json::from_str::<Value>(raw) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err("must be a JSON object, e.g. '{\"team\":\"billing\"}'".into()),
        Err(e) => Err(format!("not valid JSON: {e}")),
    }
}

/// An RFC 3339 time, e.g. `2030-01-31T12:00:00Z`.
pub fn parse_time(raw: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| "must be an RFC 3339 time, e.g. 2030-01-31T12:00:00Z".into())
}

/// Seconds, or a number with a unit: `3600`, `90s`, `15m`, `12h`, `30d`.
pub fn parse_seconds(raw: &str) -> Result<i64, String> {
    let raw = raw.trim();
    let (digits, unit) = match raw.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => raw.split_at(i),
        None => (raw, "s"),
    };
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err("must be seconds, or a number with s, m, h, d or w (e.g. 30d)".into()),
    };
    digits
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(|| "must be a whole number of seconds, e.g. 3600 or 1h".into())
}

pub fn metadata_text(m: &Option<Map<String, Value>>) -> String {
    match m {
        Some(m) if !m.is_empty() => Value::Object(m.clone()).to_string(),
        _ => "-".into(),
    }
}

pub fn list_text<T: std::fmt::Display>(items: &[T]) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        items
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The token to check. Leave it out, or give `-`, to read it from
    /// standard input and keep it out of your shell history.
    token: Option<String>,
    /// A scope the token must hold (repeat for several).
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// Print the API's JSON answer.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connect: ConnectArgs,
}

/// `tooken verify`: exit 0 when the token is valid (with the scopes), 1 when not.
pub async fn verify(args: VerifyArgs) -> Result<Outcome, Failure> {
    let token = match args.token.as_deref() {
        Some("-") | None => read_secret_from_stdin("Token")?,
        Some(t) => t.to_owned(),
    };
    let client = connect(&args.connect)?;
    let answer = client
        .verify(&VerifyRequest {
            token: token.into(),
            scopes: args.scopes,
        })
        .await?;
    if args.json {
        emit_json(&answer)?;
    } else {
        emit(&verdict_text(&answer))?;
    }
    Ok(if answer.valid {
        Outcome::Success
    } else {
        Outcome::Negative
    })
}

fn verdict_text(answer: &VerifyResponse) -> String {
    let (code, meaning) = match answer.code {
        VerifyCode::Valid => ("VALID", "the token is valid"),
        VerifyCode::Malformed => ("MALFORMED", "not a Tooken token (format or checksum)"),
        VerifyCode::NotFound => ("NOT_FOUND", "no such token in this workspace and mode"),
        VerifyCode::Expired => ("EXPIRED", "the token has expired"),
        VerifyCode::Revoked => ("REVOKED", "the token has been revoked"),
        VerifyCode::InsufficientScope => (
            "INSUFFICIENT_SCOPE",
            "the token lacks a scope that was required",
        ),
    };
    let mut out = format!("{code}: {meaning}\n");
    if let Some(t) = &answer.token {
        out.push_str(&fields(&[
            ("id", t.id.clone()),
            ("name", t.name.clone()),
            ("mode", t.mode.to_string()),
            ("scopes", list_text(&t.scopes)),
            ("metadata", metadata_text(&t.metadata)),
            ("expires", table::time_or(t.expires_at, "never")),
        ]));
    }
    out
}

/// Reads one line from standard input, prompting when it is a terminal.
pub fn read_secret_from_stdin(what: &str) -> Result<String, Failure> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("{what}: ");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    let value = line.trim().to_owned();
    if value.is_empty() {
        return Err(Failure::usage(format!(
            "no {} given: pass it as an argument or on standard input",
            what.to_lowercase()
        )));
    }
    Ok(value)
}

#[derive(Debug, Args)]
pub struct WhoamiArgs {
    /// Print the API's JSON answer.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connect: ConnectArgs,
}

/// `tooken whoami`: the credential in `TOOKEN_API_KEY`, as the API sees it.
pub async fn whoami(args: WhoamiArgs) -> Result<Outcome, Failure> {
    let me: Whoami = connect(&args.connect)?.whoami().await?;
    if args.json {
        emit_json(&me)?;
    } else {
        let kind = match me.kind.as_str() {
            "api_key" => "API key".to_owned(),
            other => other.to_owned(),
        };
        emit(&fields(&[
            ("kind", kind),
            ("id", me.id.clone()),
            ("name", me.name.clone()),
            ("hint", me.hint.clone()),
            (
                "workspace",
                format!("{} ({})", me.workspace.name, me.workspace.id),
            ),
            ("mode", me.mode.to_string()),
            ("scopes", list_text(&me.scopes)),
        ]))?;
    }
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_seconds_or_a_unit() {
        assert_eq!(parse_seconds("3600"), Ok(3600));
        assert_eq!(parse_seconds("90s"), Ok(90));
        assert_eq!(parse_seconds("15m"), Ok(900));
        assert_eq!(parse_seconds("2h"), Ok(7200));
        assert_eq!(parse_seconds("30d"), Ok(2_592_000));
        assert!(parse_seconds("").is_err());
        assert!(parse_seconds("1y").is_err());
        assert!(parse_seconds("-5").is_err());
        assert!(parse_seconds("99999999999999999999").is_err());
    }

    #[test]
    fn metadata_must_be_an_object() {
        assert!(parse_metadata(r#"{"team":"billing"}"#).is_ok());
        assert!(parse_metadata("[1]").is_err());
        assert!(parse_metadata("{nope").is_err());
    }

    #[test]
    fn plain_http_warns_only_off_this_machine() {
        assert!(cleartext_warning("http://127.0.0.1:7878").is_none());
        assert!(cleartext_warning("http://localhost:7878").is_none());
        assert!(cleartext_warning("http://[::1]:7878").is_none());
        assert!(cleartext_warning("https://tooken.example.com").is_none());
        assert!(cleartext_warning("http://tooken.example.com").is_some());
    }
}
