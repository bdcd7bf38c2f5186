//! The socket protocol in types: what clients send, the control commands (shared by the
//! socket, the internal node route and the API's node client), and how errors travel. A frame
//! is parsed once into these types and then applied; nothing downstream reads raw JSON.

use audiolab_domain::transport::{ModelAction, ModelItem, RecordRequest, TransportError};
use audiolab_domain::user::Actor;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// A text frame from a client: `{"type", …}`.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    /// `{"type":"ping"}` → `pong`.
    Ping,
    /// `{"type":"subscribe","data":{"since":REV}}`: join the project's broadcasts without a
    /// command; with `since`, first hear what changed after that revision (§13).
    Subscribe { since: Option<i64> },
    /// `{"type":"control","id","command","data"}` → one `control_response`.
    Control { id: Value, command: ControlCommand },
    /// `{"type":"attach","data":{…}}`: become the project's audio device (§10) → `attached`.
    Attach(Attach),
    /// `{"type":"detach"}`: stop being the project's device; the node's clock takes over.
    Detach,
    /// `{"type":"played","data":{…}}`: what the attached device played of the monitor stream.
    Played(Played),
}

/// A request to attach this connection as the project's client audio device: the client plays
/// the `MON` stream, sends its microphone as `MIC` frames, and is the project's clock.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Attach {
    pub role: AttachRole,
    /// The device's name; it is listed as `client:<name>` (1–40 letters, digits, `_`, `-`, `.`).
    /// Attaching again under the same name (the same user, after a lost connection) resumes
    /// the device: the answer says what the node has, and the client resends the rest.
    #[serde(default)]
    pub name: String,
    /// Frames the node may render ahead of what the client reports played (256–96,000;
    /// default 4,800, 100 ms at 48 kHz). Size it from the network's jitter.
    #[serde(default)]
    pub lookahead_frames: Option<u32>,
    /// The microphone's channels, 1 (default) or 2.
    #[serde(default)]
    pub channels: Option<u8>,
    /// The round trip (output + input latency) in frames, as the client measured it: its
    /// microphone frame `c` was heard against what it played at `c − latency_frames`. When
    /// absent, the round trip stored for this user's device is used.
    #[serde(default)]
    pub latency_frames: Option<u32>,
}

/// What the device played: the total `MON` frames it has played since it attached (which lets
/// the node render that much further), and the runs of its own clock's frames that played
/// consecutive timeline frames (for placing its microphone).
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Played {
    pub consumed: u64,
    #[serde(default)]
    pub runs: Vec<PlayedRun>,
}

/// Client frames `client..client + frames` played timeline frames `timeline..timeline + frames`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlayedRun {
    pub client: u64,
    pub timeline: i64,
    pub frames: u64,
}

/// Every `MIC` frame of `stream` before `next_seq` has reached the node: the client may forget
/// them, and after a reconnect resends from `next_seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub struct MicReceived {
    pub stream: u32,
    pub next_seq: u32,
}

/// What a connection attaches as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachAs {
    /// The project's device `client:<name>`, with this lookahead.
    Device {
        device_id: String,
        lookahead: u32,
    },
    Listener,
}

impl Attach {
    pub const DEFAULT_LOOKAHEAD: u32 = 4_800;

    /// What the request attaches as, if it is valid.
    pub fn check(&self) -> Result<AttachAs, String> {
        if self.role == AttachRole::Listener {
            return Ok(AttachAs::Listener);
        }
        let name_ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
        if self.name.is_empty() || self.name.len() > 40 || !self.name.chars().all(name_ok) {
            return Err("attach: name must be 1 to 40 letters, digits, '_', '-' or '.'".into());
        }
        let lookahead = self.lookahead_frames.unwrap_or(Self::DEFAULT_LOOKAHEAD);
        if !(256..=96_000).contains(&lookahead) {
            return Err("attach: lookahead_frames must be between 256 and 96000".into());
        }
        if !matches!(self.channels, None | Some(1 | 2)) {
            return Err("attach: channels must be 1 or 2".into());
        }
        if self.latency_frames.is_some_and(|l| l > 192_000) {
            return Err("attach: latency_frames must be at most 192000 (one second at 192 kHz)".into());
        }
        Ok(AttachAs::Device { device_id: format!("client:{}", self.name), lookahead })
    }
}

/// A control command and its arguments (`data`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "command", content = "data", rename_all = "snake_case", deny_unknown_fields)]
pub enum ControlCommand {
    /// (Re)load the project into an engine.
    Load {},
    /// The transport's state.
    Status {},
    /// Roll, from `position` seconds when given.
    Play {
        #[serde(default)]
        position: Option<f64>,
    },
    Pause {},
    Resume {},
    /// Stop and rewind to 0.
    Stop {},
    /// Move the playhead to `position` seconds.
    Seek {
        position: f64,
    },
    /// Loop this region of the project (making it the project's enabled loop).
    LoopEnable {
        loop_region_id: Uuid,
    },
    /// Stop looping.
    LoopDisable {},
    /// Set the metronome (§12).
    Metronome(audiolab_domain::transport::MetronomeSettings),
    /// Change a track's mixer.
    SetTrack(SetTrack),
    /// Record a take on an armed track.
    RecordStart(RecordRequest),
    /// Stop a take of this project (on `track_id`, when given).
    RecordStop {
        session_id: Uuid,
        #[serde(default)]
        track_id: Option<Uuid>,
    },
    /// Owner only: detaches the project's client device, connected or away (a take it records
    /// is saved with what arrived; its connection is told `detached` with the reason); the
    /// node's clock paces the project again.
    DetachDevice {},
    /// Internal route only (refused on the socket): the project was deleted; stop its takes,
    /// unload it, close its sockets.
    Unload {},
    /// Undo the sender's latest change of the project (§13); the result is the new history
    /// entry. Refused (`conflict`) when there is nothing to undo or someone else changed the
    /// same thing since.
    Undo {},
    /// Redo the sender's latest undo; refused as `undo`.
    Redo {},
    /// Internal route only: a change committed by an API process, for the project's engine
    /// and clients on this node.
    Announce(audiolab_domain::history::ProjectChange),
}

/// What an API process sends a node's internal route: a command, and the user it acts for
/// (named in the history of what the command changes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InternalCommand {
    #[serde(default)]
    pub actor: Option<Actor>,
    pub command: ControlCommand,
}

/// A mixer change of one track; absent fields stay as they are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetTrack {
    pub track_id: Uuid,
    #[serde(default)]
    pub volume: Option<f64>,
    #[serde(default)]
    pub pan: Option<f64>,
    #[serde(default)]
    pub muted: Option<bool>,
    #[serde(default)]
    pub soloed: Option<bool>,
}

impl ControlCommand {
    /// Parses `{"command", "data"}`; absent or null `data` is `{}`.
    pub fn parse(command: &str, data: Option<Value>) -> Result<Self, TransportError> {
        let data = match data {
            None | Some(Value::Null) => Value::Object(Default::default()),
            Some(data) => data,
        };
        serde_json::from_value(serde_json::json!({"command": command, "data": data}))
            .map_err(|e| TransportError::Invalid(format!("{command}: {e}")))
    }

    /// Whether only API processes may send it (over the internal route), never a socket client.
    pub fn is_internal(&self) -> bool {
        matches!(self, Self::Unload {} | Self::Announce(_))
    }

    /// What the sender's role must allow: reading the status, or changing the project.
    pub fn need(&self) -> audiolab_domain::user::Need {
        use audiolab_domain::user::Need;
        match self {
            Self::Status {} => Need::Read,
            Self::Unload {} | Self::Announce(_) | Self::DetachDevice {} => Need::Own,
            _ => Need::Change,
        }
    }

    /// The schema of what command `name` answers in `result` (a [`CommandResult`] variant);
    /// `None` for one that answers nothing.
    pub fn result_schema(name: &str) -> Option<&'static str> {
        match name {
            "load" => Some("LoadSummary"),
            "record_start" => Some("RecordingStarted"),
            "record_stop" => Some("RecordingStopped"),
            "set_track" => Some("TrackState"),
            "undo" | "redo" => Some("Reverted"),
            "unload" | "announce" => None,
            _ => Some("TransportStatus"),
        }
    }

    /// The command's name, as clients send it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Load {} => "load",
            Self::Status {} => "status",
            Self::Play { .. } => "play",
            Self::Pause {} => "pause",
            Self::Resume {} => "resume",
            Self::Stop {} => "stop",
            Self::Seek { .. } => "seek",
            Self::LoopEnable { .. } => "loop_enable",
            Self::LoopDisable {} => "loop_disable",
            Self::Metronome(_) => "metronome",
            Self::SetTrack(_) => "set_track",
            Self::RecordStart(_) => "record_start",
            Self::RecordStop { .. } => "record_stop",
            Self::Unload {} => "unload",
            Self::DetachDevice {} => "detach_device",
            Self::Undo {} => "undo",
            Self::Redo {} => "redo",
            Self::Announce(_) => "announce",
        }
    }
}

/// The envelope every client frame shares; the command is parsed from it in a second step so
/// that each kind of mistake gets its own message.
#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    id: Value,
    command: Option<String>,
    data: Option<Value>,
}

/// Why a client frame could not be understood; answered with an `error` message.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// Not a message at all (bad JSON, no type, unknown type).
    Malformed(String),
    /// A control message whose command cannot run as given; answered as a failed
    /// `control_response` carrying the request id.
    BadCommand { id: Value, command: String, error: TransportError },
}

impl ClientMessage {
    pub fn parse(text: &str) -> Result<Self, Refusal> {
        let envelope: Envelope = serde_json::from_str(text).map_err(|_| Refusal::Malformed("malformed JSON".into()))?;
        match envelope.kind.as_deref() {
            Some("ping") => Ok(Self::Ping),
            Some("subscribe") => {
                let since = match envelope.data.as_ref().and_then(|d| d.get("since")) {
                    None | Some(Value::Null) => None,
                    Some(since) => Some(since.as_i64().filter(|r| *r >= 0).ok_or_else(|| {
                        Refusal::Malformed("subscribe: since must be a revision (an integer from 0)".into())
                    })?),
                };
                Ok(Self::Subscribe { since })
            }
            Some("detach") => Ok(Self::Detach),
            Some(kind @ ("attach" | "played")) => {
                let data = envelope.data.unwrap_or(Value::Null);
                let bad = |e: serde_json::Error| Refusal::Malformed(format!("{kind}: {e}"));
                if kind == "attach" {
                    serde_json::from_value(data).map(Self::Attach).map_err(bad)
                } else {
                    serde_json::from_value(data).map(Self::Played).map_err(bad)
                }
            }
            Some("control") => {
                let name = envelope.command.unwrap_or_default();
                match ControlCommand::parse(&name, envelope.data) {
                    Ok(command) => Ok(Self::Control { id: envelope.id, command }),
                    Err(error) => Err(Refusal::BadCommand { id: envelope.id, command: name, error }),
                }
            }
            Some(other) => Err(Refusal::Malformed(format!("unknown message type {other:?}"))),
            None => Err(Refusal::Malformed("a message needs a \"type\"".into())),
        }
    }
}

/// The internal route's answer: `{"success": true, "result"}` or `{"success": false, "error":
/// {"code", "message"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlOutcome {
    pub success: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<TransportError>,
}

impl From<Result<CommandResult, TransportError>> for ControlOutcome {
    fn from(outcome: Result<CommandResult, TransportError>) -> Self {
        match outcome {
            Ok(result) => Self { success: true, result: serde_json::to_value(result).ok(), error: None },
            Err(error) => Self { success: false, result: None, error: Some(error) },
        }
    }
}

/// The error codes a failed command carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed or a value is out of range.
    Invalid,
    /// The project, track, clip, loop region or recording session does not exist here.
    NotFound,
    /// The request conflicts with the state (a track already recording, a device busy).
    Conflict,
    /// The caller's role in the project does not allow this (viewers change nothing).
    Forbidden,
    /// The engine or a dependency cannot take the request now; retry.
    Unavailable,
    /// An unexpected failure; it has been logged.
    Internal,
}

impl From<&TransportError> for ErrorCode {
    fn from(error: &TransportError) -> Self {
        match error {
            TransportError::NotFound(_) => Self::NotFound,
            TransportError::Invalid(_) => Self::Invalid,
            TransportError::Conflict(_) => Self::Conflict,
            TransportError::Forbidden(_) => Self::Forbidden,
            TransportError::Unavailable(_) => Self::Unavailable,
            TransportError::Internal(_) => Self::Internal,
        }
    }
}

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
    /// The stream id of the `MON` frames.
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
    pub fn frame(&self) -> crate::hub::Message {
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
    /// The internal commands (`unload`, `announce`) answer nothing.
    Nothing,
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

/// The AsyncAPI 3 document of the socket, generated from the types above, as committed under
/// `openapi/asyncapi.json` and served at `/asyncapi.json`.
pub fn asyncapi_json() -> String {
    let settings = schemars::generate::SchemaSettings::draft07().with(|s| {
        s.definitions_path = "/components/schemas".into();
        s.meta_schema = None;
    });
    let mut generator = settings.for_serialize().into_generator();
    let server = generator.subschema_for::<ServerMessage>();
    let mut schemas = generator.take_definitions(true);
    let mut generator = schemars::generate::SchemaSettings::draft07()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        })
        .for_deserialize()
        .into_generator();
    let command = generator.subschema_for::<ControlCommand>();
    let attach = generator.subschema_for::<Attach>();
    let played = generator.subschema_for::<Played>();
    schemas.extend(generator.take_definitions(true));
    // A command is read from inside the `control` frame, beside `type` and `id`, and `data`
    // may be left out (it is then `{}`): say so, or validators would refuse real frames.
    if let Some(variants) = schemas.get_mut("ControlCommand").and_then(|c| c["oneOf"].as_array_mut()) {
        for variant in variants.iter_mut().filter_map(Value::as_object_mut) {
            variant.remove("additionalProperties");
            variant.insert("required".into(), serde_json::json!(["command"]));
            // What the command's `control_response` carries in `result` when it succeeds.
            let name = variant.get("properties").and_then(|p| p["command"]["const"].as_str()).unwrap_or_default();
            let result = match ControlCommand::result_schema(name) {
                Some(schema) => serde_json::json!({"$ref": format!("#/components/schemas/{schema}")}),
                None => serde_json::json!({"type": "null"}),
            };
            variant.insert("x-result".into(), result);
        }
    }
    let kind = |name: &str| serde_json::json!({"type": "string", "const": name});
    let client = serde_json::json!({
        "oneOf": [
            {"title": "ping", "description": "Answered by `pong`.", "type": "object",
             "properties": {"type": kind("ping")}, "required": ["type"]},
            {"title": "subscribe", "description": "Join the project's broadcasts without a command. With `data.since` (a revision), first get `missed` with every change after it, or `resync` when too much changed.",
             "type": "object", "properties": {"type": kind("subscribe"), "data": {"type": "object",
                "properties": {"since": {"type": ["integer", "null"], "minimum": 0}}}}, "required": ["type"]},
            {"title": "attach", "description": "Become the project's audio device (answered by `attached`): the client plays `MON` binary frames, sends `MIC` ones, and reports what it played; it is then the project's clock.",
             "type": "object", "properties": {"type": kind("attach"), "data": attach.to_value()}, "required": ["type", "data"]},
            {"title": "played", "description": "What the attached device played: `consumed` MON frames in all, and runs of its clock frames against timeline frames.",
             "type": "object", "properties": {"type": kind("played"), "data": played.to_value()}, "required": ["type", "data"]},
            {"title": "detach", "description": "Stop being the project's device (answered by `detached`).",
             "type": "object", "properties": {"type": kind("detach")}, "required": ["type"]},
            {"title": "control", "description": "One command, answered by one `control_response` carrying `id`.",
             "allOf": [
                {"type": "object", "properties": {"type": kind("control"),
                  "id": {"description": "Any JSON value, echoed in the response."}}, "required": ["type"]},
                command.to_value(),
             ]},
        ]
    });
    schemas.insert("ClientMessage".into(), client);
    let document = serde_json::json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "AudioLab transport",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The WebSocket of one project: JSON text frames `{\"type\", \"data\"}`. \
                The server sends nothing until the client speaks; `ping` is answered by `pong`, the first \
                frame of the connection. Each `control` message gets one `control_response`; broadcasts \
                go to every client that has spoken. Malformed frames get an `error` and the connection \
                stays open; frames over 64 KiB close it with 1009. Deleting the project closes it with \
                code 1000 and the reason. Binary frames carry audio (§10): a 32-byte little-endian header \
                (u8 magic 0xA7, u8 version 1, u8 kind 1 MIC | 2 MON, u8 format 1 f32 | 2 i16, u16 channels, \
                u16 frames, u32 stream, u32 seq, u64 frame, u64 reserved) and interleaved samples; a \
                malformed one is answered with an `error`, never fatal.",
        },
        "channels": {
            "transport": {
                "address": "/ws/audio/{project_id}",
                "parameters": {"project_id": {"description": "The project's id (a UUID)."}},
                "messages": {
                    "client": {"$ref": "#/components/messages/client"},
                    "server": {"$ref": "#/components/messages/server"},
                },
            },
        },
        "operations": {
            "send": {
                "action": "send",
                "channel": {"$ref": "#/channels/transport"},
                "messages": [{"$ref": "#/channels/transport/messages/client"}],
            },
            "receive": {
                "action": "receive",
                "channel": {"$ref": "#/channels/transport"},
                "messages": [{"$ref": "#/channels/transport/messages/server"}],
            },
        },
        "components": {
            "messages": {
                "client": {"name": "client", "title": "What a client sends",
                           "payload": {"$ref": "#/components/schemas/ClientMessage"}},
                "server": {"name": "server", "title": "What the server sends",
                           "payload": server.to_value()},
            },
            "schemas": schemas,
        },
    });
    serde_json::to_string_pretty(&document).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_with_or_without_data_and_refuse_what_does_not_fit() {
        assert_eq!(ClientMessage::parse(r#"{"type":"ping"}"#), Ok(ClientMessage::Ping));
        assert_eq!(ClientMessage::parse(r#"{"type":"subscribe"}"#), Ok(ClientMessage::Subscribe { since: None }));
        assert_eq!(
            ClientMessage::parse(r#"{"type":"subscribe","data":{"since":12}}"#),
            Ok(ClientMessage::Subscribe { since: Some(12) })
        );
        assert!(ClientMessage::parse(r#"{"type":"subscribe","data":{"since":"x"}}"#).is_err());
        let pause = ClientMessage::parse(r#"{"type":"control","id":"a","command":"pause"}"#);
        assert_eq!(pause, Ok(ClientMessage::Control { id: "a".into(), command: ControlCommand::Pause {} }));
        let play = ClientMessage::parse(r#"{"type":"control","id":1,"command":"play","data":{"position":2.5}}"#);
        assert_eq!(
            play,
            Ok(ClientMessage::Control { id: 1.into(), command: ControlCommand::Play { position: Some(2.5) } })
        );
        let Err(Refusal::BadCommand { id, command, error }) =
            ClientMessage::parse(r#"{"type":"control","id":"b","command":"seek","data":{"position":"soon"}}"#)
        else {
            panic!("a seek to a string is refused")
        };
        assert_eq!((id, command.as_str(), error.code()), ("b".into(), "seek", "invalid"));
        assert!(matches!(
            ClientMessage::parse(r#"{"type":"control","command":"explode"}"#),
            Err(Refusal::BadCommand { .. })
        ));
        assert_eq!(ClientMessage::parse("{"), Err(Refusal::Malformed("malformed JSON".into())));
        assert!(matches!(ClientMessage::parse(r#"{"type":"dance"}"#), Err(Refusal::Malformed(_))));
    }

    #[test]
    fn errors_travel_as_a_code_and_a_message_and_come_back_the_same() {
        let error = TransportError::not_found("loop region");
        let wire = serde_json::to_value(ControlOutcome::from(Err::<CommandResult, _>(error.clone()))).unwrap();
        assert_eq!(
            wire,
            serde_json::json!({"success": false, "error": {"code": "not_found", "message": "loop region"}})
        );
        let back: ControlOutcome = serde_json::from_value(wire).unwrap();
        assert_eq!(back.error, Some(error));
    }
}
