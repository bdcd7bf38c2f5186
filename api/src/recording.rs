//! `/api/audio/tracks/{id}/record/…` and `/api/audio/recording/…`: arming tracks, recording
//! takes on the project's engine, and the recording journal.

use crate::Tag;
use crate::auth::Caller;
use crate::context::ApiContext;
use crate::error::{Answer, codes};
use crate::error::{ApiError, ApiResult};
use audiolab_domain::recording::{RecordingSession, RecordingStatus};
use audiolab_domain::track::TrackPatch;
use audiolab_domain::transport::RecordRequest;
use audiolab_domain::user::Need;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

pub struct RecordingApi;

/// Arm or disarm a track.
#[derive(Debug, Object)]
pub struct RecordEnable {
    /// The input to record from (`mock_0`, `mock_1`, `mock_2`, `loopback`, or a sound card
    /// input); kept on the track. Unchanged when absent.
    #[oai(nullable, validator(max_length = 200, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"))]
    pub device_id: Option<crate::states::Text>,
    /// Whether the track is armed. Default true.
    #[oai(nullable)]
    pub enabled: Option<bool>,
}

/// The track's recording state.
#[derive(Debug, Object)]
pub struct RecordEnabled {
    /// Always true.
    pub success: bool,
    /// The track.
    pub track_id: Uuid,
    /// Whether it is armed.
    pub record_enabled: bool,
    /// Its input device.
    #[oai(nullable)]
    pub device_id: Option<String>,
}

/// Start a take.
#[derive(Debug, Object)]
pub struct RecordStart {
    /// The input; the track's input device when absent, else `mock_0`.
    #[oai(nullable, validator(max_length = 200, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"))]
    pub device_id: Option<crate::states::Text>,
    /// When the transport is stopped it rolls from here (seconds; default its current
    /// position). Ignored while rolling: the take starts where the playhead is.
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "864000")))]
    pub start_time: Option<f64>,
    /// Punch-in (seconds): with `punch_out`, only audio played inside the range is recorded.
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "864000")))]
    pub punch_in: Option<f64>,
    /// Punch-out (seconds).
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "864000")))]
    pub punch_out: Option<f64>,
    /// Bars of metronome before the record point, when the transport is stopped: it rolls
    /// from that many bars earlier (before 0 if need be); the take still starts exactly at
    /// the record point. Ignored while rolling.
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "8")))]
    pub count_in_bars: Option<u32>,
}

/// A recording that has started.
#[derive(Debug, Object)]
pub struct RecordStarted {
    /// Always true.
    pub success: bool,
    /// The recording session: pass it to `record/stop`.
    pub session_id: Uuid,
    /// The track recording.
    pub track_id: Uuid,
    /// The input device.
    pub device_id: String,
    /// Transport position (seconds) the take starts from.
    pub start_time: f64,
    /// Always null: the clip exists once the recording stops.
    #[oai(nullable)]
    pub clip_id: Option<Uuid>,
    /// A human-readable summary.
    pub message: String,
    /// Always empty.
    pub errors: Vec<String>,
}

/// A recording that has stopped.
#[derive(Debug, Object)]
pub struct RecordStopped {
    /// Always true.
    pub success: bool,
    /// The recording session.
    pub session_id: Uuid,
    /// The track.
    pub track_id: Uuid,
    /// The take's clip, status `processing` until finalised (then `clip_ready` on the
    /// WebSocket). With a loop active, the newest pass's take. Null when nothing was captured.
    #[oai(nullable)]
    pub clip_id: Option<Uuid>,
    /// Every take's clip, oldest first: one per loop pass (older ones inactive).
    pub clip_ids: Vec<Uuid>,
    /// The `finalize_capture` job (`GET /api/jobs/{id}`; `job_progress` on the WebSocket).
    #[oai(nullable)]
    pub finalize_job_id: Option<Uuid>,
    /// Where the take starts on the timeline (seconds, after latency compensation).
    pub start: f64,
    /// The same in frames.
    pub start_frame: i64,
    /// Frames captured.
    pub frames: u64,
    /// Frames lost because storage fell behind (0 normally).
    pub dropped_frames: u64,
    /// Frames of a take from a client device whose microphone audio never reached the node,
    /// even after waiting for resends (silent in the take; 0 normally).
    pub missing_frames: u64,
    /// A human-readable summary.
    pub message: String,
}

/// A recording session from the journal.
#[derive(Debug, Object)]
pub struct RecordingView {
    /// Session id.
    pub session_id: Uuid,
    /// Project.
    pub project_id: Uuid,
    /// Track recorded.
    pub track_id: Uuid,
    /// Input device.
    pub device_id: String,
    // Described on its type (states.rs).
    pub status: crate::states::RecordingState,
    /// Timeline position of the take in frames (set when it stops).
    pub start_frame: i64,
    /// Latency compensation applied, frames.
    pub applied_offset_frames: i64,
    /// Why it failed, if it did.
    #[oai(nullable)]
    pub error: Option<String>,
    /// The clips of its takes.
    pub clip_ids: Vec<Uuid>,
    /// When it started.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// One pass of a recording.
#[derive(Debug, Object)]
pub struct TakeView {
    /// Take id.
    pub id: Uuid,
    /// The recording session it came from.
    pub session_id: Uuid,
    /// The track.
    pub track_id: Uuid,
    /// Its clip.
    pub clip_id: Uuid,
    /// 0 for a recording's first pass.
    pub pass_index: u32,
    /// Where the pass starts in the recording's capture, frames.
    pub capture_offset_frames: i64,
    /// Its length, frames.
    pub length_frames: i64,
    /// Whether its clip is the one that plays.
    pub active: bool,
    /// When it was recorded.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

async fn take_view(ctx: &ApiContext, take: audiolab_domain::recording::Take) -> ApiResult<TakeView> {
    let clip = ctx.store.get_clip(take.clip_id).await?;
    Ok(TakeView {
        id: take.id.0,
        session_id: take.session_id.0,
        track_id: take.track_id.0,
        clip_id: take.clip_id.0,
        pass_index: take.pass_index,
        capture_offset_frames: take.capture_offset.get(),
        length_frames: take.length.get(),
        active: clip.is_some_and(|c| c.active),
        created_at: take.created_at,
    })
}

async fn view(ctx: &ApiContext, session: RecordingSession) -> ApiResult<RecordingView> {
    let takes = ctx.store.list_takes(session.track_id, audiolab_store::Page::ALL).await?;
    Ok(RecordingView {
        session_id: session.id.0,
        project_id: session.project_id.0,
        track_id: session.track_id.0,
        device_id: session.device_id,
        status: session.status.into(),
        start_frame: session.start.get(),
        applied_offset_frames: session.applied_offset.get(),
        error: session.error,
        clip_ids: takes.iter().filter(|t| t.session_id == session.id).map(|t| t.clip_id.0).collect(),
        created_at: session.created_at,
    })
}

#[OpenApi(tag = "Tag::Audio")]
impl RecordingApi {
    /// Arm a track for recording
    ///
    /// Sets `record_enabled` (and the input device) on the track; a take can only be recorded
    /// on an armed track.
    #[oai(path = "/api/audio/tracks/:id/record/enable", method = "post", operation_id = "enable_recording")]
    async fn enable(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Track id.
        id: Path<Uuid>,
        body: Json<RecordEnable>,
    ) -> Answer<Json<RecordEnabled>, { codes::CHANGE_BODY }> {
        let (track, _) = ctx.track(&caller, id.0.into(), Need::Change).await?;
        // A client device (`client:<name>`) is checked when a take starts: it is there while
        // its connection is attached.
        if let Some(device) = &body.device_id
            && !audiolab_domain::device::is_client_device(device)
            && !ctx.has_input_device(device)
        {
            return Err(ApiError::unprocessable(format!("device_id: no input device {device:?}")).into());
        }
        let patch = TrackPatch {
            record_enabled: Some(body.enabled.unwrap_or(true)),
            input_device_id: body.device_id.clone().map(String::from),
            ..Default::default()
        };
        let track = ctx.changes(&caller).update_track(&track, &patch).await?.value;
        Ok(Json(RecordEnabled {
            success: true,
            track_id: track.id.0,
            record_enabled: track.record_enabled,
            device_id: track.input_device_id,
        }))
    }

    /// Start recording a take
    ///
    /// Starting while stopped rolls the transport from `start_time`, so the other tracks play
    /// (the overdub); starting while rolling records from the playhead. 409 when the track is
    /// not armed, or the device or track is already recording.
    #[oai(path = "/api/audio/tracks/:id/record/start", method = "post", operation_id = "start_recording")]
    async fn start(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Track id.
        id: Path<Uuid>,
        body: Json<RecordStart>,
    ) -> Answer<Json<RecordStarted>, { codes::CHANGE_BODY }> {
        let (track, _) = ctx.track(&caller, id.0.into(), Need::Change).await?;
        let body = body.0;
        let request = RecordRequest {
            track_id: track.id,
            device_id: body.device_id.map(String::from),
            start_time: body.start_time,
            punch_in: body.punch_in,
            punch_out: body.punch_out,
            count_in_bars: body.count_in_bars,
        };
        let started = ctx.audio.record_start(track.project_id, request).await?;
        Ok(Json(RecordStarted {
            success: true,
            session_id: started.session_id.0,
            track_id: started.track_id.0,
            message: format!("recording {} from {:.3} s", started.device_id, started.start_time),
            device_id: started.device_id,
            start_time: started.start_time,
            clip_id: None,
            errors: Vec::new(),
        }))
    }

    /// Stop recording a take
    ///
    /// Returns the take's clip id at once; the clip is `processing` until its audio is
    /// finalised. 409 when the session is no longer recording.
    #[oai(path = "/api/audio/tracks/:id/record/stop/:session_id", method = "post", operation_id = "stop_recording")]
    async fn stop(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Track id.
        id: Path<Uuid>,
        /// Recording session id, from `record/start`.
        session_id: Path<Uuid>,
    ) -> Answer<Json<RecordStopped>, { codes::CHANGE }> {
        let (track, _) = ctx.track(&caller, id.0.into(), Need::Change).await?;
        let session = ctx.store.get_recording_session(session_id.0.into()).await?;
        let session =
            session.filter(|s| s.track_id == track.id).ok_or_else(|| ApiError::not_found("recording session"))?;
        let stopped = ctx.audio.record_stop(track.project_id, Some(track.id), session.id, Some(&caller.actor)).await?;
        Ok(Json(RecordStopped {
            success: true,
            session_id: stopped.session_id.0,
            track_id: stopped.track_id.0,
            clip_id: stopped.clip_id.map(|c| c.0),
            clip_ids: stopped.clip_ids.iter().map(|c| c.0).collect(),
            finalize_job_id: stopped.finalize_job_id.map(|j| j.0),
            start: stopped.start,
            start_frame: stopped.start_frame,
            frames: stopped.frames,
            dropped_frames: stopped.dropped_frames,
            missing_frames: stopped.missing_frames,
            message: match stopped.clip_id {
                Some(_) => format!("recorded {} frames", stopped.frames),
                None => "nothing was captured: the transport did not roll".into(),
            },
        }))
    }

    /// List a track's takes
    ///
    /// Newest first. A loop recording has one take per pass; the newest is active.
    #[oai(path = "/api/tracks/:id/takes", method = "get", operation_id = "list_takes")]
    async fn takes(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Track id.
        id: Path<Uuid>,
        /// Page size, 1–500 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: poem_openapi::param::Query<Option<i64>>,
        /// Items to skip (default 0).
        #[oai(validator(minimum(value = "0")))]
        offset: poem_openapi::param::Query<Option<i64>>,
    ) -> Answer<Json<Vec<TakeView>>, { codes::READ }> {
        let page = crate::pagination::page(limit.0, offset.0)?;
        let (track, _) = ctx.track(&caller, id.0.into(), Need::Read).await?;
        let mut views = Vec::new();
        for take in ctx.store.list_takes(track.id, page).await? {
            // A deleted take keeps its journal row; its lane is gone.
            if ctx.store.get_clip(take.clip_id).await?.is_some() {
                views.push(take_view(&ctx, take).await?);
            }
        }
        Ok(Json(views))
    }

    /// Make a take the active one
    ///
    /// Its clip plays; the other takes of the same recording stay listed but silent.
    #[oai(path = "/api/takes/:id/activate", method = "post", operation_id = "activate_take")]
    async fn activate(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Take id.
        id: Path<Uuid>,
    ) -> Answer<Json<TakeView>, { codes::CHANGE }> {
        let take = ctx.store.get_take(id.0.into()).await?.ok_or_else(|| ApiError::not_found("take"))?;
        let track = ctx.store.get_track(take.track_id).await?.ok_or_else(|| ApiError::not_found("take"))?;
        let project = ctx.project_as(&caller, track.project_id, Need::Change, "take").await?;
        ctx.changes(&caller).activate_take(&take, project.id).await?;
        Ok(Json(take_view(&ctx, take).await?))
    }

    /// Delete a take
    ///
    /// Its clip goes (its audio stays, so undo brings it back) and the track's comp no longer
    /// plays it; what played around it plays on.
    #[oai(path = "/api/takes/:id", method = "delete", operation_id = "delete_take")]
    async fn delete_take(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Take id.
        id: Path<Uuid>,
    ) -> Answer<crate::projects::Deleted, { codes::CHANGE }> {
        let take = ctx.store.get_take(id.0.into()).await?.ok_or_else(|| ApiError::not_found("take"))?;
        let track = ctx.store.get_track(take.track_id).await?.ok_or_else(|| ApiError::not_found("take"))?;
        let project = ctx.project_as(&caller, track.project_id, Need::Change, "take").await?;
        ctx.changes(&caller).delete_take(&take, project.id).await?;
        Ok(crate::projects::Deleted::Deleted)
    }

    /// Recordings in progress
    #[oai(path = "/api/audio/recording/active", method = "get", operation_id = "active_recordings")]
    async fn active(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
    ) -> Answer<Json<Vec<RecordingView>>, { codes::SIGNED }> {
        let mut views = Vec::new();
        for session in ctx.store.recording_sessions_with_status(RecordingStatus::Recording).await? {
            if ctx.project(&caller, session.project_id, Need::Read).await.is_ok() {
                views.push(view(&ctx, session).await?);
            }
        }
        Ok(Json(views))
    }

    /// A recording session
    #[oai(path = "/api/audio/recording/status/:session_id", method = "get", operation_id = "recording_status")]
    async fn status(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Recording session id.
        session_id: Path<Uuid>,
    ) -> Answer<Json<RecordingView>, { codes::READ }> {
        let session = ctx.store.get_recording_session(session_id.0.into()).await?;
        let session = session.ok_or_else(|| ApiError::not_found("recording session"))?;
        ctx.project_as(&caller, session.project_id, Need::Read, "recording session").await?;
        Ok(Json(view(&ctx, session).await?))
    }
}
