//! Gain stages of the mix law: decibels and the constant-power pan law.

/// Linear amplitude of a gain in decibels: 0 dB → 1.0, −6.02 dB → 0.5.
pub fn db_to_linear(db: f32) -> f32 {
    10f32.powf(db / 20.0)
}

/// Left and right gains of the constant-power pan law for a position in −1.0 (left) ..= 1.0
/// (right): `cos` / `sin` of a quarter turn, so L² + R² = 1 everywhere and the centre is −3 dB
/// in each channel. Positions outside the range are clamped.
pub fn constant_power_pan(position: f32) -> (f32, f32) {
    let angle = (position.clamp(-1.0, 1.0) + 1.0) * std::f32::consts::FRAC_PI_4;
    let (l, r) = (angle.cos(), angle.sin());
    // cos(π/2) is 4e-8 in f32, not 0: hard-panned must mean silent on the other side.
    (if l < 1e-6 { 0.0 } else { l }, if r < 1e-6 { 0.0 } else { r })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pan_law_is_hard_left_centre_minus_3db_and_hard_right() {
        assert_eq!(constant_power_pan(-1.0), (1.0, 0.0));
        let (l, r) = constant_power_pan(0.0);
        assert!((l - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-7 && (r - l).abs() < 1e-7);
        assert!((20.0 * l.log10() + 3.0103).abs() < 1e-3, "centre is −3 dB");
        assert_eq!(constant_power_pan(1.0), (0.0, 1.0));
    }

    #[test]
    fn pan_keeps_power_constant_and_clamps() {
        for i in -10..=10 {
            let (l, r) = constant_power_pan(i as f32 / 10.0);
            assert!((l * l + r * r - 1.0).abs() < 1e-6);
        }
        assert_eq!(constant_power_pan(5.0), constant_power_pan(1.0));
    }

    #[test]
    fn decibels_to_amplitude() {
        assert_eq!(db_to_linear(0.0), 1.0);
        assert!((db_to_linear(-6.0206) - 0.5).abs() < 1e-4);
        assert!((db_to_linear(20.0) - 10.0).abs() < 1e-5);
    }
}
