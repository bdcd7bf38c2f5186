//! Accounts: registration, login and logout, personal API keys, and turning a bearer secret
//! back into the user it stands for.
//!
//! Passwords are hashed with Argon2id (OWASP's parameters: 19 MiB, 2 passes) on a blocking
//! thread. A token's secret is 256 random bits shown to the client once; the database keeps
//! only its SHA-256, so a leaked table grants nothing. Failed logins are counted per username
//! and per address, and past [`MAX_FAILURES`] in [`FAILURE_WINDOW`] refused until it passes.

use argon2::Argon2;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use audiolab_domain::user::{self, Actor, ApiToken, TokenKind, User};
use audiolab_domain::{TokenId, UserId, ValidationError};
use audiolab_store::{Store, StoreError};
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// How long a login stays valid.
pub const SESSION_DAYS: i64 = 30;
/// An API key's lifetime when none is asked for, and the longest allowed.
pub const KEY_DEFAULT_DAYS: i64 = 90;
pub const KEY_MAX_DAYS: i64 = 3650;
/// Failed logins allowed per username and per address within [`FAILURE_WINDOW`].
pub const MAX_FAILURES: u32 = 5;
pub const FAILURE_WINDOW: std::time::Duration = std::time::Duration::from_secs(15 * 60);
/// Secrets start with this, so they are recognisable in a config file or a secret scanner.
const SECRET_PREFIX: &str = "al_";

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// Wrong username or password (one message for both), or an unknown, expired or revoked token.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// Too many failed logins; retry after this many seconds.
    #[error("too many failed logins; try again in {0} s")]
    RateLimited(u64),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

pub type AccountResult<T> = Result<T, AccountError>;

/// Who a request comes from, as the authentication layer found it.
#[derive(Debug, Clone)]
pub enum Identity {
    /// No credentials were presented.
    Anonymous,
    /// A user: through a token (`token` is its id) or, with auth off, the local user.
    User { actor: Actor, token: Option<TokenId> },
    /// Credentials were presented and refused; the reason is for the client.
    Rejected(&'static str),
    /// The credentials could not be checked (the database is unreachable).
    Unavailable,
}

impl Identity {
    /// The identity for a bearer secret.
    pub async fn of_secret(store: &Store, secret: &str, now: DateTime<Utc>) -> Identity {
        match authenticate(store, secret, now).await {
            Ok((actor, token)) => Identity::User { actor, token: Some(token.id) },
            Err(AccountError::Unauthorized(reason)) => Identity::Rejected(reason),
            Err(err) => {
                tracing::warn!(error = %err, "cannot check a token");
                Identity::Unavailable
            }
        }
    }
}

/// A token just made: the stored row and the secret, which exists nowhere else.
#[derive(Debug)]
pub struct Issued {
    pub token: ApiToken,
    pub secret: String,
}

/// SHA-256 of a bearer secret, hex: what the database keeps and looks tokens up by.
pub fn hash_secret(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{SECRET_PREFIX}{hex}")
}

async fn hash_password(password: String) -> AccountResult<String> {
    blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
    })
    .await
}

/// Checks `password` against a PHC hash. With no hash (an unknown user) it checks against a
/// fixed one, so an unknown username costs the same time as a wrong password.
async fn verify_password(hash: Option<String>, password: String) -> AccountResult<bool> {
    blocking(move || {
        let hash = hash.unwrap_or_else(|| decoy_hash().to_owned());
        let parsed = PasswordHash::new(&hash).map_err(|e| e.to_string())?;
        Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
    })
    .await
}

fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default().hash_password(b"decoy password", &salt).map(|h| h.to_string()).unwrap_or_default()
    })
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T, String> + Send + 'static) -> AccountResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| AccountError::Hashing(e.to_string()))?
        .map_err(AccountError::Hashing)
}

/// Makes and stores a token of `kind` for `user`.
pub async fn issue(
    store: &Store,
    user: UserId,
    kind: TokenKind,
    name: &str,
    days: i64,
    now: DateTime<Utc>,
) -> AccountResult<Issued> {
    let secret = new_secret();
    let token = ApiToken {
        id: TokenId::new(),
        user_id: user,
        kind,
        name: name.to_owned(),
        secret_hash: hash_secret(&secret),
        created_at: now,
        expires_at: now + Duration::days(days),
    };
    store.insert_token(&token).await?;
    Ok(Issued { token, secret })
}

/// Creates an account and logs it in. Errors: `Invalid` (username or password rules),
/// `Store(Conflict)` when the username is taken.
pub async fn register(
    store: &Store,
    username: &str,
    password: &str,
    now: DateTime<Utc>,
) -> AccountResult<(User, Issued)> {
    let username = user::validate_username(username)?;
    user::validate_password(password)?;
    let user = User {
        id: UserId::new(),
        username,
        password_hash: Some(hash_password(password.to_owned()).await?),
        created_at: now,
    };
    store.insert_user(&user).await?;
    let issued = issue(store, user.id, TokenKind::Session, "login", SESSION_DAYS, now).await?;
    Ok((user, issued))
}

/// Checks a username and password and issues a login token. `address` is the client's, for
/// the failure count. One message for an unknown user and a wrong password.
pub async fn login(
    store: &Store,
    limiter: &LoginLimiter,
    username: &str,
    password: &str,
    address: &str,
    now: DateTime<Utc>,
) -> AccountResult<(User, Issued)> {
    const WRONG: &str = "wrong username or password";
    let username = username.trim().to_ascii_lowercase();
    let keys = [format!("user:{username}"), format!("addr:{address}")];
    if let Some(wait) = keys.iter().filter_map(|k| limiter.blocked(k)).max() {
        return Err(AccountError::RateLimited(wait));
    }
    let user = store.user_by_name(&username).await?;
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    let known = hash.is_some();
    if !verify_password(hash, password.to_owned()).await? || !known {
        keys.iter().for_each(|k| limiter.failed(k));
        return Err(AccountError::Unauthorized(WRONG));
    }
    let user = user.ok_or(AccountError::Unauthorized(WRONG))?;
    limiter.succeeded(&keys[0]);
    let issued = issue(store, user.id, TokenKind::Session, "login", SESSION_DAYS, now).await?;
    Ok((user, issued))
}

/// The user and token a bearer secret stands for. Errors: `Unauthorized` when it is unknown,
/// revoked or expired.
pub async fn authenticate(store: &Store, secret: &str, now: DateTime<Utc>) -> AccountResult<(Actor, ApiToken)> {
    match store.token_by_hash(&hash_secret(secret)).await? {
        Some((token, user)) if token.is_live(now) => Ok((Actor { id: user.id, username: user.username }, token)),
        Some(_) => Err(AccountError::Unauthorized("the token has expired; log in again")),
        None => Err(AccountError::Unauthorized("the token is not valid (unknown or revoked)")),
    }
}

/// Counts failed logins per key (a username or an address) in a fixed window. In memory: each
/// API process keeps its own count, which bounds guessing per process.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, (u32, std::time::Instant)>>,
}

/// Keys kept before old windows are swept, so a flood of usernames cannot grow memory.
const LIMITER_KEYS: usize = 100_000;

impl LoginLimiter {
    /// Seconds until `key` may try again, if it is blocked.
    fn blocked(&self, key: &str) -> Option<u64> {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let (count, since) = failures.get(key)?;
        let elapsed = since.elapsed();
        (*count >= MAX_FAILURES && elapsed < FAILURE_WINDOW).then(|| (FAILURE_WINDOW - elapsed).as_secs().max(1))
    }

    fn failed(&self, key: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() >= LIMITER_KEYS {
            failures.retain(|_, (_, since)| since.elapsed() < FAILURE_WINDOW);
        }
        let entry = failures.entry(key.to_owned()).or_insert((0, std::time::Instant::now()));
        if entry.1.elapsed() >= FAILURE_WINDOW {
            *entry = (0, std::time::Instant::now());
        }
        entry.0 += 1;
    }

    fn succeeded(&self, key: &str) {
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_and_only_their_hash_is_kept() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert_eq!(a.len(), SECRET_PREFIX.len() + 64);
        assert_eq!(hash_secret(&a).len(), 64);
        assert_ne!(hash_secret(&a), hash_secret(&b));
        assert!(!hash_secret(&a).contains(&a[3..]));
    }

    #[test]
    fn the_limiter_blocks_after_five_failures_and_forgets_on_success() {
        let limiter = LoginLimiter::default();
        for _ in 0..MAX_FAILURES - 1 {
            limiter.failed("user:ada");
        }
        assert_eq!(limiter.blocked("user:ada"), None);
        limiter.failed("user:ada");
        let wait = limiter.blocked("user:ada").unwrap();
        assert!(wait > 14 * 60 && wait <= 15 * 60, "{wait}");
        assert_eq!(limiter.blocked("user:bob"), None);
        limiter.succeeded("user:ada");
        assert_eq!(limiter.blocked("user:ada"), None);
    }

    #[tokio::test]
    async fn passwords_verify_only_against_their_own_hash() {
        let hash = hash_password("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(Some(hash.clone()), "correct horse".into()).await.unwrap());
        assert!(!verify_password(Some(hash), "correct horsf".into()).await.unwrap());
        assert!(!verify_password(None, "decoy password?".into()).await.unwrap());
    }
}
