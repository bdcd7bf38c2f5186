//! Clips: a region of a source audio object placed on a track's timeline.

use crate::error::{ValidationError, ValidationResult, validate_name};
use crate::{ClipId, Decibels, Frames, ProjectId, SampleRate, TakeId, TrackId};
use chrono::{DateTime, Utc};

pub const MAX_NAME_CHARS: usize = 200;

/// Where a clip is in its life: its audio is written by a job, then it can play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClipStatus {
    Processing,
    Ready,
    Failed,
}

impl ClipStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Processing => "processing",
            Self::Ready => "ready",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Processing, Self::Ready, Self::Failed].into_iter().find(|s| s.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Clip {
    pub id: ClipId,
    pub project_id: ProjectId,
    pub track_id: TrackId,
    /// The take this clip came from, when it was recorded.
    pub take_id: Option<TakeId>,
    pub name: String,
    /// Storage key of the clip's audio, once written.
    pub audio_key: Option<String>,
    /// Timeline position of the clip's first frame.
    pub start: Frames,
    /// How far into the source the clip begins (a trimmed head).
    pub source_offset: Frames,
    /// How many frames of the source play.
    pub length: Frames,
    /// Length of the whole source at the project rate; trims cannot reach past it.
    pub source_length: Frames,
    pub gain: Decibels,
    pub fade_in: Frames,
    pub fade_out: Frames,
    pub source_sample_rate: u32,
    pub channels: u16,
    pub status: ClipStatus,
    pub error: Option<String>,
    pub peaks_key: Option<String>,
    pub loudness_lufs: Option<f64>,
    /// Inactive clips are older takes: listed, not played.
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A clip as recording or import first creates it: placed, `processing`, audio still to come.
#[derive(Debug, Clone)]
pub struct NewClip {
    pub project_id: ProjectId,
    pub track_id: TrackId,
    pub take_id: Option<TakeId>,
    pub name: String,
    pub start: Frames,
    pub length: Frames,
    pub source_sample_rate: u32,
    pub channels: u16,
}

/// A client's edit of a clip, in seconds: move, trim, gain, fades, rename, move to another track.
#[derive(Debug, Clone, Default)]
pub struct ClipPatch {
    pub name: Option<String>,
    pub track_id: Option<TrackId>,
    pub start: Option<f64>,
    pub offset: Option<f64>,
    pub length: Option<f64>,
    pub gain_db: Option<f64>,
    pub fade_in: Option<f64>,
    pub fade_out: Option<f64>,
}

impl Clip {
    pub fn create(new: NewClip, now: DateTime<Utc>) -> ValidationResult<Self> {
        if new.length.get() < 0 {
            return Err(ValidationError::new("length", "must not be negative"));
        }
        Ok(Self {
            id: ClipId::new(),
            project_id: new.project_id,
            track_id: new.track_id,
            take_id: new.take_id,
            name: validate_name("name", &new.name, MAX_NAME_CHARS)?,
            audio_key: None,
            start: new.start,
            source_offset: Frames::ZERO,
            length: new.length,
            source_length: new.length,
            gain: Decibels::default(),
            fade_in: Frames::ZERO,
            fade_out: Frames::ZERO,
            source_sample_rate: new.source_sample_rate,
            channels: new.channels,
            status: ClipStatus::Processing,
            error: None,
            peaks_key: None,
            loudness_lufs: None,
            active: true,
            created_at: now,
            updated_at: now,
        })
    }

    /// Timeline frame just after the clip's last frame.
    pub fn end(&self) -> Frames {
        Frames(self.start.get() + self.length.get())
    }

    /// The clip cut at timeline frame `at`, strictly inside it: itself up to `at`, and a new
    /// clip from `at` on the same audio (of the same take, if any). The fade-in stays on the
    /// first part, the fade-out on the second, each within its part.
    pub fn split(&self, at: Frames, now: DateTime<Utc>) -> ValidationResult<(Clip, Clip)> {
        if at <= self.start || at >= self.end() {
            return Err(ValidationError::new("at", "must be inside the clip"));
        }
        let head = at.get() - self.start.get();
        let first = Clip {
            length: Frames(head),
            fade_in: Frames(self.fade_in.get().min(head)),
            fade_out: Frames::ZERO,
            updated_at: now,
            ..self.clone()
        };
        let tail = self.length.get() - head;
        let second = Clip {
            id: ClipId::new(),
            start: at,
            source_offset: Frames(self.source_offset.get() + head),
            length: Frames(tail),
            fade_in: Frames::ZERO,
            fade_out: Frames(self.fade_out.get().min(tail)),
            // Still the take it was: as old as it (a deleted take gives way to the newest).
            updated_at: now,
            ..self.clone()
        };
        Ok((first, second))
    }

    /// A copy placed at `start`, on the same audio. A copy of a take's clip belongs to no take:
    /// the comp plays a take only where it was recorded; the copy plays where the comp does not.
    pub fn duplicate(&self, start: Frames, now: DateTime<Utc>) -> ValidationResult<Clip> {
        if start.get() < 0 {
            return Err(ValidationError::new("start", "must not be negative"));
        }
        Ok(Clip {
            id: ClipId::new(),
            take_id: None,
            start,
            active: true,
            created_at: now,
            updated_at: now,
            ..self.clone()
        })
    }

    /// Applies an edit given in seconds at the project's `rate`, then checks the clip still fits
    /// its source and its fades fit the clip.
    pub fn apply(&mut self, patch: &ClipPatch, rate: SampleRate, now: DateTime<Utc>) -> ValidationResult<()> {
        let frames = |field, seconds: Option<f64>| seconds.map(|s| Frames::from_seconds(field, s, rate)).transpose();
        if let Some(name) = &patch.name {
            self.name = validate_name("name", name, MAX_NAME_CHARS)?;
        }
        if let Some(track_id) = patch.track_id {
            self.track_id = track_id;
        }
        if let Some(gain) = patch.gain_db {
            self.gain = Decibels::clip_gain(gain)?;
        }
        self.start = frames("start", patch.start)?.unwrap_or(self.start);
        self.source_offset = frames("offset", patch.offset)?.unwrap_or(self.source_offset);
        self.length = frames("length", patch.length)?.unwrap_or(self.length);
        self.fade_in = frames("fade_in", patch.fade_in)?.unwrap_or(self.fade_in);
        self.fade_out = frames("fade_out", patch.fade_out)?.unwrap_or(self.fade_out);
        self.check_shape()?;
        self.updated_at = now;
        Ok(())
    }

    fn check_shape(&self) -> ValidationResult<()> {
        if self.length.get() <= 0 {
            return Err(ValidationError::new("length", "must be longer than zero"));
        }
        if self.source_offset.get() + self.length.get() > self.source_length.get() {
            return Err(ValidationError::new("length", "offset + length reaches past the end of the source audio"));
        }
        if self.fade_in.get() + self.fade_out.get() > self.length.get() {
            return Err(ValidationError::new("fade_in", "fade in + fade out must not be longer than the clip"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_second_clip() -> Clip {
        let new = NewClip {
            project_id: ProjectId::new(),
            track_id: TrackId::new(),
            take_id: None,
            name: "Take 1".into(),
            start: Frames(48_000),
            length: Frames(48_000),
            source_sample_rate: 48_000,
            channels: 2,
        };
        Clip::create(new, Utc::now()).unwrap()
    }

    #[test]
    fn a_new_clip_is_processing_and_spans_its_source() {
        let clip = one_second_clip();
        assert_eq!(clip.status, ClipStatus::Processing);
        assert_eq!(clip.end(), Frames(96_000));
        assert_eq!(clip.source_length, Frames(48_000));
    }

    #[test]
    fn trims_cannot_reach_past_the_source() {
        let rate = SampleRate::DEFAULT;
        let mut clip = one_second_clip();
        clip.apply(&ClipPatch { offset: Some(0.25), length: Some(0.75), ..Default::default() }, rate, Utc::now())
            .unwrap();
        assert_eq!((clip.source_offset, clip.length), (Frames(12_000), Frames(36_000)));
        let too_long = ClipPatch { length: Some(0.8), ..Default::default() };
        assert_eq!(clip.clone().apply(&too_long, rate, Utc::now()).unwrap_err().field, "length");
    }

    #[test]
    fn fades_must_fit_the_clip_and_gain_stays_in_range() {
        let rate = SampleRate::DEFAULT;
        let mut clip = one_second_clip();
        let fades = ClipPatch { fade_in: Some(0.6), fade_out: Some(0.5), ..Default::default() };
        assert_eq!(clip.clone().apply(&fades, rate, Utc::now()).unwrap_err().field, "fade_in");
        let loud = ClipPatch { gain_db: Some(21.0), ..Default::default() };
        assert_eq!(clip.apply(&loud, rate, Utc::now()).unwrap_err().field, "gain_db");
    }

    #[test]
    fn status_names_round_trip() {
        for status in [ClipStatus::Processing, ClipStatus::Ready, ClipStatus::Failed] {
            assert_eq!(ClipStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(ClipStatus::parse("done"), None);
    }
}
