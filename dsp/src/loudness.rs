//! Loudness normalisation: the gain that brings a measured programme to a target loudness
//! without its true peak going over a ceiling.

/// What normalisation decided.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NormalizationGain {
    /// Gain to apply, in dB.
    pub gain_db: f64,
    /// Whether the ceiling, not the target, set the gain (the result is quieter than asked).
    pub limited_by_ceiling: bool,
}

/// The gain taking `measured_lufs` to `target_lufs`, reduced if needed so that
/// `true_peak_dbtp` + gain stays at or under `ceiling_dbtp`. Silence (no loudness) gets 0 dB.
pub fn normalization_gain(
    measured_lufs: Option<f64>,
    true_peak_dbtp: Option<f64>,
    target_lufs: f64,
    ceiling_dbtp: f64,
) -> NormalizationGain {
    let Some(measured) = measured_lufs.filter(|l| l.is_finite()) else {
        return NormalizationGain { gain_db: 0.0, limited_by_ceiling: false };
    };
    let wanted = target_lufs - measured;
    let allowed = true_peak_dbtp.filter(|p| p.is_finite()).map_or(f64::INFINITY, |peak| ceiling_dbtp - peak);
    if allowed < wanted {
        NormalizationGain { gain_db: allowed, limited_by_ceiling: true }
    } else {
        NormalizationGain { gain_db: wanted, limited_by_ceiling: false }
    }
}

/// A linear amplitude as dB (−∞ for silence).
pub fn linear_to_db(amplitude: f64) -> f64 {
    20.0 * amplitude.log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gain_reaches_the_target_unless_the_ceiling_stops_it() {
        let quiet = normalization_gain(Some(-30.0), Some(-20.0), -14.0, -1.0);
        assert_eq!(quiet, NormalizationGain { gain_db: 16.0, limited_by_ceiling: false });
        let peaky = normalization_gain(Some(-20.0), Some(-3.0), -14.0, -1.0);
        assert_eq!(peaky, NormalizationGain { gain_db: 2.0, limited_by_ceiling: true });
        let loud = normalization_gain(Some(-8.0), Some(0.5), -14.0, -1.0);
        assert_eq!(loud.gain_db, -6.0);
        assert_eq!(normalization_gain(None, None, -14.0, -1.0).gain_db, 0.0, "silence stays silent");
        assert_eq!(normalization_gain(Some(f64::NEG_INFINITY), None, -14.0, -1.0).gain_db, 0.0);
    }
}
