//! What Tooken's test binaries share.
//!
//! - [`TestStore`]: a fresh store per test, a SQLite file in a temporary
//!   directory or a PostgreSQL database created for the test and dropped
//!   after it ([`TestDatabase`]).
//! - [`TestApp`]: the real server in-process on port 0, on a fresh store,
//!   with a live API key and a [`tooken_client::Client`] using it.
//! - [`process::Tooken`]: the `tooken` binary as a child process (`serve`,
//!   `admin`, client commands).
//! - [`Service`]: what a test needs beyond Rust (PostgreSQL, Chromium and
//!   chromedriver, nginx, Caddy, Python, Node) and whether this machine
//!   has it.
//! - [`harness`]: the test harness of every binary whose tests need such a
//!   service.
//!
//! # Tests that need a service
//!
//! A test that needs something the machine may lack must say so, and the
//! run must tell the truth about it: when PostgreSQL is not reachable, the
//! PostgreSQL half of the suite is reported **ignored**, not passed, with
//! one notice line naming what is missing. With `TOOKEN_TEST_REQUIRE_ALL=1`
//! (CI sets it) a missing service fails those tests instead.
//!
//! libtest decides what is ignored when it compiles; this has to be
//! decided when the tests run. So such a test binary has its own harness
//! (libtest-mimic, which looks and behaves like libtest: filters,
//! `--list`, `--ignored`, `--test-threads`, the summary line):
//!
//! 1. In the crate's `Cargo.toml`, turn libtest off for the binary:
//!
//!    ```toml
//!    [[test]]
//!    name = "api"
//!    harness = false
//!    ```
//!
//! 2. Its `main.rs` hands over to [`harness::main`]:
//!
//!    ```ignore
//!    mod tokens;
//!
//!    fn main() {
//!        tooken_testkit::harness::main();
//!    }
//!    ```
//!
//! 3. Tests are plain functions (rustfmt and editors see them as usual),
//!    listed once per module with [`tests!`], each with what it needs:
//!
//!    ```ignore
//!    async fn first_start_prints_a_key() { /* … */ }
//!    async fn nodes_share_one_database() { /* … */ }
//!    fn a_bad_flag_is_refused() { /* … */ }
//!
//!    tooken_testkit::tests! {
//!        async first_start_prints_a_key,
//!        #[needs(Postgres)] async nodes_share_one_database,
//!        // A multi-threaded runtime with four workers instead of the
//!        // current-thread runtime `#[tokio::test]` would give.
//!        #[needs(Postgres)] #[threads(4)] async crash_rounds,
//!        fn a_bad_flag_is_refused,
//!    }
//!    ```
//!
//!    A test function left out of the list is never called, which the
//!    `dead_code` lint reports (and CI refuses).
//!
//! 4. A test run once per store uses [`store_test!`]: two tests,
//!    `NAME::sqlite` and `NAME::postgres`, the second needing PostgreSQL.
//!
//! A binary with a few tests and no modules (the SDK drivers, say) can
//! also build its list by hand with [`harness::Test`] and call
//! [`harness::run`]:
//!
//! ```ignore
//! use tooken_testkit::harness::{run, Test};
//! use tooken_testkit::Service;
//!
//! fn main() {
//!     run(vec![
//!         Test::sync("python::suite", || { /* run pytest, assert it passed */ })
//!             .needs(Service::Python)
//!             // Something more specific than a service: `Some(reason)`
//!             // ignores the test (or fails it under REQUIRE_ALL).
//!             .unless(python_packages_missing()),
//!     ]);
//! }
//! # fn python_packages_missing() -> Option<String> { None }
//! ```
//!
//! A new kind of service is one more [`Service`] variant with its check.

mod app;
pub mod certs;
pub mod database;
pub mod harness;
pub mod html;
pub mod net;
pub mod process;
pub mod service;

pub use app::{
    create_api_key, fast_dashboard, raw, Fixture, TestApp, TestAppBuilder, UNAUTHORIZED_BODY,
};
pub use certs::TestCerts;
pub use database::{Backend, TestDatabase, TestStore};
pub use net::{eventually, RefusingPort};
pub use service::{require_all, Service};

/// A token request with only a name.
pub fn named(name: impl Into<String>) -> tooken_client::CreateToken {
    tooken_client::CreateToken {
        name: name.into(),
        ..Default::default()
    }
}

/// The status of `GET {url}{path}` with `credential` as bearer.
pub async fn get_status(url: &str, path: &str, credential: &str) -> reqwest::StatusCode {
    reqwest::Client::new()
        .get(format!("{url}{path}"))
        .bearer_auth(credential)
        .send()
        .await
        .unwrap()
        .status()
}

// For the macros.
#[doc(hidden)]
pub use inventory;
