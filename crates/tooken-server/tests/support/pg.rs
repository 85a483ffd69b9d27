//! Shared by the test binaries (included with `#[path]`): a
//! PostgreSQL database created for one test and dropped after it.

use sqlx::{Connection, Executor};

/// A PostgreSQL database created for one test and dropped after it.
pub struct TestDatabase {
    admin_url: String,
    name: String,
    pub url: String,
}

impl TestDatabase {
    pub async fn create() -> Option<TestDatabase> {
        let admin_url = std::env::var("TOOKEN_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let required = std::env::var("TOOKEN_TEST_REQUIRE_ALL").is_ok_and(|v| v == "1");
        let mut admin = match sqlx::postgres::PgConnection::connect(&admin_url).await {
            Ok(c) => c,
            Err(e) if required => {
                panic!("PostgreSQL is required (TOOKEN_TEST_REQUIRE_ALL=1) but unreachable: {e}")
            }
            Err(e) => {
                eprintln!(
                    "notice: skipping PostgreSQL test, no server at TOOKEN_TEST_DATABASE_URL ({e})"
                );
                return None;
            }
        };
        let name = format!(
            "tooken_test_{}",
            tooken_core::audit::hex(&tooken_core::credential::random_bytes::<8>())
        );
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        let url = match admin_url.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => panic!("TOOKEN_TEST_DATABASE_URL must name a database"),
        };
        Some(TestDatabase {
            admin_url,
            name,
            url,
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs outside any runtime that could be blocked on: use a
        // thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut admin) = sqlx::postgres::PgConnection::connect(&admin_url).await {
                    let _ = admin
                        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                        .await;
                }
            });
        })
        .join();
    }
}
