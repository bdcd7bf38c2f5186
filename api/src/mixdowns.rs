//! Mixdowns: `POST /api/projects/{id}/mixdown` submits a render job (or hands back the one that
//! already answers the same request on the unchanged project); the finished files download from
//! `/api/mixdowns/{job_id}/…`.

use crate::Tag;
use crate::auth::Caller;
use crate::context::ApiContext;
use crate::download;
use crate::error::{Answer, codes};
use crate::error::{ApiError, ApiResult};
use crate::jobs::JobView;
use audiolab_domain::job::{Job, JobKind, JobPayload, JobResult, JobStatus};
use audiolab_domain::mixdown::{MixdownOptions, MixdownPayload, MixdownRequest, MixdownResult, Normalize, fingerprint};
use audiolab_domain::user::Need;
use audiolab_store::Page;
use poem::Body;
use poem::web::Data;
use poem_openapi::param::{Header, Path};
use poem_openapi::payload::{Binary, Json, Response};
use poem_openapi::{ApiResponse, Object, OpenApi};
use uuid::Uuid;

pub struct MixdownsApi;

/// Loudness normalisation (EBU R128): gain to the target, held under the true-peak ceiling.
#[derive(Debug, Clone, Copy, Object)]
pub struct NormalizeBody {
    /// Integrated loudness to reach, in LUFS (−70 to 0; −14 for streaming, −23 for broadcast).
    #[oai(validator(minimum(value = "-70"), maximum(value = "0")))]
    pub target_lufs: f64,
    /// Highest true peak allowed, in dBTP (−20 to 0). Default −1.
    #[oai(nullable, validator(minimum(value = "-20"), maximum(value = "0")))]
    pub ceiling_dbtp: Option<f64>,
}

/// What to render. Every field is optional: the default is the whole project as 24-bit WAV at
/// the project rate, dithered, without stems or normalisation.
#[derive(Debug, Default, Object)]
pub struct MixdownBody {
    /// First second rendered (default 0).
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "864000")))]
    pub start: Option<f64>,
    /// Second the render ends at (default: the end of the last clip).
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "864000")))]
    pub end: Option<f64>,
    /// Also render each track alone (fader and pan applied; mute and solo ignored).
    #[oai(nullable)]
    pub stems: Option<bool>,
    /// `wav16`, `wav24` (default), `wav_f32` (32-bit float), `flac16` or `flac24`.
    #[oai(nullable)]
    pub format: Option<crate::states::MixdownFormat>,
    /// Output rate in Hz: 44100, 48000, 88200, 96000 or 192000; default the project's rate.
    #[oai(nullable)]
    pub sample_rate: Option<crate::states::SampleRateHz>,
    /// Loudness normalisation; off by default.
    #[oai(nullable)]
    pub normalize: Option<NormalizeBody>,
    /// TPDF dither before quantising to integers (default true; ignored for float).
    #[oai(nullable)]
    pub dither: Option<bool>,
}

/// A submitted mixdown.
#[derive(Debug, Object)]
pub struct MixdownSubmitted {
    /// The job rendering it (or the earlier one that already did).
    pub job: JobView,
    /// Whether an earlier identical mixdown of the unchanged project was handed back.
    pub reused: bool,
}

#[derive(Debug, ApiResponse)]
pub enum SubmitResponse {
    /// An identical request on the unchanged project is already rendered or under way.
    #[oai(status = 200)]
    Reused(Json<MixdownSubmitted>),
    /// The job is queued; follow it at `GET /api/jobs/{id}` or by `job_progress` events.
    #[oai(status = 202)]
    Accepted(Json<MixdownSubmitted>),
}

#[OpenApi(tag = "Tag::Jobs")]
impl MixdownsApi {
    /// Render a mixdown
    ///
    /// Renders the project with the engine's mix law to WAV or FLAC, optionally with stems,
    /// resampled and loudness-normalised. The job's result lists the files, the measured
    /// loudness and true peak.
    #[oai(path = "/api/projects/:id/mixdown", method = "post", operation_id = "create_mixdown")]
    async fn submit(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Project id.
        id: Path<Uuid>,
        body: crate::optional_body::OptionalJson<MixdownBody>,
    ) -> Answer<SubmitResponse, { codes::CHANGE_BODY }> {
        let project = ctx.project(&caller, id.0.into(), Need::Change).await?;
        let b = body.0.unwrap_or_default();
        let request = MixdownRequest {
            start: b.start,
            end: b.end,
            stems: b.stems,
            format: b.format.map(|f| f.0.to_owned()),
            sample_rate: b.sample_rate.map(|r| r.0),
            normalize: b
                .normalize
                .map(|n| Normalize { target_lufs: n.target_lufs, ceiling_dbtp: n.ceiling_dbtp.unwrap_or(-1.0) }),
            dither: b.dither,
        };
        let options = MixdownOptions::from_request(&request, project.sample_rate)?;
        let tracks = ctx.store.list_tracks(project.id, Page { limit: 64, offset: 0 }).await?.items;
        let clips = ctx.store.project_clips(project.id).await?;
        let project_end = clips
            .iter()
            .filter(|c| c.active && c.status == audiolab_domain::clip::ClipStatus::Ready)
            .map(|c| c.start.get() + c.length.get())
            .max()
            .unwrap_or(0);
        options.check_length(
            audiolab_domain::Frames(project_end),
            project.sample_rate,
            ctx.settings.max_mixdown_secs,
        )?;
        let fingerprint = fingerprint(&options, &project, &tracks, &clips);

        let payload = JobPayload::Mixdown(MixdownPayload { options, fingerprint: fingerprint.clone() });
        let job = Job::queued(Some(project.id), payload, audiolab_domain::now());
        let (job, push) = ctx.store.insert_mixdown_job(&job, &fingerprint).await?;
        let Some(push) = push else {
            return Ok(SubmitResponse::Reused(Json(MixdownSubmitted { job: job.into(), reused: true })));
        };
        // Queued whatever the queue says now: a queue that is away takes it when it is back.
        ctx.courier.deliver(vec![push]).await;
        Ok(SubmitResponse::Accepted(Json(MixdownSubmitted { job: job.into(), reused: false })))
    }

    /// List a project's mixdowns
    ///
    /// Every mixdown job of the project, newest first, whatever its status; succeeded ones carry
    /// their files (with download URLs), loudness and peak in `result`.
    #[oai(path = "/api/projects/:id/mixdowns", method = "get", operation_id = "list_mixdowns")]
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
    ) -> Answer<Json<Vec<JobView>>, { codes::READ }> {
        let page = crate::pagination::page(limit.0, offset.0)?;
        let project = ctx.project(&caller, id.0.into(), Need::Read).await?;
        let jobs = ctx.store.project_jobs(project.id, JobKind::Mixdown, page).await?;
        Ok(Json(jobs.into_iter().map(JobView::from).collect()))
    }

    /// Download a mixdown
    ///
    /// The rendered mix of a succeeded mixdown job. Supports `Range`.
    #[oai(path = "/api/mixdowns/:job_id/file", method = "get", operation_id = "download_mixdown")]
    async fn file(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// The mixdown's job id.
        job_id: Path<Uuid>,
        /// Byte range, e.g. `bytes=0-1023`.
        #[oai(name = "Range")]
        range: Header<Option<String>>,
    ) -> Answer<Response<Binary<Body>>, { codes::READ | codes::CONFLICT | codes::RANGE }> {
        let result = finished_mixdown(&ctx, &caller, job_id.0).await?;
        let file = result.files.iter().find(|f| f.kind == "mix").ok_or_else(|| ApiError::not_found("mix file"))?;
        let name = format!("mixdown-{}.{}", job_id.0, result.format.extension());
        Ok(download::serve(&ctx.storage, &file.key, &file.content_type, &name, range.0.as_deref()).await?)
    }

    /// Download a stem
    ///
    /// One track of a succeeded mixdown job rendered with stems. Supports `Range`.
    #[oai(path = "/api/mixdowns/:job_id/stems/:track_id", method = "get", operation_id = "download_stem")]
    async fn stem(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// The mixdown's job id.
        job_id: Path<Uuid>,
        /// The track.
        track_id: Path<Uuid>,
        /// Byte range, e.g. `bytes=0-1023`.
        #[oai(name = "Range")]
        range: Header<Option<String>>,
    ) -> Answer<Response<Binary<Body>>, { codes::READ | codes::CONFLICT | codes::RANGE }> {
        let result = finished_mixdown(&ctx, &caller, job_id.0).await?;
        let file = result
            .files
            .iter()
            .find(|f| f.kind == "stem" && f.track_id.map(|t| t.0) == Some(track_id.0))
            .ok_or_else(|| ApiError::not_found("stem"))?;
        let name = format!("stem-{}.{}", track_id.0, result.format.extension());
        Ok(download::serve(&ctx.storage, &file.key, &file.content_type, &name, range.0.as_deref()).await?)
    }
}

/// The result of a succeeded mixdown job the caller owns.
async fn finished_mixdown(ctx: &ApiContext, caller: &Caller, job_id: Uuid) -> ApiResult<MixdownResult> {
    let job = ctx.store.get_job(job_id.into()).await?.ok_or_else(|| ApiError::not_found("mixdown"))?;
    let project =
        job.project_id.filter(|_| job.kind == JobKind::Mixdown).ok_or_else(|| ApiError::not_found("mixdown"))?;
    ctx.project_as(caller, project, Need::Read, "mixdown").await?;
    if job.status != JobStatus::Succeeded {
        return Err(ApiError::conflict(format!("the mixdown is {}, not succeeded", job.status.as_str())));
    }
    match job.result {
        Some(JobResult::Mixdown(result)) => Ok(result),
        _ => Err(ApiError::not_found("mixdown result")),
    }
}
