//! Streaming sample-rate conversion for offline renders and imports: feed interleaved blocks
//! of any size, get the converted audio out with the filter's delay already trimmed, so the
//! output lines up with the input and has exactly `round(frames × to / from)` frames.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler};

/// Input frames per FFT chunk: large enough to be efficient, small enough to stay in cache.
const CHUNK_FRAMES: usize = 1024;

#[derive(Debug, thiserror::Error)]
#[error("cannot resample from {from} Hz to {to} Hz: {reason}")]
pub struct ResampleError {
    pub from: u32,
    pub to: u32,
    pub reason: String,
}

/// A converter from one rate to another for a fixed channel count (FFT-based, rubato).
pub struct StreamResampler {
    inner: Fft<f32>,
    from: u32,
    to: u32,
    channels: usize,
    /// Interleaved input not yet making a whole chunk.
    pending: Vec<f32>,
    /// One chunk of interleaved output.
    chunk_out: Vec<f32>,
    /// Output frames still to drop at the start (the filter's delay).
    delay_left: usize,
    frames_in: u64,
    frames_out: u64,
}

impl std::fmt::Debug for StreamResampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamResampler").field("from", &self.from).field("to", &self.to).finish_non_exhaustive()
    }
}

impl StreamResampler {
    pub fn new(from: u32, to: u32, channels: usize) -> Result<Self, ResampleError> {
        let error = |reason: String| ResampleError { from, to, reason };
        if from == 0 || to == 0 || channels == 0 {
            return Err(error("rates and channel count must be positive".into()));
        }
        let inner = Fft::<f32>::new(from as usize, to as usize, CHUNK_FRAMES, channels, FixedSync::Input)
            .map_err(|e| error(e.to_string()))?;
        let chunk_out = vec![0.0; inner.output_frames_max() * channels];
        let delay_left = inner.output_delay();
        Ok(Self {
            inner,
            from,
            to,
            channels,
            pending: Vec::with_capacity(CHUNK_FRAMES * channels),
            chunk_out,
            delay_left,
            frames_in: 0,
            frames_out: 0,
        })
    }

    /// The number of output frames `input_frames` become.
    pub fn output_len(from: u32, to: u32, input_frames: u64) -> u64 {
        (u128::from(input_frames) * u128::from(to)).div_ceil(u128::from(from)) as u64
    }

    /// Converts `input` (interleaved, whole frames) and appends what is ready to `out`.
    pub fn process(&mut self, mut input: &[f32], out: &mut Vec<f32>) {
        let chunk = CHUNK_FRAMES * self.channels;
        self.frames_in += (input.len() / self.channels) as u64;
        while !input.is_empty() {
            let take = (chunk - self.pending.len()).min(input.len());
            self.pending.extend_from_slice(&input[..take]);
            input = &input[take..];
            if self.pending.len() == chunk {
                self.run_chunk(CHUNK_FRAMES, out);
                self.pending.clear();
            }
        }
    }

    /// Flushes the end of the stream into `out`: the total written is then exactly
    /// [`StreamResampler::output_len`] of the input.
    pub fn finish(&mut self, out: &mut Vec<f32>) {
        let wanted = Self::output_len(self.from, self.to, self.frames_in);
        let mut partial = self.pending.len() / self.channels;
        while self.frames_out < wanted {
            self.pending.resize(CHUNK_FRAMES * self.channels, 0.0);
            self.run_chunk(partial, out);
            partial = 0;
        }
        self.pending.clear();
        let excess = (self.frames_out - wanted) as usize * self.channels;
        out.truncate(out.len() - excess);
        self.frames_out = wanted;
    }

    fn run_chunk(&mut self, frames: usize, out: &mut Vec<f32>) {
        let channels = self.channels;
        let input = InterleavedSlice::new(&self.pending[..], channels, CHUNK_FRAMES).expect("pending holds one chunk");
        let out_frames = self.chunk_out.len() / channels;
        let mut output =
            InterleavedSlice::new_mut(&mut self.chunk_out[..], channels, out_frames).expect("sized for a chunk");
        let indexing = Indexing::new().partial_len(frames);
        let (_, written) = self
            .inner
            .process_into_buffer(&input, &mut output, Some(&indexing))
            .expect("buffers are sized by the resampler itself");
        let skip = self.delay_left.min(written);
        self.delay_left -= skip;
        out.extend_from_slice(&self.chunk_out[skip * channels..written * channels]);
        self.frames_out += (written - skip) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f32::consts::TAU;

    fn sine(rate: u32, hz: f32, frames: usize) -> Vec<f32> {
        (0..frames)
            .flat_map(|i| {
                let s = 0.5 * (TAU * hz * i as f32 / rate as f32).sin();
                [s, -s]
            })
            .collect()
    }

    fn convert(from: u32, to: u32, input: &[f32], block: usize) -> Vec<f32> {
        let mut resampler = StreamResampler::new(from, to, 2).unwrap();
        let mut out = Vec::new();
        for piece in input.chunks(block * 2) {
            resampler.process(piece, &mut out);
        }
        resampler.finish(&mut out);
        out
    }

    #[test]
    fn a_sine_keeps_its_frequency_phase_and_length() {
        let input = sine(44_100, 1000.0, 44_100);
        let out = convert(44_100, 48_000, &input, 777);
        assert_eq!(out.len() / 2, 48_000);
        // Away from the edges, the output is the same sine at the new rate, in phase.
        let expected = sine(48_000, 1000.0, 48_000);
        let worst = (2_000..46_000)
            .map(|i| (out[i * 2] - expected[i * 2]).abs().max((out[i * 2 + 1] - expected[i * 2 + 1]).abs()))
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-3, "worst error {worst}");
    }

    #[test]
    fn block_size_does_not_change_the_output() {
        let input = sine(48_000, 440.0, 10_000);
        let a = convert(48_000, 22_050, &input, 64);
        let b = convert(48_000, 22_050, &input, 5_000);
        assert_eq!(a.len() / 2, StreamResampler::output_len(48_000, 22_050, 10_000) as usize);
        assert_eq!(a, b);
    }

    #[test]
    fn short_and_empty_inputs_have_the_right_length() {
        assert!(convert(48_000, 96_000, &[], 10).is_empty());
        assert_eq!(convert(48_000, 96_000, &[0.1, 0.1, 0.2, 0.2, 0.3, 0.3], 10).len(), 12);
    }

    #[test]
    fn zero_rate_is_an_error() {
        assert!(StreamResampler::new(0, 48_000, 2).is_err());
    }
}
