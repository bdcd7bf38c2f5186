//! `GET /api/jobs/{id}`: the state of background work.

use crate::Tag;
use crate::context::ApiContext;
use crate::error::{ApiError, ApiResult};
use audiolab_domain::job::Job;
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
    /// `finalize_capture`, `mixdown` or `import`.
    pub kind: String,
    /// The project the job works on.
    pub project_id: Option<Uuid>,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    pub status: String,
    /// 0.0 to 1.0.
    pub progress: f64,
    /// What the job produced, when it succeeded.
    pub result: Option<serde_json::Value>,
    /// Why it failed, when it did.
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
            kind: j.kind.as_str().into(),
            project_id: j.project_id.map(|p| p.0),
            status: j.status.as_str().into(),
            progress: j.progress,
            result: j.result,
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
        /// Job id.
        id: Path<Uuid>,
    ) -> ApiResult<Json<JobView>> {
        let job = ctx.store.get_job(id.0.into()).await?.ok_or_else(|| ApiError::not_found("job"))?;
        if let Some(project) = job.project_id {
            ctx.owned_project(project).await.map_err(|_| ApiError::not_found("job"))?;
        }
        Ok(Json(job.into()))
    }
}
