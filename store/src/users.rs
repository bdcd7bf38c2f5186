//! Users, their bearer tokens (stored as hashes) and their memberships of projects.

use crate::{Store, StoreError, StoreResult, corrupt, on_pool};
use audiolab_domain::user::{ApiToken, LOCAL_USER_ID, LOCAL_USERNAME, Member, Role, TokenKind, User};
use audiolab_domain::{ProjectId, TokenId, UserId};
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

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: Uuid,
    user_id: Uuid,
    secret_hash: String,
    kind: String,
    name: String,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    address: Option<String>,
    user_agent: Option<String>,
}

impl TryFrom<TokenRow> for ApiToken {
    type Error = StoreError;
    fn try_from(row: TokenRow) -> StoreResult<Self> {
        Ok(ApiToken {
            id: row.id.into(),
            user_id: row.user_id.into(),
            kind: TokenKind::parse(&row.kind).ok_or_else(|| corrupt("api_tokens.kind", &row.kind))?,
            name: row.name,
            secret_hash: row.secret_hash,
            created_at: row.created_at,
            expires_at: row.expires_at,
            last_used_at: row.last_used_at,
            address: row.address,
            user_agent: row.user_agent,
        })
    }
}

#[derive(sqlx::FromRow)]
struct MemberRow {
    project_id: Uuid,
    user_id: Uuid,
    username: String,
    role: String,
    created_at: DateTime<Utc>,
}

impl TryFrom<MemberRow> for Member {
    type Error = StoreError;
    fn try_from(row: MemberRow) -> StoreResult<Self> {
        Ok(Member {
            project_id: row.project_id.into(),
            user_id: row.user_id.into(),
            username: row.username,
            role: row.role.parse().map_err(|_| corrupt("project_members.role", &row.role))?,
            created_at: row.created_at,
        })
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

    /// Stores a new account. Errors: `Conflict` when the username is taken.
    #[tracing::instrument(skip_all, fields(user_id = %user.id))]
    pub async fn insert_user(&self, user: &User) -> StoreResult<()> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO users (id, username, password_hash, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(user.id.0)
        .bind(&user.username)
        .bind(&user.password_hash)
        .bind(user.created_at)
        .execute(pool)
        .await
        .map(drop)
        .map_err(|e| StoreError::from_write(e, "this username is taken", "user"))?);
        Ok(())
    }

    #[tracing::instrument(skip(self))]
    pub async fn get_user(&self, id: UserId) -> StoreResult<Option<User>> {
        let row: Option<UserRow> = on_pool!(self, pool => sqlx::query_as("SELECT * FROM users WHERE id = $1")
            .bind(id.0)
            .fetch_optional(pool)
            .await?);
        Ok(row.map(User::from))
    }

    /// The account with this (already normalised) username.
    #[tracing::instrument(skip(self))]
    pub async fn user_by_name(&self, username: &str) -> StoreResult<Option<User>> {
        let row: Option<UserRow> = on_pool!(self, pool => sqlx::query_as("SELECT * FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(pool)
            .await?);
        Ok(row.map(User::from))
    }

    #[tracing::instrument(skip_all, fields(token_id = %token.id, user_id = %token.user_id))]
    pub async fn insert_token(&self, token: &ApiToken) -> StoreResult<()> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO api_tokens (id, user_id, secret_hash, kind, name, created_at, expires_at, last_used_at, address, user_agent)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(token.id.0)
        .bind(token.user_id.0)
        .bind(&token.secret_hash)
        .bind(token.kind.as_str())
        .bind(&token.name)
        .bind(token.created_at)
        .bind(token.expires_at)
        .bind(token.last_used_at)
        .bind(&token.address)
        .bind(&token.user_agent)
        .execute(pool)
        .await
        .map(drop)
        .map_err(|e| StoreError::from_write(e, "token collision", "user"))?);
        Ok(())
    }

    /// The token whose secret hashes to `secret_hash`, with its user, expired or not (the
    /// caller decides what an expired token means).
    #[tracing::instrument(skip_all)]
    pub async fn token_by_hash(&self, secret_hash: &str) -> StoreResult<Option<(ApiToken, User)>> {
        let Some(token) = on_pool!(self, pool => sqlx::query_as::<_, TokenRow>("SELECT * FROM api_tokens WHERE secret_hash = $1")
            .bind(secret_hash)
            .fetch_optional(pool)
            .await?)
        else {
            return Ok(None);
        };
        let token = ApiToken::try_from(token)?;
        Ok(self.get_user(token.user_id).await?.map(|user| (token, user)))
    }

    /// A user's tokens of one kind, oldest first.
    #[tracing::instrument(skip(self))]
    pub async fn list_tokens(&self, user: UserId, kind: TokenKind) -> StoreResult<Vec<ApiToken>> {
        let rows: Vec<TokenRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT * FROM api_tokens WHERE user_id = $1 AND kind = $2 ORDER BY id",
        )
        .bind(user.0)
        .bind(kind.as_str())
        .fetch_all(pool)
        .await?);
        rows.into_iter().map(ApiToken::try_from).collect()
    }

    /// Revokes one of the user's tokens. Returns whether it existed (and was theirs).
    #[tracing::instrument(skip(self))]
    pub async fn delete_token(&self, user: UserId, id: TokenId) -> StoreResult<bool> {
        let deleted = on_pool!(self, pool => sqlx::query("DELETE FROM api_tokens WHERE id = $1 AND user_id = $2")
            .bind(id.0)
            .bind(user.0)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(deleted == 1)
    }

    /// Notes that a token was presented from `address` at `now`.
    pub async fn touch_token(&self, id: TokenId, address: &str, now: DateTime<Utc>) -> StoreResult<()> {
        on_pool!(self, pool => sqlx::query("UPDATE api_tokens SET last_used_at = $2, address = $3 WHERE id = $1")
            .bind(id.0)
            .bind(now)
            .bind(address)
            .execute(pool)
            .await
            .map(drop)?);
        Ok(())
    }

    /// Whether the token `id` exists and has not expired at `now`.
    pub async fn token_is_live(&self, id: TokenId, now: DateTime<Utc>) -> StoreResult<bool> {
        let found: Option<Uuid> = on_pool!(self, pool => sqlx::query_scalar(
            "SELECT id FROM api_tokens WHERE id = $1 AND expires_at > $2",
        )
        .bind(id.0)
        .bind(now)
        .fetch_optional(pool)
        .await?);
        Ok(found.is_some())
    }

    /// Revokes every token of `user` of `kind`. Returns the ids revoked.
    #[tracing::instrument(skip(self))]
    pub async fn delete_tokens_of_kind(&self, user: UserId, kind: TokenKind) -> StoreResult<Vec<TokenId>> {
        let ids: Vec<Uuid> = on_pool!(self, pool => sqlx::query_scalar(
            "DELETE FROM api_tokens WHERE user_id = $1 AND kind = $2 RETURNING id",
        )
        .bind(user.0)
        .bind(kind.as_str())
        .fetch_all(pool)
        .await?);
        Ok(ids.into_iter().map(TokenId::from).collect())
    }

    /// Revokes one of the user's tokens if it is of `kind`. Returns whether it was.
    #[tracing::instrument(skip(self))]
    pub async fn delete_token_of_kind(&self, user: UserId, id: TokenId, kind: TokenKind) -> StoreResult<bool> {
        let deleted = on_pool!(self, pool => sqlx::query("DELETE FROM api_tokens WHERE id = $1 AND user_id = $2 AND kind = $3")
            .bind(id.0)
            .bind(user.0)
            .bind(kind.as_str())
            .execute(pool)
            .await?
            .rows_affected());
        Ok(deleted == 1)
    }

    /// Sets `user`'s password hash and revokes every token of theirs but `keep`, in one
    /// transaction. Returns the ids revoked.
    #[tracing::instrument(skip(self, password_hash))]
    pub async fn set_password(
        &self,
        user: UserId,
        password_hash: &str,
        keep: Option<TokenId>,
    ) -> StoreResult<Vec<TokenId>> {
        let keep = keep.map(|k| k.0).unwrap_or(Uuid::nil());
        let ids: Vec<Uuid> = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
                .bind(user.0)
                .bind(password_hash)
                .execute(&mut *tx)
                .await?;
            let ids = sqlx::query_scalar("DELETE FROM api_tokens WHERE user_id = $1 AND id <> $2 RETURNING id")
                .bind(user.0)
                .bind(keep)
                .fetch_all(&mut *tx)
                .await?;
            tx.commit().await?;
            ids
        });
        Ok(ids.into_iter().map(TokenId::from).collect())
    }

    /// Forgets tokens that expired before `now`. Returns how many.
    pub async fn delete_expired_tokens(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        Ok(on_pool!(self, pool => sqlx::query("DELETE FROM api_tokens WHERE expires_at < $1")
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()))
    }

    /// The caller's role in a project; `None` when they are not a member (or it does not exist).
    #[tracing::instrument(skip(self))]
    pub async fn member_role(&self, project: ProjectId, user: UserId) -> StoreResult<Option<Role>> {
        let role: Option<String> = on_pool!(self, pool => sqlx::query_scalar(
            "SELECT role FROM project_members WHERE project_id = $1 AND user_id = $2",
        )
        .bind(project.0)
        .bind(user.0)
        .fetch_optional(pool)
        .await?);
        role.map(|r| r.parse().map_err(|_| corrupt("project_members.role", r))).transpose()
    }

    /// A project's members, the owner first, then by username.
    #[tracing::instrument(skip(self))]
    pub async fn list_members(&self, project: ProjectId) -> StoreResult<Vec<Member>> {
        let rows: Vec<MemberRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT m.project_id, m.user_id, u.username, m.role, m.created_at
             FROM project_members m JOIN users u ON u.id = m.user_id
             WHERE m.project_id = $1
             ORDER BY CASE m.role WHEN 'owner' THEN 0 ELSE 1 END, u.username",
        )
        .bind(project.0)
        .fetch_all(pool)
        .await?);
        rows.into_iter().map(Member::try_from).collect()
    }

    /// Adds a member. Errors: `Conflict` when they already are one (or a second owner),
    /// `MissingParent` when the project or user is gone.
    #[tracing::instrument(skip(self))]
    pub async fn insert_member(
        &self,
        project: ProjectId,
        user: UserId,
        role: Role,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO project_members (project_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(project.0)
        .bind(user.0)
        .bind(role.as_str())
        .bind(now)
        .execute(pool)
        .await
        .map(drop)
        .map_err(|e| StoreError::from_write(e, "this user is already a member of the project", "project"))?);
        Ok(())
    }

    /// Changes a member's role. Returns whether they were a member.
    #[tracing::instrument(skip(self))]
    pub async fn update_member(&self, project: ProjectId, user: UserId, role: Role) -> StoreResult<bool> {
        let updated = on_pool!(self, pool => sqlx::query(
            "UPDATE project_members SET role = $3 WHERE project_id = $1 AND user_id = $2",
        )
        .bind(project.0)
        .bind(user.0)
        .bind(role.as_str())
        .execute(pool)
        .await
        .map_err(|e| StoreError::from_write(e, "a project has one owner", "project"))?
        .rows_affected());
        Ok(updated == 1)
    }

    /// Removes a member. Returns whether they were one.
    #[tracing::instrument(skip(self))]
    pub async fn delete_member(&self, project: ProjectId, user: UserId) -> StoreResult<bool> {
        let deleted = on_pool!(self, pool => sqlx::query(
            "DELETE FROM project_members WHERE project_id = $1 AND user_id = $2",
        )
        .bind(project.0)
        .bind(user.0)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(deleted == 1)
    }
}
