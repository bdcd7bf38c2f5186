//! Who may reach the node: the socket's upgrade check (a member of the project, or nobody),
//! and the shared secret that guards a node's routes when it runs as its own process.
//!
//! API processes present the secret on every call and name the user a proxied socket acts
//! for (and the token it was opened with, so revoking that token closes it); a node trusts
//! those only together with the secret. Browsers may open sockets only from the server's own
//! page or an allowed origin, so another site cannot ride a signed-in user's token.

use audiolab_app::access::{self, AccessError};
use audiolab_app::accounts::Identity;
use audiolab_domain::ProjectId;
use audiolab_domain::user::{Actor, Credential, Need, Role};
use audiolab_store::Store;
use poem::http::StatusCode;
use poem::{Endpoint, IntoResponse, Request, Response};
use serde_json::json;
use std::sync::Arc;

/// The header carrying the deployment's internal secret.
pub const SECRET_HEADER: &str = "x-audiolab-internal-secret";
/// The header naming the user a proxied request acts for: `<user id> <username>`.
pub const ACTOR_HEADER: &str = "x-audiolab-actor";
/// The header naming the token a proxied socket was opened with: `<token id> <expiry, RFC 3339>`.
pub const TOKEN_HEADER: &str = "x-audiolab-token";

/// Who a socket was admitted for: the user, their role, and the token they came with (none
/// with auth off), whose revocation or expiry closes the socket.
#[derive(Debug, Clone)]
pub struct Admitted {
    pub actor: Actor,
    pub role: Role,
    pub token: Option<Credential>,
}

/// Which browser pages may open sockets: the server's own, and the configured others.
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    allowed: Arc<[String]>,
}

impl OriginPolicy {
    /// Allows the server's own pages and `allowed` (`scheme://host[:port]`, lowercase).
    pub fn new(allowed: Vec<String>) -> Self {
        Self { allowed: allowed.into() }
    }

    /// Whether an upgrade with these headers may go on: no `Origin` (SDKs and scripts send
    /// none), the page's own origin (the host it asked for), or an allowed one. Errors: 403.
    pub fn check(&self, req: &Request) -> Result<(), Response> {
        let Some(origin) = req.headers().get(poem::http::header::ORIGIN) else { return Ok(()) };
        let origin = origin.to_str().unwrap_or_default().trim_end_matches('/').to_ascii_lowercase();
        let host = req.headers().get(poem::http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
        let authority = origin.split_once("://").map_or("", |(_, rest)| rest);
        if (!host.is_empty() && authority == host.to_ascii_lowercase()) || self.allowed.contains(&origin) {
            return Ok(());
        }
        Err(refuse(
            StatusCode::FORBIDDEN,
            "this page's origin may not open the socket (see the allowed_origins setting)",
        ))
    }
}

pub fn refuse(status: StatusCode, detail: &str) -> Response {
    poem::web::Json(json!({"detail": detail, "errors": [detail], "success": false})).with_status(status).into_response()
}

/// Decides a socket upgrade for `project`: who it is for, or the refusal (401 without a user,
/// 400 with several `Authorization` headers, 404 to anyone not a member, 503 when the
/// database is down).
pub async fn admit(store: &Store, identity: Option<&Identity>, project: ProjectId) -> Result<Admitted, Response> {
    let (actor, token) = match identity {
        Some(Identity::User { actor, token }) => (actor.clone(), *token),
        Some(Identity::Rejected(reason)) => return Err(unauthorized(reason)),
        Some(Identity::Ambiguous) => {
            return Err(refuse(StatusCode::BAD_REQUEST, "send one Authorization header, not several"));
        }
        Some(Identity::Unavailable) => {
            return Err(refuse(StatusCode::SERVICE_UNAVAILABLE, "the database is unavailable; try again shortly"));
        }
        _ => return Err(unauthorized("sign in first: send Authorization: Bearer <token> or ?access_token=")),
    };
    match access::project(store, &actor, project, Need::Read, "project").await {
        Ok((_, role)) => Ok(Admitted { actor, role, token }),
        Err(AccessError::NotFound(what)) => Err(refuse(StatusCode::NOT_FOUND, &format!("{what} not found"))),
        Err(AccessError::Forbidden(reason)) => Err(refuse(StatusCode::FORBIDDEN, &reason)),
        Err(AccessError::Store(_)) => Err(refuse(StatusCode::SERVICE_UNAVAILABLE, "the database is unavailable")),
    }
}

fn unauthorized(reason: &str) -> Response {
    let mut response = refuse(StatusCode::UNAUTHORIZED, reason);
    response.headers_mut().insert("www-authenticate", poem::http::HeaderValue::from_static("Bearer"));
    response
}

/// The actor header's value for `actor`.
pub fn actor_header(actor: &Actor) -> String {
    format!("{} {}", actor.id, actor.username)
}

/// The token header's value for `token`.
pub fn token_header(token: &Credential) -> String {
    format!("{} {}", token.id, token.expires_at.to_rfc3339())
}

fn parse_token(value: &str) -> Option<Credential> {
    let (id, expires_at) = value.split_once(' ')?;
    let expires_at = chrono::DateTime::parse_from_rfc3339(expires_at).ok()?.with_timezone(&chrono::Utc);
    Some(Credential { id: id.parse::<uuid::Uuid>().ok()?.into(), expires_at })
}

fn parse_actor(value: &str) -> Option<Actor> {
    let (id, username) = value.split_once(' ')?;
    Some(Actor { id: id.parse::<uuid::Uuid>().ok()?.into(), username: username.to_owned() })
}

/// Compares secrets in time independent of where they differ.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len() && given.iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// Middleware of a node process: every route but `/health` needs the secret (when one is
/// configured); the identity is the user an API process names.
pub async fn internal_only<E: Endpoint>(next: E, mut req: Request, secret: Option<Arc<str>>) -> poem::Result<Response> {
    if req.uri().path() != "/health"
        && let Some(secret) = &secret
    {
        let given = req.headers().get(SECRET_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
        if !same_secret(given, secret.as_bytes()) {
            return Ok(refuse(StatusCode::UNAUTHORIZED, "this route is internal to the deployment"));
        }
    }
    let actor = req.headers().get(ACTOR_HEADER).and_then(|v| v.to_str().ok()).and_then(parse_actor);
    let token = req.headers().get(TOKEN_HEADER).and_then(|v| v.to_str().ok()).and_then(parse_token);
    let identity = match actor {
        Some(actor) => Identity::User { actor, token },
        None => Identity::Anonymous,
    };
    req.extensions_mut().insert(identity);
    next.call(req).await.map(IntoResponse::into_response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_match_only_whole() {
        assert!(same_secret(b"0123456789abcdef", b"0123456789abcdef"));
        assert!(!same_secret(b"0123456789abcdeF", b"0123456789abcdef"));
        assert!(!same_secret(b"0123456789abcde", b"0123456789abcdef"));
        assert!(!same_secret(b"", b"0123456789abcdef"));
    }

    #[test]
    fn the_token_header_round_trips() {
        let token = Credential { id: audiolab_domain::TokenId::new(), expires_at: audiolab_domain::now() };
        assert_eq!(parse_token(&token_header(&token)), Some(token));
        assert_eq!(parse_token("nonsense"), None);
    }

    #[test]
    fn sockets_open_from_no_page_their_own_page_or_an_allowed_one() {
        let policy = OriginPolicy::new(vec!["https://studio.example.com".into()]);
        let upgrade = |origin: Option<&str>| {
            let mut builder = Request::builder().uri_str("/ws/audio/x").header("host", "audio.example.com:8080");
            if let Some(origin) = origin {
                builder = builder.header("origin", origin);
            }
            policy.check(&builder.finish()).is_ok()
        };
        assert!(upgrade(None), "SDKs and scripts send no Origin");
        assert!(upgrade(Some("http://audio.example.com:8080")));
        assert!(upgrade(Some("https://Studio.Example.com")));
        assert!(!upgrade(Some("https://evil.example")));
        assert!(!upgrade(Some("http://audio.example.com:9999")));
        assert!(!upgrade(Some("null")));
    }

    #[test]
    fn the_actor_header_round_trips() {
        let actor = Actor { id: audiolab_domain::UserId::new(), username: "ada".into() };
        assert_eq!(parse_actor(&actor_header(&actor)), Some(actor));
        assert_eq!(parse_actor("not-a-uuid ada"), None);
    }
}
