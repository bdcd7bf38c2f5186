//! Units of the timeline and the mixer: sample frames, sample rates, gains, tempo.
//!
//! Timeline positions are stored as integer frames at the project's sample rate; the API speaks
//! seconds. Conversions round to the nearest frame so a value survives a round trip.

use crate::error::{ValidationError, ValidationResult, validate_range};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A project sample rate. Only the rates musicians' hardware commonly runs at are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct SampleRate(u32);

impl SampleRate {
    pub const SUPPORTED: [u32; 5] = [44_100, 48_000, 88_200, 96_000, 192_000];
    pub const DEFAULT: SampleRate = SampleRate(48_000);

    /// Accepts one of [`SampleRate::SUPPORTED`].
    pub fn new(hz: u32) -> ValidationResult<Self> {
        if Self::SUPPORTED.contains(&hz) {
            Ok(Self(hz))
        } else {
            Err(ValidationError::new(
                "sample_rate",
                format!("must be one of 44100, 48000, 88200, 96000, 192000, got {hz}"),
            ))
        }
    }

    pub fn hz(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for SampleRate {
    type Error = ValidationError;
    fn try_from(hz: u32) -> ValidationResult<Self> {
        Self::new(hz)
    }
}

impl From<SampleRate> for u32 {
    fn from(rate: SampleRate) -> u32 {
        rate.0
    }
}

impl fmt::Display for SampleRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} Hz", self.0)
    }
}

/// A count of sample frames (one sample per channel). Timeline positions and lengths use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Frames(pub i64);

impl Frames {
    pub const ZERO: Frames = Frames(0);

    /// Converts seconds to the nearest frame. `field` names the value in the error.
    pub fn from_seconds(field: &'static str, seconds: f64, rate: SampleRate) -> ValidationResult<Self> {
        // Ten days at 192 kHz is far beyond any session and far inside i64.
        const MAX_SECONDS: f64 = 10.0 * 24.0 * 3600.0;
        if !seconds.is_finite() {
            return Err(ValidationError::new(field, "must be a finite number of seconds"));
        }
        if !(0.0..=MAX_SECONDS).contains(&seconds) {
            return Err(ValidationError::new(
                field,
                format!("must be between 0 and {MAX_SECONDS} seconds, got {seconds}"),
            ));
        }
        Ok(Frames((seconds * f64::from(rate.hz())).round() as i64))
    }

    pub fn to_seconds(self, rate: SampleRate) -> f64 {
        self.0 as f64 / f64::from(rate.hz())
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// A gain in decibels, as clip gain is expressed.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Decibels(pub f64);

impl Decibels {
    pub const MIN_CLIP_GAIN: f64 = -60.0;
    pub const MAX_CLIP_GAIN: f64 = 20.0;

    /// A clip gain in −60..+20 dB.
    pub fn clip_gain(db: f64) -> ValidationResult<Self> {
        validate_range("gain_db", db, Self::MIN_CLIP_GAIN, Self::MAX_CLIP_GAIN).map(Self)
    }

    /// The linear amplitude factor: 0 dB → 1.0, −6.02 dB → 0.5.
    pub fn to_linear(self) -> f64 {
        10f64.powf(self.0 / 20.0)
    }
}

/// A track fader position as a linear factor, 0.0 (silent) to 2.0 (+6 dB).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Volume(f64);

impl Volume {
    pub const UNITY: Volume = Volume(1.0);
    pub const MAX: f64 = 2.0;

    pub fn new(linear: f64) -> ValidationResult<Self> {
        validate_range("volume", linear, 0.0, Self::MAX).map(Self)
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

impl Default for Volume {
    fn default() -> Self {
        Self::UNITY
    }
}

/// A stereo position: −1.0 hard left, 0.0 centre, +1.0 hard right.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Pan(f64);

impl Pan {
    pub const CENTRE: Pan = Pan(0.0);

    pub fn new(position: f64) -> ValidationResult<Self> {
        validate_range("pan", position, -1.0, 1.0).map(Self)
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

/// Tempo in beats per minute, 20–999.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Tempo(f64);

impl Tempo {
    pub const DEFAULT: Tempo = Tempo(120.0);

    pub fn new(bpm: f64) -> ValidationResult<Self> {
        validate_range("tempo", bpm, 20.0, 999.0).map(Self)
    }

    pub fn bpm(self) -> f64 {
        self.0
    }

    /// Frames per beat at `rate`, the spacing of metronome clicks.
    pub fn frames_per_beat(self, rate: SampleRate) -> f64 {
        f64::from(rate.hz()) * 60.0 / self.0
    }
}

/// Bits per sample of recorded and rendered integer audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u16", into = "u16")]
pub struct BitDepth(u16);

impl BitDepth {
    pub const DEFAULT: BitDepth = BitDepth(24);

    pub fn new(bits: u16) -> ValidationResult<Self> {
        match bits {
            16 | 24 | 32 => Ok(Self(bits)),
            _ => Err(ValidationError::new("bit_depth", format!("must be 16, 24 or 32, got {bits}"))),
        }
    }

    pub fn bits(self) -> u16 {
        self.0
    }
}

impl TryFrom<u16> for BitDepth {
    type Error = ValidationError;
    fn try_from(bits: u16) -> ValidationResult<Self> {
        Self::new(bits)
    }
}

impl From<BitDepth> for u16 {
    fn from(depth: BitDepth) -> u16 {
        depth.0
    }
}

/// A time signature such as 4/4 or 7/8: 1–32 beats over a power-of-two note value up to 32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TimeSignature {
    pub beats: u8,
    pub note_value: u8,
}

impl TimeSignature {
    pub const COMMON: TimeSignature = TimeSignature { beats: 4, note_value: 4 };

    /// Parses `"beats/note_value"`.
    pub fn parse(text: &str) -> ValidationResult<Self> {
        let invalid = || {
            ValidationError::new(
                "time_signature",
                format!("must look like \"4/4\" (1-32 beats over 1, 2, 4, 8, 16 or 32), got {text:?}"),
            )
        };
        let (beats, note_value) = text.trim().split_once('/').ok_or_else(invalid)?;
        let beats: u8 = beats.trim().parse().map_err(|_| invalid())?;
        let note_value: u8 = note_value.trim().parse().map_err(|_| invalid())?;
        if !(1..=32).contains(&beats) || !matches!(note_value, 1 | 2 | 4 | 8 | 16 | 32) {
            return Err(invalid());
        }
        Ok(Self { beats, note_value })
    }
}

impl TryFrom<String> for TimeSignature {
    type Error = ValidationError;
    fn try_from(text: String) -> ValidationResult<Self> {
        Self::parse(&text)
    }
}

impl From<TimeSignature> for String {
    fn from(signature: TimeSignature) -> String {
        signature.to_string()
    }
}

impl fmt::Display for TimeSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.beats, self.note_value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_trip_through_frames() {
        let rate = SampleRate::new(48_000).unwrap();
        assert_eq!(Frames::from_seconds("t", 1.5, rate).unwrap(), Frames(72_000));
        assert_eq!(Frames(72_000).to_seconds(rate), 1.5);
        // The nearest frame wins: 1/3 s at 44.1 kHz is 14700 frames exactly.
        let cd = SampleRate::new(44_100).unwrap();
        assert_eq!(Frames::from_seconds("t", 1.0 / 3.0, cd).unwrap(), Frames(14_700));
        // A tiny fraction of a frame rounds to the nearest one, not down.
        assert_eq!(Frames::from_seconds("t", 0.999_99 / 48_000.0, rate).unwrap(), Frames(1));
    }

    #[test]
    fn negative_or_non_finite_seconds_are_rejected_with_the_field_name() {
        let rate = SampleRate::DEFAULT;
        let err = Frames::from_seconds("start", -0.1, rate).unwrap_err();
        assert_eq!(err.field, "start");
        assert!(Frames::from_seconds("start", f64::NAN, rate).is_err());
        assert!(Frames::from_seconds("start", f64::INFINITY, rate).is_err());
    }

    #[test]
    fn only_supported_sample_rates_are_accepted() {
        for hz in SampleRate::SUPPORTED {
            assert_eq!(SampleRate::new(hz).unwrap().hz(), hz);
        }
        for hz in [0, 8_000, 22_050, 44_000, 384_000] {
            assert_eq!(SampleRate::new(hz).unwrap_err().field, "sample_rate");
        }
    }

    #[test]
    fn mixer_values_are_range_checked() {
        assert!(Volume::new(0.0).is_ok() && Volume::new(2.0).is_ok());
        assert!(Volume::new(2.01).is_err() && Volume::new(-0.01).is_err() && Volume::new(f64::NAN).is_err());
        assert!(Pan::new(-1.0).is_ok() && Pan::new(1.0).is_ok());
        assert!(Pan::new(1.5).is_err() && Pan::new(-1.01).is_err());
        assert!(Tempo::new(20.0).is_ok() && Tempo::new(999.0).is_ok());
        assert!(Tempo::new(19.9).is_err() && Tempo::new(1000.0).is_err());
        assert!(BitDepth::new(24).is_ok() && BitDepth::new(8).is_err());
    }

    #[test]
    fn clip_gain_converts_to_linear_amplitude() {
        assert_eq!(Decibels::clip_gain(0.0).unwrap().to_linear(), 1.0);
        assert!((Decibels::clip_gain(-6.0206).unwrap().to_linear() - 0.5).abs() < 1e-4);
        assert!((Decibels::clip_gain(20.0).unwrap().to_linear() - 10.0).abs() < 1e-12);
        assert!(Decibels::clip_gain(-60.1).is_err() && Decibels::clip_gain(20.1).is_err());
    }

    #[test]
    fn time_signatures_parse_and_print() {
        assert_eq!(TimeSignature::parse("7/8").unwrap(), TimeSignature { beats: 7, note_value: 8 });
        assert_eq!(TimeSignature::parse(" 3 / 4 ").unwrap().to_string(), "3/4");
        for bad in ["", "4", "4/3", "0/4", "33/4", "a/b", "4/4/4"] {
            assert!(TimeSignature::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn beat_spacing_follows_tempo() {
        let rate = SampleRate::DEFAULT;
        assert_eq!(Tempo::new(120.0).unwrap().frames_per_beat(rate), 24_000.0);
        assert_eq!(Tempo::new(60.0).unwrap().frames_per_beat(rate), 48_000.0);
    }
}
