//! Accounts and who may do what: users, their roles in a project, and their API tokens.
//!
//! The rules live here as plain functions so every entry point (REST, the socket, the node's
//! internal route) asks the same questions of the same code.

use crate::{ProjectId, TokenId, UserId, ValidationError, ValidationResult};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

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

/// Who is making a request: the user every access check asks about, named in the broadcasts
/// of the changes they make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Actor {
    pub id: UserId,
    pub username: String,
}

impl Actor {
    /// The one user of a deployment without authentication.
    pub fn local() -> Self {
        Self { id: LOCAL_USER_ID, username: LOCAL_USERNAME.to_owned() }
    }
}

/// Usernames: 3–32 characters of lowercase ASCII letters, digits, `_`, `-` and `.`, starting with
/// a letter or digit. Stored lowercase, so `Ada` and `ada` are one account.
pub const USERNAME_MIN: usize = 3;
pub const USERNAME_MAX: usize = 32;
/// Passwords: 8–256 characters (any, spaces included); the upper bound caps hashing work.
pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 256;

/// Normalises and checks a username (see [`USERNAME_MIN`]).
pub fn validate_username(value: &str) -> ValidationResult<String> {
    let name = value.trim().to_ascii_lowercase();
    let len = name.chars().count();
    if !(USERNAME_MIN..=USERNAME_MAX).contains(&len) {
        return Err(ValidationError::new(
            "username",
            format!("must be {USERNAME_MIN} to {USERNAME_MAX} characters long"),
        ));
    }
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.');
    if !name.chars().all(allowed) || !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(ValidationError::new(
            "username",
            "may contain only letters, digits, '_', '-' and '.', and must start with a letter or digit",
        ));
    }
    if name == LOCAL_USERNAME {
        return Err(ValidationError::new("username", "is reserved"));
    }
    Ok(name)
}

/// Checks a new password's length (see [`PASSWORD_MIN`]).
pub fn validate_password(value: &str) -> ValidationResult<()> {
    let len = value.chars().count();
    if !(PASSWORD_MIN..=PASSWORD_MAX).contains(&len) {
        return Err(ValidationError::new(
            "password",
            format!("must be {PASSWORD_MIN} to {PASSWORD_MAX} characters long"),
        ));
    }
    Ok(())
}

/// What a member of a project may do. Ordered: every role may do what the ones below it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads, listens (socket broadcasts, downloads); changes nothing.
    Viewer,
    /// Also edits, records, mixes and imports.
    Editor,
    /// Also deletes the project and manages its members. One per project.
    Owner,
}

/// What an operation needs of the caller's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// See the project and anything in it.
    Read,
    /// Change its contents, drive its transport, record, mix, import.
    Change,
    /// Delete it or manage its members.
    Own,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Owner, Role::Editor, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Editor => "editor",
            Role::Viewer => "viewer",
        }
    }

    /// Whether this role may do what `need` asks.
    pub fn allows(self, need: Need) -> bool {
        match need {
            Need::Read => true,
            Need::Change => self >= Role::Editor,
            Need::Own => self == Role::Owner,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| ValidationError::new("role", "must be owner, editor or viewer"))
    }
}

/// One user's place in one project.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub project_id: ProjectId,
    pub user_id: UserId,
    pub username: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

/// How a token came to be: by logging in (revoked by logging out) or as a named API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Session,
    ApiKey,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Session => "session",
            TokenKind::ApiKey => "api_key",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [TokenKind::Session, TokenKind::ApiKey].into_iter().find(|k| k.as_str() == s)
    }
}

/// A bearer token as stored: never the secret itself, only its hash.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiToken {
    pub id: TokenId,
    pub user_id: UserId,
    pub kind: TokenKind,
    pub name: String,
    /// SHA-256 of the secret, hex.
    pub secret_hash: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// When it was last presented (written at most once a minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// The address it was last presented from.
    pub address: Option<String>,
    /// The `User-Agent` of the client it was issued to.
    pub user_agent: Option<String>,
}

impl ApiToken {
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        now < self.expires_at
    }
}

/// The token a request or a socket came with: revoking it, or its expiry, ends what it opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credential {
    pub id: TokenId,
    pub expires_at: DateTime<Utc>,
}

/// A right taken away while connections that relied on it may be open (§8): every process
/// hears it and acts at once — sockets close with 1008 and the reason, a client device detaches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Revocation {
    /// These tokens of `user` stopped working (a logout, an API key deleted, a session ended).
    Tokens { user: UserId, tokens: Vec<TokenId>, reason: String },
    /// Every token of `user` but `except` stopped working (logout everywhere, a new password).
    AllTokens { user: UserId, except: Option<TokenId>, reason: String },
    /// `user` is no longer a member of `project`.
    Removed { project: ProjectId, user: UserId },
    /// `user`'s role in `project` fell below editor: they may listen, not record.
    Demoted { project: ProjectId, user: UserId },
}

impl Revocation {
    /// Why a socket opened by `user` with `token` to `project` must close now, if it must.
    pub fn closes(&self, project: ProjectId, user: UserId, token: Option<TokenId>) -> Option<&str> {
        match self {
            Revocation::Tokens { user: u, tokens, reason }
                if *u == user && token.is_some_and(|t| tokens.contains(&t)) =>
            {
                Some(reason)
            }
            Revocation::AllTokens { user: u, except, reason } if *u == user && token.is_some() && token != *except => {
                Some(reason)
            }
            Revocation::Removed { project: p, user: u } if *p == project && *u == user => {
                Some("you are no longer a member of this project")
            }
            _ => None,
        }
    }

    /// Whether `user`'s client device on `project` must be detached now (a take it records is
    /// saved with what arrived).
    pub fn detaches(&self, project: ProjectId, user: UserId) -> bool {
        match self {
            Revocation::Removed { project: p, user: u } | Revocation::Demoted { project: p, user: u } => {
                *p == project && *u == user
            }
            Revocation::AllTokens { user: u, .. } => *u == user,
            Revocation::Tokens { .. } => false,
        }
    }

    /// The reason a detached device is given.
    pub fn reason(&self) -> &str {
        match self {
            Revocation::Tokens { reason, .. } | Revocation::AllTokens { reason, .. } => reason,
            Revocation::Removed { .. } => "you are no longer a member of this project",
            Revocation::Demoted { .. } => "your role in this project no longer allows recording",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lowercased_and_checked() {
        assert_eq!(validate_username("  Ada.L ").unwrap(), "ada.l");
        for bad in ["ab", "_ada", "ada lovelace", "a\nda", "local", &"a".repeat(33), "adä"] {
            assert!(validate_username(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn roles_are_ordered_by_what_they_allow() {
        assert!(Role::Viewer.allows(Need::Read) && !Role::Viewer.allows(Need::Change));
        assert!(Role::Editor.allows(Need::Change) && !Role::Editor.allows(Need::Own));
        assert!(Role::Owner.allows(Need::Own));
        assert_eq!("editor".parse::<Role>().unwrap(), Role::Editor);
        assert!("admin".parse::<Role>().is_err());
    }

    #[test]
    fn passwords_have_bounded_length() {
        assert!(validate_password("1234567").is_err());
        assert!(validate_password("12345678").is_ok());
        assert!(validate_password(&"x".repeat(257)).is_err());
    }
}
