//! User accounts: every project has an owner.

use crate::UserId;
use chrono::{DateTime, Utc};

/// The account that owns everything when authentication is switched off (a local, single-user
/// setup). Its id is fixed so every process of one deployment agrees on it.
pub const LOCAL_USER_ID: UserId = UserId(uuid::Uuid::from_u128(0x0000_0000_0000_7000_8000_0000_0000_0001));
pub const LOCAL_USERNAME: &str = "local";

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: UserId,
    pub username: String,
    /// A password hash in PHC string format; `None` for the local user, who cannot log in.
    pub password_hash: Option<String>,
    pub created_at: DateTime<Utc>,
}
