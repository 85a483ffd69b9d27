//! Dashboard tests: HTTP-level tests (a cookie-keeping client against the
//! real server, in-process on port 0, on SQLite and PostgreSQL) and real
//! browser tests (headless Chromium through WebDriver).

/// Defines a test that runs once per store: `mod NAME { sqlite, postgres }`.
macro_rules! store_test {
    (async fn $name:ident($app:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($app: crate::helpers::DashApp) $body

            #[tokio::test]
            async fn sqlite() {
                let app = crate::helpers::spawn(crate::helpers::Backend::Sqlite).await;
                run(app.expect("SQLite is always available")).await;
            }

            #[tokio::test]
            async fn postgres() {
                if let Some(app) = crate::helpers::spawn(crate::helpers::Backend::Postgres).await {
                    run(app).await;
                }
            }
        }
    };
}

mod browser;
mod helpers;
mod http;
#[path = "../support/pg.rs"]
mod pg;
