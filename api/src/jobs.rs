//! `GET /api/jobs/{id}`: the state of background work; `POST /api/jobs/{id}/cancel` stops it.

use crate::Tag;
use crate::auth::Caller;
use crate::context::ApiContext;
use crate::error::{Answer, codes};
use crate::error::{ApiError, ApiResult};
use audiolab_domain::job::{Job, JobStatus};
use audiolab_domain::user::Need;
use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

pub struct JobsApi;

/// A background job.
#[derive(Debug, Object)]
pub struct JobView {
    /// Job id.
    pub id: Uuid,
    // Described on its type (states.rs).
    pub kind: crate::states::JobKindName,
    /// The project the job works on.
    #[oai(nullable)]
    pub project_id: Option<Uuid>,
    // Described on its type (states.rs).
    pub status: crate::states::JobState,
    /// 0.0 to 1.0.
    pub progress: f64,
    /// What the job produced, when it succeeded.
    #[oai(nullable)]
    pub result: Option<serde_json::Value>,
    /// Why it failed, when it did.
    #[oai(nullable)]
    pub error: Option<String>,
    /// When the job was submitted.
    pub created_at: DateTime<Utc>,
    /// When the job last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<Job> for JobView {
    fn from(j: Job) -> Self {
        Self {
            id: j.id.0,
            kind: j.kind.into(),
            project_id: j.project_id.map(|p| p.0),
            status: j.status.into(),
            progress: j.progress,
            result: j.result.map(|r| serde_json::to_value(r).unwrap_or_default()),
            error: j.error,
            created_at: j.created_at,
            updated_at: j.updated_at,
        }
    }
}

#[OpenApi(tag = "Tag::Jobs")]
impl JobsApi {
    /// Get a job
    #[oai(path = "/api/jobs/:id", method = "get", operation_id = "get_job")]
    async fn get(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Job id.
        id: Path<Uuid>,
    ) -> Answer<Json<JobView>, { codes::READ }> {
        Ok(Json(owned_job(&ctx, &caller, id.0, Need::Read).await?.into()))
    }

    /// Cancel a job
    ///
    /// A queued or running job stops (a running mixdown within a block or two, its partial
    /// files removed) and ends `cancelled`. A finished job cannot be cancelled (409).
    #[oai(path = "/api/jobs/:id/cancel", method = "post", operation_id = "cancel_job")]
    async fn cancel(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Job id.
        id: Path<Uuid>,
    ) -> Answer<Json<JobView>, { codes::CHANGE }> {
        let job = owned_job(&ctx, &caller, id.0, Need::Change).await?;
        let cancelled =
            ctx.store.finish_job(job.id, JobStatus::Cancelled, None, Some("cancelled by the client")).await?;
        let job = ctx.store.get_job(job.id).await?.ok_or_else(|| ApiError::not_found("job"))?;
        if !cancelled {
            return Err(ApiError::conflict(format!("the job already ended: {}", job.status.as_str())).into());
        }
        // Every client of the project hears it, as it hears a job the worker ends.
        ctx.job_events.send(audiolab_jobs::JobUpdate {
            job_id: job.id,
            kind: job.kind,
            project_id: job.project_id,
            status: job.status,
            progress: job.progress,
            error: job.error.clone(),
            result: None,
        });
        Ok(Json(job.into()))
    }
}

/// The job, if it exists and belongs to one of the caller's projects.
async fn owned_job(ctx: &ApiContext, caller: &Caller, id: Uuid, need: Need) -> ApiResult<Job> {
    let job = ctx.store.get_job(id.into()).await?.ok_or_else(|| ApiError::not_found("job"))?;
    if let Some(project) = job.project_id {
        ctx.project_as(caller, project, need, "job").await?;
    }
    Ok(job)
}
