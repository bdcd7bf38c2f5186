//! What clients send: the socket's text messages and the control commands (shared by the socket,
//! the internal node route and the API's node client), parsed once into types.

use super::AttachRole;
use audiolab_domain::transport::{RecordRequest, TransportError};
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
    /// A swipe (§14): take `take_id` of track `track_id` plays `[start, end)` (seconds) of the
    /// timeline; what played there gives way (it stays a lane). The result is the track's comp.
    CompSelect {
        track_id: Uuid,
        take_id: Uuid,
        start: f64,
        end: f64,
    },
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
            "comp_select" => Some("CompState"),
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
            Self::CompSelect { .. } => "comp_select",
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
