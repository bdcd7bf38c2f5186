//! The metronome (§12): clicks on the beat grid of the project's tempo and time signature,
//! added into what the musician hears. A click is a short decaying sine (higher and louder on
//! the bar's downbeat), and every sample is a function of its absolute timeline frame, so any
//! split into blocks gives the same clicks, and beat `n` starts exactly on frame
//! `round(n × frames per beat)`. No allocation: safe on the audio thread.

/// How long a click rings, in seconds.
pub const CLICK_SECONDS: f64 = 0.03;

/// The beat grid: where beats and bars fall, in frames.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BeatGrid {
    pub sample_rate: u32,
    /// Beats (of the time signature's note value) per minute.
    pub tempo_bpm: f64,
    pub beats_per_bar: u32,
}

impl BeatGrid {
    /// Frames per beat (not rounded).
    pub fn frames_per_beat(&self) -> f64 {
        f64::from(self.sample_rate) * 60.0 / self.tempo_bpm
    }

    /// The frame beat `n` starts on (beat 0 at frame 0; negative beats for a count-in before it).
    pub fn beat_frame(&self, n: i64) -> i64 {
        (n as f64 * self.frames_per_beat()).round() as i64
    }

    /// The frames of `bars` whole bars.
    pub fn bar_frames(&self, bars: u32) -> i64 {
        self.beat_frame(i64::from(bars) * i64::from(self.beats_per_bar))
    }

    /// The first beat starting at or after `frame`.
    fn first_beat_from(&self, frame: i64) -> i64 {
        let mut n = (frame as f64 / self.frames_per_beat()).floor() as i64;
        while self.beat_frame(n) < frame {
            n += 1;
        }
        while n > i64::MIN && self.beat_frame(n - 1) >= frame {
            n -= 1;
        }
        n
    }
}

/// The metronome's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metronome {
    /// Linear gain of a plain beat's click; the downbeat's is 1.5 times it (capped at 1).
    pub level: f32,
    /// Whether the bar's first beat is accented (higher and louder).
    pub accent: bool,
}

impl Default for Metronome {
    fn default() -> Self {
        Self { level: 0.5, accent: true }
    }
}

impl Metronome {
    /// The click's sample `k` frames after the onset of beat `n`.
    fn click_sample(&self, grid: &BeatGrid, n: i64, k: i64) -> f32 {
        let downbeat = self.accent && n.rem_euclid(i64::from(grid.beats_per_bar.max(1))) == 0;
        let (hz, gain) = if downbeat { (1_600.0, (self.level * 1.5).min(1.0)) } else { (1_000.0, self.level) };
        let t = k as f64 / f64::from(grid.sample_rate);
        let envelope = (-t / (CLICK_SECONDS / 5.0)).exp();
        (f64::from(gain) * envelope * (std::f64::consts::TAU * hz * t).sin()) as f32
    }

    /// Adds the clicks sounding in the block of timeline frames `start..start + frames` to
    /// `out` (interleaved, `channels` per frame, every channel the same).
    pub fn add(&self, grid: &BeatGrid, start: i64, out: &mut [f32], channels: usize) {
        let frames = (out.len() / channels.max(1)) as i64;
        let ring = (CLICK_SECONDS * f64::from(grid.sample_rate)).ceil() as i64;
        let mut n = grid.first_beat_from(start - ring);
        loop {
            let onset = grid.beat_frame(n);
            if onset >= start + frames {
                break;
            }
            let from = onset.max(start);
            let to = (onset + ring).min(start + frames);
            for frame in from..to {
                let sample = self.click_sample(grid, n, frame - onset);
                let at = (frame - start) as usize * channels;
                out[at..at + channels].iter_mut().for_each(|s| *s += sample);
            }
            n += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRID: BeatGrid = BeatGrid { sample_rate: 48_000, tempo_bpm: 120.0, beats_per_bar: 4 };

    fn onsets(out: &[f32], start: i64) -> Vec<i64> {
        // A click starts where the previous sample was silent and this one is the sine's first
        // step (sin 0 = 0, so the onset shows one frame after the beat): look for silence → sound.
        (1..out.len()).filter(|&i| out[i - 1] == 0.0 && out[i] != 0.0).map(|i| start + i as i64 - 1).collect()
    }

    #[test]
    fn clicks_start_exactly_on_the_beats_whatever_the_blocks() {
        let metronome = Metronome::default();
        let mut whole = vec![0.0f32; 96_000];
        metronome.add(&GRID, 0, &mut whole, 1);
        assert_eq!(onsets(&whole, 0), vec![0, 24_000, 48_000, 72_000]);
        // The same samples rendered in odd blocks.
        let mut pieces = vec![0.0f32; 96_000];
        let mut at = 0;
        for size in [1, 77, 500, 23_999, 2, 1_000].into_iter().cycle() {
            if at >= pieces.len() {
                break;
            }
            let end = (at + size).min(pieces.len());
            metronome.add(&GRID, at as i64, &mut pieces[at..end], 1);
            at = end;
        }
        assert_eq!(pieces, whole);
    }

    #[test]
    fn the_downbeat_is_accented_and_stereo_channels_match() {
        let metronome = Metronome { level: 0.4, accent: true };
        let mut out = vec![0.0f32; 2 * 48_000];
        metronome.add(&GRID, 0, &mut out, 2);
        let peak = |from: usize| out[from * 2..(from + 1_440) * 2].iter().fold(0.0f32, |m, s| m.max(s.abs()));
        assert!(peak(0) > 0.55 && peak(0) <= 0.6, "downbeat {}", peak(0));
        assert!(peak(24_000) > 0.35 && peak(24_000) <= 0.4, "beat {}", peak(24_000));
        assert!(out.chunks(2).all(|f| f[0] == f[1]));
        assert!(out[2 * 1_500..2 * 24_000].iter().all(|s| *s == 0.0), "silence between clicks");
    }

    #[test]
    fn count_in_beats_fall_before_zero_and_odd_tempos_round_to_the_nearest_frame() {
        let grid = BeatGrid { sample_rate: 44_100, tempo_bpm: 97.0, beats_per_bar: 3 };
        assert_eq!(grid.beat_frame(1), 27_278, "44,100 × 60 / 97 = 27,278.35…");
        assert_eq!(grid.beat_frame(-3), -81_835);
        assert_eq!(grid.bar_frames(2), grid.beat_frame(6));
        let mut out = vec![0.0f32; 100_000];
        Metronome::default().add(&grid, -90_000, &mut out, 1);
        assert_eq!(onsets(&out, -90_000), vec![-81_835, -54_557, -27_278, 0]);
    }
}
