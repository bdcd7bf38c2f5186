//! `/api/audio/projects/{id}/playback/…`: the transport of a project's engine.

use crate::Tag;
use crate::auth::Caller;
use crate::context::ApiContext;
use crate::error::{Answer, codes};
use audiolab_domain::transport::{LoadSummary, TransportStatus};
use audiolab_domain::user::Need;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

pub struct PlaybackApi;

/// What was loaded into the engine.
#[derive(Debug, Object)]
pub struct LoadResult {
    /// Always true.
    pub success: bool,
    /// The project.
    pub project_id: Uuid,
    /// Its name.
    pub project_name: String,
    /// Tracks in the engine.
    pub tracks_loaded: u32,
    /// Ready, active clips whose audio was opened.
    pub clips_loaded: u32,
    /// Seconds to the end of the last clip; playback stops there unless looping.
    pub duration: f64,
    /// Tempo in BPM.
    pub tempo: f64,
    /// Project sample rate in Hz.
    pub sample_rate: u32,
}

impl From<LoadSummary> for LoadResult {
    fn from(s: LoadSummary) -> Self {
        Self {
            success: true,
            project_id: s.project_id.0,
            project_name: s.project_name,
            tracks_loaded: s.tracks_loaded,
            clips_loaded: s.clips_loaded,
            duration: s.duration,
            tempo: s.tempo,
            sample_rate: s.sample_rate,
        }
    }
}

/// The transport of a project.
#[derive(Debug, Object)]
pub struct PlaybackStatus {
    /// True when the request was carried out.
    pub success: bool,
    // Described on its type (states.rs).
    pub status: crate::states::TransportState,
    /// Playhead in seconds.
    pub position: f64,
    /// Playhead in frames at the project rate.
    pub frame: i64,
    /// Seconds to the end of the last clip.
    pub duration: f64,
    /// Frames to the end of the last clip.
    pub duration_frames: i64,
    /// The project.
    pub project_id: Uuid,
    /// Whether an engine has the project loaded.
    pub project_loaded: bool,
    /// Tracks in the engine.
    pub tracks_loaded: u32,
    /// Project sample rate in Hz.
    pub sample_rate: u32,
    /// The loop region being looped, if any.
    #[oai(nullable)]
    pub loop_region_id: Option<Uuid>,
    /// The loop pass being played (1 for the first), while looping.
    #[oai(nullable)]
    pub loop_pass: Option<u32>,
    /// Blocks that played silence because read-ahead was late, since load.
    pub underruns: u64,
    /// The client device attached to the project, if any: it is then the project's clock.
    #[oai(nullable)]
    pub client_device: Option<ClientDeviceView>,
    /// The metronome.
    pub metronome: Metronome,
}

/// The project's metronome (§12): clicks on the beat grid of its tempo and time signature in
/// what the musician hears (the sound card and a client device's monitor stream), never in
/// takes or mixdowns.
#[derive(Debug, Clone, Copy, Object)]
pub struct Metronome {
    /// Whether it clicks while the transport rolls (a take's count-in clicks regardless).
    pub enabled: bool,
    /// Linear gain of a beat's click, 0–1; the accented downbeat is 1.5 times louder (up to 1).
    #[oai(validator(minimum(value = "0"), maximum(value = "1")))]
    pub level: f32,
    /// Whether the first beat of each bar is accented (higher and louder).
    pub accent: bool,
}

/// A client device (a browser or app playing the mix and recording its microphone, §10).
#[derive(Debug, Object)]
pub struct ClientDeviceView {
    /// `client:<name>`: arm and record tracks from it like any input.
    pub device_id: String,
    /// Microphone channels.
    pub channels: u16,
    /// The round trip its takes are placed with, in frames.
    pub latency_frames: u64,
    /// False while its connection is lost: the transport stands still until it comes back.
    pub connected: bool,
}

impl From<TransportStatus> for PlaybackStatus {
    fn from(s: TransportStatus) -> Self {
        Self {
            success: true,
            status: s.status.into(),
            position: s.position,
            frame: s.frame,
            duration: s.duration,
            duration_frames: s.duration_frames,
            project_id: s.project_id.0,
            project_loaded: s.project_loaded,
            tracks_loaded: s.tracks_loaded,
            sample_rate: s.sample_rate,
            loop_region_id: s.loop_region_id.map(|l| l.0),
            loop_pass: s.loop_pass,
            underruns: s.underruns,
            client_device: s.client_device.map(|d| ClientDeviceView {
                device_id: d.device_id,
                channels: d.channels,
                latency_frames: d.latency_frames,
                connected: d.connected,
            }),
            metronome: Metronome { enabled: s.metronome.enabled, level: s.metronome.level, accent: s.metronome.accent },
        }
    }
}

/// Where to start playing.
#[derive(Debug, Object)]
pub struct PlayRequest {
    /// Seconds; the current position when absent. Clamped to the project.
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "864000")))]
    pub position: Option<f64>,
}

/// Where to move the playhead.
#[derive(Debug, Object)]
pub struct SeekRequest {
    /// Seconds; clamped to [0, duration].
    #[oai(validator(minimum(value = "0"), maximum(value = "864000")))]
    pub position: f64,
}

/// Which loop region to loop.
#[derive(Debug, Object)]
pub struct LoopRequest {
    /// A loop region of this project.
    pub loop_region_id: Uuid,
}

#[OpenApi(tag = "Tag::Audio")]
impl PlaybackApi {
    /// Load a project into an engine
    ///
    /// Opens its tracks and ready clips. Loading again picks up changes and keeps the playhead.
    #[oai(path = "/api/audio/projects/:id/playback/load", method = "post", operation_id = "playback_load")]
    async fn load(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Project id.
        id: Path<Uuid>,
    ) -> Answer<Json<LoadResult>, { codes::CHANGE }> {
        let project = ctx.project(&caller, id.0.into(), Need::Change).await?;
        Ok(Json(ctx.audio.load(project.id).await?.into()))
    }

    /// Start playback
    ///
    /// From `position` if given, else from the playhead. Loads the project if needed.
    #[oai(path = "/api/audio/projects/:id/playback/play", method = "post", operation_id = "playback_play")]
    async fn play(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Project id.
        id: Path<Uuid>,
        body: crate::optional_body::OptionalJson<PlayRequest>,
    ) -> Answer<Json<PlaybackStatus>, { codes::CHANGE_BODY }> {
        let project = ctx.project(&caller, id.0.into(), Need::Change).await?;
        let position = body.0.and_then(|b| b.position);
        Ok(Json(ctx.audio.play(project.id, position).await?.into()))
    }

    /// Pause playback
    ///
    /// Keeps the playhead where it is.
    #[oai(path = "/api/audio/projects/:id/playback/pause", method = "post", operation_id = "playback_pause")]
    async fn pause(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Project id.
        id: Path<Uuid>,
    ) -> Answer<Json<PlaybackStatus>, { codes::CHANGE }> {
        let project = ctx.project(&caller, id.0.into(), Need::Change).await?;
        Ok(Json(ctx.audio.pause(project.id).await?.into()))
    }

    /// Resume playback
    #[oai(path = "/api/audio/projects/:id/playback/resume", method = "post", operation_id = "playback_resume")]
    async fn resume(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Project id.
        id: Path<Uuid>,
    ) -> Answer<Json<PlaybackStatus>, { codes::CHANGE }> {
        let project = ctx.project(&caller, id.0.into(), Need::Change).await?;
        Ok(Json(ctx.audio.resume(project.id).await?.into()))
    }

    /// Stop playback
    ///
    /// Stops and rewinds to 0.
    #[oai(path = "/api/audio/projects/:id/playback/stop", method = "post", operation_id = "playback_stop")]
    async fn stop(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Project id.
        id: Path<Uuid>,
    ) -> Answer<Json<PlaybackStatus>, { codes::CHANGE }> {
        let project = ctx.project(&caller, id.0.into(), Need::Change).await?;
        Ok(Json(ctx.audio.stop(project.id, Some(&caller.actor)).await?.into()))
    }

    /// Detach the project's client device
    ///
    /// Owner only. Lets go of the browser or app attached as the project's audio device,
    /// connected or away: a take it records stops and is saved with what arrived, its
    /// connection is told why, and the node's own clock paces the project again. 404 when no
    /// device is attached.
    #[oai(path = "/api/audio/projects/:id/device", method = "delete", operation_id = "detach_client_device")]
    async fn detach_device(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Project id.
        id: Path<Uuid>,
    ) -> Answer<Json<PlaybackStatus>, { codes::CHANGE }> {
        let project = ctx.project(&caller, id.0.into(), Need::Own).await?;
        Ok(Json(ctx.audio.detach_device(project.id).await?.into()))
    }

    /// Move the playhead
    #[oai(path = "/api/audio/projects/:id/playback/seek", method = "post", operation_id = "playback_seek")]
    async fn seek(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Project id.
        id: Path<Uuid>,
        body: Json<SeekRequest>,
    ) -> Answer<Json<PlaybackStatus>, { codes::CHANGE_BODY }> {
        let project = ctx.project(&caller, id.0.into(), Need::Change).await?;
        Ok(Json(ctx.audio.seek(project.id, body.0.position).await?.into()))
    }

    /// Transport status
    #[oai(path = "/api/audio/projects/:id/playback/status", method = "get", operation_id = "playback_status")]
    async fn status(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Project id.
        id: Path<Uuid>,
    ) -> Answer<Json<PlaybackStatus>, { codes::READ }> {
        let project = ctx.project(&caller, id.0.into(), Need::Read).await?;
        Ok(Json(ctx.audio.status(project.id).await?.into()))
    }

    /// Loop a region
    ///
    /// Makes the region the project's enabled loop and loops it: seamless, sample-exact wraps;
    /// `repeat_count` N plays N+1 passes, then playback continues.
    #[oai(
        path = "/api/audio/projects/:id/playback/loop/enable",
        method = "post",
        operation_id = "playback_loop_enable"
    )]
    async fn loop_enable(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Project id.
        id: Path<Uuid>,
        body: Json<LoopRequest>,
    ) -> Answer<Json<PlaybackStatus>, { codes::CHANGE_BODY }> {
        let project = ctx.project(&caller, id.0.into(), Need::Change).await?;
        ctx.changes(&caller).enable_loop(project.id, Some(body.0.loop_region_id.into())).await?;
        Ok(Json(Self::looping(&ctx, project.id).await?))
    }

    /// Set the metronome
    ///
    /// Clicks on the project's beat grid in what the musician hears; never in takes or
    /// mixdowns. Everyone in the project hears the change at the next block.
    #[oai(path = "/api/audio/projects/:id/metronome", method = "put", operation_id = "set_metronome")]
    async fn set_metronome(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Project id.
        id: Path<Uuid>,
        body: Json<Metronome>,
    ) -> Answer<Json<PlaybackStatus>, { codes::CHANGE_BODY }> {
        let project = ctx.project(&caller, id.0.into(), Need::Change).await?;
        let Metronome { enabled, level, accent } = body.0;
        let settings = audiolab_domain::transport::MetronomeSettings { enabled, level, accent };
        Ok(Json(ctx.audio.set_metronome(project.id, settings).await?.into()))
    }

    /// Stop looping
    #[oai(
        path = "/api/audio/projects/:id/playback/loop/disable",
        method = "post",
        operation_id = "playback_loop_disable"
    )]
    async fn loop_disable(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Project id.
        id: Path<Uuid>,
    ) -> Answer<Json<PlaybackStatus>, { codes::CHANGE }> {
        let project = ctx.project(&caller, id.0.into(), Need::Change).await?;
        ctx.changes(&caller).enable_loop(project.id, None).await?;
        Ok(Json(Self::looping(&ctx, project.id).await?))
    }
}

impl PlaybackApi {
    /// The transport after a loop toggle (a change like any other, §13): the engine loaded
    /// with the stored loop.
    async fn looping(ctx: &ApiContext, project: audiolab_domain::ProjectId) -> crate::error::ApiResult<PlaybackStatus> {
        ctx.audio.load(project).await?;
        Ok(ctx.audio.status(project).await?.into())
    }
}
