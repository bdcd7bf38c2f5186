//! Stage one of the mix law: clips, with clip gain and fades, into a track's pre-fader buffer.
//!
//! Buffers are stereo interleaved `f32` (`[l0, r0, l1, r1, …]`). Mono sources feed both
//! channels equally; the pan law then places them.

/// A clip as the renderer sees it. All positions are frames at the project rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClipPlacement {
    /// Timeline frame of the clip's first frame.
    pub start: i64,
    /// Frames of source that play.
    pub length: i64,
    /// Frames skipped at the head of the source.
    pub source_offset: i64,
    /// Clip gain as a linear factor.
    pub gain: f32,
    /// Fade-in length in frames (a linear ramp from silence).
    pub fade_in: i64,
    /// Fade-out length in frames (a linear ramp to silence).
    pub fade_out: i64,
    /// Source channels, interleaved: mono feeds both sides; of more, the first two play.
    pub channels: u16,
    /// Whether the fades are a comp's crossfades, equal power (a sine rise, a cosine fall: a
    /// fade-out and a fade-in of the same length sum to constant power), else linear ramps.
    pub crossfaded: bool,
}

/// The part of a clip inside a span of the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overlap {
    /// Index of the first covered frame within the span.
    pub span_offset: usize,
    /// Clip-relative frame (0 = the clip's first frame) at that point.
    pub clip_frame: i64,
    /// How many frames are covered.
    pub frames: usize,
}

impl ClipPlacement {
    pub fn end(&self) -> i64 {
        self.start + self.length
    }

    /// Where the clip meets the timeline span `[from, from + frames)`, if it does.
    pub fn overlap(&self, from: i64, frames: usize) -> Option<Overlap> {
        let begin = from.max(self.start);
        let end = (from + frames as i64).min(self.end());
        (begin < end).then(|| Overlap {
            span_offset: (begin - from) as usize,
            clip_frame: begin - self.start,
            frames: (end - begin) as usize,
        })
    }

    /// The clip's amplitude envelope at clip-relative frame `i`: gain × fade-in × fade-out.
    /// The fade-in starts at silence on frame 0; the fade-out reaches silence just after the
    /// last frame, so a clip never starts or ends with a click.
    pub fn envelope(&self, i: i64) -> f32 {
        let shape = |fraction: f32| {
            if self.crossfaded { (fraction * std::f32::consts::FRAC_PI_2).sin() } else { fraction }
        };
        let mut gain = self.gain;
        if i < self.fade_in {
            gain *= shape(i as f32 / self.fade_in as f32);
        }
        let from_end = self.length - i;
        if from_end <= self.fade_out {
            gain *= shape(from_end as f32 / self.fade_out as f32);
        }
        gain
    }
}

/// Adds `overlap.frames` frames of a clip into `out` (stereo interleaved) starting at frame
/// `overlap.span_offset`. `source` holds the clip's source frames from clip-relative frame
/// `overlap.clip_frame` on, interleaved in `clip.channels` channels.
///
/// Panics if `out` or `source` is shorter than the overlap says (a caller bug, never input).
pub fn add_clip(out: &mut [f32], clip: &ClipPlacement, overlap: Overlap, source: &[f32]) {
    let channels = usize::from(clip.channels.max(1));
    let out = &mut out[overlap.span_offset * 2..(overlap.span_offset + overlap.frames) * 2];
    let source = &source[..overlap.frames * channels];
    let fades = clip.fade_in > 0 || clip.fade_out > 0;
    // The common cases without fades get loops of their own the compiler can vectorise; every
    // path computes `out += sample × gain` per sample, so they agree to the bit.
    match (fades, channels) {
        (false, 2) => {
            for (o, s) in out.iter_mut().zip(source) {
                *o += s * clip.gain;
            }
        }
        (false, 1) => {
            for (frame_out, &s) in out.chunks_exact_mut(2).zip(source) {
                frame_out[0] += s * clip.gain;
                frame_out[1] += s * clip.gain;
            }
        }
        _ => {
            for (n, (frame_out, frame_in)) in out.chunks_exact_mut(2).zip(source.chunks_exact(channels)).enumerate() {
                let gain = if fades { clip.envelope(overlap.clip_frame + n as i64) } else { clip.gain };
                let (l, r) = if channels == 1 { (frame_in[0], frame_in[0]) } else { (frame_in[0], frame_in[1]) };
                frame_out[0] += l * gain;
                frame_out[1] += r * gain;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clip(start: i64, length: i64) -> ClipPlacement {
        ClipPlacement {
            start,
            length,
            source_offset: 0,
            gain: 1.0,
            fade_in: 0,
            fade_out: 0,
            channels: 1,
            crossfaded: false,
        }
    }

    #[test]
    fn overlap_finds_the_covered_part_of_a_span() {
        let c = clip(100, 50);
        assert_eq!(c.overlap(0, 100), None, "span ends where the clip starts");
        assert_eq!(c.overlap(90, 20), Some(Overlap { span_offset: 10, clip_frame: 0, frames: 10 }));
        assert_eq!(c.overlap(120, 100), Some(Overlap { span_offset: 0, clip_frame: 20, frames: 30 }));
        assert_eq!(c.overlap(150, 10), None);
    }

    #[test]
    fn mono_clip_with_gain_feeds_both_channels() {
        let c = ClipPlacement { gain: 0.5, ..clip(2, 3) };
        let mut out = [0.0f32; 12];
        let overlap = c.overlap(0, 6).unwrap();
        add_clip(&mut out, &c, overlap, &[0.2, 0.4, -0.8]);
        assert_eq!(out, [0.0, 0.0, 0.0, 0.0, 0.1, 0.1, 0.2, 0.2, -0.4, -0.4, 0.0, 0.0]);
    }

    #[test]
    fn stereo_clip_keeps_its_channels_and_sums_onto_existing_audio() {
        let c = ClipPlacement { channels: 2, ..clip(0, 2) };
        let mut out = [1.0f32; 4];
        add_clip(&mut out, &c, c.overlap(0, 2).unwrap(), &[0.25, -0.25, 0.5, -0.5]);
        assert_eq!(out, [1.25, 0.75, 1.5, 0.5]);
    }

    #[test]
    fn fades_ramp_linearly_from_and_to_silence() {
        let c = ClipPlacement { fade_in: 4, fade_out: 4, ..clip(0, 10) };
        let envelope: Vec<f32> = (0..10).map(|i| c.envelope(i)).collect();
        assert_eq!(envelope, [0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 1.0, 0.75, 0.5, 0.25]);
        let overlapping = ClipPlacement { fade_in: 10, fade_out: 10, gain: 2.0, ..clip(0, 10) };
        assert_eq!(overlapping.envelope(5), 2.0 * 0.5 * 0.5);
    }

    #[test]
    fn a_crossfade_keeps_the_power_constant_across_it() {
        // The outgoing piece ends 8 frames after the incoming one starts; both fade over them.
        let out = ClipPlacement { fade_out: 8, crossfaded: true, ..clip(0, 20) };
        let into = ClipPlacement { fade_in: 8, crossfaded: true, ..clip(12, 20) };
        for frame in 12..20 {
            let (a, b) = (out.envelope(frame - out.start), into.envelope(frame - into.start));
            assert!((a * a + b * b - 1.0).abs() < 1e-6, "frame {frame}: {a}² + {b}²");
        }
        assert_eq!((into.envelope(0), out.envelope(11), into.envelope(8)), (0.0, 1.0, 1.0));
    }

    #[test]
    fn a_clip_split_across_blocks_renders_the_same_samples() {
        let c = ClipPlacement { fade_in: 5, fade_out: 3, gain: 0.8, ..clip(3, 12) };
        let source: Vec<f32> = (0..12).map(|i| (i as f32 * 0.37).sin()).collect();
        let mut whole = vec![0.0f32; 40];
        let o = c.overlap(0, 20).unwrap();
        add_clip(&mut whole, &c, o, &source[o.clip_frame as usize..]);
        let mut pieces = vec![0.0f32; 40];
        for block_start in (0..20).step_by(7) {
            let block = &mut pieces[block_start * 2..(block_start + 7).min(20) * 2];
            let frames = block.len() / 2;
            if let Some(o) = c.overlap(block_start as i64, frames) {
                add_clip(block, &c, o, &source[o.clip_frame as usize..]);
            }
        }
        assert_eq!(whole, pieces);
    }
}
