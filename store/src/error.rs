//! Store errors: what callers can act on (not found, conflict, invalid) apart from failures.

use audiolab_domain::ValidationError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist (or was deleted meanwhile).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A uniqueness rule was broken, e.g. a second track with the same index.
    #[error("{0}")]
    Conflict(String),
    /// A row changed between reading it and committing a change made from it: read again
    /// and retry (the use cases do, a few times).
    #[error("{0}")]
    Stale(String),
    /// A row this one refers to does not exist.
    #[error("{0} does not exist")]
    MissingParent(&'static str),
    /// Domain validation rejected the change.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// A row holds a value the domain cannot represent; data was written outside AudioLab.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("database URL must start with postgres://, postgresql:// or sqlite:")]
    UnsupportedUrl,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    /// Classifies a failed write: uniqueness and foreign-key violations become the errors a
    /// caller can report to a client; anything else stays a database error.
    pub(crate) fn from_write(err: sqlx::Error, conflict: &str, parent: &'static str) -> StoreError {
        if let sqlx::Error::Database(db) = &err {
            if db.is_unique_violation() {
                return StoreError::Conflict(conflict.to_owned());
            }
            if db.is_foreign_key_violation() {
                return StoreError::MissingParent(parent);
            }
        }
        StoreError::Database(err)
    }

    /// Whether the database could not be reached (as opposed to rejecting a query).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Database(
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_)
            )
        )
    }
}
