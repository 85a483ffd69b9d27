//! What a test may need beyond Rust, and whether this machine has it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// The PostgreSQL server tests create their databases on, unless
/// `TOOKEN_TEST_DATABASE_URL` names another.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Where the browser tests find Chromium and its WebDriver.
pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Something a test needs that the machine may lack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    /// A PostgreSQL server at `TOOKEN_TEST_DATABASE_URL` where tests may
    /// create and drop databases.
    Postgres,
    /// That server, offering TLS (`ssl = on`).
    PostgresTls,
    /// Headless Chromium and chromedriver.
    Chromium,
    /// nginx on `PATH`.
    Nginx,
    /// Caddy on `PATH`.
    Caddy,
    /// Python 3 on `PATH` (`python3`).
    Python,
    /// Node.js on `PATH` (`node`).
    Node,
}

/// Is every service mandatory (`TOOKEN_TEST_REQUIRE_ALL=1`, as in CI)?
pub fn require_all() -> bool {
    std::env::var("TOOKEN_TEST_REQUIRE_ALL").is_ok_and(|v| v == "1")
}

/// The admin URL of the PostgreSQL server tests use.
pub fn database_url() -> String {
    std::env::var("TOOKEN_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned())
}

impl Service {
    pub const ALL: [Service; 7] = [
        Service::Postgres,
        Service::PostgresTls,
        Service::Chromium,
        Service::Nginx,
        Service::Caddy,
        Service::Python,
        Service::Node,
    ];

    /// What it is called in notices.
    pub fn name(self) -> &'static str {
        match self {
            Service::Postgres => "PostgreSQL",
            Service::PostgresTls => "PostgreSQL with TLS",
            Service::Chromium => "Chromium",
            Service::Nginx => "nginx",
            Service::Caddy => "Caddy",
            Service::Python => "Python",
            Service::Node => "Node.js",
        }
    }

    /// How to get it.
    pub fn hint(self) -> &'static str {
        match self {
            Service::Postgres => "start one, or point TOOKEN_TEST_DATABASE_URL at one",
            Service::PostgresTls => "set ssl = on in postgresql.conf (with a certificate)",
            Service::Chromium => "apt-get install chromium chromium-driver",
            Service::Nginx => "apt-get install nginx",
            Service::Caddy => "apt-get install caddy",
            Service::Python => "apt-get install python3",
            Service::Node => "apt-get install nodejs",
        }
    }

    /// `Ok` when the machine has it, else why not. Checked once per
    /// process.
    pub fn available(self) -> Result<(), String> {
        static CHECKED: [OnceLock<Result<(), String>>; 7] = [const { OnceLock::new() }; 7];
        let i = Service::ALL
            .iter()
            .position(|s| *s == self)
            .expect("listed");
        CHECKED[i].get_or_init(|| self.check()).clone()
    }

    fn check(self) -> Result<(), String> {
        match self {
            Service::Postgres => postgres(false),
            Service::PostgresTls => {
                Service::Postgres.available()?;
                postgres(true)
            }
            Service::Chromium => [CHROMIUM, CHROMEDRIVER]
                .into_iter()
                .find(|tool| !Path::new(tool).exists())
                .map_or(Ok(()), |tool| Err(format!("{tool} is missing"))),
            Service::Nginx => runs("nginx", &["-v"]),
            Service::Caddy => runs("caddy", &["version"]),
            Service::Python => runs("python3", &["--version"]),
            Service::Node => runs("node", &["--version"]),
        }
    }
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `program ARGS` runs and exits 0.
fn runs(program: &str, args: &[&str]) -> Result<(), String> {
    match Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("`{program} {}` failed ({s})", args.join(" "))),
        Err(e) => Err(format!("no `{program}` on PATH ({e})")),
    }
}

/// Connects to the test server (and, with `tls`, asks whether it offers
/// TLS), on a runtime of its own: this runs before any test does.
fn postgres(tls: bool) -> Result<(), String> {
    use sqlx::{Connection, Row};

    let url = database_url();
    let shown = tooken_store::redact_url(&url);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let connect = sqlx::postgres::PgConnection::connect(&url);
        let mut conn = match tokio::time::timeout(Duration::from_secs(5), connect).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Err(format!("no server at {shown} ({e})")),
            Err(_) => return Err(format!("no answer from {shown} within 5 s")),
        };
        if tls {
            let ssl: String = sqlx::query("SHOW ssl")
                .fetch_one(&mut conn)
                .await
                .and_then(|r| r.try_get(0))
                .map_err(|e| format!("SHOW ssl on {shown}: {e}"))?;
            if ssl != "on" {
                return Err(format!("the server at {shown} has ssl = {ssl}"));
            }
        }
        let _ = conn.close().await;
        Ok(())
    })
}
