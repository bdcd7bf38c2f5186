//! Projects: the container of tracks, with the sample rate every timeline position is counted in.

use crate::error::{ValidationError, ValidationResult, validate_name};
use crate::{BitDepth, ProjectId, SampleRate, Tempo, TimeSignature, UserId};
use chrono::{DateTime, Utc};

pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_DESCRIPTION_CHARS: usize = 5_000;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Project {
    pub id: ProjectId,
    pub owner_id: UserId,
    pub name: String,
    pub description: String,
    pub sample_rate: SampleRate,
    pub bit_depth: BitDepth,
    pub tempo: Tempo,
    pub time_signature: TimeSignature,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Client-supplied fields of a new project; absent ones take the documented defaults.
#[derive(Debug, Clone, Default)]
pub struct NewProject {
    pub name: String,
    pub description: Option<String>,
    pub sample_rate: Option<u32>,
    pub bit_depth: Option<u16>,
    pub tempo: Option<f64>,
    pub time_signature: Option<String>,
}

/// A partial update: only the fields present change.
#[derive(Debug, Clone, Default)]
pub struct ProjectPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub sample_rate: Option<u32>,
    pub bit_depth: Option<u16>,
    pub tempo: Option<f64>,
    pub time_signature: Option<String>,
}

fn validate_description(text: &str) -> ValidationResult<String> {
    crate::error::validate_text("description", text)?;
    if text.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(ValidationError::new("description", format!("must be at most {MAX_DESCRIPTION_CHARS} characters")));
    }
    Ok(text.to_owned())
}

impl Project {
    /// Validates `new` and builds the project, owned by `owner_id`, created at `now`.
    pub fn create(owner_id: UserId, new: NewProject, now: DateTime<Utc>) -> ValidationResult<Self> {
        Ok(Self {
            id: ProjectId::new(),
            owner_id,
            name: validate_name("name", &new.name, MAX_NAME_CHARS)?,
            description: validate_description(new.description.as_deref().unwrap_or(""))?,
            sample_rate: new.sample_rate.map(SampleRate::new).transpose()?.unwrap_or(SampleRate::DEFAULT),
            bit_depth: new.bit_depth.map(BitDepth::new).transpose()?.unwrap_or(BitDepth::DEFAULT),
            tempo: new.tempo.map(Tempo::new).transpose()?.unwrap_or(Tempo::DEFAULT),
            time_signature: new
                .time_signature
                .as_deref()
                .map(TimeSignature::parse)
                .transpose()?
                .unwrap_or(TimeSignature::COMMON),
            created_at: now,
            updated_at: now,
        })
    }

    /// Applies `patch`. The sample rate is fixed at creation: every stored position is counted
    /// in it, so changing it would silently move every clip.
    pub fn apply(&mut self, patch: &ProjectPatch, now: DateTime<Utc>) -> ValidationResult<()> {
        if let Some(rate) = patch.sample_rate
            && SampleRate::new(rate)? != self.sample_rate
        {
            return Err(ValidationError::new("sample_rate", "cannot be changed after the project is created"));
        }
        if let Some(name) = &patch.name {
            self.name = validate_name("name", name, MAX_NAME_CHARS)?;
        }
        if let Some(description) = &patch.description {
            self.description = validate_description(description)?;
        }
        if let Some(bits) = patch.bit_depth {
            self.bit_depth = BitDepth::new(bits)?;
        }
        if let Some(bpm) = patch.tempo {
            self.tempo = Tempo::new(bpm)?;
        }
        if let Some(signature) = &patch.time_signature {
            self.time_signature = TimeSignature::parse(signature)?;
        }
        self.updated_at = now;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(name: &str) -> NewProject {
        NewProject { name: name.into(), ..Default::default() }
    }

    #[test]
    fn defaults_are_48k_24_bit_120_bpm_in_four_four() {
        let p = Project::create(UserId::new(), new("  Demo  "), Utc::now()).unwrap();
        assert_eq!(p.name, "Demo");
        assert_eq!(p.sample_rate.hz(), 48_000);
        assert_eq!(p.bit_depth.bits(), 24);
        assert_eq!(p.tempo.bpm(), 120.0);
        assert_eq!(p.time_signature.to_string(), "4/4");
    }

    #[test]
    fn blank_names_and_bad_rates_are_rejected() {
        assert_eq!(Project::create(UserId::new(), new("   "), Utc::now()).unwrap_err().field, "name");
        let bad_rate = NewProject { sample_rate: Some(22_050), ..new("x") };
        assert_eq!(Project::create(UserId::new(), bad_rate, Utc::now()).unwrap_err().field, "sample_rate");
    }

    #[test]
    fn patch_changes_only_given_fields_and_keeps_the_sample_rate() {
        let mut p = Project::create(UserId::new(), new("a"), Utc::now()).unwrap();
        p.apply(&ProjectPatch { tempo: Some(90.0), ..Default::default() }, Utc::now()).unwrap();
        assert_eq!((p.name.as_str(), p.tempo.bpm()), ("a", 90.0));
        // Restating the same rate is fine; changing it is not.
        p.apply(&ProjectPatch { sample_rate: Some(48_000), ..Default::default() }, Utc::now()).unwrap();
        let err = p.apply(&ProjectPatch { sample_rate: Some(44_100), ..Default::default() }, Utc::now()).unwrap_err();
        assert_eq!(err.field, "sample_rate");
    }
}
