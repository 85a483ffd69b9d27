//! The `tooken` binary as a child process (see `tooken_testkit::process`).

use std::path::{Path, PathBuf};

pub use tooken_testkit::process::{first_key, Server, Tooken};

/// The binary under test.
pub const TOOKEN: Tooken = Tooken::at(env!("CARGO_BIN_EXE_tooken"));
pub const BIN: &str = TOOKEN.bin;

/// Starts `tooken serve` in `dir` with extra arguments and environment, and
/// waits until it says where it listens.
pub fn start_server(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
    TOOKEN.serve(dir, args, env)
}

/// Runs `tooken admin …` on the store in `dir`; returns (success, stdout, stderr).
pub fn admin(dir: &Path, args: &[&str]) -> (bool, String, String) {
    TOOKEN.admin(dir, args)
}

/// The status of `GET /v1/tokens` with `key`.
pub async fn status_with(url: &str, key: &str) -> u16 {
    tooken_testkit::get_status(url, "/v1/tokens", key)
        .await
        .as_u16()
}

pub fn db_path(dir: &Path) -> PathBuf {
    dir.join("tooken.db")
}
