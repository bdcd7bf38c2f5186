//! Sound-card inputs (cargo feature `hw-audio`): the devices a track can record from, and one
//! input stream per take that delivers the card's samples into a ring the audio thread's
//! capture reads. The stream is opened as `f32` at the project's rate with the device's own
//! channel count; a device that cannot do that is refused with its name (no resampling yet).

use crate::engine::backend::Worker;
use audiolab_domain::device::InputDevice;
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Device ids of sound-card inputs start with this, followed by the host's device id.
pub const PREFIX: &str = "hw:";
/// Seconds of input the ring holds between the card's callback and the audio thread.
const RING_SECONDS: usize = 2;

/// The input devices of the default host.
pub fn input_devices() -> Vec<InputDevice> {
    let host = cpal::default_host();
    let default = host.default_input_device().and_then(|d| d.id().ok());
    let Ok(devices) = host.input_devices() else { return Vec::new() };
    devices
        .filter_map(|device| {
            let id = device.id().ok()?;
            let config = device.default_input_config().ok()?;
            Some(InputDevice {
                device_id: format!("{PREFIX}{id}"),
                name: device.to_string(),
                channels: config.channels(),
                sample_rate: config.sample_rate(),
                is_default: default.as_ref() == Some(&id),
                host_api: host.id().name().to_owned(),
            })
        })
        .collect()
}

/// A sound card delivering input for one take; the stream stops when this is dropped.
pub struct HardwareInput {
    _worker: Worker,
    channels: u16,
    /// The card's input latency (sample captured → callback), as its last callback measured it.
    latency_ns: Arc<AtomicU64>,
}

impl HardwareInput {
    pub fn channels(&self) -> u16 {
        self.channels
    }

    /// The card's input latency in frames at `sample_rate`.
    pub fn latency_frames(&self, sample_rate: u32) -> i64 {
        (self.latency_ns.load(Relaxed) as f64 * f64::from(sample_rate) / 1e9).round() as i64
    }
}

/// Opens the input `device_id` (`hw:…`) at `sample_rate`: the running stream and the ring it
/// fills. Errors name the device and what it cannot do.
pub fn open(device_id: &str, sample_rate: u32) -> Result<(HardwareInput, rtrb::Consumer<f32>), String> {
    let wanted = device_id.strip_prefix(PREFIX).ok_or_else(|| format!("{device_id:?} is not a sound-card input"))?;
    let host = cpal::default_host();
    let device = host
        .input_devices()
        .map_err(|e| e.to_string())?
        .find(|d| d.id().is_ok_and(|id| id.to_string() == wanted))
        .ok_or_else(|| format!("no input device {device_id:?} on this node"))?;
    let channels = device.default_input_config().map_err(|e| format!("{device_id}: {e}"))?.channels();
    let supported = device.supported_input_configs().map_err(|e| format!("{device_id}: {e}"))?.any(|c| {
        c.channels() == channels
            && c.sample_format() == cpal::SampleFormat::F32
            && c.min_sample_rate() <= sample_rate
            && sample_rate <= c.max_sample_rate()
    });
    if !supported {
        return Err(format!("{device_id} cannot record {channels}-channel f32 at {sample_rate} Hz"));
    }
    let (mut ring, consumer) = rtrb::RingBuffer::new(sample_rate as usize * usize::from(channels) * RING_SECONDS);
    let latency_ns = Arc::new(AtomicU64::new(0));
    let latency = latency_ns.clone();
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let name = format!("audiolab-input-{channels}ch");
    let worker = crate::engine::backend::spawn_worker(name, move |stop| {
        let stream = (|| {
            let config = cpal::StreamConfig { channels, sample_rate, buffer_size: cpal::BufferSize::Default };
            let callback = move |data: &[f32], info: &cpal::InputCallbackInfo| {
                let stamp = info.timestamp();
                latency.store(stamp.callback.duration_since(stamp.capture).as_nanos() as u64, Relaxed);
                // The audio thread is seconds behind only if it stopped: then input is dropped.
                let room = ring.slots().min(data.len());
                if let Ok(chunk) = ring.write_chunk_uninit(room) {
                    chunk.fill_from_iter(data[..room].iter().copied());
                }
            };
            let on_error = |error: cpal::Error| tracing::warn!(%error, "audio input error");
            let stream = device.build_input_stream(config, callback, on_error, None).map_err(|e| e.to_string())?;
            stream.play().map_err(|e| e.to_string())?;
            Ok::<_, String>(stream)
        })();
        match stream {
            Ok(stream) => {
                let _ = started_tx.send(Ok(()));
                while !stop.load(Relaxed) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                drop(stream);
            }
            Err(error) => {
                let _ = started_tx.send(Err(error));
            }
        }
    })
    .map_err(|e| e.to_string())?;
    match started_rx.recv() {
        Ok(Ok(())) => Ok((HardwareInput { _worker: worker, channels, latency_ns }, consumer)),
        Ok(Err(error)) => Err(format!("{device_id}: {error}")),
        Err(_) => Err(format!("{device_id}: the input thread ended before the stream started")),
    }
}
