//! Running `tooken` client commands as a user would, against a real server.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::helpers::{first_key, start_server, Server, BIN};

/// What a `tooken` run left behind.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The stdout as JSON; panics with the whole run when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }

    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Run {
        assert_eq!(self.code, code, "unexpected exit code: {self:?}");
        self
    }

    /// The one-line error on stderr, for failed runs.
    #[track_caller]
    pub fn error_line(&self) -> &str {
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line on stderr: {self:?}");
        assert!(lines[0].starts_with("error: "), "{self:?}");
        lines[0]
    }
}

/// Runs `tooken ARGS` in `dir` with only the given `TOOKEN_*` variables.
pub fn tooken(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Run {
    tooken_with_stdin(dir, env, args, "")
}

pub fn tooken_with_stdin(dir: &Path, env: &[(&str, &str)], args: &[&str], stdin: &str) -> Run {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("TOOKEN_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("run tooken");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A running server, the first API key it printed, and its directory.
pub struct Api {
    pub server: Server,
    pub key: String,
    pub dir: tempfile::TempDir,
}

impl Api {
    pub fn start() -> Api {
        let dir = tempfile::tempdir().unwrap();
        let server = start_server(dir.path(), &[], &[]);
        let key = first_key(&server.wait_for_stdout("shown only this once"));
        Api { server, key, dir }
    }

    /// `tooken ARGS` with TOOKEN_URL and TOOKEN_API_KEY set for this server.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_as(&self.key, args)
    }

    pub fn run_as(&self, key: &str, args: &[&str]) -> Run {
        tooken(
            self.dir.path(),
            &[("TOOKEN_URL", &self.server.url), ("TOOKEN_API_KEY", key)],
            args,
        )
    }

    pub fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Run {
        tooken_with_stdin(
            self.dir.path(),
            &[
                ("TOOKEN_URL", &self.server.url),
                ("TOOKEN_API_KEY", &self.key),
            ],
            args,
            stdin,
        )
    }

    /// Creates a token through the CLI; returns (id, secret).
    pub fn create_token(&self, args: &[&str]) -> (String, String) {
        let mut all = vec!["tokens", "create", "--json"];
        all.extend_from_slice(args);
        let run = self.run(&all);
        run.assert_code(0);
        let v = run.json();
        (
            v["id"].as_str().unwrap().to_owned(),
            v["secret"].as_str().unwrap().to_owned(),
        )
    }
}
