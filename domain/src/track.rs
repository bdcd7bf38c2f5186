//! Tracks: up to 32 per project, each with a fader, a pan pot, mute/solo and a record arm.

use crate::error::{ValidationError, ValidationResult, validate_name};
use crate::{Pan, ProjectId, TrackId, Volume};
use chrono::{DateTime, Utc};

/// A project holds at most this many tracks, indexed 0..MAX_TRACKS.
pub const MAX_TRACKS: u8 = 32;
pub const MAX_NAME_CHARS: usize = 100;

/// A track's slot in its project, 0–31, unique within the project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "i64", into = "u8")]
pub struct TrackIndex(u8);

impl TryFrom<i64> for TrackIndex {
    type Error = ValidationError;
    fn try_from(index: i64) -> ValidationResult<Self> {
        Self::new(index)
    }
}

impl From<TrackIndex> for u8 {
    fn from(index: TrackIndex) -> u8 {
        index.0
    }
}

impl TrackIndex {
    pub fn new(index: i64) -> ValidationResult<Self> {
        if (0..i64::from(MAX_TRACKS)).contains(&index) {
            Ok(Self(index as u8))
        } else {
            Err(ValidationError::new("track_index", format!("must be between 0 and {}, got {index}", MAX_TRACKS - 1)))
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }

    /// The lowest index not in `used`, or `None` when the project already has 32 tracks.
    pub fn first_free(used: &[TrackIndex]) -> Option<TrackIndex> {
        (0..MAX_TRACKS).map(TrackIndex).find(|index| !used.contains(index))
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Track {
    pub id: TrackId,
    pub project_id: ProjectId,
    pub name: String,
    pub index: TrackIndex,
    pub volume: Volume,
    pub pan: Pan,
    pub muted: bool,
    pub soloed: bool,
    /// Display colour as `#rrggbb`.
    pub color: Option<String>,
    pub record_enabled: bool,
    pub input_device_id: Option<String>,
    pub monitoring: bool,
    /// What the track plays of its takes (§14); empty until a take is recorded on it.
    #[serde(default)]
    pub comp: crate::comp::Comp,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Client-supplied fields of a new track. `track_index: None` takes the first free slot.
#[derive(Debug, Clone, Default)]
pub struct NewTrack {
    pub name: String,
    pub track_index: Option<i64>,
    pub volume: Option<f64>,
    pub pan: Option<f64>,
    pub muted: Option<bool>,
    pub soloed: Option<bool>,
    pub color: Option<String>,
    pub input_device_id: Option<String>,
    pub monitoring: Option<bool>,
}

/// A partial update. `color` and `input_device_id` are cleared by an empty string.
#[derive(Debug, Clone, Default)]
pub struct TrackPatch {
    pub name: Option<String>,
    pub track_index: Option<i64>,
    pub volume: Option<f64>,
    pub pan: Option<f64>,
    pub muted: Option<bool>,
    pub soloed: Option<bool>,
    pub color: Option<String>,
    pub record_enabled: Option<bool>,
    pub input_device_id: Option<String>,
    pub monitoring: Option<bool>,
}

fn validate_color(color: &str) -> ValidationResult<Option<String>> {
    if color.is_empty() {
        return Ok(None);
    }
    let hex = color.strip_prefix('#').unwrap_or("");
    if hex.len() != 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ValidationError::new("color", format!("must look like \"#1e90ff\", got {color:?}")));
    }
    Ok(Some(color.to_ascii_lowercase()))
}

fn validate_device_id(device: &str) -> ValidationResult<Option<String>> {
    if device.is_empty() {
        return Ok(None);
    }
    if device.len() > 200 || device.chars().any(char::is_control) {
        return Err(ValidationError::new("input_device_id", "must be at most 200 printable characters"));
    }
    Ok(Some(device.to_owned()))
}

impl Track {
    /// Validates `new` and builds the track in slot `index` (chosen by the caller when absent).
    pub fn create(
        project_id: ProjectId,
        new: NewTrack,
        index: TrackIndex,
        now: DateTime<Utc>,
    ) -> ValidationResult<Self> {
        Ok(Self {
            id: TrackId::new(),
            project_id,
            name: validate_name("name", &new.name, MAX_NAME_CHARS)?,
            index,
            volume: new.volume.map(Volume::new).transpose()?.unwrap_or_default(),
            pan: new.pan.map(Pan::new).transpose()?.unwrap_or_default(),
            muted: new.muted.unwrap_or(false),
            soloed: new.soloed.unwrap_or(false),
            color: new.color.as_deref().map(validate_color).transpose()?.flatten(),
            record_enabled: false,
            input_device_id: new.input_device_id.as_deref().map(validate_device_id).transpose()?.flatten(),
            monitoring: new.monitoring.unwrap_or(false),
            comp: Default::default(),
            created_at: now,
            updated_at: now,
        })
    }

    pub fn apply(&mut self, patch: &TrackPatch, now: DateTime<Utc>) -> ValidationResult<()> {
        if let Some(name) = &patch.name {
            self.name = validate_name("name", name, MAX_NAME_CHARS)?;
        }
        if let Some(index) = patch.track_index {
            self.index = TrackIndex::new(index)?;
        }
        if let Some(volume) = patch.volume {
            self.volume = Volume::new(volume)?;
        }
        if let Some(pan) = patch.pan {
            self.pan = Pan::new(pan)?;
        }
        if let Some(color) = &patch.color {
            self.color = validate_color(color)?;
        }
        if let Some(device) = &patch.input_device_id {
            self.input_device_id = validate_device_id(device)?;
        }
        self.muted = patch.muted.unwrap_or(self.muted);
        self.soloed = patch.soloed.unwrap_or(self.soloed);
        self.record_enabled = patch.record_enabled.unwrap_or(self.record_enabled);
        self.monitoring = patch.monitoring.unwrap_or(self.monitoring);
        self.updated_at = now;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_must_be_in_zero_to_thirty_one() {
        assert_eq!(TrackIndex::new(0).unwrap().get(), 0);
        assert_eq!(TrackIndex::new(31).unwrap().get(), 31);
        assert_eq!(TrackIndex::new(32).unwrap_err().field, "track_index");
        assert!(TrackIndex::new(-1).is_err());
    }

    #[test]
    fn first_free_index_fills_gaps_and_runs_out_at_thirty_two() {
        let used: Vec<_> = [0, 1, 3].into_iter().map(|i| TrackIndex::new(i).unwrap()).collect();
        assert_eq!(TrackIndex::first_free(&used).unwrap().get(), 2);
        let full: Vec<_> = (0..32).map(|i| TrackIndex::new(i).unwrap()).collect();
        assert_eq!(TrackIndex::first_free(&full), None);
    }

    #[test]
    fn colours_are_validated_and_cleared_by_empty_string() {
        let project = ProjectId::new();
        let index = TrackIndex::new(0).unwrap();
        let new = NewTrack { name: "Bass".into(), color: Some("#1E90FF".into()), ..Default::default() };
        let mut track = Track::create(project, new, index, Utc::now()).unwrap();
        assert_eq!(track.color.as_deref(), Some("#1e90ff"));
        assert_eq!(track.volume.get(), 1.0);
        let bad = TrackPatch { color: Some("blue".into()), ..Default::default() };
        assert_eq!(track.apply(&bad, Utc::now()).unwrap_err().field, "color");
        track.apply(&TrackPatch { color: Some(String::new()), ..Default::default() }, Utc::now()).unwrap();
        assert_eq!(track.color, None);
    }

    #[test]
    fn out_of_range_mixer_values_in_a_patch_leave_an_error_naming_the_field() {
        let mut track = Track::create(
            ProjectId::new(),
            NewTrack { name: "Vox".into(), ..Default::default() },
            TrackIndex::new(1).unwrap(),
            Utc::now(),
        )
        .unwrap();
        assert_eq!(
            track.apply(&TrackPatch { volume: Some(2.5), ..Default::default() }, Utc::now()).unwrap_err().field,
            "volume"
        );
        assert_eq!(
            track.apply(&TrackPatch { pan: Some(-1.5), ..Default::default() }, Utc::now()).unwrap_err().field,
            "pan"
        );
        track.apply(&TrackPatch { volume: Some(0.8), muted: Some(true), ..Default::default() }, Utc::now()).unwrap();
        assert_eq!((track.volume.get(), track.muted), (0.8, true));
    }
}
