//! Dashboard tests: HTTP-level tests (a cookie-keeping client against the
//! real server, in-process on port 0, on SQLite and PostgreSQL) and real
//! browser tests (headless Chromium through WebDriver). Without PostgreSQL
//! or Chromium their tests are reported ignored (see
//! `tooken_testkit::harness`).

/// Defines a test that runs once per store: `mod NAME { sqlite, postgres }`.
macro_rules! store_test {
    ($($test:tt)*) => {
        tooken_testkit::store_test!(crate::helpers::DashApp; $($test)*);
    };
}

mod browser;
mod helpers;
mod http;

fn main() {
    tooken_testkit::harness::main()
}
