//! The inputs a take can record from on this node: the virtual devices, the loopback, and (with
//! `hw-audio`) a sound card — and the latency each adds to a take's position.

use crate::engine::InputSource;
use audiolab_domain::device::LOOPBACK_DEVICE_ID;
use audiolab_domain::transport::{TransportError, TransportResult};
use audiolab_dsp::input::VirtualSignal;

/// The input a device id names, if this node has it.
pub fn input_source(device_id: &str, tempo: f64) -> Option<InputSource> {
    match device_id {
        "mock_0" => Some(InputSource::Virtual(VirtualSignal::Sine)),
        "mock_1" => Some(InputSource::Virtual(VirtualSignal::Tones)),
        "mock_2" => Some(InputSource::Virtual(VirtualSignal::Click { tempo })),
        LOOPBACK_DEVICE_ID => Some(InputSource::Loopback),
        _ => None,
    }
}

/// A sound card delivering a take's input (only with the `hw-audio` feature; without it the
/// type has no values).
#[cfg(feature = "hw-audio")]
pub use crate::device::cpal_input::HardwareInput;
#[cfg(not(feature = "hw-audio"))]
pub enum HardwareInput {}

/// A device's input: what the capture reads, and for a sound card its running stream and the
/// ring that stream fills.
pub type OpenedInput = (InputSource, Option<(HardwareInput, rtrb::Consumer<f32>)>);

/// Opens the input `device_id` names on this node: a virtual device or the loopback, or (with
/// `hw-audio`) a sound-card input at the project's `sample_rate`. Errors say why not.
pub fn open_input(device_id: &str, tempo: f64, sample_rate: u32) -> TransportResult<OpenedInput> {
    if let Some(source) = input_source(device_id, tempo) {
        return Ok((source, None));
    }
    #[cfg(feature = "hw-audio")]
    if device_id.starts_with(crate::device::cpal_input::PREFIX) {
        let (input, ring) = crate::device::cpal_input::open(device_id, sample_rate)
            .map_err(|e| TransportError::Unavailable(format!("cannot open the input: {e}")))?;
        return Ok((InputSource::Device { channels: input.channels() }, Some((input, ring))));
    }
    let _ = sample_rate;
    Err(TransportError::Invalid(format!("device_id: no input device {device_id:?} on this node")))
}

/// Input + output latency in frames, subtracted from a take's position. The virtual devices
/// and the loopback are sample-aligned with the engine's frame counter by construction; a
/// sound card reports its input latency on each callback and the output its own.
pub fn device_latency(hardware: Option<&HardwareInput>, output_latency_frames: i64, sample_rate: u32) -> i64 {
    match hardware {
        #[cfg(feature = "hw-audio")]
        Some(input) => input.latency_frames(sample_rate) + output_latency_frames,
        _ => {
            let _ = (output_latency_frames, sample_rate);
            0
        }
    }
}
