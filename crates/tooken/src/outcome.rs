//! How a command ends, and so the process's exit code: 0 when it succeeded,
//! 1 when the answer is "no" (the API refused, a token is not valid, a chain
//! is broken, a credential was found), 2 when the command could not do its
//! job (usage, configuration, connection).

use std::io::Write;

/// A command that ran to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Success,
    /// Exit 1, with no error line: the output already says why.
    Negative,
}

/// A command that could not finish; printed as one `error: …` line.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    /// Exit 1: the API, or the data, said no.
    pub fn refused(message: impl Into<String>) -> Failure {
        Failure {
            code: 1,
            message: message.into(),
        }
    }

    /// Exit 2: bad usage, configuration or environment.
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: 2,
            message: message.into(),
        }
    }

    /// Exit 1 with the whole cause chain on one line (for `serve`, `admin`).
    pub fn failed(e: anyhow::Error) -> Failure {
        Failure::refused(format!("{e:#}"))
    }
}

impl From<tooken_client::Error> for Failure {
    fn from(e: tooken_client::Error) -> Failure {
        use tooken_client::Error;
        match e {
            Error::Api { status, body } => {
                let mut message = format!("{} ({}, HTTP {status})", body.message, body.error);
                if let Some(field) = body.field {
                    message.push_str(&format!(", field `{field}`"));
                }
                if let Some(scope) = body.required_scope {
                    message.push_str(&format!(", needs scope `{scope}`"));
                }
                Failure::refused(message)
            }
            Error::Transport(e) => {
                Failure::usage(format!("cannot reach Tooken: {}", root_cause(&e)))
            }
            Error::Decode(msg) => Failure::usage(format!("unexpected response from Tooken: {msg}")),
            Error::Config(msg) => Failure::usage(msg),
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        Failure::usage(e.to_string())
    }
}

/// The request's URL and the innermost cause (e.g. "Connection refused"),
/// which is what a person needs from reqwest's nested errors.
fn root_cause(e: &reqwest::Error) -> String {
    let mut inner: &dyn std::error::Error = e;
    while let Some(source) = inner.source() {
        inner = source;
    }
    let what = if e.is_timeout() {
        "timed out".to_owned()
    } else {
        inner.to_string()
    };
    match e.url() {
        Some(url) => format!("{}: {what}", origin(url)),
        None => what,
    }
}

fn origin(url: &reqwest::Url) -> String {
    let mut s = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
    if let Some(port) = url.port() {
        s.push_str(&format!(":{port}"));
    }
    s
}

/// Writes to stdout. A closed pipe (`tooken … | head`) is not an error: the
/// reader has what it wanted.
pub fn emit(text: &str) -> Result<(), Failure> {
    emit_bytes(text.as_bytes())
}

pub fn emit_bytes(bytes: &[u8]) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::usage(format!("cannot write the output: {e}"))),
    }
}

/// Pretty JSON and a newline.
pub fn emit_json<T: serde::Serialize>(value: &T) -> Result<(), Failure> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::usage(format!("cannot encode the output: {e}")))?;
    text.push('\n');
    emit(&text)
}
