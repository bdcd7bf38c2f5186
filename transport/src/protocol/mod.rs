//! The socket protocol in types: what clients send, the control commands (shared by the
//! socket, the internal node route and the API's node client), and how errors travel. A frame
//! is parsed once into these types and then applied; nothing downstream reads raw JSON.

mod asyncapi;
mod client;
mod error;
mod server;

pub use asyncapi::asyncapi_json;
pub use client::*;
pub use error::*;
pub use server::*;

#[cfg(test)]
mod tests {
    use super::*;
    use audiolab_domain::transport::TransportError;

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
