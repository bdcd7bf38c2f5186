//! Waveform overviews: per-pixel min/max of each channel at several zoom levels, encoded in
//! audiowaveform's binary `.dat` version 2 layout so existing waveform viewers read them.
//!
//! `.dat` v2, little-endian: `i32 version = 2`, `u32 flags` (0: 16-bit values), `i32
//! sample_rate`, `i32 samples_per_pixel`, `u32 length` (pixels), `i32 channels`, then per pixel
//! and per channel an `i16 min` and `i16 max`.

/// Zoom levels written for every clip, in frames per pixel.
pub const ZOOM_LEVELS: [u32; 3] = [256, 1024, 4096];

/// Min/max accumulation for one zoom level, fed interleaved audio in any block sizes.
#[derive(Debug, Clone)]
pub struct Peaks {
    channels: usize,
    frames_per_pixel: u32,
    /// Frames already in the pixel being accumulated.
    filled: u32,
    current: Vec<(f32, f32)>,
    /// Finished pixels: per pixel, per channel, (min, max).
    pixels: Vec<(i16, i16)>,
}

fn to_i16(value: f32) -> i16 {
    (value.clamp(-1.0, 1.0) * 32_767.0).round() as i16
}

impl Peaks {
    pub fn new(channels: usize, frames_per_pixel: u32) -> Self {
        Self {
            channels,
            frames_per_pixel: frames_per_pixel.max(1),
            filled: 0,
            current: vec![(f32::INFINITY, f32::NEG_INFINITY); channels],
            pixels: Vec::new(),
        }
    }

    /// Adds interleaved frames.
    pub fn add(&mut self, samples: &[f32]) {
        for frame in samples.chunks_exact(self.channels) {
            for (slot, &sample) in self.current.iter_mut().zip(frame) {
                slot.0 = slot.0.min(sample);
                slot.1 = slot.1.max(sample);
            }
            self.filled += 1;
            if self.filled == self.frames_per_pixel {
                self.close_pixel();
            }
        }
    }

    fn close_pixel(&mut self) {
        for slot in &mut self.current {
            self.pixels.push((to_i16(slot.0), to_i16(slot.1)));
            *slot = (f32::INFINITY, f32::NEG_INFINITY);
        }
        self.filled = 0;
    }

    /// Pixels so far (a partial last pixel counts once finished).
    pub fn len(&self) -> usize {
        self.pixels.len() / self.channels.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Completes the last partial pixel and encodes the `.dat` v2 file.
    pub fn finish(mut self, sample_rate: u32) -> Vec<u8> {
        if self.filled > 0 {
            self.close_pixel();
        }
        let mut out = Vec::with_capacity(24 + self.pixels.len() * 4);
        out.extend(2i32.to_le_bytes());
        out.extend(0u32.to_le_bytes());
        out.extend((sample_rate as i32).to_le_bytes());
        out.extend((self.frames_per_pixel as i32).to_le_bytes());
        out.extend((self.len() as u32).to_le_bytes());
        out.extend((self.channels as i32).to_le_bytes());
        for (min, max) in self.pixels {
            out.extend(min.to_le_bytes());
            out.extend(max.to_le_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(bytes: &[u8], at: usize) -> i32 {
        i32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn pixels_hold_each_channels_min_and_max_whatever_the_block_split() {
        // Stereo, 4 frames per pixel, 10 frames: pixels of 4, 4 and a partial 2.
        let samples: Vec<f32> = (0..10).flat_map(|i| [i as f32 / 10.0, -(i as f32) / 10.0]).collect();
        let mut whole = Peaks::new(2, 4);
        whole.add(&samples);
        let mut split = Peaks::new(2, 4);
        for part in samples.chunks(6) {
            split.add(part);
        }
        let (a, b) = (whole.finish(48_000), split.finish(48_000));
        assert_eq!(a, b);
        assert_eq!(
            [word(&a, 0), word(&a, 4), word(&a, 8), word(&a, 12), word(&a, 16), word(&a, 20)],
            [2, 0, 48_000, 4, 3, 2]
        );
        let values: Vec<i16> = a[24..].chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
        let q = |x: f32| to_i16(x);
        assert_eq!(
            values,
            [
                q(0.0),
                q(0.3),
                q(-0.3),
                q(0.0), // pixel 0: left 0..0.3, right -0.3..0
                q(0.4),
                q(0.7),
                q(-0.7),
                q(-0.4),
                q(0.8),
                q(0.9),
                q(-0.9),
                q(-0.8),
            ]
        );
    }

    #[test]
    fn out_of_range_samples_are_clamped_and_silence_is_zero() {
        let mut peaks = Peaks::new(1, 2);
        peaks.add(&[3.0, -7.0, 0.0, 0.0]);
        let bytes = peaks.finish(44_100);
        let values: Vec<i16> = bytes[24..].chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
        assert_eq!(values, [-32_767, 32_767, 0, 0]);
    }
}
