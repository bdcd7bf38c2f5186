//! Project members: who the owner lets in, and in which role.

use crate::access::{self, AccessError};
use audiolab_domain::user::{Actor, Member, Need, Revocation, Role};
use audiolab_domain::{ProjectId, UserId, ValidationError, now};
use audiolab_store::{Store, StoreError};

/// Roles an owner can give: the owner role itself is not handed out here (one per project).
fn grantable(role: Role) -> Result<Role, AccessError> {
    match role {
        Role::Owner => {
            Err(StoreError::Invalid(ValidationError::new("role", "must be editor or viewer (a project has one owner)"))
                .into())
        }
        role => Ok(role),
    }
}

/// The project's members, for any member.
pub async fn list(store: &Store, actor: &Actor, project: ProjectId) -> Result<Vec<Member>, AccessError> {
    access::project(store, actor, project, Need::Read, "project").await?;
    Ok(store.list_members(project).await?)
}

/// Adds the user named `username` to the project in `role`. Owner only.
pub async fn add(
    store: &Store,
    actor: &Actor,
    project: ProjectId,
    username: &str,
    role: Role,
) -> Result<Member, AccessError> {
    access::project(store, actor, project, Need::Own, "project").await?;
    let role = grantable(role)?;
    let username = username.trim().to_ascii_lowercase();
    let Some(user) = store.user_by_name(&username).await? else {
        let unknown = ValidationError::new("username", format!("no user is called {username:?}"));
        return Err(StoreError::Invalid(unknown).into());
    };
    store.insert_member(project, user.id, role, now()).await?;
    member(store, project, user.id).await
}

/// Changes a member's role. Owner only; the owner's own role stays. A member demoted below
/// editor loses their client device at once (a take it records is saved).
pub async fn set_role(
    store: &Store,
    courier: &crate::outbox::Courier,
    actor: &Actor,
    project: ProjectId,
    user: UserId,
    role: Role,
) -> Result<Member, AccessError> {
    access::project(store, actor, project, Need::Own, "project").await?;
    let role = grantable(role)?;
    let before = match store.member_role(project, user).await? {
        None => return Err(AccessError::NotFound("member")),
        Some(Role::Owner) => return Err(StoreError::Conflict("the owner's role cannot change".into()).into()),
        Some(before) => before,
    };
    store.update_member(project, user, role).await?;
    if before.allows(Need::Change) && !role.allows(Need::Change) {
        courier.revoke(Revocation::Demoted { project, user }).await;
    }
    member(store, project, user).await
}

/// Removes a member: the owner removes anyone but themselves; any member may leave. Their
/// open sockets to the project close and their client device detaches.
pub async fn remove(
    store: &Store,
    courier: &crate::outbox::Courier,
    actor: &Actor,
    project: ProjectId,
    user: UserId,
) -> Result<(), AccessError> {
    let need = if user == actor.id { Need::Read } else { Need::Own };
    access::project(store, actor, project, need, "project").await?;
    match store.member_role(project, user).await? {
        None => Err(AccessError::NotFound("member")),
        Some(Role::Owner) => {
            Err(StoreError::Conflict("the owner cannot leave; delete the project instead".into()).into())
        }
        Some(_) => {
            store.delete_member(project, user).await?;
            courier.revoke(Revocation::Removed { project, user }).await;
            Ok(())
        }
    }
}

async fn member(store: &Store, project: ProjectId, user: UserId) -> Result<Member, AccessError> {
    let members = store.list_members(project).await?;
    members.into_iter().find(|m| m.user_id == user).ok_or(AccessError::NotFound("member"))
}
