//! Integration tests: the real server, in-process on port 0, driven over
//! HTTP. Every test runs against both stores: a fresh SQLite file, and a
//! freshly created (then dropped) PostgreSQL database. Without PostgreSQL
//! its half is reported ignored (see `tooken_testkit::harness`).

/// Defines a test that runs once per store: `mod NAME { sqlite, postgres }`.
/// `app with ADJUST` passes the server state through `ADJUST` first.
macro_rules! store_test {
    ($($test:tt)*) => {
        tooken_testkit::store_test!(tooken_testkit::TestApp; $($test)*);
    };
}

mod audit;
mod auth;
mod gateway;
mod helpers;
mod hostile;
mod hygiene;
mod nodes;
mod semantics;
mod tokens;
mod under_load;
mod validation;
mod verify;

fn main() {
    tooken_testkit::harness::main()
}
