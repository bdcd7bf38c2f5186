//! `/api/projects/{id}/members`: who may reach a project, and in which role.

use crate::Tag;
use crate::auth::Caller;
use crate::context::ApiContext;
use crate::error::{Answer, codes};
use crate::projects::Deleted;
use crate::states::{GrantableRole, RoleName};
use audiolab_app::members;
use audiolab_domain::user::Member;
use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use uuid::Uuid;

pub struct MembersApi;

/// A member of a project.
#[derive(Debug, Object)]
pub struct MemberView {
    /// The member's user id.
    pub user_id: Uuid,
    /// The member's username.
    pub username: String,
    pub role: RoleName,
    /// When they joined.
    pub created_at: DateTime<Utc>,
}

impl From<Member> for MemberView {
    fn from(m: Member) -> Self {
        Self { user_id: m.user_id.0, username: m.username, role: m.role.into(), created_at: m.created_at }
    }
}

/// A user to add to a project.
#[derive(Debug, Object)]
pub struct NewMember {
    /// Their username.
    #[oai(validator(min_length = 3, max_length = 32, pattern = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"))]
    pub username: crate::states::Text,
    pub role: GrantableRole,
}

/// A member's new role.
#[derive(Debug, Object)]
pub struct MemberRole {
    pub role: GrantableRole,
}

#[derive(ApiResponse)]
pub enum MemberAdded {
    /// The user is a member.
    #[oai(status = 201)]
    Created(Json<MemberView>),
}

#[OpenApi(tag = "Tag::Projects")]
impl MembersApi {
    /// List a project's members
    ///
    /// The owner first, then by username. Any member may read it.
    #[oai(path = "/api/projects/:id/members", method = "get", operation_id = "list_members")]
    async fn list(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Project id.
        id: Path<Uuid>,
    ) -> Answer<Json<Vec<MemberView>>, { codes::READ }> {
        let list = members::list(&ctx.store, &caller.actor, id.0.into()).await?;
        Ok(Json(list.into_iter().map(MemberView::from).collect()))
    }

    /// Add a member
    ///
    /// Owner only. `role` is `editor` (edits, records, mixes) or `viewer` (reads and listens).
    #[oai(path = "/api/projects/:id/members", method = "post", operation_id = "add_member")]
    async fn add(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Project id.
        id: Path<Uuid>,
        body: Json<NewMember>,
    ) -> Answer<MemberAdded, { codes::CHANGE_BODY }> {
        let member = members::add(&ctx.store, &caller.actor, id.0.into(), &body.username, body.role.into()).await?;
        Ok(MemberAdded::Created(Json(member.into())))
    }

    /// Change a member's role
    ///
    /// Owner only; the owner's own role does not change.
    #[oai(path = "/api/projects/:id/members/:user_id", method = "patch", operation_id = "update_member")]
    async fn update(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Project id.
        id: Path<Uuid>,
        /// The member's user id.
        user_id: Path<Uuid>,
        body: Json<MemberRole>,
    ) -> Answer<Json<MemberView>, { codes::CHANGE_BODY }> {
        let member =
            members::set_role(&ctx.store, &ctx.courier, &caller.actor, id.0.into(), user_id.0.into(), body.role.into())
                .await?;
        Ok(Json(member.into()))
    }

    /// Remove a member
    ///
    /// The owner removes anyone else; any member may remove themselves (leave).
    #[oai(path = "/api/projects/:id/members/:user_id", method = "delete", operation_id = "remove_member")]
    async fn remove(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Project id.
        id: Path<Uuid>,
        /// The member's user id.
        user_id: Path<Uuid>,
    ) -> Answer<Deleted, { codes::CHANGE }> {
        members::remove(&ctx.store, &ctx.courier, &caller.actor, id.0.into(), user_id.0.into()).await?;
        Ok(Deleted::Deleted)
    }
}
