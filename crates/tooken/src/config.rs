//! `tooken.toml`: settings for `tooken serve`, below flags and `TOOKEN_*`
//! environment variables and above the built-in defaults. Read from the
//! current directory, or from `--config PATH`.
//!
//! ```toml
//! listen = "0.0.0.0:7878"
//! database = "sqlite:///var/lib/tooken/tooken.db"
//! database_pool_size = 16
//! database_acquire_timeout_ms = 5000
//! database_statement_timeout_ms = 10000
//! log_format = "json"
//! auth_slow_after = 10
//! auth_block_after = 30
//! auth_window_seconds = 60
//! tls_cert = "/etc/tooken/cert.pem"
//! tls_key = "/etc/tooken/key.pem"
//! ```
//!
//! Relative paths (the SQLite file, the TLS files) are taken from the
//! directory `tooken serve` runs in.
//!
//! Unknown keys are warned about (usually a typo) and otherwise ignored;
//! `tooken config check` treats them as errors.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde::Deserialize;

use crate::outcome::{emit, Failure, Outcome};
use crate::serve::LogFormat;

/// Read from the current directory when `--config` is not given.
pub const FILE_NAME: &str = "tooken.toml";

/// The keys a `tooken.toml` may hold.
pub const KEYS: &[&str] = &[
    "listen",
    "database",
    "database_pool_size",
    "database_acquire_timeout_ms",
    "database_statement_timeout_ms",
    "log_format",
    "auth_slow_after",
    "auth_block_after",
    "auth_window_seconds",
    "tls_cert",
    "tls_key",
];

/// What a `tooken.toml` sets; `None` where it is silent.
#[derive(Debug, Default, Deserialize)]
pub struct ServeFile {
    pub listen: Option<SocketAddr>,
    pub database: Option<String>,
    pub database_pool_size: Option<u32>,
    pub database_acquire_timeout_ms: Option<u64>,
    pub database_statement_timeout_ms: Option<u64>,
    pub log_format: Option<LogFormat>,
    pub auth_slow_after: Option<u32>,
    pub auth_block_after: Option<u32>,
    pub auth_window_seconds: Option<u64>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

/// A file's settings, and the keys in it that mean nothing.
#[derive(Debug)]
pub struct Parsed {
    pub settings: ServeFile,
    pub unknown: Vec<String>,
}

/// Parses a file's text. Errors are one line, naming the line and key.
pub fn parse(text: &str) -> Result<Parsed, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| one_line(text, &e))?;
    let unknown = table
        .keys()
        .filter(|k| !KEYS.contains(&k.as_str()))
        .cloned()
        .collect();
    let settings: ServeFile = toml::from_str(text).map_err(|e| one_line(text, &e))?;
    Ok(Parsed { settings, unknown })
}

/// toml's errors draw a multi-line excerpt; keep the line number, the
/// offending line and the message.
fn one_line(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim().trim_end_matches('.');
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            let source = text.lines().nth(line - 1).unwrap_or_default().trim();
            format!("line {line} (`{source}`): {message}")
        }
        None => message.to_owned(),
    }
}

/// `unknown key `lisen` (did you mean `listen`?)`
pub fn describe_unknown(key: &str) -> String {
    match closest_key(key) {
        Some(k) => format!("unknown key `{key}` (did you mean `{k}`?)"),
        None => format!("unknown key `{key}` (known keys: {})", KEYS.join(", ")),
    }
}

fn closest_key(key: &str) -> Option<&'static str> {
    KEYS.iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// For `tooken serve`: the file named by `--config` (which must exist), or
/// `tooken.toml` in the current directory if there is one. Unknown keys are
/// warned about on stderr (logging is not set up yet: the file may choose
/// its format).
pub fn load_for_serve(explicit: Option<&Path>) -> anyhow::Result<ServeFile> {
    let path = match explicit {
        Some(p) => p.to_owned(),
        None => {
            let p = PathBuf::from(FILE_NAME);
            if !p.exists() {
                return Ok(ServeFile::default());
            }
            p
        }
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let parsed = parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    for key in &parsed.unknown {
        eprintln!(
            "warning: {}: {}; ignored",
            path.display(),
            describe_unknown(key)
        );
    }
    Ok(parsed.settings)
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration file (default: ./tooken.toml); unknown keys
    /// are errors here.
    Check {
        /// The file to check.
        path: Option<PathBuf>,
    },
}

pub fn run(command: ConfigCommand) -> Result<Outcome, Failure> {
    let ConfigCommand::Check { path } = command;
    let path = path.unwrap_or_else(|| PathBuf::from(FILE_NAME));
    let shown = path.display();
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Failure::usage(format!("cannot read {shown}: {e}")))?;
    let parsed = parse(&text).map_err(|e| Failure::refused(format!("{shown}: {e}")))?;
    if !parsed.unknown.is_empty() {
        let text: String = parsed
            .unknown
            .iter()
            .map(|k| format!("{shown}: {}\n", describe_unknown(k)))
            .collect();
        emit(&text)?;
        return Err(Failure::refused(format!(
            "{shown} is not valid: {} unknown key(s)",
            parsed.unknown.len()
        )));
    }
    let set: Vec<&str> = {
        let s = &parsed.settings;
        [
            ("listen", s.listen.is_some()),
            ("database", s.database.is_some()),
            ("database_pool_size", s.database_pool_size.is_some()),
            (
                "database_acquire_timeout_ms",
                s.database_acquire_timeout_ms.is_some(),
            ),
            (
                "database_statement_timeout_ms",
                s.database_statement_timeout_ms.is_some(),
            ),
            ("log_format", s.log_format.is_some()),
            ("auth_slow_after", s.auth_slow_after.is_some()),
            ("auth_block_after", s.auth_block_after.is_some()),
            ("auth_window_seconds", s.auth_window_seconds.is_some()),
            ("tls_cert", s.tls_cert.is_some()),
            ("tls_key", s.tls_key.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, set)| set.then_some(k))
        .collect()
    };
    emit(&if set.is_empty() {
        format!("{shown}: valid (sets nothing)\n")
    } else {
        format!("{shown}: valid (sets {})\n", set.join(", "))
    })?;
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_parses() {
        let p = parse(
            "listen = \"0.0.0.0:9000\"\ndatabase = \"sqlite://x.db\"\nlog_format = \"json\"\n\
             auth_slow_after = 5\nauth_block_after = 9\nauth_window_seconds = 30\n\
             database_pool_size = 4\ndatabase_acquire_timeout_ms = 1500\n\
             database_statement_timeout_ms = 0\n\
             tls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n",
        )
        .unwrap();
        assert!(p.unknown.is_empty());
        assert_eq!(p.settings.database_pool_size, Some(4));
        assert_eq!(p.settings.database_acquire_timeout_ms, Some(1500));
        assert_eq!(p.settings.database_statement_timeout_ms, Some(0));
        assert_eq!(p.settings.listen, Some("0.0.0.0:9000".parse().unwrap()));
        assert_eq!(p.settings.database.as_deref(), Some("sqlite://x.db"));
        assert!(matches!(p.settings.log_format, Some(LogFormat::Json)));
        assert_eq!(p.settings.auth_window_seconds, Some(30));
        assert_eq!(p.settings.tls_cert, Some(PathBuf::from("cert.pem")));
        assert_eq!(p.settings.tls_key, Some(PathBuf::from("key.pem")));
    }

    #[test]
    fn unknown_keys_are_named_with_a_suggestion() {
        let p = parse("lisen = \"127.0.0.1:1\"\ncolour = true\n").unwrap();
        assert_eq!(p.unknown, ["colour", "lisen"]);
        assert_eq!(
            describe_unknown("lisen"),
            "unknown key `lisen` (did you mean `listen`?)"
        );
        assert!(describe_unknown("colour").contains("known keys: listen"));
    }

    #[test]
    fn wrong_types_name_the_line() {
        let e = parse("database = \"sqlite://x.db\"\nlisten = 7878\n").unwrap_err();
        assert!(e.starts_with("line 2 (`listen = 7878`):"), "{e}");
        assert!(!e.contains('\n'), "{e}");
        let e = parse("log_format = \"xml\"\n").unwrap_err();
        assert!(e.contains("xml"), "{e}");
        let e = parse("listen = \n").unwrap_err();
        assert!(e.starts_with("line 1"), "{e}");
    }
}
