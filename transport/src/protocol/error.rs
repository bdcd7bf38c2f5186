//! How a failed command travels: the internal route's outcome and the error codes clients match on.

use super::CommandResult;
use audiolab_domain::transport::TransportError;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

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
