//! The `tooken` binary, run as a user would: `serve` as a child process,
//! `admin` commands on the same store, HTTP between them. Tests that need
//! PostgreSQL are reported ignored without it (see
//! `tooken_testkit::harness`).

mod admin;
mod audit_log;
mod client;
mod config_file;
mod crash;
#[path = "../../build/git_commit.rs"]
mod git_commit;
mod healthcheck;
mod helpers;
mod hostile;
mod hygiene;
mod multinode;
mod nodes;
mod postgres;
mod run;
mod scan;
mod serve;
mod tls;
mod version;

fn main() {
    tooken_testkit::harness::main()
}
