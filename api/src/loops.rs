//! `/api/projects/{id}/loops` and `/api/loops/{id}`: loop regions.

use crate::Tag;
use crate::auth::Caller;
use crate::context::ApiContext;
use crate::error::{Answer, codes};
use crate::error::{ApiError, ApiResult};
use crate::projects::Deleted;
use audiolab_domain::loop_region::{LoopRegion, LoopRegionPatch, NewLoopRegion};
use audiolab_domain::user::Need;
use audiolab_domain::{LoopRegionId, SampleRate};
use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Object, OpenApi};
use uuid::Uuid;

pub struct LoopsApi;

/// A loop region.
#[derive(Debug, Object)]
pub struct LoopRegionView {
    /// Loop region id.
    pub id: Uuid,
    /// The project.
    pub project_id: Uuid,
    /// Display name.
    pub name: String,
    /// Start in seconds.
    pub start: f64,
    /// End in seconds (exclusive).
    pub end: f64,
    /// Start in frames at the project rate.
    pub start_frame: i64,
    /// End in frames at the project rate.
    pub end_frame: i64,
    /// Whether the transport loops this region.
    pub enabled: bool,
    /// N plays the region N+1 times, then playback continues; null loops until stopped.
    #[oai(nullable)]
    pub repeat_count: Option<u32>,
    /// Record a take per pass while looping.
    pub auto_punch_record: bool,
    /// When the region was created.
    pub created_at: DateTime<Utc>,
    /// When the region was last changed.
    pub updated_at: DateTime<Utc>,
    /// The project revision this request's change made (§13); null when it changed nothing
    /// or only read.
    #[oai(nullable)]
    pub revision: Option<i64>,
}

impl LoopRegionView {
    /// The view as a change's response: with the revision the change made.
    pub(crate) fn with_revision(mut self, entry: Option<&audiolab_domain::history::HistoryEntry>) -> Self {
        self.revision = entry.map(|e| e.revision);
        self
    }

    fn new(r: LoopRegion, rate: SampleRate) -> Self {
        Self {
            id: r.id.0,
            project_id: r.project_id.0,
            name: r.name,
            start: r.start.to_seconds(rate),
            end: r.end.to_seconds(rate),
            start_frame: r.start.get(),
            end_frame: r.end.get(),
            enabled: r.enabled,
            repeat_count: r.repeat_count,
            auto_punch_record: r.auto_punch_record,
            created_at: r.created_at,
            updated_at: r.updated_at,
            revision: None,
        }
    }
}

/// A new loop region. It must be at least 0.1 s long, with start < end.
#[derive(Debug, Object)]
pub struct CreateLoopRegion {
    /// Display name (default "Loop").
    #[oai(
        nullable,
        validator(
            max_length = 100,
            pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
        )
    )]
    pub name: Option<crate::states::Text>,
    /// Start in seconds, ≥ 0.
    #[oai(validator(minimum(value = "0"), maximum(value = "864000")))]
    pub start: f64,
    /// End in seconds, ≥ start + 0.1.
    #[oai(validator(minimum(value = "0"), maximum(value = "864000")))]
    pub end: f64,
    /// Default false.
    #[oai(nullable)]
    pub enabled: Option<bool>,
    /// N ≥ 0 plays N+1 passes; absent or null loops until stopped.
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "10000")))]
    pub repeat_count: Option<i64>,
    /// Default false.
    #[oai(nullable)]
    pub auto_punch_record: Option<bool>,
}

/// Changes to a loop region; absent fields stay. `repeat_count: null` makes it endless.
#[derive(Debug, Object)]
pub struct UpdateLoopRegion {
    /// Display name.
    #[oai(
        nullable,
        validator(
            max_length = 100,
            pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
        )
    )]
    pub name: Option<crate::states::Text>,
    /// Start in seconds.
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "864000")))]
    pub start: Option<f64>,
    /// End in seconds.
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "864000")))]
    pub end: Option<f64>,
    /// Whether the transport loops this region.
    #[oai(nullable)]
    pub enabled: Option<bool>,
    /// N ≥ 0 plays N+1 passes; null loops until stopped.
    #[oai(validator(minimum(value = "0"), maximum(value = "10000")))]
    pub repeat_count: MaybeUndefined<i64>,
    /// Record a take per pass while looping.
    #[oai(nullable)]
    pub auto_punch_record: Option<bool>,
}

#[derive(ApiResponse)]
pub enum LoopRegionCreated {
    /// The loop region was created.
    #[oai(status = 201)]
    Created(Json<LoopRegionView>),
}

impl LoopsApi {
    async fn owned_region(
        ctx: &ApiContext,
        caller: &Caller,
        id: LoopRegionId,
        need: Need,
    ) -> ApiResult<(LoopRegion, SampleRate)> {
        let region = ctx.store.get_loop_region(id).await?.ok_or_else(|| ApiError::not_found("loop region"))?;
        let project = ctx.project_as(caller, region.project_id, need, "loop region").await?;
        Ok((region, project.sample_rate))
    }
}

#[OpenApi(tag = "Tag::Loops")]
impl LoopsApi {
    /// Create a loop region
    #[oai(path = "/api/projects/:id/loops", method = "post", operation_id = "create_loop_region")]
    async fn create(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Project id.
        id: Path<Uuid>,
        body: Json<CreateLoopRegion>,
    ) -> Answer<LoopRegionCreated, { codes::CHANGE_BODY }> {
        let project = ctx.project(&caller, id.0.into(), Need::Change).await?;
        let b = body.0;
        let new = NewLoopRegion {
            name: b.name.map(String::from),
            start: b.start,
            end: b.end,
            enabled: b.enabled,
            repeat_count: b.repeat_count,
            auto_punch_record: b.auto_punch_record,
        };
        let region = LoopRegion::create(project.id, project.sample_rate, new, audiolab_domain::now())?;
        let created = ctx.changes(&caller).create_loop(&region).await?;
        let view = LoopRegionView::new(region, project.sample_rate).with_revision(created.entry.as_ref());
        Ok(LoopRegionCreated::Created(Json(view)))
    }

    /// List a project's loop regions
    ///
    /// In timeline order.
    #[oai(path = "/api/projects/:id/loops", method = "get", operation_id = "list_loop_regions")]
    async fn list(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Project id.
        id: Path<Uuid>,
        /// Page size, 1–500 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: poem_openapi::param::Query<Option<i64>>,
        /// Items to skip (default 0).
        #[oai(validator(minimum(value = "0")))]
        offset: poem_openapi::param::Query<Option<i64>>,
    ) -> Answer<Json<Vec<LoopRegionView>>, { codes::READ }> {
        let page = crate::pagination::page(limit.0, offset.0)?;
        let project = ctx.project(&caller, id.0.into(), Need::Read).await?;
        let regions = ctx.store.list_loop_regions(project.id, page).await?;
        Ok(Json(regions.into_iter().map(|r| LoopRegionView::new(r, project.sample_rate)).collect()))
    }

    /// Get a loop region
    #[oai(path = "/api/loops/:id", method = "get", operation_id = "get_loop_region")]
    async fn get(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Loop region id.
        id: Path<Uuid>,
    ) -> Answer<Json<LoopRegionView>, { codes::READ }> {
        let (region, rate) = Self::owned_region(&ctx, &caller, id.0.into(), Need::Read).await?;
        Ok(Json(LoopRegionView::new(region, rate)))
    }

    /// Update a loop region
    ///
    /// The merged region must still satisfy start < end and be at least 0.1 s long.
    #[oai(path = "/api/loops/:id", method = "patch", operation_id = "update_loop_region")]
    async fn update(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Loop region id.
        id: Path<Uuid>,
        body: Json<UpdateLoopRegion>,
    ) -> Answer<Json<LoopRegionView>, { codes::CHANGE_BODY }> {
        let (region, rate) = Self::owned_region(&ctx, &caller, id.0.into(), Need::Change).await?;
        let b = body.0;
        let patch = LoopRegionPatch {
            name: b.name.map(String::from),
            start: b.start,
            end: b.end,
            enabled: b.enabled,
            repeat_count: match b.repeat_count {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(n) => Some(Some(n)),
            },
            auto_punch_record: b.auto_punch_record,
        };
        let updated = ctx.changes(&caller).update_loop(&region, &patch, rate).await?;
        Ok(Json(LoopRegionView::new(updated.value, rate).with_revision(updated.entry.as_ref())))
    }

    /// Delete a loop region
    #[oai(path = "/api/loops/:id", method = "delete", operation_id = "delete_loop_region")]
    async fn delete(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Loop region id.
        id: Path<Uuid>,
    ) -> Answer<Deleted, { codes::CHANGE }> {
        let (region, _) = Self::owned_region(&ctx, &caller, id.0.into(), Need::Change).await?;
        ctx.changes(&caller).delete_loop(&region).await?;
        Ok(Deleted::Deleted)
    }
}
