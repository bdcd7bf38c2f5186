//! `/api/tracks/{id}/comp`: what a track plays of its takes (§14) — read it, give it whole,
//! or swipe one take over a range. Every edit is a revision of the project (§13).

use crate::Tag;
use crate::auth::Caller;
use crate::context::ApiContext;
use crate::error::{Answer, ApiError, ApiResult, codes};
use audiolab_domain::comp::{Comp, MAX_CROSSFADE_MS, Segment};
use audiolab_domain::job::{FlattenPayload, Job, JobPayload};
use audiolab_domain::user::Need;
use audiolab_domain::{Frames, SampleRate, TakeId};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

pub struct CompsApi;

/// A flatten, queued.
#[derive(poem_openapi::ApiResponse)]
pub enum Flattening {
    /// The job that renders the comp; follow it at `/api/jobs/{id}` or by `job_progress`.
    #[oai(status = 202)]
    Accepted(Json<crate::jobs::JobView>),
}

/// A stretch of the timeline played from one take.
#[derive(Debug, Object)]
pub struct SegmentView {
    /// The take that plays here.
    pub take_id: Uuid,
    /// Start in seconds.
    pub start: f64,
    /// End in seconds (exclusive).
    pub end: f64,
    /// Start in frames at the project rate.
    pub start_frame: i64,
    /// End in frames at the project rate.
    pub end_frame: i64,
}

/// What a track plays of its takes: segments in timeline order, never overlapping; the
/// track's clips of no take play where no segment is. Empty until a take is recorded.
#[derive(Debug, Object)]
pub struct CompView {
    /// The track.
    pub track_id: Uuid,
    /// The segments, in timeline order.
    pub segments: Vec<SegmentView>,
    /// The equal-power crossfade at each boundary between segments, in milliseconds.
    pub crossfade_ms: u32,
    /// The project revision this request's change made (§13); null when it changed nothing
    /// or only read.
    #[oai(nullable)]
    pub revision: Option<i64>,
}

/// A segment as a client gives it, in seconds.
#[derive(Debug, Object)]
pub struct SegmentInput {
    /// One of the track's takes.
    pub take_id: Uuid,
    /// Start in seconds, from 0.
    #[oai(validator(minimum(value = "0")))]
    pub start: f64,
    /// End in seconds (exclusive), after `start`.
    #[oai(validator(minimum(value = "0")))]
    pub end: f64,
}

/// A whole comp.
#[derive(Debug, Object)]
pub struct CompInput {
    /// In timeline order, not overlapping, each of one of the track's takes; empty: none of
    /// the track's takes plays (its clips of no take play whole).
    #[oai(validator(max_items = 10000))]
    pub segments: Vec<SegmentInput>,
    /// The crossfade at each boundary between segments, 0–500 ms (default: as it was).
    #[oai(validator(minimum(value = "0"), maximum(value = "500")))]
    pub crossfade_ms: Option<u32>,
}

/// A swipe: one take over a range.
#[derive(Debug, Object)]
pub struct CompSelect {
    /// The take that plays over the range.
    pub take_id: Uuid,
    /// Start in seconds, from 0.
    #[oai(validator(minimum(value = "0")))]
    pub start: f64,
    /// End in seconds (exclusive), after `start`.
    #[oai(validator(minimum(value = "0")))]
    pub end: f64,
}

fn view(track_id: Uuid, comp: &Comp, rate: SampleRate, revision: Option<i64>) -> CompView {
    let seconds = |frames: Frames| frames.get() as f64 / f64::from(rate.hz());
    CompView {
        track_id,
        segments: comp
            .segments
            .iter()
            .map(|s| SegmentView {
                take_id: s.take_id.0,
                start: seconds(s.start),
                end: seconds(s.end),
                start_frame: s.start.get(),
                end_frame: s.end.get(),
            })
            .collect(),
        crossfade_ms: comp.crossfade_ms,
        revision,
    }
}

fn frames(field: &'static str, seconds: f64, rate: SampleRate) -> ApiResult<Frames> {
    Ok(Frames::from_seconds(field, seconds, rate)?)
}

#[OpenApi(tag = "Tag::Tracks")]
impl CompsApi {
    /// A track's comp
    ///
    /// What the track plays of its takes (§14).
    #[oai(path = "/api/tracks/:id/comp", method = "get", operation_id = "get_comp")]
    async fn get(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Track id.
        id: Path<Uuid>,
    ) -> Answer<Json<CompView>, { codes::READ }> {
        let (track, project) = ctx.track(&caller, id.0.into(), Need::Read).await?;
        let lanes = ctx.store.list_clips(track.id, audiolab_store::Page::ALL).await?.items;
        let comp = audiolab_domain::comp::current(&track, &lanes);
        Ok(Json(view(id.0, &comp, project.sample_rate, None)))
    }

    /// Give a track its comp
    ///
    /// The whole comp at once: segments in order, not overlapping, each of one of the track's
    /// takes. The engine plays it from its next block; undo gives the previous comp back.
    #[oai(path = "/api/tracks/:id/comp", method = "put", operation_id = "set_comp")]
    async fn put(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Track id.
        id: Path<Uuid>,
        body: Json<CompInput>,
    ) -> Answer<Json<CompView>, { codes::CHANGE_BODY }> {
        let (track, project) = ctx.track(&caller, id.0.into(), Need::Change).await?;
        let rate = project.sample_rate;
        let segments = body
            .0
            .segments
            .iter()
            .map(|s| {
                Ok(Segment {
                    start: frames("start", s.start, rate)?,
                    end: frames("end", s.end, rate)?,
                    take_id: TakeId::from(s.take_id),
                })
            })
            .collect::<ApiResult<Vec<_>>>()?;
        let crossfade_ms = body.0.crossfade_ms.unwrap_or(track.comp.crossfade_ms).min(MAX_CROSSFADE_MS);
        let committed = ctx.changes(&caller).set_comp(project.id, track.id, Comp { segments, crossfade_ms }).await?;
        Ok(Json(view(id.0, &committed.value, rate, committed.entry.map(|e| e.revision))))
    }

    /// Swipe a take over a range
    ///
    /// The take plays `[start, end)`: what played there gives way (it stays a lane), and
    /// segments reaching into the range are cut at its edges, crossfaded.
    #[oai(path = "/api/tracks/:id/comp/select", method = "post", operation_id = "select_in_comp")]
    async fn select(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Track id.
        id: Path<Uuid>,
        body: Json<CompSelect>,
    ) -> Answer<Json<CompView>, { codes::CHANGE_BODY }> {
        let (track, project) = ctx.track(&caller, id.0.into(), Need::Change).await?;
        let rate = project.sample_rate;
        let (start, end) = (frames("start", body.0.start, rate)?, frames("end", body.0.end, rate)?);
        let take = TakeId::from(body.0.take_id);
        let committed = ctx.changes(&caller).select_in_comp(project.id, track.id, take, start, end).await?;
        Ok(Json(view(id.0, &committed.value, rate, committed.entry.map(|e| e.revision))))
    }

    /// Flatten a track's comp
    ///
    /// A job renders what the track plays (its comp, crossfades included, and its clips of no
    /// take where no segment is) to one new clip; when it finishes, that clip plays and what it
    /// was made of stays on the track, silent, the comp empty — one change, yours to undo. A
    /// track without a comp has nothing to flatten (409).
    #[oai(path = "/api/tracks/:id/comp/flatten", method = "post", operation_id = "flatten_comp")]
    async fn flatten(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Track id.
        id: Path<Uuid>,
    ) -> Answer<Flattening, { codes::CHANGE }> {
        let (track, project) = ctx.track(&caller, id.0.into(), Need::Change).await?;
        let lanes = ctx.store.list_clips(track.id, audiolab_store::Page::ALL).await?.items;
        if !audiolab_domain::comp::current(&track, &lanes).is_active() {
            return Err(ApiError::conflict("the track has no comp to flatten: record a take on it first").into());
        }
        let payload = JobPayload::Flatten(FlattenPayload { track_id: track.id, actor: Some(caller.actor.clone()) });
        let job = Job::queued(Some(project.id), payload, audiolab_domain::now());
        let push = ctx.store.queue_job(&job, None).await?;
        // Queued whatever the queue says now: a queue that is away takes it when it is back.
        ctx.courier.deliver(push.into_iter().collect()).await;
        Ok(Flattening::Accepted(Json(job.into())))
    }
}
