//! Who may reach what. Every entry point — REST, the socket, the node's internal route — asks
//! here before it reads or changes anything of a project, so they cannot disagree.
//!
//! A project is reached through membership alone: to anyone who is not a member it does not
//! exist (404, the same answer as for an unknown id), and a member whose role does not allow
//! the operation is refused (403).

use audiolab_domain::ProjectId;
use audiolab_domain::project::Project;
use audiolab_domain::user::{Actor, Need, Role};
use audiolab_store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The thing does not exist, or the caller is not a member of its project.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The caller is a member whose role does not allow this.
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a role is refused an operation, in words for the client.
fn refusal(role: Role, need: Need) -> String {
    match need {
        Need::Read => unreachable!("every role reads"),
        Need::Change => format!("a project {role} cannot change it; ask its owner for the editor role"),
        Need::Own => format!("only the project's owner can do this (you are its {role})"),
    }
}

/// The project `id` and the caller's role in it, if they may do what `need` asks.
/// `what` names the thing the caller asked for in the 404 ("clip" when a clip's project is
/// checked), so a refusal says nothing about the project behind it.
pub async fn project(
    store: &Store,
    actor: &Actor,
    id: ProjectId,
    need: Need,
    what: &'static str,
) -> Result<(Project, Role), AccessError> {
    let Some(role) = store.member_role(id, actor.id).await? else {
        return Err(AccessError::NotFound(what));
    };
    let Some(project) = store.get_project(id).await? else {
        return Err(AccessError::NotFound(what));
    };
    if !role.allows(need) {
        return Err(AccessError::Forbidden(refusal(role, need)));
    }
    Ok((project, role))
}
