//! Throwaway databases for tests: a fresh SQLite file or a fresh PostgreSQL database per test.

use audiolab_store::{Store, StoreResult};
// The database name is generated here from a UUID, never taken from input.
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};

/// The server tests create their PostgreSQL databases on, overridable for other machines.
pub fn postgres_admin_url() -> String {
    std::env::var("AUDIOLAB_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database that exists for one test and is dropped with it.
#[derive(Debug)]
pub struct TestDatabase {
    pub url: String,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl TestDatabase {
    /// A new SQLite file in a temporary directory.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("create temp dir");
        let url = format!("sqlite://{}", dir.path().join("audiolab.db").display());
        Self { url, kind: Kind::Sqlite(dir) }
    }

    /// A new, empty database on the local PostgreSQL server.
    pub async fn postgres() -> StoreResult<Self> {
        let admin_url = postgres_admin_url();
        let name = format!("audiolab_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&admin_url).await?;
        admin.execute(AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#))).await?;
        admin.close().await?;
        let base = admin_url.rsplit_once('/').map_or(admin_url.as_str(), |(base, _)| base);
        let url = format!("{base}/{name}");
        Ok(Self { url, kind: Kind::Postgres { admin_url, name } })
    }

    /// Opens the database with migrations applied.
    pub async fn open(&self) -> StoreResult<Store> {
        Store::open(&self.url).await
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Kind::Postgres { admin_url, name } = &self.kind else {
            return;
        };
        let (admin_url, name) = (admin_url.clone(), name.clone());
        // Drop runs inside a test's runtime, which cannot block on itself: use a private one.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&admin_url).await.ok()?;
                admin.execute(AssertSqlSafe(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#))).await.ok()
            })
        });
        let _ = dropped.join();
    }
}
