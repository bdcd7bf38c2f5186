//! Audio input devices as clients see them, and the virtual devices every node offers.

/// An input device a track can record from.
#[derive(Debug, Clone, PartialEq)]
pub struct InputDevice {
    pub device_id: String,
    pub name: String,
    pub channels: u16,
    pub sample_rate: u32,
    pub is_default: bool,
    /// `"virtual"` for AudioLab's own devices, else the audio host's name (ALSA, CoreAudio, ...).
    pub host_api: String,
}

/// How a client device's round trip was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LatencySource {
    /// By a loopback test: a burst played and found again in the microphone.
    Measured,
    /// From the latencies the browser reports (on headphones no burst comes back).
    Estimated,
    /// Set or nudged by hand.
    Manual,
}

impl LatencySource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Measured => "measured",
            Self::Estimated => "estimated",
            Self::Manual => "manual",
        }
    }
}

impl std::str::FromStr for LatencySource {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "measured" => Ok(Self::Measured),
            "estimated" => Ok(Self::Estimated),
            "manual" => Ok(Self::Manual),
            other => Err(format!("unknown latency source {other:?}")),
        }
    }
}

/// A user's client device's round trip (output + input latency), placed with its takes.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientLatency {
    pub device_id: String,
    /// Microseconds, 0 to 1 s.
    pub latency_us: i64,
    pub source: LatencySource,
    /// The user's manual offset for the device, microseconds, −1 s to 1 s: added to the
    /// position of every take from it.
    pub offset_us: i64,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl ClientLatency {
    /// The round trip in frames at `sample_rate`.
    pub fn frames(&self, sample_rate: u32) -> u32 {
        (self.latency_us as f64 * f64::from(sample_rate) / 1e6).round() as u32
    }
}

/// Client devices (§10) are listed, armed and recorded from as `client:<name>`.
pub const CLIENT_PREFIX: &str = "client:";

/// Whether `device_id` names a client device (a browser or app attached to a project).
pub fn is_client_device(device_id: &str) -> bool {
    device_id.starts_with(CLIENT_PREFIX)
}

/// The device that records the engine's own output.
pub const LOOPBACK_DEVICE_ID: &str = "loopback";

/// The virtual devices, present on every node whether or not it has a sound card: they make
/// recording possible (and testable) in the cloud.
pub fn virtual_devices(sample_rate: u32) -> Vec<InputDevice> {
    let device = |id: &str, name: &str, channels, is_default| InputDevice {
        device_id: id.into(),
        name: name.into(),
        channels,
        sample_rate,
        is_default,
        host_api: "virtual".into(),
    };
    vec![
        device("mock_0", "AudioLab Virtual Microphone 1", 1, true),
        device("mock_1", "AudioLab Virtual Microphone 2", 2, false),
        device("mock_2", "AudioLab Virtual Line In", 2, false),
        device(LOOPBACK_DEVICE_ID, "AudioLab Loopback (engine output)", 2, false),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_virtual_microphones_and_a_loopback_with_mock_0_the_mono_default() {
        let devices = virtual_devices(48_000);
        let ids: Vec<_> = devices.iter().map(|d| d.device_id.as_str()).collect();
        assert_eq!(ids, ["mock_0", "mock_1", "mock_2", "loopback"]);
        assert_eq!((devices[0].channels, devices[0].is_default), (1, true));
        assert!(devices[1..].iter().all(|d| d.channels == 2 && !d.is_default));
    }
}
