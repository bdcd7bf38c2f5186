//! Closed sets of states as the API names them: enums in the OpenAPI document, so generated
//! SDKs offer them as enums, each converted once from the domain's own type. Fields of these
//! types carry no doc comment: poem-openapi would wrap a described reference in `allOf`, which
//! SDK generators refuse for enums; each type's own description is in the document.

use audiolab_domain::clip::ClipStatus;
use audiolab_domain::job::{JobKind, JobStatus};
use audiolab_domain::recording::RecordingStatus;
use poem_openapi::Enum;

/// Where a clip's audio stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum ClipState {
    /// Being imported or finalised; not playable yet.
    Processing,
    /// Playable.
    Ready,
    /// Could not be made playable; `error` says why.
    Failed,
}

impl From<ClipStatus> for ClipState {
    fn from(status: ClipStatus) -> Self {
        match status {
            ClipStatus::Processing => Self::Processing,
            ClipStatus::Ready => Self::Ready,
            ClipStatus::Failed => Self::Failed,
        }
    }
}

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum JobKindName {
    FinalizeCapture,
    Mixdown,
    Import,
}

impl From<JobKind> for JobKindName {
    fn from(kind: JobKind) -> Self {
        match kind {
            JobKind::FinalizeCapture => Self::FinalizeCapture,
            JobKind::Mixdown => Self::Mixdown,
            JobKind::Import => Self::Import,
        }
    }
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl From<JobStatus> for JobState {
    fn from(status: JobStatus) -> Self {
        match status {
            JobStatus::Queued => Self::Queued,
            JobStatus::Running => Self::Running,
            JobStatus::Succeeded => Self::Succeeded,
            JobStatus::Failed => Self::Failed,
            JobStatus::Cancelled => Self::Cancelled,
        }
    }
}

/// Where a recording session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum RecordingState {
    Recording,
    Stopped,
    Finalizing,
    Saved,
    Failed,
    /// Interrupted (a crash, or its node died) and rebuilt from what reached storage.
    Recovered,
}

impl From<RecordingStatus> for RecordingState {
    fn from(status: RecordingStatus) -> Self {
        match status {
            RecordingStatus::Recording => Self::Recording,
            RecordingStatus::Stopped => Self::Stopped,
            RecordingStatus::Finalizing => Self::Finalizing,
            RecordingStatus::Saved => Self::Saved,
            RecordingStatus::Failed => Self::Failed,
            RecordingStatus::Recovered => Self::Recovered,
        }
    }
}

/// What the transport does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum TransportState {
    Stopped,
    Playing,
    Paused,
}

impl TransportState {
    /// From the engine's own name for its state (`stopped`, `playing`, `paused`).
    pub fn parse(state: &str) -> Self {
        match state {
            "playing" => Self::Playing,
            "paused" => Self::Paused,
            _ => Self::Stopped,
        }
    }
}

/// A member's role in a project: `owner` (everything, one per project), `editor` (edits,
/// records, mixes, imports), `viewer` (reads and listens).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum RoleName {
    Owner,
    Editor,
    Viewer,
}

impl From<audiolab_domain::user::Role> for RoleName {
    fn from(role: audiolab_domain::user::Role) -> Self {
        use audiolab_domain::user::Role;
        match role {
            Role::Owner => Self::Owner,
            Role::Editor => Self::Editor,
            Role::Viewer => Self::Viewer,
        }
    }
}

impl From<RoleName> for audiolab_domain::user::Role {
    fn from(role: RoleName) -> Self {
        use audiolab_domain::user::Role;
        match role {
            RoleName::Owner => Role::Owner,
            RoleName::Editor => Role::Editor,
            RoleName::Viewer => Role::Viewer,
        }
    }
}
