//! The virtual input devices' signals: deterministic and audible, each a pure function of the
//! device's own frame counter, so a recording of one can be checked sample by sample.

use std::f64::consts::TAU;

/// Peak level of the virtual signals: −12 dBFS, loud enough to see on a meter, far from clipping.
pub const LEVEL: f32 = 0.25;
/// Pitch of `mock_0`'s sine, and the left channel of `mock_1`.
pub const SINE_HZ: u64 = 440;
/// The right channel of `mock_1`: a fifth above, so the two channels are told apart by ear.
pub const SECOND_TONE_HZ: u64 = 660;
/// Pitch and length of `mock_2`'s click.
pub const CLICK_HZ: u64 = 1_000;
pub const CLICK_MS: u64 = 10;

/// What a virtual device plays.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum VirtualSignal {
    /// `mock_0`: mono 440 Hz sine.
    Sine,
    /// `mock_1`: stereo, 440 Hz left and 660 Hz right.
    Tones,
    /// `mock_2`: stereo click (a decaying 1 kHz burst) on every beat of `tempo`.
    Click { tempo: f64 },
}

impl VirtualSignal {
    pub fn channels(self) -> usize {
        match self {
            Self::Sine => 1,
            Self::Tones | Self::Click { .. } => 2,
        }
    }

    /// The sample of `channel` at the device's frame `frame`.
    pub fn sample(self, frame: u64, channel: usize, sample_rate: u32) -> f32 {
        let rate = u64::from(sample_rate);
        match self {
            Self::Sine => sine(SINE_HZ, frame, rate),
            Self::Tones => sine(if channel == 0 { SINE_HZ } else { SECOND_TONE_HZ }, frame, rate),
            Self::Click { tempo } => {
                let frames_per_beat = rate as f64 * 60.0 / tempo.max(1.0);
                let beat = (frame as f64 / frames_per_beat).floor();
                let into_beat = frame - (beat * frames_per_beat).round().min(frame as f64) as u64;
                let length = rate * CLICK_MS / 1000;
                if into_beat >= length {
                    return 0.0;
                }
                let decay = 1.0 - into_beat as f32 / length as f32;
                sine(CLICK_HZ, into_beat, rate) * decay * 3.0
            }
        }
    }
}

/// `LEVEL · sin(2π f n / rate)`, with the phase reduced exactly so it never drifts.
fn sine(hz: u64, frame: u64, rate: u64) -> f32 {
    let phase = (frame % rate * hz % rate) as f64 / rate as f64;
    (TAU * phase).sin() as f32 * LEVEL
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sine_has_its_pitch_and_level_and_never_drifts() {
        let rate = 48_000;
        let s = |n| VirtualSignal::Sine.sample(n, 0, rate);
        assert_eq!(s(0), 0.0);
        // A quarter period of 440 Hz at 48 kHz is 27.27 frames: the peak is near frame 27.
        let peak = (0..110).map(s).fold(0.0f32, f32::max);
        assert!((peak - LEVEL).abs() < 1e-3, "{peak}");
        // One hour in, the same phase as at the start of a second.
        assert_eq!(s(3600 * 48_000 + 10), s(10));
    }

    #[test]
    fn the_tones_differ_between_channels() {
        let t = |n, c| VirtualSignal::Tones.sample(n, c, 48_000);
        assert_eq!(t(20, 0), VirtualSignal::Sine.sample(20, 0, 48_000));
        assert_ne!(t(20, 0), t(20, 1));
        assert_eq!(VirtualSignal::Tones.channels(), 2);
    }

    #[test]
    fn the_click_sounds_on_every_beat_and_is_silent_between() {
        let click = VirtualSignal::Click { tempo: 120.0 };
        let rate = 48_000;
        // 120 bpm: a beat every 24,000 frames; a click lasts 480 frames.
        for beat in 0..4u64 {
            let start = beat * 24_000;
            let loudest = (start..start + 480).map(|n| click.sample(n, 0, rate).abs()).fold(0.0, f32::max);
            assert!(loudest > 0.5, "beat {beat}: {loudest}");
            assert!((start + 480..start + 24_000).all(|n| click.sample(n, 0, rate) == 0.0));
        }
    }
}
