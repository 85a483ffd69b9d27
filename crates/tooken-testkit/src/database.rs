//! A fresh store for each test: a SQLite file in a temporary directory, or
//! a PostgreSQL database created for the test and dropped after it.

use std::path::Path;

use sqlx::{Connection, Executor};
use tempfile::TempDir;
pub use tooken_store::Backend;
use tooken_store::Store;

use crate::service::{database_url, Service};

/// A PostgreSQL database created for one test and dropped (with whatever
/// is still connected to it) when this is dropped.
pub struct TestDatabase {
    admin_url: String,
    name: String,
    /// Where the database is.
    pub url: String,
}

impl TestDatabase {
    /// Creates one on the server at `TOOKEN_TEST_DATABASE_URL`. The test
    /// must be registered as needing [`Service::Postgres`]: this panics
    /// when the server cannot be reached.
    pub async fn create() -> TestDatabase {
        let admin_url = database_url();
        if let Err(reason) = Service::Postgres.available() {
            panic!("PostgreSQL is needed (declare #[needs(Postgres)]): {reason}");
        }
        let mut admin = sqlx::postgres::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at TOOKEN_TEST_DATABASE_URL: {e}"));
        let name = format!(
            "tooken_test_{}",
            tooken_core::audit::hex(&tooken_core::credential::random_bytes::<8>())
        );
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        let _ = admin.close().await;
        let url = match admin_url.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => panic!("TOOKEN_TEST_DATABASE_URL must name a database"),
        };
        TestDatabase {
            admin_url,
            name,
            url,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop may run inside a runtime that must not be blocked: use a
        // thread with a runtime of its own.
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
                    let _ = admin.close().await;
                }
            });
        })
        .join();
    }
}

/// Where a fresh store lives for one test: a temporary directory (the
/// SQLite file's, and a place for anything else the test writes) and, on
/// PostgreSQL, a database of its own. Both go when this is dropped.
pub struct TestStore {
    pub backend: Backend,
    /// The store's URL, as `tooken serve --database` takes it.
    pub url: String,
    dir: TempDir,
    _database: Option<TestDatabase>,
}

impl TestStore {
    /// A new, empty one (nothing is created in it until it is opened).
    pub async fn create(backend: Backend) -> TestStore {
        let dir = tempfile::tempdir().unwrap();
        let (url, database) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}", dir.path().join("tooken.db").display()),
                None,
            ),
            Backend::Postgres => {
                let db = TestDatabase::create().await;
                (db.url.clone(), Some(db))
            }
        };
        TestStore {
            backend,
            url,
            dir,
            _database: database,
        }
    }

    /// Opens it (creating the schema the first time).
    pub async fn open(&self) -> Store {
        Store::open(&self.url).await.unwrap()
    }

    /// The temporary directory that goes with it.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
