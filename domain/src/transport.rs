//! The transport as the rest of the system sees it: what a loaded project reports, and the port
//! through which the API drives an engine, wherever that engine runs (in this process, or in a
//! node process reached over the network).

use crate::{ClipId, LoopRegionId, ProjectId, RecordingSessionId, TrackId};
use serde::{Deserialize, Serialize};

/// What `load` found in a project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LoadSummary {
    pub project_id: ProjectId,
    pub project_name: String,
    pub tracks_loaded: u32,
    pub clips_loaded: u32,
    /// Seconds to the end of the last clip.
    pub duration: f64,
    pub duration_frames: i64,
    pub tempo: f64,
    pub sample_rate: u32,
}

/// Where a project's transport stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TransportState {
    Stopped,
    Playing,
    Paused,
}

/// The transport of one project at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TransportStatus {
    pub project_id: ProjectId,
    pub project_loaded: bool,
    pub status: TransportState,
    /// Playhead in seconds.
    pub position: f64,
    /// Playhead in frames.
    pub frame: i64,
    pub duration: f64,
    pub duration_frames: i64,
    pub tracks_loaded: u32,
    pub sample_rate: u32,
    /// The active loop region and the pass being played, when looping.
    pub loop_region_id: Option<LoopRegionId>,
    pub loop_pass: Option<u32>,
    /// Blocks that played silence because read-ahead was late, since load.
    pub underruns: u64,
    /// The client device attached to the project (§10), if any: it is then the project's clock.
    #[serde(default)]
    pub client_device: Option<ClientDeviceStatus>,
    #[serde(default)]
    pub metronome: MetronomeSettings,
}

/// A client device attached to a project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ClientDeviceStatus {
    /// `client:<name>`: arm and record tracks from it like any input.
    pub device_id: String,
    pub channels: u16,
    /// The round trip its takes are placed with, in frames.
    pub latency_frames: u64,
    /// False while its connection is lost (time stands still until it comes back).
    pub connected: bool,
}

impl ClientDeviceStatus {
    /// The device as the devices list shows it.
    pub fn input_device(&self, sample_rate: u32) -> crate::device::InputDevice {
        crate::device::InputDevice {
            device_id: self.device_id.clone(),
            name: format!("{} (browser)", self.device_id.trim_start_matches(crate::device::CLIENT_PREFIX)),
            channels: self.channels,
            sample_rate,
            is_default: false,
            host_api: "client".into(),
        }
    }
}

impl TransportStatus {
    /// The status of a project no engine has loaded.
    pub fn unloaded(project_id: ProjectId, sample_rate: u32) -> Self {
        Self {
            project_id,
            project_loaded: false,
            status: TransportState::Stopped,
            position: 0.0,
            frame: 0,
            duration: 0.0,
            duration_frames: 0,
            tracks_loaded: 0,
            sample_rate,
            loop_region_id: None,
            loop_pass: None,
            underruns: 0,
            client_device: None,
            metronome: MetronomeSettings::default(),
        }
    }
}

/// Why a transport request failed. On the wire (the internal node route, the socket's
/// `control_response`) it travels as `{"code", "message"}`, so no caller reads error text.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", content = "message", rename_all = "snake_case")]
pub enum TransportError {
    /// What was not found ("project", "loop region", …).
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    /// The caller's role in the project does not allow the command (a viewer changes nothing).
    #[error("{0}")]
    Forbidden(String),
    /// No engine can take the request right now (node down, queue full).
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl TransportError {
    pub fn not_found(what: &str) -> Self {
        Self::NotFound(what.to_owned())
    }

    /// The error's code: `invalid`, `not_found`, `conflict`, `forbidden`, `unavailable`, `internal`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "not_found",
            Self::Invalid(_) => "invalid",
            Self::Conflict(_) => "conflict",
            Self::Forbidden(_) => "forbidden",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }
}

pub type TransportResult<T> = Result<T, TransportError>;

/// Drives the engines. Callers have already checked the caller owns the project.
/// A request to record a take on an armed track.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RecordRequest {
    pub track_id: TrackId,
    /// The input; the track's `input_device_id` when absent, else the default virtual microphone.
    pub device_id: Option<String>,
    /// Where to roll from (seconds) when the transport is stopped; ignored while rolling.
    pub start_time: Option<f64>,
    /// Punch range (seconds): only audio played inside `[punch_in, punch_out)` is recorded.
    #[serde(default)]
    pub punch_in: Option<f64>,
    #[serde(default)]
    pub punch_out: Option<f64>,
    /// Bars of metronome before the record point when the transport starts from stopped
    /// (0–8): the transport rolls from that far earlier (before 0 if need be), and the take
    /// still starts exactly at the record point.
    #[serde(default)]
    pub count_in_bars: Option<u32>,
}

/// Most bars of count-in a take may ask for.
pub const MAX_COUNT_IN_BARS: u32 = 8;

/// A project's metronome (§12): clicks on the beat grid of its tempo and time signature in
/// what the musician hears (the sound card, the monitor stream), never in takes or mixdowns.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MetronomeSettings {
    pub enabled: bool,
    /// Linear gain of a beat's click, 0–1 (the accented downbeat is 1.5 times louder, up to 1).
    pub level: f32,
    /// Whether the first beat of each bar is accented (higher and louder).
    pub accent: bool,
}

impl Default for MetronomeSettings {
    fn default() -> Self {
        Self { enabled: false, level: 0.5, accent: true }
    }
}

impl MetronomeSettings {
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.level) {
            return Err("level: must be between 0 and 1".into());
        }
        Ok(())
    }
}

/// A recording that has begun: the journal row exists and the capture is armed on the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RecordingStarted {
    pub session_id: RecordingSessionId,
    pub track_id: TrackId,
    pub device_id: String,
    /// The transport position (seconds) the take starts from.
    pub start_time: f64,
}

/// A recording that has ended: its take's clip exists (status `processing` until finalised).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RecordingStopped {
    pub session_id: RecordingSessionId,
    pub track_id: TrackId,
    /// The newest take's clip (the active one); None when nothing was captured.
    pub clip_id: Option<ClipId>,
    /// Every take's clip, oldest first: one per loop pass.
    #[serde(default)]
    pub clip_ids: Vec<ClipId>,
    /// The `finalize_capture` job turning the capture into the clips' audio.
    #[serde(default)]
    pub finalize_job_id: Option<crate::JobId>,
    /// Timeline position of the take, seconds and frames (after latency compensation).
    pub start: f64,
    pub start_frame: i64,
    pub frames: u64,
    /// Frames lost because storage could not keep up (0 on a healthy node).
    pub dropped_frames: u64,
    /// Frames of a client device's take whose microphone audio never arrived (silent).
    #[serde(default)]
    pub missing_frames: u64,
}

/// What kind of row of a project changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ModelItem {
    /// The project's own settings (name, description, tempo, time signature).
    Project,
    Track,
    Clip,
    LoopRegion,
}

impl ModelItem {
    /// The item in words, for messages.
    pub fn noun(self) -> &'static str {
        match self {
            Self::Project => "project",
            Self::Track => "track",
            Self::Clip => "clip",
            Self::LoopRegion => "loop region",
        }
    }
}

/// How it changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ModelAction {
    Created,
    Updated,
    Deleted,
}

/// A change to a project's model made in the database, for its engine and its clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ModelChange {
    pub item: ModelItem,
    pub id: uuid::Uuid,
    pub action: ModelAction,
    /// Who made it; `None` for the system's own changes (a take finalised, an import done).
    #[serde(default)]
    pub actor: Option<crate::user::Actor>,
    /// The fields an update set (empty for a row created or deleted).
    #[serde(default)]
    pub fields: Vec<String>,
}

impl ModelChange {
    pub fn new(
        item: ModelItem,
        id: impl Into<uuid::Uuid>,
        action: ModelAction,
        actor: Option<crate::user::Actor>,
    ) -> Self {
        Self { item, id: id.into(), action, actor, fields: Vec::new() }
    }
}

#[async_trait::async_trait]
pub trait AudioControl: Send + Sync {
    /// Loads (or reloads) the project's tracks and ready clips into an engine.
    async fn load(&self, project: ProjectId) -> TransportResult<LoadSummary>;
    /// Starts playback, from `position` seconds if given. Loads the project first if needed.
    async fn play(&self, project: ProjectId, position: Option<f64>) -> TransportResult<TransportStatus>;
    async fn pause(&self, project: ProjectId) -> TransportResult<TransportStatus>;
    async fn resume(&self, project: ProjectId) -> TransportResult<TransportStatus>;
    /// Stops and rewinds to 0. Every take recording in the project ends first, saved as by
    /// `record_stop` in the name of `actor` (■ during a take ends it, on every input).
    async fn stop(&self, project: ProjectId, actor: Option<&crate::user::Actor>) -> TransportResult<TransportStatus>;
    /// Moves the playhead to `position` seconds, clamped to the project.
    async fn seek(&self, project: ProjectId, position: f64) -> TransportResult<TransportStatus>;
    async fn status(&self, project: ProjectId) -> TransportResult<TransportStatus>;
    /// Sets the project's metronome.
    async fn set_metronome(&self, project: ProjectId, metronome: MetronomeSettings)
    -> TransportResult<TransportStatus>;
    /// Starts recording a take on `request.track_id` (a track of `project`).
    async fn record_start(&self, project: ProjectId, request: RecordRequest) -> TransportResult<RecordingStarted>;
    /// Stops a recording of `project` on `track` (when given, it must be the session's track;
    /// any other pair is `NotFound` and changes nothing); its clip id is returned at once.
    /// `actor` is who stopped it: the recording is their change, theirs to undo.
    async fn record_stop(
        &self,
        project: ProjectId,
        track: Option<TrackId>,
        session: RecordingSessionId,
        actor: Option<&crate::user::Actor>,
    ) -> TransportResult<RecordingStopped>;
    /// A committed change (§13): a loaded engine plays the stored project from its next block
    /// (re-read, so a missed revision is caught up), and the project's clients are told.
    /// Errors: the change could not be handed on (the bus is down): the outbox tries again.
    async fn announce(&self, change: &crate::history::ProjectChange) -> TransportResult<()>;
    /// The project is being deleted: its takes are stopped and discarded, its engine unloaded,
    /// its sockets closed with a reason.
    async fn project_deleted(&self, project: ProjectId);
    /// A right was taken away (§8): every process closes the sockets and detaches the client
    /// devices that relied on it, at once.
    /// Errors: the other processes could not be told (the bus is down): the outbox tries again.
    async fn revoked(&self, revocation: crate::user::Revocation) -> TransportResult<()>;
    /// Detaches the project's client device, connected or away (a take it records is saved
    /// with what arrived); the node's clock paces the engine again.
    async fn detach_device(&self, project: ProjectId) -> TransportResult<TransportStatus>;
    /// The input devices takes can be recorded from: the virtual devices every node has, and
    /// the sound-card inputs of a node that has them.
    fn input_devices(&self) -> Vec<crate::device::InputDevice> {
        crate::device::virtual_devices(crate::units::SampleRate::DEFAULT.hz())
    }
}
