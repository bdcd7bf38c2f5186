//! The socket protocol in types: what clients send, the control commands (shared by the
//! socket, the internal node route and the API's node client), and how errors travel. A frame
//! is parsed once into these types and then applied; nothing downstream reads raw JSON.

use audiolab_domain::transport::{RecordRequest, TransportError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// A text frame from a client: `{"type", …}`.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    /// `{"type":"ping"}` → `pong`.
    Ping,
    /// `{"type":"subscribe"}`: join the project's broadcasts without a command.
    Subscribe,
    /// `{"type":"control","id","command","data"}` → one `control_response`.
    Control { id: Value, command: ControlCommand },
}

/// A control command and its arguments (`data`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// Internal: the project was deleted; stop its takes, unload it, close its sockets.
    Unload {},
}

/// A mixer change of one track; absent fields stay as they are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
            Self::SetTrack(_) => "set_track",
            Self::RecordStart(_) => "record_start",
            Self::RecordStop { .. } => "record_stop",
            Self::Unload {} => "unload",
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
            Some("subscribe") => Ok(Self::Subscribe),
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

impl From<Result<Value, TransportError>> for ControlOutcome {
    fn from(outcome: Result<Value, TransportError>) -> Self {
        match outcome {
            Ok(result) => Self { success: true, result: Some(result), error: None },
            Err(error) => Self { success: false, result: None, error: Some(error) },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_with_or_without_data_and_refuse_what_does_not_fit() {
        assert_eq!(ClientMessage::parse(r#"{"type":"ping"}"#), Ok(ClientMessage::Ping));
        assert_eq!(ClientMessage::parse(r#"{"type":"subscribe"}"#), Ok(ClientMessage::Subscribe));
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
        let wire = serde_json::to_value(ControlOutcome::from(Err::<Value, _>(error.clone()))).unwrap();
        assert_eq!(
            wire,
            serde_json::json!({"success": false, "error": {"code": "not_found", "message": "loop region"}})
        );
        let back: ControlOutcome = serde_json::from_value(wire).unwrap();
        assert_eq!(back.error, Some(error));
    }
}
