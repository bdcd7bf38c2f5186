//! Users: the owners of projects.

use crate::{Store, StoreResult, on_pool};
use audiolab_domain::UserId;
use audiolab_domain::user::{LOCAL_USER_ID, LOCAL_USERNAME, User};
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(sqlx::FromRow)]
struct UserRow {
    id: Uuid,
    username: String,
    password_hash: Option<String>,
    created_at: DateTime<Utc>,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        User { id: row.id.into(), username: row.username, password_hash: row.password_hash, created_at: row.created_at }
    }
}

impl Store {
    /// Creates the local single-user account if it is missing and returns its id.
    pub async fn ensure_local_user(&self) -> StoreResult<UserId> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO users (id, username, password_hash, created_at) VALUES ($1, $2, NULL, $3)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(LOCAL_USER_ID.0)
        .bind(LOCAL_USERNAME)
        .bind(Utc::now())
        .execute(pool)
        .await
        .map(drop)?);
        Ok(LOCAL_USER_ID)
    }

    #[tracing::instrument(skip(self))]
    pub async fn get_user(&self, id: UserId) -> StoreResult<Option<User>> {
        let row: Option<UserRow> = on_pool!(self, pool => sqlx::query_as("SELECT * FROM users WHERE id = $1")
            .bind(id.0)
            .fetch_optional(pool)
            .await?);
        Ok(row.map(User::from))
    }
}
