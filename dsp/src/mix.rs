//! Stage two of the mix law: a track's pre-fader audio through its fader, pan and mute/solo.

use crate::gain::constant_power_pan;

/// A track's mixer settings at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackMix {
    /// Linear fader, 0.0–2.0.
    pub volume: f32,
    /// −1.0 (left) to 1.0 (right).
    pub pan: f32,
    pub muted: bool,
    pub soloed: bool,
}

impl Default for TrackMix {
    fn default() -> Self {
        Self { volume: 1.0, pan: 0.0, muted: false, soloed: false }
    }
}

impl TrackMix {
    /// Muted tracks are silent; when any track is soloed, only soloed, unmuted tracks sound.
    pub fn audible(&self, any_soloed: bool) -> bool {
        !self.muted && (!any_soloed || self.soloed)
    }

    /// Left and right gains: volume × the constant-power pan law.
    pub fn channel_gains(&self) -> (f32, f32) {
        let (l, r) = constant_power_pan(self.pan);
        (self.volume * l, self.volume * r)
    }
}

/// Adds `prefader` (stereo interleaved) into `out` through `mix`. Sums in f32 with no master
/// attenuation; nothing is clipped here (only integer output clips).
pub fn mix_track(out: &mut [f32], prefader: &[f32], mix: &TrackMix, any_soloed: bool) {
    if !mix.audible(any_soloed) {
        return;
    }
    let (gain_l, gain_r) = mix.channel_gains();
    for (o, p) in out.chunks_exact_mut(2).zip(prefader.chunks_exact(2)) {
        o[0] += p[0] * gain_l;
        o[1] += p[1] * gain_r;
    }
}

/// The peak of each channel of `prefader` through `mix` (what [`mix_track`] adds, at its
/// loudest): a track's output meter. Zero for a track that does not sound.
pub fn track_peaks(prefader: &[f32], mix: &TrackMix, any_soloed: bool) -> [f32; 2] {
    if !mix.audible(any_soloed) {
        return [0.0; 2];
    }
    let (gain_l, gain_r) = mix.channel_gains();
    let (mut left, mut right) = (0.0f32, 0.0f32);
    for p in prefader.chunks_exact(2) {
        left = left.max((p[0] * gain_l).abs());
        right = right.max((p[1] * gain_r).abs());
    }
    [left, right]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tracks_peaks_are_what_it_adds_at_its_loudest() {
        let prefader = [0.5, -0.5, -1.0, 0.25];
        let mix = TrackMix { volume: 0.5, pan: 1.0, ..Default::default() };
        assert_eq!(track_peaks(&prefader, &mix, false), [0.0, 0.25]);
        let mut out = [0.0f32; 4];
        mix_track(&mut out, &prefader, &mix, false);
        let added = [out[0].abs().max(out[2].abs()), out[1].abs().max(out[3].abs())];
        assert_eq!(track_peaks(&prefader, &mix, false), added);
        assert_eq!(track_peaks(&prefader, &TrackMix { muted: true, ..mix }, false), [0.0, 0.0]);
        assert_eq!(track_peaks(&prefader, &mix, true), [0.0, 0.0], "another track is soloed");
    }

    const HALF_POWER: f32 = std::f32::consts::FRAC_1_SQRT_2;

    #[test]
    fn volume_and_pan_scale_each_channel() {
        let mut out = [0.0f32; 4];
        mix_track(&mut out, &[1.0, 1.0, 0.5, -0.5], &TrackMix { volume: 0.5, pan: -1.0, ..Default::default() }, false);
        assert_eq!(out, [0.5, 0.0, 0.25, 0.0]);
        let mut out = [0.0f32; 2];
        mix_track(&mut out, &[1.0, 1.0], &TrackMix::default(), false);
        assert!((out[0] - HALF_POWER).abs() < 1e-7 && (out[1] - HALF_POWER).abs() < 1e-7, "centre is −3 dB: {out:?}");
        let mut out = [0.0f32; 2];
        mix_track(&mut out, &[1.0, 1.0], &TrackMix { pan: 1.0, volume: 2.0, ..Default::default() }, false);
        assert_eq!(out, [0.0, 2.0]);
    }

    #[test]
    fn mute_and_solo_rules() {
        let plain = TrackMix::default();
        let muted = TrackMix { muted: true, ..plain };
        let soloed = TrackMix { soloed: true, ..plain };
        let muted_and_soloed = TrackMix { muted: true, soloed: true, ..plain };
        assert!(plain.audible(false) && !muted.audible(false));
        assert!(!plain.audible(true), "a solo elsewhere silences unsoloed tracks");
        assert!(soloed.audible(true) && !muted_and_soloed.audible(true), "mute beats solo");
    }

    #[test]
    fn tracks_sum_without_clipping_or_master_attenuation() {
        let mut out = [0.0f32; 2];
        let hard_left = TrackMix { pan: -1.0, ..Default::default() };
        for _ in 0..3 {
            mix_track(&mut out, &[0.9, 0.9], &hard_left, false);
        }
        assert!((out[0] - 2.7).abs() < 1e-6 && out[1] == 0.0, "{out:?}");
    }
}
