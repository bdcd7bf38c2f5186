//! Background jobs as the API shows them: kind, status, progress, result or error.

use crate::{JobId, ProjectId};
use chrono::{DateTime, Utc};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    FinalizeCapture,
    Mixdown,
    Import,
    Flatten,
}

impl JobKind {
    pub const ALL: [JobKind; 4] = [Self::FinalizeCapture, Self::Mixdown, Self::Import, Self::Flatten];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::FinalizeCapture => "finalize_capture",
            Self::Mixdown => "mixdown",
            Self::Import => "import",
            Self::Flatten => "flatten",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub const ALL: [JobStatus; 5] = [Self::Queued, Self::Running, Self::Succeeded, Self::Failed, Self::Cancelled];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// A finished job never changes status again.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: JobId,
    pub kind: JobKind,
    pub project_id: Option<ProjectId>,
    pub status: JobStatus,
    /// 0.0 to 1.0.
    pub progress: f64,
    /// The job's input, as submitted.
    pub payload: JobPayload,
    pub result: Option<JobResult>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Job {
    pub fn queued(project_id: Option<ProjectId>, payload: JobPayload, now: DateTime<Utc>) -> Self {
        Self {
            id: JobId::new(),
            kind: payload.kind(),
            project_id,
            status: JobStatus::Queued,
            progress: 0.0,
            payload,
            result: None,
            error: None,
            created_at: now,
            updated_at: now,
        }
    }
}

/// A `finalize_capture` job's payload: the recording whose capture becomes its takes' audio.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FinalizePayload {
    pub session_id: crate::RecordingSessionId,
}

/// What a job works on, one shape per kind; stored and sent tagged with `kind`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobPayload {
    FinalizeCapture(FinalizePayload),
    Mixdown(crate::mixdown::MixdownPayload),
    Import(ImportPayload),
    Flatten(FlattenPayload),
}

/// A `flatten` job's payload: the track whose comp becomes one clip, and who asked (the change
/// is theirs to undo).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FlattenPayload {
    pub track_id: crate::TrackId,
    pub actor: Option<crate::user::Actor>,
}

/// What a finished `flatten` job made: the clip the comp became.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FlattenResult {
    pub clip_id: crate::ClipId,
    pub frames: u64,
}

/// What a finished `finalize_capture` job made: its recording's clips, now ready.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FinalizeResult {
    pub session_id: crate::RecordingSessionId,
    pub clip_ids: Vec<crate::ClipId>,
    pub frames: u64,
}

/// What a finished `import` job made.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ImportResult {
    pub clip_id: crate::ClipId,
    pub frames: u64,
    pub source_sample_rate: u32,
    pub channels: u16,
    pub loudness_lufs: Option<f64>,
}

/// What a job produced, one shape per kind; stored and sent tagged with `kind`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobResult {
    FinalizeCapture(FinalizeResult),
    Mixdown(crate::mixdown::MixdownResult),
    Import(ImportResult),
    Flatten(FlattenResult),
}

impl JobPayload {
    pub fn kind(&self) -> JobKind {
        match self {
            Self::FinalizeCapture(_) => JobKind::FinalizeCapture,
            Self::Mixdown(_) => JobKind::Mixdown,
            Self::Import(_) => JobKind::Import,
            Self::Flatten(_) => JobKind::Flatten,
        }
    }

    /// Reads the stored payload of a job of `kind` (rows written before payloads were tagged
    /// carry no `kind`: the row's own says it).
    pub fn decode(kind: JobKind, stored: Value) -> Result<Self, String> {
        serde_json::from_value(tagged(kind, stored)).map_err(|e| format!("a {} job's payload: {e}", kind.as_str()))
    }
}

impl JobResult {
    /// Reads the stored result of a job of `kind`, as [`JobPayload::decode`].
    pub fn decode(kind: JobKind, stored: Value) -> Result<Self, String> {
        serde_json::from_value(tagged(kind, stored)).map_err(|e| format!("a {} job's result: {e}", kind.as_str()))
    }
}

fn tagged(kind: JobKind, mut stored: Value) -> Value {
    if let Value::Object(fields) = &mut stored {
        fields.entry("kind").or_insert_with(|| Value::String(kind.as_str().to_owned()));
    }
    stored
}

/// An `import` job's payload.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ImportPayload {
    pub clip_id: crate::ClipId,
    /// Storage key of the uploaded bytes.
    pub upload_key: String,
    /// The uploaded file's extension, a hint for the prober (the content decides).
    pub extension: Option<String>,
}

/// The port through which the API hands a queued job (its row already inserted) to the workers.
#[async_trait::async_trait]
pub trait JobSubmitter: Send + Sync {
    /// Errors: the queue cannot be reached (the reason, for the client).
    async fn submit(&self, job: JobId) -> Result<(), String>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_terminal_states_are_final() {
        for kind in JobKind::ALL {
            assert_eq!(JobKind::parse(kind.as_str()), Some(kind));
        }
        for status in JobStatus::ALL {
            assert_eq!(JobStatus::parse(status.as_str()), Some(status));
        }
        assert!(!JobStatus::Queued.is_terminal() && !JobStatus::Running.is_terminal());
        assert!(
            JobStatus::Succeeded.is_terminal() && JobStatus::Failed.is_terminal() && JobStatus::Cancelled.is_terminal()
        );
    }
}
