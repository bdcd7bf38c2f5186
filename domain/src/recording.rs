//! Recording sessions and the takes they produce.

use crate::{ClipId, Frames, ProjectId, RecordingSessionId, TakeId, TrackId};
use chrono::{DateTime, Utc};

/// The life of a recording session, from the journal row written before the first sample to a
/// saved (or recovered) clip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordingStatus {
    Recording,
    Stopped,
    Finalizing,
    Saved,
    Failed,
    /// Interrupted by a crash and finalised from the chunks already on disk.
    Recovered,
}

impl RecordingStatus {
    pub const ALL: [RecordingStatus; 6] =
        [Self::Recording, Self::Stopped, Self::Finalizing, Self::Saved, Self::Failed, Self::Recovered];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Recording => "recording",
            Self::Stopped => "stopped",
            Self::Finalizing => "finalizing",
            Self::Saved => "saved",
            Self::Failed => "failed",
            Self::Recovered => "recovered",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether the capture may still be receiving audio.
    pub fn is_open(self) -> bool {
        self == Self::Recording
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecordingSession {
    pub id: RecordingSessionId,
    pub project_id: ProjectId,
    pub track_id: TrackId,
    pub device_id: String,
    pub status: RecordingStatus,
    /// Timeline frame of the first captured sample, after latency compensation.
    pub start: Frames,
    /// The latency compensation applied, kept so a take can be re-aligned later.
    pub applied_offset: Frames,
    /// Storage prefix of the capture chunks.
    pub capture_key: String,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One pass of a recording. A loop recording yields one take per pass, all sharing a capture.
#[derive(Debug, Clone, PartialEq)]
pub struct Take {
    pub id: TakeId,
    pub session_id: RecordingSessionId,
    pub track_id: TrackId,
    pub clip_id: ClipId,
    /// 0 for the first pass.
    pub pass_index: u32,
    /// Where this pass starts inside the shared capture.
    pub capture_offset: Frames,
    pub length: Frames,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_round_trip_and_only_recording_is_open() {
        for status in RecordingStatus::ALL {
            assert_eq!(RecordingStatus::parse(status.as_str()), Some(status));
            assert_eq!(status.is_open(), status == RecordingStatus::Recording);
        }
        assert_eq!(RecordingStatus::parse("paused"), None);
    }
}
