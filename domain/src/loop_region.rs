//! Loop regions: a span of the timeline the transport can repeat, and optionally record over.

use crate::error::{ValidationError, ValidationResult, validate_name};
use crate::{Frames, LoopRegionId, ProjectId, SampleRate};
use chrono::{DateTime, Utc};

/// The shortest loop allowed, in seconds: shorter ones are inaudible stutters, not loops.
pub const MIN_LOOP_SECONDS: f64 = 0.1;
pub const MAX_REPEAT_COUNT: i64 = 10_000;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LoopRegion {
    pub id: LoopRegionId,
    pub project_id: ProjectId,
    pub name: String,
    pub start: Frames,
    pub end: Frames,
    pub enabled: bool,
    /// `Some(n)` plays the region n + 1 times, then continues; `None` loops until stopped.
    pub repeat_count: Option<u32>,
    pub auto_punch_record: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A new loop region, in seconds.
#[derive(Debug, Clone, Default)]
pub struct NewLoopRegion {
    pub name: Option<String>,
    pub start: f64,
    pub end: f64,
    pub enabled: Option<bool>,
    pub repeat_count: Option<i64>,
    pub auto_punch_record: Option<bool>,
}

/// A partial update in seconds. `repeat_count: Some(None)` makes the loop infinite.
#[derive(Debug, Clone, Default)]
pub struct LoopRegionPatch {
    pub name: Option<String>,
    pub start: Option<f64>,
    pub end: Option<f64>,
    pub enabled: Option<bool>,
    pub repeat_count: Option<Option<i64>>,
    pub auto_punch_record: Option<bool>,
}

fn validate_repeat_count(count: Option<i64>) -> ValidationResult<Option<u32>> {
    match count {
        None => Ok(None),
        Some(n) if (0..=MAX_REPEAT_COUNT).contains(&n) => Ok(Some(n as u32)),
        Some(n) => Err(ValidationError::new(
            "repeat_count",
            format!("must be between 0 and {MAX_REPEAT_COUNT}, or null for an endless loop, got {n}"),
        )),
    }
}

/// The frame bounds of a loop: start before end and at least [`MIN_LOOP_SECONDS`] long.
pub fn validate_bounds(start: Frames, end: Frames, rate: SampleRate) -> ValidationResult<()> {
    if start >= end {
        return Err(ValidationError::new("end", "must be after start"));
    }
    let min_frames = (MIN_LOOP_SECONDS * f64::from(rate.hz())).round() as i64;
    if end.get() - start.get() < min_frames {
        return Err(ValidationError::new("end", format!("the loop must be at least {MIN_LOOP_SECONDS} s long")));
    }
    Ok(())
}

impl LoopRegion {
    pub fn create(
        project_id: ProjectId,
        rate: SampleRate,
        new: NewLoopRegion,
        now: DateTime<Utc>,
    ) -> ValidationResult<Self> {
        let start = Frames::from_seconds("start", new.start, rate)?;
        let end = Frames::from_seconds("end", new.end, rate)?;
        validate_bounds(start, end, rate)?;
        Ok(Self {
            id: LoopRegionId::new(),
            project_id,
            name: validate_name("name", new.name.as_deref().unwrap_or("Loop"), 100)?,
            start,
            end,
            enabled: new.enabled.unwrap_or(false),
            repeat_count: validate_repeat_count(new.repeat_count)?,
            auto_punch_record: new.auto_punch_record.unwrap_or(false),
            created_at: now,
            updated_at: now,
        })
    }

    pub fn apply(&mut self, patch: &LoopRegionPatch, rate: SampleRate, now: DateTime<Utc>) -> ValidationResult<()> {
        if let Some(name) = &patch.name {
            self.name = validate_name("name", name, 100)?;
        }
        if let Some(start) = patch.start {
            self.start = Frames::from_seconds("start", start, rate)?;
        }
        if let Some(end) = patch.end {
            self.end = Frames::from_seconds("end", end, rate)?;
        }
        validate_bounds(self.start, self.end, rate)?;
        if let Some(count) = patch.repeat_count {
            self.repeat_count = validate_repeat_count(count)?;
        }
        self.enabled = patch.enabled.unwrap_or(self.enabled);
        self.auto_punch_record = patch.auto_punch_record.unwrap_or(self.auto_punch_record);
        self.updated_at = now;
        Ok(())
    }

    /// How many passes the transport plays: `repeat_count + 1`, or `None` for endless.
    pub fn passes(&self) -> Option<u32> {
        self.repeat_count.map(|n| n + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(start: f64, end: f64) -> ValidationResult<LoopRegion> {
        let new = NewLoopRegion { start, end, ..Default::default() };
        LoopRegion::create(ProjectId::new(), SampleRate::DEFAULT, new, Utc::now())
    }

    #[test]
    fn a_loop_is_stored_in_frames() {
        let r = region(1.0, 3.5).unwrap();
        assert_eq!((r.start, r.end), (Frames(48_000), Frames(168_000)));
        assert_eq!(r.passes(), None);
    }

    #[test]
    fn end_must_follow_start_by_a_tenth_of_a_second() {
        assert_eq!(region(2.0, 1.0).unwrap_err().field, "end");
        assert_eq!(region(2.0, 2.0).unwrap_err().field, "end");
        assert_eq!(region(2.0, 2.099).unwrap_err().field, "end");
        assert!(region(2.0, 2.1).is_ok());
        assert_eq!(region(-1.0, 2.0).unwrap_err().field, "start");
    }

    #[test]
    fn repeat_count_n_means_n_plus_one_passes() {
        let new = NewLoopRegion { start: 0.0, end: 1.0, repeat_count: Some(3), ..Default::default() };
        let r = LoopRegion::create(ProjectId::new(), SampleRate::DEFAULT, new, Utc::now()).unwrap();
        assert_eq!(r.passes(), Some(4));
        let negative = NewLoopRegion { start: 0.0, end: 1.0, repeat_count: Some(-1), ..Default::default() };
        assert_eq!(
            LoopRegion::create(ProjectId::new(), SampleRate::DEFAULT, negative, Utc::now()).unwrap_err().field,
            "repeat_count"
        );
    }

    #[test]
    fn a_patch_is_checked_against_the_merged_region() {
        let mut r = region(1.0, 2.0).unwrap();
        let past_end = LoopRegionPatch { start: Some(2.5), ..Default::default() };
        assert_eq!(r.clone().apply(&past_end, SampleRate::DEFAULT, Utc::now()).unwrap_err().field, "end");
        let endless = LoopRegionPatch { end: Some(4.0), repeat_count: Some(None), ..Default::default() };
        r.apply(&endless, SampleRate::DEFAULT, Utc::now()).unwrap();
        assert_eq!((r.end, r.repeat_count), (Frames(192_000), None));
    }
}
