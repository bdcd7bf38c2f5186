//! TPDF dither for integer output: ±1 LSB of triangular noise added before quantising, so
//! quiet passages fade into noise instead of breaking into distortion.

/// A float sample as a signed integer of `bits` (scaled by 2^(bits−1), so integer audio passes
/// through float and back unchanged), clipped to the integer range: the only place AudioLab clips.
#[inline]
pub fn quantize(sample: f32, bits: u32) -> i32 {
    let scale = 1i64 << (bits - 1);
    let scaled = f64::from(sample) * scale as f64;
    // Round half away from zero by truncating `scaled ± ½` (exact: an f32 times a power of two
    // has few enough digits), which compiles to one conversion instead of a call to `round`.
    let rounded = (scaled + 0.5f64.copysign(scaled)) as i64;
    rounded.clamp(-scale, scale - 1) as i32
}

/// A dither source for one output at `bits` per sample. Deterministic for a seed, so the same
/// render gives the same bytes.
#[derive(Debug, Clone)]
pub struct Dither {
    state: u64,
    lsb: f32,
}

impl Dither {
    pub fn new(bits: u32, seed: u64) -> Self {
        Self { state: seed | 1, lsb: 1.0 / (1u64 << (bits - 1)) as f32 }
    }

    /// A uniform value in [0, 1) (xorshift64*).
    fn uniform(&mut self) -> f32 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        (self.state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Adds triangular noise of ±1 LSB (the sum of two uniform ±½ LSB values) to every sample.
    pub fn apply(&mut self, samples: &mut [f32]) {
        for sample in samples {
            *sample += (self.uniform() - self.uniform()) * self.lsb;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_triangular_within_one_lsb_and_centred() {
        let mut dither = Dither::new(16, 7);
        let mut samples = vec![0.0f32; 200_000];
        dither.apply(&mut samples);
        let lsb = 1.0 / 32_768.0;
        assert!(samples.iter().all(|s| s.abs() < lsb), "beyond ±1 LSB");
        let mean = samples.iter().map(|&s| f64::from(s)).sum::<f64>() / samples.len() as f64;
        assert!(mean.abs() < 0.01 * f64::from(lsb), "mean {mean}");
        // A triangle on ±1 LSB has variance LSB²/6; uniform would be LSB²/3.
        let variance = samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len() as f64;
        let ratio = variance / (f64::from(lsb).powi(2) / 6.0);
        assert!((ratio - 1.0).abs() < 0.03, "variance ratio {ratio}");
        let near_zero = samples.iter().filter(|s| s.abs() < lsb / 2.0).count() as f64 / samples.len() as f64;
        assert!((near_zero - 0.75).abs() < 0.01, "a triangle keeps 3/4 of its mass within ½ LSB: {near_zero}");
    }

    #[test]
    fn quantizing_clips_to_the_integer_range_and_round_trips_integers() {
        assert_eq!(quantize(0.5, 16), 16_384);
        assert_eq!((quantize(1.0, 16), quantize(-1.0, 16), quantize(-3.0, 24)), (32_767, -32_768, -8_388_608));
        for value in [-8_388_608i32, -1, 0, 1, 12_345, 8_388_607] {
            assert_eq!(quantize(value as f32 / 8_388_608.0, 24), value);
        }
        assert_eq!(
            (quantize(1.5 / 32_768.0, 16), quantize(-1.5 / 32_768.0, 16)),
            (2, -2),
            "halves round away from zero"
        );
        assert_eq!((quantize(0.4 / 32_768.0, 16), quantize(-0.6 / 32_768.0, 16)), (0, -1));
        assert_eq!(quantize(f32::NAN, 16), 0);
    }

    #[test]
    fn same_seed_same_noise() {
        let (mut a, mut b) = (vec![0.25f32; 64], vec![0.25f32; 64]);
        Dither::new(24, 3).apply(&mut a);
        Dither::new(24, 3).apply(&mut b);
        assert_eq!(a, b);
    }
}
