//! `GET /api/jobs/{id}`: the state of background work; `POST /api/jobs/{id}/cancel` stops it.

use crate::Tag;
use crate::auth::Caller;
use crate::context::ApiContext;
use crate::error::{Answer, codes};
use crate::error::{ApiError, ApiResult};
use audiolab_domain::job::{Job, JobResult, JobStatus};
use audiolab_domain::user::Need;
use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi, Union};
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
    // What the job produced, when it succeeded: described on its type. Absent otherwise rather
    // than null: a nullable reference to a `oneOf` is wrapped in `allOf`, which SDK generators
    // refuse.
    #[oai(skip_serializing_if_is_none)]
    pub result: Option<JobResultView>,
    /// Why it failed, when it did.
    #[oai(nullable)]
    pub error: Option<String>,
    /// When the job was submitted.
    pub created_at: DateTime<Utc>,
    /// When the job last changed.
    pub updated_at: DateTime<Utc>,
}

/// What a finished job produced, when it succeeded: one shape per job `kind`.
#[derive(Debug, Union)]
#[oai(discriminator_name = "kind", one_of)]
pub enum JobResultView {
    #[oai(mapping = "finalize_capture")]
    FinalizeCapture(FinalizeResultView),
    #[oai(mapping = "mixdown")]
    Mixdown(MixdownResultView),
    #[oai(mapping = "import")]
    Import(ImportResultView),
    #[oai(mapping = "flatten")]
    Flatten(FlattenResultView),
}

/// A flattened comp: the clip it became.
#[derive(Debug, Object)]
pub struct FlattenResultView {
    /// The new clip, playing what the comp played.
    pub clip_id: Uuid,
    /// Its length in frames at the project rate.
    pub frames: u64,
}

/// A finalised recording: its takes' clips, now ready.
#[derive(Debug, Object)]
pub struct FinalizeResultView {
    /// The recording session.
    pub session_id: Uuid,
    /// Its takes' clips, one per pass, oldest first.
    pub clip_ids: Vec<Uuid>,
    /// Frames captured.
    pub frames: u64,
}

/// An imported file: its clip, now ready.
#[derive(Debug, Object)]
pub struct ImportResultView {
    /// The clip the file became.
    pub clip_id: Uuid,
    /// Its length in frames at the project rate.
    pub frames: u64,
    /// The file's own sample rate.
    pub source_sample_rate: u32,
    /// The file's channels.
    pub channels: u16,
    /// Integrated loudness (EBU R128); null for silence.
    #[oai(nullable)]
    pub loudness_lufs: Option<f64>,
}

/// A rendered mixdown: its files, loudness and peak.
#[derive(Debug, Object)]
pub struct MixdownResultView {
    /// The project's state it rendered (an unchanged project reuses the job).
    pub fingerprint: String,
    /// The file format: wav16, wav24, wav_f32, flac16 or flac24.
    pub format: String,
    /// The files' sample rate.
    pub sample_rate: u32,
    /// Frames in each file.
    pub frames: u64,
    /// The mix, and a stem per track when asked.
    pub files: Vec<RenderedFileView>,
    /// Integrated loudness of the mix as written; null for silence.
    #[oai(nullable)]
    pub loudness_lufs: Option<f64>,
    /// True peak of the mix as written (dBTP); null for silence.
    #[oai(nullable)]
    pub true_peak_dbtp: Option<f64>,
    /// Gain applied by loudness normalisation (0 without it).
    pub gain_db: f64,
    /// Whether the true-peak ceiling, not the target, set the gain.
    pub limited_by_ceiling: bool,
}

/// One file of a mixdown.
#[derive(Debug, Object)]
pub struct RenderedFileView {
    /// `mix` or `stem`.
    pub kind: String,
    /// The stem's track.
    #[oai(nullable)]
    pub track_id: Option<Uuid>,
    /// Where the API serves it.
    pub url: String,
    /// Its size.
    pub bytes: u64,
    /// Its media type.
    pub content_type: String,
}

impl From<JobResult> for JobResultView {
    fn from(result: JobResult) -> Self {
        match result {
            JobResult::FinalizeCapture(r) => Self::FinalizeCapture(FinalizeResultView {
                session_id: r.session_id.0,
                clip_ids: r.clip_ids.into_iter().map(|c| c.0).collect(),
                frames: r.frames,
            }),
            JobResult::Flatten(r) => Self::Flatten(FlattenResultView { clip_id: r.clip_id.0, frames: r.frames }),
            JobResult::Import(r) => Self::Import(ImportResultView {
                clip_id: r.clip_id.0,
                frames: r.frames,
                source_sample_rate: r.source_sample_rate,
                channels: r.channels,
                loudness_lufs: r.loudness_lufs,
            }),
            JobResult::Mixdown(r) => Self::Mixdown(MixdownResultView {
                fingerprint: r.fingerprint,
                format: r.format.as_str().to_owned(),
                sample_rate: r.sample_rate,
                frames: r.frames,
                files: r
                    .files
                    .into_iter()
                    .map(|f| RenderedFileView {
                        kind: f.kind,
                        track_id: f.track_id.map(|t| t.0),
                        url: f.url,
                        bytes: f.bytes,
                        content_type: f.content_type,
                    })
                    .collect(),
                loudness_lufs: r.loudness_lufs,
                true_peak_dbtp: r.true_peak_dbtp,
                gain_db: r.gain_db,
                limited_by_ceiling: r.limited_by_ceiling,
            }),
        }
    }
}

impl From<Job> for JobView {
    fn from(j: Job) -> Self {
        Self {
            id: j.id.0,
            kind: j.kind.into(),
            project_id: j.project_id.map(|p| p.0),
            status: j.status.into(),
            progress: j.progress,
            result: j.result.map(JobResultView::from),
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
