//! `tooken healthcheck`: asks a running server whether it is alive
//! (`GET /healthz`) or ready (`GET /readyz`), for container health checks
//! and service managers that have no `curl` (the container image has no
//! shell either).
//!
//! Without `--url` it checks the server that `tooken serve` would run with
//! the same environment and working directory: the address from
//! `--listen`/`TOOKEN_LISTEN`/`tooken.toml` (a wildcard address is asked on
//! loopback), over HTTPS when a TLS certificate is configured.
//!
//! Exit 0 when the answer is `200`, 1 otherwise (an error status, no
//! answer, or none within `--timeout`): container engines read any other
//! code as "unhealthy" or reserve it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::config::{ConfigFile, ConfigPath, ServeConfig};
use crate::outcome::{emit, Failure, Outcome};

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// The server's base URL, e.g. http://127.0.0.1:7878 [default: from the
    /// serve settings].
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// Check readiness (`/readyz`: the store answers) instead of liveness
    /// (`/healthz`).
    #[arg(long)]
    ready: bool,
    /// How long to wait for the answer: seconds, or a number with s or m.
    #[arg(long, default_value = "5s", value_parser = parse_timeout)]
    timeout: Duration,
    #[command(flatten)]
    file: ConfigPath,
    /// The address `tooken serve` listens on, as for `tooken serve`.
    #[arg(long, env = "TOOKEN_LISTEN")]
    listen: Option<SocketAddr>,
    /// Set when `tooken serve` serves HTTPS (the check then uses https).
    #[arg(long, env = "TOOKEN_TLS_CERT", value_name = "FILE", hide = true)]
    tls_cert: Option<PathBuf>,
}

pub async fn run(args: HealthcheckArgs) -> Result<Outcome, Failure> {
    let base = match args.url {
        Some(url) => {
            let parsed = reqwest::Url::parse(&url)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
                .ok_or_else(|| {
                    Failure::usage(format!(
                        "--url {url:?} is not an http:// or https:// URL, e.g. http://127.0.0.1:7878"
                    ))
                })?;
            parsed.as_str().trim_end_matches('/').to_owned()
        }
        None => {
            let file =
                ConfigFile::load(&args.file).map_err(|e| Failure::usage(format!("{e:#}")))?;
            let listen = args
                .listen
                .or_else(|| file.value("listen"))
                .unwrap_or(ServeConfig::default().listen);
            let tls = args
                .tls_cert
                .or_else(|| file.value::<PathBuf>("tls_cert"))
                .is_some();
            local_url(listen, tls)
        }
    };
    let path = if args.ready { "/readyz" } else { "/healthz" };
    let url = format!("{base}{path}");
    // Only the status is read and nothing secret is sent; a certificate
    // issued for a public name does not name the loopback address asked.
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(args.timeout)
        .danger_accept_invalid_certs(true)
        .build()
        .map_err(|e| Failure::usage(format!("cannot set up HTTP: {e}")))?;
    match http.get(&url).send().await {
        Ok(response) if response.status() == reqwest::StatusCode::OK => {
            emit(&format!("{url}: {}\n", response.status()))?;
            Ok(Outcome::Success)
        }
        Ok(response) => Err(Failure::refused(format!("{url}: {}", response.status()))),
        Err(e) if e.is_timeout() => Err(Failure::refused(format!(
            "{url}: no answer within {:?}",
            args.timeout
        ))),
        Err(e) => Err(Failure::refused(format!("{url}: {}", innermost(&e)))),
    }
}

/// The URL to reach a server listening on `listen` from this machine.
fn local_url(listen: SocketAddr, tls: bool) -> String {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{}", SocketAddr::new(ip, listen.port()))
}

/// `5`, `5s`, `500ms`, `1m`: at least 1 ms, at most an hour.
fn parse_timeout(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let (digits, unit) = match raw.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => raw.split_at(i),
        None => (raw, "s"),
    };
    let millis_per = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        _ => return Err("must be seconds, or a number with ms, s or m (e.g. 5s)".into()),
    };
    let millis = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(millis_per))
        .filter(|ms| (1..=3_600_000).contains(ms))
        .ok_or("must be a whole number from 1 ms to 1 hour, e.g. 5s")?;
    Ok(Duration::from_millis(millis))
}

fn innermost(e: &reqwest::Error) -> String {
    let mut inner: &dyn std::error::Error = e;
    while let Some(source) = inner.source() {
        inner = source;
    }
    inner.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_listen_address_is_asked_on_loopback() {
        let url = |s: &str, tls| local_url(s.parse().unwrap(), tls);
        assert_eq!(url("0.0.0.0:7878", false), "http://127.0.0.1:7878");
        assert_eq!(url("[::]:7878", false), "http://[::1]:7878");
        assert_eq!(url("10.0.0.5:9000", true), "https://10.0.0.5:9000");
        assert_eq!(url("[::1]:7878", true), "https://[::1]:7878");
    }

    #[test]
    fn timeouts_take_a_unit() {
        assert_eq!(parse_timeout("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_timeout("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_timeout("2m"), Ok(Duration::from_secs(120)));
        for bad in [
            "",
            "0",
            "0ms",
            "5h",
            "-1",
            "1.5s",
            "2m1s",
            "99999999999999999999",
        ] {
            assert!(parse_timeout(bad).is_err(), "{bad:?}");
        }
    }
}
