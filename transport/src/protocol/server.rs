//! What the server sends: replies, broadcasts and the typed result of each command.

use super::{ErrorCode, MicReceived};
use audiolab_domain::transport::{ModelAction, ModelItem, TransportError};
use audiolab_domain::user::Actor;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// What a connection attaches as: `device` plays the mix, sends its microphone and paces
/// the project; `listener` receives the device's `MON` stream only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttachRole {
    Device,
    Listener,
}

/// The answer to `attach`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Attached {
    pub role: AttachRole,
    /// The device (`client:<name>`); for a listener, the device it hears, if one is attached.
    pub device_id: Option<String>,
    pub sample_rate: u32,
    /// Frames the node renders ahead of what the device reported played (0 for a listener).
    pub lookahead_frames: u32,
    /// The stream id of the `MON` frames: each device attached gets its own (a resumed device
    /// keeps it), so frames of another device are never mistaken for these. For a listener, the
    /// attached device's stream, or 0 while none is (`device_changed` tells the next one).
    pub monitor_stream: u32,
    /// Whether this resumed a device that was already attached (its connection had been lost):
    /// the fields below say what the node has, and the `MON` frames not reported played follow
    /// again (drop those whose `seq` you have).
    pub resumed: bool,
    /// The round trip the device's takes are placed with, in frames.
    pub latency_frames: u64,
    /// Where it came from: `given` (in `attach`), or the stored round trip's source
    /// (`measured`, `estimated`, `manual`; `PUT /api/audio/devices/{id}/latency`); `null`
    /// when there is none (takes are then placed with 0).
    pub latency_source: Option<String>,
    /// `MON` frames the node knows were played, in all (continue counting from here).
    pub consumed: u64,
    /// The client frame up to which played runs were reported (report the runs after it).
    pub played_until: Option<u64>,
    /// Per microphone stream, where to resend from.
    pub microphone: Vec<MicReceived>,
}

/// A frame the server sends: `{"type", "data"}`. Every message the node sends is one of these.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The answer to `ping`; the first frame the server sends on a connection.
    Pong {
        server_time: f64,
    },
    /// A frame that could not be understood, or messages a slow client missed.
    Error {
        message: String,
    },
    /// The answer to one `control` message.
    ControlResponse(ControlResponse),
    /// The answer to `attach`: the connection is the project's audio device. `MON` frames of
    /// stream `monitor_stream` follow while the transport rolls, as far ahead of what the client
    /// reports played as `lookahead_frames`.
    Attached(Attached),
    /// To a listener: the project's device changed. `MON` frames of `monitor_stream` follow
    /// (their `seq` counting from 0); frames of any other stream are no longer this device's.
    /// Both fields are `null` when the device detached.
    DeviceChanged {
        device_id: Option<String>,
        monitor_stream: Option<u32>,
    },
    /// Every `MIC` frame of the stream before `next_seq` has arrived (sent every 50 ms while
    /// that moves).
    MicAck(MicReceived),
    /// The answer to `detach`, or the node's notice that it detached this connection's device
    /// (the owner detached it, the user's right to record was taken away, or it was away too
    /// long): the node's own clock paces the project again.
    Detached {
        /// The device that detached (`null` for a listener).
        device_id: Option<String>,
        /// Why the node detached it; `null` for an answer to `detach`.
        reason: Option<String>,
    },
    /// Every 50 ms while the transport rolls.
    PositionUpdate(PositionUpdate),
    PlaybackStarted(PlaybackEvent),
    PlaybackPaused(PlaybackEvent),
    /// The transport stopped (a command, or the end of the project: `reason: "end"`).
    PlaybackStopped(PlaybackEvent),
    PlaybackSeeked(PlaybackEvent),
    LoopEvent(LoopEvent),
    RecordingStatus(RecordingEvent),
    /// A track's mixer or metadata changed, from any client or the REST API.
    TrackUpdate(TrackState),
    /// A track, clip or loop region was created, changed or deleted; the engine plays the
    /// change from its next block.
    ModelChanged {
        project_id: Uuid,
        item: ModelItem,
        id: Uuid,
        action: ModelAction,
        /// Who made the change; absent for the system's own (a take finalised, an import done).
        #[serde(skip_serializing_if = "Option::is_none")]
        actor: Option<Actor>,
        /// The fields an update set (empty when the row was created or deleted).
        #[serde(default)]
        fields: Vec<String>,
        /// The project revision this change made (§13).
        revision: i64,
    },
    /// The answer to `subscribe {since}`: every change after `since`, oldest first, up to the
    /// project's current `revision`.
    Missed {
        project_id: Uuid,
        revision: i64,
        changes: Vec<MissedChange>,
    },
    /// The answer to `subscribe {since}` when too much changed (or history no longer reaches
    /// back that far): read the project again; it is at `revision`.
    Resync {
        project_id: Uuid,
        revision: i64,
    },
    /// A job of the project moved on.
    JobProgress(JobProgress),
    /// A clip's audio is ready to play (an import, a finalised take).
    ClipReady {
        project_id: Uuid,
        clip_id: Uuid,
        #[serde(skip_serializing_if = "Option::is_none")]
        session_id: Option<Uuid>,
    },
}

impl ServerMessage {
    /// The serialised frame, shared by every receiver.
    pub fn frame(&self) -> std::sync::Arc<str> {
        serde_json::to_string(self).unwrap_or_default().into()
    }
}

/// What a command answers when it succeeds, one shape per command (§4): `load` a
/// `LoadSummary`; `status`, `play`, `pause`, `resume`, `stop`, `seek`, `loop_enable`,
/// `loop_disable`, `metronome` and `detach_device` the `TransportStatus`; `record_start` a
/// `RecordingStarted`; `record_stop` a `RecordingStopped`; `set_track` the track as
/// `track_update` carries it; `undo` and `redo` the revision they made.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum CommandResult {
    Loaded(audiolab_domain::transport::LoadSummary),
    Status(audiolab_domain::transport::TransportStatus),
    RecordingStarted(audiolab_domain::transport::RecordingStarted),
    RecordingStopped(audiolab_domain::transport::RecordingStopped),
    Track(TrackState),
    Revision(Reverted),
    Comp(CompState),
    /// The internal commands (`unload`, `announce`) answer nothing.
    Nothing,
}

/// A track's comp (§14), as `comp_select` answers it and `GET /api/tracks/{id}/comp` reads it.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct CompState {
    pub track_id: Uuid,
    /// In timeline order, never overlapping.
    pub segments: Vec<SegmentState>,
    /// The equal-power crossfade at each boundary between segments.
    pub crossfade_ms: u32,
    /// The revision the command made; null when it changed nothing.
    pub revision: Option<i64>,
}

/// A stretch of the timeline played from one take: seconds, and frames at the project rate.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct SegmentState {
    pub take_id: Uuid,
    pub start: f64,
    pub end: f64,
    pub start_frame: i64,
    pub end_frame: i64,
}

impl CompState {
    pub fn new(track_id: Uuid, comp: &audiolab_domain::comp::Comp, rate: u32, revision: Option<i64>) -> Self {
        let seconds = |frames: audiolab_domain::Frames| frames.get() as f64 / f64::from(rate);
        let segments = comp
            .segments
            .iter()
            .map(|s| SegmentState {
                take_id: s.take_id.0,
                start: seconds(s.start),
                end: seconds(s.end),
                start_frame: s.start.get(),
                end_frame: s.end.get(),
            })
            .collect();
        Self { track_id, segments, crossfade_ms: comp.crossfade_ms, revision }
    }
}

/// The answer to `undo` and `redo`: the new revision and what it did.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Reverted {
    pub revision: i64,
    pub summary: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ControlResponse {
    /// The `id` the client sent, echoed.
    pub id: Value,
    pub command: String,
    pub success: bool,
    /// The command's result: its shape is the command's (see `CommandResult`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<CommandResult>,
    /// Why the command failed, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<ErrorCode>,
}

impl ControlResponse {
    pub fn new(id: Value, command: &str, outcome: Result<CommandResult, TransportError>) -> Self {
        let command = command.to_owned();
        match outcome {
            Ok(result) => Self { id, command, success: true, result: Some(result), error: None, code: None },
            Err(error) => Self {
                id,
                command,
                success: false,
                result: None,
                code: Some(ErrorCode::from(&error)),
                error: Some(error.to_string()),
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct PositionUpdate {
    pub project_id: Uuid,
    /// Playhead in seconds.
    pub position: f64,
    /// Playhead in frames at `sample_rate`.
    pub frame: i64,
    pub sample_rate: u32,
    pub playing: bool,
    pub recording: bool,
    /// Server clock (Unix seconds) when `frame` was read, to extrapolate from.
    pub server_time: f64,
    /// Each track's output meter since the previous update: its loudest sample after fader and
    /// pan, per channel (linear, 1.0 = full scale). Only tracks that sounded are listed; a
    /// track not listed was silent.
    pub levels: Vec<TrackLevel>,
}

/// One track's output peaks over an update's interval.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct TrackLevel {
    /// The track's `track_index`.
    pub track_index: u8,
    pub left: f32,
    pub right: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct PlaybackEvent {
    pub project_id: Uuid,
    pub position: f64,
    pub frame: i64,
    pub status: audiolab_domain::transport::TransportState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum LoopEvent {
    /// Looping `loop_region_id` began.
    Started { project_id: Uuid, loop_region_id: Uuid, iteration: u32, start: f64, end: f64, repeat_count: Option<u32> },
    /// The playhead wrapped to the loop start; `iteration` is the pass now playing.
    Wrapped { project_id: Uuid, iteration: u32, position: f64 },
    /// The last pass ended; playback goes on past the loop.
    Ended { project_id: Uuid, position: f64 },
    /// Looping was turned off.
    Disabled { project_id: Uuid },
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RecordingEvent {
    Started {
        project_id: Uuid,
        session_id: Uuid,
        track_id: Uuid,
        start_time: f64,
    },
    /// Every 250 ms while recording: length and input level.
    Progress {
        project_id: Uuid,
        session_id: Uuid,
        frames: u64,
        seconds: f64,
        level: f32,
        level_db: f32,
        dropped_frames: u64,
    },
    /// The take stopped; `clip_id` is its newest take's clip (none when nothing was captured).
    Stopped {
        project_id: Uuid,
        session_id: Uuid,
        clip_id: Option<Uuid>,
        frames: u64,
        start: Option<f64>,
    },
    /// The take's audio is finalised.
    Saved {
        project_id: Uuid,
        session_id: Uuid,
        clip_ids: Vec<Uuid>,
    },
    Failed {
        project_id: Uuid,
        session_id: Option<Uuid>,
        error: Option<String>,
    },
}

/// A track as clients see it (the same fields as the REST API).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct TrackState {
    pub id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    pub track_index: u8,
    pub volume: f64,
    pub pan: f64,
    pub muted: bool,
    pub soloed: bool,
    pub color: Option<String>,
    pub record_enabled: bool,
    pub input_device_id: Option<String>,
    pub monitoring: bool,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// Who changed it, in a `track_update` broadcast.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<Actor>,
    /// The project revision of the change, in a `track_update` broadcast (§13).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
}

impl From<&audiolab_domain::track::Track> for TrackState {
    fn from(track: &audiolab_domain::track::Track) -> Self {
        Self {
            id: track.id.0,
            project_id: track.project_id.0,
            name: track.name.clone(),
            track_index: track.index.get(),
            volume: track.volume.get(),
            pan: track.pan.get(),
            muted: track.muted,
            soloed: track.soloed,
            color: track.color.clone(),
            record_enabled: track.record_enabled,
            input_device_id: track.input_device_id.clone(),
            monitoring: track.monitoring,
            updated_at: track.updated_at,
            actor: None,
            revision: None,
        }
    }
}

/// One row a missed change touched, with the revision it was made at.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct MissedChange {
    pub revision: i64,
    pub item: ModelItem,
    pub id: Uuid,
    pub action: ModelAction,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<Actor>,
    pub fields: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct JobProgress {
    pub project_id: Uuid,
    pub job_id: Uuid,
    pub kind: audiolab_domain::job::JobKind,
    pub status: audiolab_domain::job::JobStatus,
    pub progress: f64,
    pub error: Option<String>,
}
