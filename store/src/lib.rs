//! AudioLab persistence: one [`Store`] over PostgreSQL (cloud) or SQLite (embedded).
//!
//! Every query is written once, in SQL both engines accept (`$1` placeholders, `RETURNING`,
//! standard types), and run against whichever pool the store holds: the [`on_pool!`] macro expands
//! the same code for both. Rows are decoded into private row structs and converted into domain
//! types here, so nothing above this crate sees SQL.
//!
//! Updates are optimistic: every mutable row carries a `version`; [`Store::update_project`] and
//! friends read the row, let domain code change it, and write it back only if nobody else did
//! in between (retrying a few times otherwise), so concurrent edits are never silently lost.

mod clips;
mod devices;
mod error;
mod history;
mod jobs;
mod loop_regions;
mod nodes;
mod projects;
mod recordings;
mod tracks;
mod users;

pub use error::{StoreError, StoreResult};
pub use history::OutboxItem;
pub use nodes::{AudioNode, NodeLoad};
pub use recordings::ReadyClip;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{PgPool, SqlitePool};
use std::str::FromStr;
use std::time::Duration;

/// The app's own migration table, distinct from the job queue's (`_sqlx_migrations`).
const MIGRATIONS_TABLE: &str = "_app_migrations";

/// How often an optimistic update is retried when another writer got there first.
const UPDATE_ATTEMPTS: usize = 5;

/// A page of a list: `limit` rows starting after `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: i64,
    pub offset: i64,
}

impl Page {
    pub const DEFAULT_LIMIT: i64 = 50;
    pub const MAX_LIMIT: i64 = 500;
    /// Every row: for the application's own reads of lists bounded by their nature.
    pub const ALL: Page = Page { limit: i64::MAX, offset: 0 };
}

impl Default for Page {
    fn default() -> Self {
        Self { limit: Self::DEFAULT_LIMIT, offset: 0 }
    }
}

/// One page of rows plus the total number of rows the list holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub total: i64,
}

/// Which database engine a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// A connection pool to AudioLab's database. Cheap to clone.
#[derive(Debug, Clone)]
pub enum Store {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// Runs `$body` with `$pool` bound to the store's pool, whichever engine it is.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            $crate::Store::Postgres($pool) => $body,
            $crate::Store::Sqlite($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

impl Store {
    /// Connects to `url` (`postgres://…` or `sqlite:…`). Creates a missing SQLite file.
    ///
    /// Errors: [`StoreError::UnsupportedUrl`] for any other scheme; [`StoreError::Database`] when
    /// the server cannot be reached or the file cannot be opened.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        match Backend::of_url(url) {
            Some(Backend::Postgres) => {
                let options = PgConnectOptions::from_str(url)?;
                let pool = PgPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect_with(options)
                    .await?;
                Ok(Store::Postgres(pool))
            }
            Some(Backend::Sqlite) => {
                let options = SqliteConnectOptions::from_str(url)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(10));
                let pool = SqlitePoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await?;
                Ok(Store::Sqlite(pool))
            }
            None => Err(StoreError::UnsupportedUrl),
        }
    }

    /// Connects and applies pending migrations.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let store = Self::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        match self {
            Store::Postgres(_) => Backend::Postgres,
            Store::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// Applies the migrations under `migrations/<backend>/` that have not run yet. Safe to call
    /// from several processes at once (PostgreSQL takes an advisory lock).
    pub async fn migrate(&self) -> StoreResult<()> {
        match self {
            Store::Postgres(pool) => {
                let mut migrator = sqlx::migrate!("../migrations/postgres");
                migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
                migrator.run(pool).await?;
            }
            Store::Sqlite(pool) => {
                let mut migrator = sqlx::migrate!("../migrations/sqlite");
                migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
                migrator.run(pool).await?;
            }
        }
        Ok(())
    }

    /// A real round trip to the database, for health checks.
    pub async fn ping(&self) -> StoreResult<()> {
        let one: i32 = on_pool!(self, pool => sqlx::query_scalar("SELECT 1").fetch_one(pool).await?);
        debug_assert_eq!(one, 1);
        Ok(())
    }

    /// Closes every connection; later calls fail.
    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }
}

impl Backend {
    /// The engine a database URL names, if it is one AudioLab supports.
    pub fn of_url(url: &str) -> Option<Backend> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else {
            None
        }
    }
}

/// Turns an out-of-range integer read from the database into a decode error instead of a panic.
pub(crate) fn corrupt(what: &str, value: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what} has an impossible value {value}"))
}

/// A row with a `version` column, edited through [`update_versioned`].
pub(crate) trait Versioned: Sized + Send {
    type Id: Copy + Send + Sync;
    /// What the row is, for error messages ("track").
    const WHAT: &'static str;
    /// Reads the row and its version.
    fn load(store: &Store, id: Self::Id) -> impl Future<Output = StoreResult<Option<(Self, i64)>>> + Send;
    /// Writes the row if its version is still `version`; returns whether it did.
    fn save(&self, store: &Store, version: i64) -> impl Future<Output = StoreResult<bool>> + Send;
}

/// The optimistic read-change-write loop behind every `update_*`: load the row, let `change`
/// edit it in memory, write it if nobody changed it meanwhile. Gives up with
/// [`StoreError::Conflict`] after [`UPDATE_ATTEMPTS`] collisions.
pub(crate) async fn update_versioned<T: Versioned>(
    store: &Store,
    id: T::Id,
    mut change: impl FnMut(&mut T) -> audiolab_domain::ValidationResult<()> + Send,
) -> StoreResult<T> {
    for _ in 0..UPDATE_ATTEMPTS {
        let (mut row, version) = T::load(store, id).await?.ok_or(StoreError::NotFound(T::WHAT))?;
        change(&mut row)?;
        if row.save(store, version).await? {
            return Ok(row);
        }
    }
    Err(StoreError::Conflict(format!("the {} is being changed concurrently; try again", T::WHAT)))
}
