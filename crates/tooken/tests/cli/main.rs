//! The `tooken` binary, run as a user would: `serve` as a child process,
//! `admin` commands on the same store, HTTP between them.

mod admin;
mod audit_log;
#[path = "../../../tooken-server/tests/support/certs.rs"]
mod certs;
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
#[path = "../../../tooken-server/tests/support/pg.rs"]
mod pg;
mod postgres;
mod run;
mod scan;
mod serve;
mod tls;
mod version;
