//! Fixtures for tests and benches, kept out of the production crates: throwaway databases and
//! a stopped take waiting for its finalisation.

pub mod database;
pub mod takes;

pub use database::{TestDatabase, postgres_admin_url};
pub use takes::stopped_session;
