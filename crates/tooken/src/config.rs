//! Tooken's configuration: one typed struct ([`ServeConfig`], with
//! [`StoreConfig`] for what `tooken admin` shares), each setting declared
//! once with its flag, its `TOOKEN_*` variable, its `tooken.toml` key (the
//! field's name) and its default. The layers, lowest first:
//!
//! defaults < `tooken.toml` < `TOOKEN_*` environment < flags
//!
//! clap reads the flags, the environment and the defaults (and shows the
//! defaults and variables in `--help`, from the declarations); a setting
//! clap took from its default is then taken from the file when the file
//! sets it ([`ConfigFile::layer`]). That is the whole merge: one small
//! function and no other crate, since clap already knows where each value
//! came from. The file's known keys are the struct's fields, so `tooken
//! config check` and the unknown-key warnings follow the struct.
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
//! gateway_cache_seconds = 0
//! ```
//!
//! Relative paths (the SQLite file, the TLS files) are taken from the
//! directory `tooken` runs in. Unknown keys are warned about (usually a
//! typo) and otherwise ignored; `tooken config check` treats them as
//! errors.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Subcommand, ValueEnum};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tooken_server::authz::{GatewayOptions, MAX_GATEWAY_CACHE_SECONDS};
use tooken_server::throttle::AuthLimits;
use tooken_store::StoreOptions;

use crate::outcome::{emit, Failure, Outcome};

/// Read from the current directory when `--config` is not given.
pub const FILE_NAME: &str = "tooken.toml";

/// Where the configuration file is: `--config`, else `tooken.toml` in the
/// current directory if there is one.
#[derive(Debug, Clone, Args)]
pub struct ConfigPath {
    /// Configuration file [default: ./tooken.toml if it exists].
    #[arg(long, env = "TOOKEN_CONFIG", value_name = "PATH", global = true)]
    pub config: Option<PathBuf>,
}

/// The store `serve` and `admin` open, and how.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
#[serde(default)]
pub struct StoreConfig {
    /// Store: sqlite://PATH (created if missing) or postgres://… (TLS per
    /// the URL's sslmode).
    #[arg(long, env = "TOOKEN_DATABASE_URL", global = true,
        default_value_t = StoreConfig::default().database)]
    pub database: String,
    /// Connections in the store's pool (SQLite uses at most 8).
    #[arg(long, env = "TOOKEN_DATABASE_POOL_SIZE", value_name = "N", global = true,
        default_value_t = StoreConfig::default().database_pool_size)]
    pub database_pool_size: u32,
    /// How long a request waits for a database connection before it is
    /// answered 503, in milliseconds; also bounds connecting at start.
    #[arg(long, env = "TOOKEN_DATABASE_ACQUIRE_TIMEOUT_MS", value_name = "MS", global = true,
        default_value_t = StoreConfig::default().database_acquire_timeout_ms)]
    pub database_acquire_timeout_ms: u64,
    /// PostgreSQL: statements running longer are cancelled, in
    /// milliseconds; 0 for no limit.
    #[arg(long, env = "TOOKEN_DATABASE_STATEMENT_TIMEOUT_MS", value_name = "MS", global = true,
        default_value_t = StoreConfig::default().database_statement_timeout_ms)]
    pub database_statement_timeout_ms: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        let store = StoreOptions::default();
        StoreConfig {
            database: "sqlite://tooken.db".into(),
            database_pool_size: store.max_connections,
            database_acquire_timeout_ms: store.acquire_timeout.as_millis() as u64,
            database_statement_timeout_ms: store
                .statement_timeout
                .map_or(0, |t| t.as_millis() as u64),
        }
    }
}

impl StoreConfig {
    /// How to open the store.
    pub fn options(&self) -> anyhow::Result<StoreOptions> {
        if self.database_pool_size == 0 {
            anyhow::bail!("database pool size must be at least 1");
        }
        if self.database_acquire_timeout_ms == 0 {
            anyhow::bail!("database acquire timeout must be at least 1 ms");
        }
        Ok(StoreOptions {
            max_connections: self.database_pool_size,
            acquire_timeout: Duration::from_millis(self.database_acquire_timeout_ms),
            statement_timeout: (self.database_statement_timeout_ms > 0)
                .then(|| Duration::from_millis(self.database_statement_timeout_ms)),
        })
    }
}

/// Everything `tooken serve` reads.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
#[serde(default)]
pub struct ServeConfig {
    /// Address to listen on.
    #[arg(long, env = "TOOKEN_LISTEN", default_value_t = ServeConfig::default().listen)]
    pub listen: SocketAddr,
    #[command(flatten)]
    #[serde(flatten)]
    pub store: StoreConfig,
    /// Log format.
    #[arg(long, env = "TOOKEN_LOG_FORMAT", value_enum,
        default_value_t = ServeConfig::default().log_format)]
    pub log_format: LogFormat,
    /// Authentication failures per client address, per window, before its
    /// answers are slowed down.
    #[arg(long, env = "TOOKEN_AUTH_SLOW_AFTER", default_value_t = ServeConfig::default().auth_slow_after)]
    pub auth_slow_after: u32,
    /// Authentication failures per client address, per window, before it is
    /// answered 429 until the window ends.
    #[arg(long, env = "TOOKEN_AUTH_BLOCK_AFTER",
        default_value_t = ServeConfig::default().auth_block_after)]
    pub auth_block_after: u32,
    /// Length of the brute-force window, in seconds.
    #[arg(long, env = "TOOKEN_AUTH_WINDOW_SECONDS",
        default_value_t = ServeConfig::default().auth_window_seconds)]
    pub auth_window_seconds: u64,
    /// Serve HTTPS with this PEM certificate chain (the server's
    /// certificate first, then intermediates); needs --tls-key.
    #[arg(long, env = "TOOKEN_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's PEM private key (PKCS#8, RSA or EC); needs
    /// --tls-cert.
    #[arg(long, env = "TOOKEN_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// How long a gateway may reuse a forward-auth 200 (Cache-Control:
    /// max-age), in seconds, 0 to 300; a revoked token gets through a
    /// caching gateway that long. 0: never (no-store).
    #[arg(long, env = "TOOKEN_GATEWAY_CACHE_SECONDS", value_name = "SECONDS",
        default_value_t = ServeConfig::default().gateway_cache_seconds,
        value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_GATEWAY_CACHE_SECONDS)))]
    pub gateway_cache_seconds: u32,
}

impl Default for ServeConfig {
    fn default() -> Self {
        let auth = AuthLimits::default();
        ServeConfig {
            listen: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 7878)),
            store: StoreConfig::default(),
            log_format: LogFormat::Text,
            auth_slow_after: auth.slow_after,
            auth_block_after: auth.block_after,
            auth_window_seconds: auth.window.as_secs(),
            tls_cert: None,
            tls_key: None,
            gateway_cache_seconds: 0,
        }
    }
}

impl ServeConfig {
    /// How gateways may reuse forward-auth answers.
    pub fn gateway_options(&self) -> GatewayOptions {
        GatewayOptions {
            cache_seconds: self.gateway_cache_seconds.min(MAX_GATEWAY_CACHE_SECONDS),
        }
    }

    /// The brute-force limits these settings describe.
    pub fn auth_limits(&self) -> AuthLimits {
        AuthLimits {
            window: Duration::from_secs(self.auth_window_seconds.max(1)),
            slow_after: self.auth_slow_after,
            block_after: self.auth_block_after.max(1),
            ..AuthLimits::default()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The keys a `tooken.toml` may hold: the settings' names, in order.
pub fn known_keys() -> Vec<String> {
    ServeConfig::augment_args(clap::Command::new("tooken"))
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .collect()
}

/// A configuration file, read and checked: every value it sets has the
/// setting's type.
#[derive(Debug, Default)]
pub struct ConfigFile {
    /// The keys it sets, as written.
    table: toml::Table,
    /// Keys that name no setting.
    pub unknown: Vec<String>,
}

impl ConfigFile {
    /// Parses a file's text. Errors are one line, naming the line and key.
    pub fn parse(text: &str) -> Result<ConfigFile, String> {
        let table: toml::Table = toml::from_str(text).map_err(|e| one_line(text, &e))?;
        toml::from_str::<ServeConfig>(text).map_err(|e| one_line(text, &e))?;
        let known = known_keys();
        let unknown = table
            .keys()
            .filter(|k| !known.contains(k))
            .cloned()
            .collect();
        Ok(ConfigFile { table, unknown })
    }

    /// The file named by `--config` (which must exist), or `tooken.toml`
    /// in the current directory if there is one. Unknown keys are warned
    /// about on stderr (logging is not set up yet: the file may choose its
    /// format).
    pub fn load(path: &ConfigPath) -> anyhow::Result<ConfigFile> {
        let path = match &path.config {
            Some(p) => p.clone(),
            None => {
                let p = PathBuf::from(FILE_NAME);
                if !p.exists() {
                    return Ok(ConfigFile::default());
                }
                p
            }
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let file =
            ConfigFile::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        for key in &file.unknown {
            eprintln!(
                "warning: {}: {}; ignored",
                path.display(),
                describe_unknown(key)
            );
        }
        Ok(file)
    }

    /// The value the file gives `key`, if it sets it (already checked).
    pub fn value<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.table.get(key)?.clone().try_into().ok()
    }

    /// `from_command_line` (flags, environment and defaults, as clap read
    /// them into `matches`) with each setting clap took from its default
    /// taken from this file instead, when it sets it.
    pub fn layer<T: Serialize + DeserializeOwned>(
        &self,
        from_command_line: T,
        matches: &ArgMatches,
    ) -> anyhow::Result<T> {
        let mut merged = serde_json::to_value(from_command_line)?;
        let Some(fields) = merged.as_object_mut() else {
            anyhow::bail!("settings are not a struct");
        };
        for (key, value) in fields.iter_mut() {
            let given = matches
                .try_get_raw(key)
                .ok()
                .and_then(|_| matches.value_source(key))
                .is_some_and(|s| s != ValueSource::DefaultValue);
            if let (false, Some(from_file)) = (given, self.table.get(key)) {
                *value = serde_json::to_value(from_file)?;
            }
        }
        Ok(serde_json::from_value(merged)?)
    }
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
    let known = known_keys();
    let closest = known
        .iter()
        .map(|k| (edit_distance(key, k), k))
        .filter(|(d, _)| *d <= 3)
        .min();
    match closest {
        Some((_, k)) => format!("unknown key `{key}` (did you mean `{k}`?)"),
        None => format!("unknown key `{key}` (known keys: {})", known.join(", ")),
    }
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
    check(&path)
}

fn check(path: &Path) -> Result<Outcome, Failure> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::usage(format!("cannot read {shown}: {e}")))?;
    let file = ConfigFile::parse(&text).map_err(|e| Failure::refused(format!("{shown}: {e}")))?;
    if !file.unknown.is_empty() {
        let text: String = file
            .unknown
            .iter()
            .map(|k| format!("{shown}: {}\n", describe_unknown(k)))
            .collect();
        emit(&text)?;
        return Err(Failure::refused(format!(
            "{shown} is not valid: {} unknown key(s)",
            file.unknown.len()
        )));
    }
    let set: Vec<String> = known_keys()
        .into_iter()
        .filter(|k| file.table.contains_key(k))
        .collect();
    emit(&if set.is_empty() {
        format!("{shown}: valid (sets nothing)\n")
    } else {
        format!("{shown}: valid (sets {})\n", set.join(", "))
    })?;
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches, Parser};

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        settings: ServeConfig,
    }

    /// The settings from `args` (flags only: the test sets no variable) over
    /// the file `text`.
    fn layered(args: &[&str], text: &str) -> ServeConfig {
        let matches = Cli::command()
            .try_get_matches_from(std::iter::once("tooken").chain(args.iter().copied()))
            .unwrap();
        let cli = Cli::from_arg_matches(&matches).unwrap();
        ConfigFile::parse(text)
            .unwrap()
            .layer(cli.settings, &matches)
            .unwrap()
    }

    #[test]
    fn a_full_file_parses() {
        let text =
            "listen = \"0.0.0.0:9000\"\ndatabase = \"sqlite://x.db\"\nlog_format = \"json\"\n\
             auth_slow_after = 5\nauth_block_after = 9\nauth_window_seconds = 30\n\
             database_pool_size = 4\ndatabase_acquire_timeout_ms = 1500\n\
             database_statement_timeout_ms = 0\n\
             tls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\ngateway_cache_seconds = 5\n";
        let file = ConfigFile::parse(text).unwrap();
        assert!(file.unknown.is_empty());
        let s = layered(&[], text);
        assert_eq!(s.store.database_pool_size, 4);
        assert_eq!(s.store.database_acquire_timeout_ms, 1500);
        assert_eq!(s.store.database_statement_timeout_ms, 0);
        assert_eq!(s.listen, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(s.store.database, "sqlite://x.db");
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.auth_window_seconds, 30);
        assert_eq!(s.tls_cert, Some(PathBuf::from("cert.pem")));
        assert_eq!(s.tls_key, Some(PathBuf::from("key.pem")));
        assert_eq!(s.gateway_options().cache_seconds, 5);
    }

    #[test]
    fn flags_beat_the_file_which_beats_the_defaults() {
        let s = layered(
            &["--listen", "127.0.0.1:1", "--database-pool-size", "3"],
            "listen = \"0.0.0.0:9000\"\nauth_slow_after = 5\n",
        );
        assert_eq!(s.listen, "127.0.0.1:1".parse().unwrap(), "the flag");
        assert_eq!(s.store.database_pool_size, 3, "the flag");
        assert_eq!(s.auth_slow_after, 5, "the file");
        let defaults = ServeConfig::default();
        assert_eq!(s.auth_block_after, defaults.auth_block_after, "the default");
        assert_eq!(s.store.database, defaults.store.database, "the default");
        assert_eq!(s.tls_cert, None);
    }

    #[test]
    fn the_known_keys_are_the_settings() {
        let keys = known_keys();
        assert_eq!(keys.first().map(String::as_str), Some("listen"));
        let defaults = serde_json::to_value(ServeConfig::default()).unwrap();
        let fields = defaults.as_object().unwrap();
        assert_eq!(keys.len(), fields.len());
        assert!(keys.iter().all(|k| fields.contains_key(k)), "{keys:?}");
    }

    #[test]
    fn unknown_keys_are_named_with_a_suggestion() {
        let file = ConfigFile::parse("lisen = \"127.0.0.1:1\"\ncolour = true\n").unwrap();
        assert_eq!(file.unknown, ["colour", "lisen"]);
        assert_eq!(
            describe_unknown("lisen"),
            "unknown key `lisen` (did you mean `listen`?)"
        );
        assert!(describe_unknown("colour").contains("known keys: listen"));
    }

    #[test]
    fn wrong_types_name_the_line() {
        let e = ConfigFile::parse("database = \"sqlite://x.db\"\nlisten = 7878\n").unwrap_err();
        assert!(e.starts_with("line 2 (`listen = 7878`):"), "{e}");
        assert!(!e.contains('\n'), "{e}");
        let e = ConfigFile::parse("log_format = \"xml\"\n").unwrap_err();
        assert!(e.contains("xml"), "{e}");
        let e = ConfigFile::parse("listen = \n").unwrap_err();
        assert!(e.starts_with("line 1"), "{e}");
    }
}
