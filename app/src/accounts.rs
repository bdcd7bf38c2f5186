//! Accounts: registration, login and logout, personal API keys, and turning a bearer secret
//! back into the user it stands for.
//!
//! Passwords are hashed with Argon2id (OWASP's parameters: 19 MiB, 2 passes) on the bounded
//! [`HashPool`]: a burst beyond it is told to come back (503 with `Retry-After`) instead of
//! costing the server a thread and 19 MiB each. A token's secret is 256 random bits shown to
//! the client once; the database keeps only its SHA-256, so a leaked table grants nothing.
//!
//! Abuse costs the attacker, not the user: failed logins are counted per username *and
//! address* ([`PAIR_FAILURES`]) and per address ([`ADDRESS_FAILURES`]) — never per username
//! alone, so nobody can lock a user out of their account from an address that has not failed.
//! Registrations are limited per address.

use crate::hashing::HashPool;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use audiolab_domain::user::{self, Actor, ApiToken, Credential, TokenKind, User};
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
/// Failed logins allowed for one username from one address within [`FAILURE_WINDOW`].
pub const PAIR_FAILURES: u32 = 5;
/// Failed logins allowed from one address, whatever the usernames, within [`FAILURE_WINDOW`].
pub const ADDRESS_FAILURES: u32 = 20;
pub const FAILURE_WINDOW: std::time::Duration = std::time::Duration::from_secs(15 * 60);
/// The window registrations per address are counted in.
pub const REGISTRATION_WINDOW: std::time::Duration = std::time::Duration::from_secs(3600);
/// How often a token's last use is written (it is read on every request; written at most this often).
const LAST_USED_EVERY: i64 = 60;
/// Secrets start with this, so they are recognisable in a config file or a secret scanner.
const SECRET_PREFIX: &str = "al_";

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// Wrong username or password (one message for both), or an unknown, expired or revoked token.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// Too many failed logins, or registrations from one address; retry after this many seconds.
    #[error("{reason}; try again in {wait} s")]
    RateLimited { reason: &'static str, wait: u64 },
    /// Every password hashing slot is taken; retry after this many seconds.
    #[error("the server is busy checking passwords; try again in {0} s")]
    Busy(u64),
    /// The current password given to change it is wrong.
    #[error("the current password is wrong")]
    WrongPassword,
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
    /// A user: through a token (the one presented) or, with auth off, the local user.
    User { actor: Actor, token: Option<Credential> },
    /// Credentials were presented and refused; the reason is for the client.
    Rejected(&'static str),
    /// More than one `Authorization` header: which one counts is ambiguous, so none does (400).
    Ambiguous,
    /// The credentials could not be checked (the database is unreachable).
    Unavailable,
}

impl Identity {
    /// The identity for a bearer secret presented from `address`.
    pub async fn of_secret(store: &Store, secret: &str, address: &str, now: DateTime<Utc>) -> Identity {
        match authenticate(store, secret, now).await {
            Ok((actor, token)) => {
                if token.last_used_at.is_none_or(|at| now - at >= Duration::seconds(LAST_USED_EVERY))
                    && let Err(error) = store.touch_token(token.id, address, now).await
                {
                    tracing::warn!(%error, "cannot note a token's use");
                }
                Identity::User { actor, token: Some(Credential { id: token.id, expires_at: token.expires_at }) }
            }
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
    hashing(move || crate::hashing::hash_password(password.as_bytes())).await
}

/// Checks `password` against a PHC hash. With no hash (an unknown user) it checks against a
/// fixed one, so an unknown username costs the same time as a wrong password.
async fn verify_password(hash: Option<String>, password: String) -> AccountResult<bool> {
    hashing(move || {
        let hash = hash.unwrap_or_else(|| decoy_hash().to_owned());
        crate::hashing::verify_password(&hash, password.as_bytes())
    })
    .await
}

fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| crate::hashing::hash_password(b"decoy password").unwrap_or_default())
}

/// Runs hashing work on the process's [`HashPool`]. Errors: `Busy` when it is full.
async fn hashing<T: Send + 'static>(work: impl FnOnce() -> Result<T, String> + Send + 'static) -> AccountResult<T> {
    HashPool::shared().run(work).await.map_err(|busy| AccountError::Busy(busy.0))?.map_err(AccountError::Hashing)
}

/// Where a request came from, as a session remembers it.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// The client's address.
    pub address: String,
    /// Its `User-Agent`, cut to 200 characters.
    pub user_agent: Option<String>,
}

/// Makes and stores a token of `kind` for `user`, remembering where it was asked from.
pub async fn issue(
    store: &Store,
    user: UserId,
    kind: TokenKind,
    name: &str,
    days: i64,
    origin: &Origin,
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
        last_used_at: Some(now),
        address: Some(origin.address.clone()),
        user_agent: origin.user_agent.as_deref().map(|ua| ua.chars().filter(|c| !c.is_control()).take(200).collect()),
    };
    store.insert_token(&token).await?;
    Ok(Issued { token, secret })
}

/// Creates an account and logs it in. Errors: `Invalid` (username or password rules),
/// `Store(Conflict)` when the username is taken, `RateLimited` past the address's
/// registrations, `Busy` when hashing is.
pub async fn register(
    store: &Store,
    limits: &Limits,
    username: &str,
    password: &str,
    origin: &Origin,
    now: DateTime<Utc>,
) -> AccountResult<(User, Issued)> {
    let username = user::validate_username(username)?;
    user::validate_password(password)?;
    let key = format!("register:{}", origin.address);
    if let Some(wait) = limits.throttle.blocked(&key, limits.registrations_per_hour, REGISTRATION_WINDOW) {
        return Err(AccountError::RateLimited { reason: "too many accounts registered from this address", wait });
    }
    limits.throttle.hit(&key, REGISTRATION_WINDOW);
    let user = User {
        id: UserId::new(),
        username,
        password_hash: Some(hash_password(password.to_owned()).await?),
        created_at: now,
    };
    store.insert_user(&user).await?;
    let issued = issue(store, user.id, TokenKind::Session, "login", SESSION_DAYS, origin, now).await?;
    Ok((user, issued))
}

/// Checks a username and password and issues a login token. One message for an unknown user
/// and a wrong password. Errors: `Unauthorized`; `RateLimited` after [`PAIR_FAILURES`] for
/// this username from this address or [`ADDRESS_FAILURES`] from it (an address with no
/// failures is never refused); `Busy` when hashing is.
pub async fn login(
    store: &Store,
    limits: &Limits,
    username: &str,
    password: &str,
    origin: &Origin,
    now: DateTime<Utc>,
) -> AccountResult<(User, Issued)> {
    const WRONG: &str = "wrong username or password";
    let username = username.trim().to_ascii_lowercase();
    let pair = format!("login:{username}|{}", origin.address);
    let address = format!("login:{}", origin.address);
    let blocked = [(&pair, PAIR_FAILURES), (&address, ADDRESS_FAILURES)]
        .into_iter()
        .filter_map(|(key, max)| limits.throttle.blocked(key, max, FAILURE_WINDOW))
        .max();
    if let Some(wait) = blocked {
        return Err(AccountError::RateLimited { reason: "too many failed logins", wait });
    }
    let user = store.user_by_name(&username).await?;
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    let known = hash.is_some();
    if !verify_password(hash, password.to_owned()).await? || !known {
        limits.throttle.hit(&pair, FAILURE_WINDOW);
        limits.throttle.hit(&address, FAILURE_WINDOW);
        return Err(AccountError::Unauthorized(WRONG));
    }
    let user = user.ok_or(AccountError::Unauthorized(WRONG))?;
    limits.throttle.clear(&pair);
    let issued = issue(store, user.id, TokenKind::Session, "login", SESSION_DAYS, origin, now).await?;
    Ok((user, issued))
}

/// Changes `user`'s password after checking the current one, and revokes every other token
/// of theirs (sessions and API keys): whoever knew the old password or held a token is out.
/// Returns the revoked tokens' ids. Errors: `WrongPassword` (and `RateLimited` after
/// [`PAIR_FAILURES`] of them), `Invalid` for a new one that breaks the rules or an account
/// without a password, `Busy` when hashing is.
pub async fn change_password(
    store: &Store,
    limits: &Limits,
    user: UserId,
    current: &str,
    new: &str,
    keep: Option<TokenId>,
) -> AccountResult<Vec<TokenId>> {
    user::validate_password(new)?;
    let key = format!("password:{user}");
    if let Some(wait) = limits.throttle.blocked(&key, PAIR_FAILURES, FAILURE_WINDOW) {
        return Err(AccountError::RateLimited { reason: "too many wrong passwords", wait });
    }
    let account = store.get_user(user).await?.ok_or(AccountError::Unauthorized("the account is gone"))?;
    let Some(hash) = account.password_hash.clone() else {
        return Err(ValidationError::new("current", "this account has no password (accounts are off)").into());
    };
    if !verify_password(Some(hash), current.to_owned()).await? {
        limits.throttle.hit(&key, FAILURE_WINDOW);
        return Err(AccountError::WrongPassword);
    }
    limits.throttle.clear(&key);
    let hash = hash_password(new.to_owned()).await?;
    Ok(store.set_password(user, &hash, keep).await?)
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

/// The limits on logins and registrations of one API process.
#[derive(Debug)]
pub struct Limits {
    throttle: Throttle,
    /// Accounts one address may register per [`REGISTRATION_WINDOW`].
    registrations_per_hour: u32,
}

impl Limits {
    pub fn new(registrations_per_hour: u32) -> Self {
        Self { throttle: Throttle::default(), registrations_per_hour }
    }
}

/// Counts events per key (a username and address, an address) in fixed windows. In memory:
/// each API process keeps its own count, which bounds guessing per process.
#[derive(Debug, Default)]
struct Throttle {
    counts: Mutex<HashMap<String, (u32, std::time::Instant)>>,
}

/// Keys kept before old windows are swept, so a flood of usernames cannot grow memory.
const THROTTLE_KEYS: usize = 100_000;

impl Throttle {
    /// Seconds until `key` may try again, if it reached `max` within `window`.
    fn blocked(&self, key: &str, max: u32, window: std::time::Duration) -> Option<u64> {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let (count, since) = counts.get(key)?;
        let elapsed = since.elapsed();
        (*count >= max && elapsed < window).then(|| (window - elapsed).as_secs().max(1))
    }

    fn hit(&self, key: &str, window: std::time::Duration) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if counts.len() >= THROTTLE_KEYS {
            // Windows are at most an hour long.
            counts.retain(|_, (_, since)| since.elapsed() < REGISTRATION_WINDOW.max(FAILURE_WINDOW));
            if counts.len() >= THROTTLE_KEYS {
                counts.clear();
            }
        }
        let entry = counts.entry(key.to_owned()).or_insert((0, std::time::Instant::now()));
        if entry.1.elapsed() >= window {
            *entry = (0, std::time::Instant::now());
        }
        entry.0 += 1;
    }

    fn clear(&self, key: &str) {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
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
    fn the_throttle_blocks_at_its_limit_and_forgets_on_clear() {
        let throttle = Throttle::default();
        for _ in 0..PAIR_FAILURES - 1 {
            throttle.hit("ada|1.2.3.4", FAILURE_WINDOW);
        }
        assert_eq!(throttle.blocked("ada|1.2.3.4", PAIR_FAILURES, FAILURE_WINDOW), None);
        throttle.hit("ada|1.2.3.4", FAILURE_WINDOW);
        let wait = throttle.blocked("ada|1.2.3.4", PAIR_FAILURES, FAILURE_WINDOW).unwrap();
        assert!(wait > 14 * 60 && wait <= 15 * 60, "{wait}");
        assert_eq!(throttle.blocked("ada|5.6.7.8", PAIR_FAILURES, FAILURE_WINDOW), None);
        throttle.clear("ada|1.2.3.4");
        assert_eq!(throttle.blocked("ada|1.2.3.4", PAIR_FAILURES, FAILURE_WINDOW), None);
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
