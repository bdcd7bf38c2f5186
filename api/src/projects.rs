//! `/api/projects`: create, read, update, delete and list projects.

use crate::Tag;
use crate::auth::Caller;
use crate::context::ApiContext;
use crate::error::{Answer, codes};
use crate::pagination::page;
use crate::states::{BitDepthBits, SampleRateHz};
use crate::tracks::{TrackList, TrackView};
use audiolab_domain::project::{NewProject, Project, ProjectPatch};
use audiolab_domain::user::Need;
use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use uuid::Uuid;

pub struct ProjectsApi;

/// A project.
#[derive(Debug, Object)]
pub struct ProjectView {
    /// Project id.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// Free-text notes.
    pub description: String,
    /// Sample rate in Hz; every timeline position is counted in frames at this rate. Fixed at creation.
    pub sample_rate: u32,
    /// Bit depth of recorded and rendered integer audio: 16, 24 or 32.
    pub bit_depth: u16,
    /// Tempo in beats per minute (20–999); the metronome and the click device follow it.
    pub tempo: f64,
    /// Time signature such as `4/4`.
    pub time_signature: String,
    /// Id of the owning user.
    pub owner_id: Uuid,
    /// When the project was created.
    pub created_at: DateTime<Utc>,
    /// When the project was last changed.
    pub updated_at: DateTime<Utc>,
    /// The project's revision (§13): its current one when read alone, the one a change made
    /// in a change's answer; null in lists.
    #[oai(nullable)]
    pub revision: Option<i64>,
}

impl ProjectView {
    /// The view as a change's response: with the revision the change made.
    pub(crate) fn with_revision(mut self, entry: Option<&audiolab_domain::history::HistoryEntry>) -> Self {
        self.revision = entry.map(|e| e.revision);
        self
    }
}

impl From<Project> for ProjectView {
    fn from(p: Project) -> Self {
        Self {
            id: p.id.0,
            name: p.name,
            description: p.description,
            sample_rate: p.sample_rate.hz(),
            bit_depth: p.bit_depth.bits(),
            tempo: p.tempo.bpm(),
            time_signature: p.time_signature.to_string(),
            owner_id: p.owner_id.0,
            created_at: p.created_at,
            updated_at: p.updated_at,
            revision: None,
        }
    }
}

/// A new project. Only `name` is required.
#[derive(Debug, Object)]
pub struct CreateProject {
    /// Display name, 1–200 characters.
    #[oai(validator(
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    ))]
    pub name: crate::states::Text,
    /// Free-text notes, up to 5,000 characters.
    #[oai(
        nullable,
        validator(max_length = 5000, pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$")
    )]
    pub description: Option<crate::states::Text>,
    /// 44100, 48000 (default), 88200, 96000 or 192000 Hz.
    #[oai(nullable)]
    pub sample_rate: Option<SampleRateHz>,
    /// 16, 24 (default) or 32.
    #[oai(nullable)]
    pub bit_depth: Option<BitDepthBits>,
    /// Beats per minute, 20–999 (default 120).
    #[oai(nullable, validator(minimum(value = "20"), maximum(value = "999")))]
    pub tempo: Option<f64>,
    /// Such as `3/4`; default `4/4`.
    #[oai(nullable, validator(pattern = r"^([1-9]|[12][0-9]|3[0-2])/(1|2|4|8|16|32)$"))]
    pub time_signature: Option<crate::states::Text>,
}

/// Changes to a project; absent fields stay as they are. The sample rate cannot change.
#[derive(Debug, Object)]
pub struct UpdateProject {
    /// Display name, 1–200 characters.
    #[oai(
        nullable,
        validator(
            max_length = 200,
            pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
        )
    )]
    pub name: Option<crate::states::Text>,
    /// Free-text notes.
    #[oai(
        nullable,
        validator(max_length = 5000, pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$")
    )]
    pub description: Option<crate::states::Text>,
    /// Must equal the current rate if given.
    #[oai(nullable)]
    pub sample_rate: Option<SampleRateHz>,
    /// 16, 24 or 32.
    #[oai(nullable)]
    pub bit_depth: Option<BitDepthBits>,
    /// Beats per minute, 20–999.
    #[oai(nullable, validator(minimum(value = "20"), maximum(value = "999")))]
    pub tempo: Option<f64>,
    /// Such as `6/8`.
    #[oai(nullable, validator(pattern = r"^([1-9]|[12][0-9]|3[0-2])/(1|2|4|8|16|32)$"))]
    pub time_signature: Option<crate::states::Text>,
}

/// A page of projects, oldest first.
#[derive(Debug, Object)]
pub struct ProjectList {
    /// The projects on this page.
    pub items: Vec<ProjectView>,
    /// How many projects the caller has, counted up to 10,000 (a larger count reads 10,000).
    pub total: i64,
    /// The page size that was applied.
    pub limit: i64,
    /// How many projects were skipped (after `after`, when given).
    pub offset: i64,
    /// The cursor for the next page: pass it as `after`. Absent on the last page.
    #[oai(nullable, skip_serializing_if_is_none)]
    pub next_after: Option<Uuid>,
}

#[derive(ApiResponse)]
pub enum ProjectCreated {
    /// The project was created.
    #[oai(status = 201)]
    Created(Json<ProjectView>),
}

#[derive(ApiResponse)]
pub enum Deleted {
    /// Deleted.
    #[oai(status = 204)]
    Deleted,
}

#[OpenApi(tag = "Tag::Projects")]
impl ProjectsApi {
    /// Create a project
    #[oai(path = "/api/projects", method = "post", operation_id = "create_project")]
    async fn create(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        body: Json<CreateProject>,
    ) -> Answer<ProjectCreated, { codes::SIGNED | codes::BODY }> {
        let body = body.0;
        let new = NewProject {
            name: body.name.into(),
            description: body.description.map(String::from),
            sample_rate: body.sample_rate.map(|r| r.0),
            bit_depth: body.bit_depth.map(|b| b.0),
            tempo: body.tempo,
            time_signature: body.time_signature.map(String::from),
        };
        let project = Project::create(caller.actor.id, new, audiolab_domain::now())?;
        ctx.store.insert_project(&project).await?;
        // A new project is at revision 0: its first change makes revision 1.
        Ok(ProjectCreated::Created(Json(ProjectView { revision: Some(0), ..project.into() })))
    }

    /// List projects
    ///
    /// The caller's projects, oldest first.
    #[oai(path = "/api/projects", method = "get", operation_id = "list_projects")]
    async fn list(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Page size, 1–500 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<i64>>,
        /// Items to skip (default 0).
        #[oai(validator(minimum(value = "0")))]
        offset: Query<Option<i64>>,
        /// Start after this project (the `next_after` of the previous page): a page costs the
        /// same however many projects there are, where a large `offset` does not.
        after: Query<Option<Uuid>>,
    ) -> Answer<Json<ProjectList>, { codes::SIGNED | codes::UNPROCESSABLE }> {
        let page = page(limit.0, offset.0)?;
        let projects =
            ctx.store.list_projects(caller.actor.id, page, after.0.map(audiolab_domain::ProjectId::from)).await?;
        let full = projects.items.len() as i64 == page.limit;
        let next_after = projects.items.last().filter(|_| full).map(|p| p.id.0);
        let items = projects.items.into_iter().map(ProjectView::from).collect();
        Ok(Json(ProjectList { items, total: projects.total, limit: page.limit, offset: page.offset, next_after }))
    }

    /// Get a project
    #[oai(path = "/api/projects/:id", method = "get", operation_id = "get_project")]
    async fn get(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Project id.
        id: Path<Uuid>,
    ) -> Answer<Json<ProjectView>, { codes::READ }> {
        let project = ctx.project(&caller, id.0.into(), Need::Read).await?;
        let revision = ctx.store.project_revision(project.id).await?;
        Ok(Json(ProjectView { revision: Some(revision), ..project.into() }))
    }

    /// Update a project
    ///
    /// Changes only the fields given.
    #[oai(path = "/api/projects/:id", method = "patch", operation_id = "update_project")]
    async fn update(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Project id.
        id: Path<Uuid>,
        body: Json<UpdateProject>,
    ) -> Answer<Json<ProjectView>, { codes::CHANGE_BODY }> {
        let project = ctx.project(&caller, id.0.into(), Need::Change).await?;
        let body = body.0;
        let patch = ProjectPatch {
            name: body.name.map(String::from),
            description: body.description.map(String::from),
            sample_rate: body.sample_rate.map(|r| r.0),
            bit_depth: body.bit_depth.map(|b| b.0),
            tempo: body.tempo,
            time_signature: body.time_signature.map(String::from),
        };
        let updated = ctx.changes(&caller).update_project(project.id, &patch).await?;
        Ok(Json(ProjectView::from(updated.value).with_revision(updated.entry.as_ref())))
    }

    /// Delete a project
    ///
    /// Deletes the project with its tracks, clips, takes and loop regions.
    #[oai(path = "/api/projects/:id", method = "delete", operation_id = "delete_project")]
    async fn delete(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Project id.
        id: Path<Uuid>,
    ) -> Answer<Deleted, { codes::CHANGE }> {
        let project = ctx.project(&caller, id.0.into(), Need::Own).await?;
        ctx.changes(&caller).delete_project(&project).await?;
        Ok(Deleted::Deleted)
    }

    /// List a project's tracks
    ///
    /// In track-index order.
    #[oai(path = "/api/projects/:id/tracks", method = "get", operation_id = "list_project_tracks")]
    async fn tracks(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Project id.
        id: Path<Uuid>,
        /// Page size, 1–500 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<i64>>,
        /// Items to skip (default 0).
        #[oai(validator(minimum(value = "0")))]
        offset: Query<Option<i64>>,
    ) -> Answer<Json<TrackList>, { codes::READ }> {
        let project = ctx.project(&caller, id.0.into(), Need::Read).await?;
        let page = page(limit.0, offset.0)?;
        let tracks = ctx.store.list_tracks(project.id, page).await?;
        Ok(Json(TrackList::new(tracks, page, TrackView::from)))
    }
}
