//! Integration tests: the real server, in-process on port 0, driven over
//! HTTP. Every test runs against both stores: a fresh SQLite file, and a
//! freshly created (then dropped) PostgreSQL database.

/// Defines a test that runs once per store: `mod NAME { sqlite, postgres }`.
/// `app with ADJUST` passes the server state through `ADJUST` first.
macro_rules! store_test {
    (async fn $name:ident($app:ident) $body:block) => {
        store_test!(@emit $name, $app, (|state| state), $body);
    };
    (async fn $name:ident(mut $app:ident) $body:block) => {
        store_test!(@emit $name, $app, (|state| state), {
            let mut $app = $app;
            $body
        });
    };
    (async fn $name:ident($app:ident with $adjust:expr) $body:block) => {
        store_test!(@emit $name, $app, ($adjust), $body);
    };
    (@emit $name:ident, $app:ident, ($adjust:expr), $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[allow(unused_mut)]
            async fn run($app: crate::helpers::TestApp) $body

            #[tokio::test]
            async fn sqlite() {
                let app = crate::helpers::spawn_app_on(crate::helpers::Backend::Sqlite, $adjust).await;
                run(app.expect("SQLite is always available")).await;
            }

            #[tokio::test]
            async fn postgres() {
                if let Some(app) = crate::helpers::spawn_app_on(crate::helpers::Backend::Postgres, $adjust).await {
                    run(app).await;
                }
            }
        }
    };
}

mod audit;
mod auth;
#[path = "../support/certs.rs"]
mod certs;
mod helpers;
mod hostile;
mod hygiene;
#[path = "../support/pg.rs"]
mod pg;
mod semantics;
mod tokens;
mod under_load;
mod validation;
mod verify;
