//! The store itself, on both backends: users, memberships, one-time links,
//! sessions and reveals, API keys, and the audit log (chain, filters,
//! retention). The API and dashboard tests reach these through HTTP; here
//! each rule is checked where it is kept. Without PostgreSQL its half is
//! reported ignored (see `tooken_testkit::harness`).

/// Defines a test that runs once per store: `mod NAME { sqlite, postgres }`.
macro_rules! store_test {
    ($($test:tt)*) => {
        tooken_testkit::store_test!(crate::fixture::Fresh; $($test)*);
    };
}

mod api_keys;
mod audit;
mod fixture;
mod sessions;
mod users;

fn main() {
    tooken_testkit::harness::main()
}
