//! Who may reach the node: the socket's upgrade check (a member of the project, or nobody),
//! and the shared secret that guards a node's routes when it runs as its own process.
//!
//! API processes present the secret on every call and name the user a proxied socket acts
//! for; a node trusts that name only together with the secret.

use audiolab_app::access::{self, AccessError};
use audiolab_app::accounts::Identity;
use audiolab_domain::ProjectId;
use audiolab_domain::user::{Actor, Need, Role};
use audiolab_store::Store;
use poem::http::StatusCode;
use poem::{Endpoint, IntoResponse, Request, Response};
use serde_json::json;
use std::sync::Arc;

/// The header carrying the deployment's internal secret.
pub const SECRET_HEADER: &str = "x-audiolab-internal-secret";
/// The header naming the user a proxied request acts for: `<user id> <username>`.
pub const ACTOR_HEADER: &str = "x-audiolab-actor";

pub fn refuse(status: StatusCode, detail: &str) -> Response {
    poem::web::Json(json!({"detail": detail, "errors": [detail], "success": false})).with_status(status).into_response()
}

/// Decides a socket upgrade for `project`: the caller's actor and role, or the refusal
/// (401 without a user, 404 to anyone not a member, 503 when the database is down).
pub async fn admit(store: &Store, identity: Option<&Identity>, project: ProjectId) -> Result<(Actor, Role), Response> {
    let actor = match identity {
        Some(Identity::User { actor, .. }) => actor.clone(),
        Some(Identity::Rejected(reason)) => return Err(unauthorized(reason)),
        Some(Identity::Unavailable) => {
            return Err(refuse(StatusCode::SERVICE_UNAVAILABLE, "the database is unavailable; try again shortly"));
        }
        _ => return Err(unauthorized("sign in first: send Authorization: Bearer <token> or ?access_token=")),
    };
    match access::project(store, &actor, project, Need::Read, "project").await {
        Ok((_, role)) => Ok((actor, role)),
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
    let identity = match actor {
        Some(actor) => Identity::User { actor, token: None },
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
    fn the_actor_header_round_trips() {
        let actor = Actor { id: audiolab_domain::UserId::new(), username: "ada".into() };
        assert_eq!(parse_actor(&actor_header(&actor)), Some(actor));
        assert_eq!(parse_actor("not-a-uuid ada"), None);
    }
}
