//! Recording on a node: a take's journal row, its capture lane on the engine, the writer thread
//! that puts the capture on storage, and the hand-off to finalisation when it stops.
//!
//! ```text
//! record_start: journal row ─▶ manifest on storage ─▶ writer thread ─▶ StartCapture (+ roll)
//! audio thread: block input ─▶ capture ring ─▶ writer: one-second chunks, synced
//! record_stop:  StopCapture ─▶ writer drains ─▶ placement ─▶ take + clip (processing) ─▶ finalize
//! ```

use crate::engine::{CaptureMeter, InputSource};
use audiolab_domain::device::LOOPBACK_DEVICE_ID;
use audiolab_domain::{ProjectId, RecordingSessionId, TrackId};
use audiolab_dsp::input::VirtualSignal;
use audiolab_media::capture::{ChunkWriter, Manifest};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

/// How often the writer drains a capture ring: far inside its [`crate::engine::capture`] capacity.
const DRAIN_INTERVAL: Duration = Duration::from_millis(20);

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
pub use crate::cpal_input::HardwareInput;
#[cfg(not(feature = "hw-audio"))]
pub enum HardwareInput {}

/// A device's input: what the capture reads, and for a sound card its running stream and the
/// ring that stream fills.
pub type OpenedInput = (InputSource, Option<(HardwareInput, rtrb::Consumer<f32>)>);

/// Opens the input `device_id` names on this node: a virtual device or the loopback, or (with
/// `hw-audio`) a sound-card input at the project's `sample_rate`. Errors say why not.
pub fn open_input(device_id: &str, tempo: f64, sample_rate: u32) -> Result<OpenedInput, String> {
    if let Some(source) = input_source(device_id, tempo) {
        return Ok((source, None));
    }
    #[cfg(feature = "hw-audio")]
    if device_id.starts_with(crate::cpal_input::PREFIX) {
        let (input, ring) = crate::cpal_input::open(device_id, sample_rate)?;
        return Ok((InputSource::Device { channels: input.channels() }, Some((input, ring))));
    }
    let _ = sample_rate;
    Err(format!("no input device {device_id:?} on this node"))
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

/// A recording in progress on this node.
pub struct ActiveRecording {
    pub id: RecordingSessionId,
    pub project_id: ProjectId,
    pub track_id: TrackId,
    pub device_id: String,
    pub capture_id: u64,
    pub source: InputSource,
    pub meter: Arc<CaptureMeter>,
    pub writer: CaptureWriter,
    /// The sound card's stream, for a take from one; stopped when the recording is dropped.
    pub hardware: Option<HardwareInput>,
    /// Sends the capture to the object store while it records (cloud mode).
    pub uploader: Option<tokio::task::JoinHandle<std::collections::HashSet<String>>>,
}

/// The thread moving one capture from its ring to storage. Dropping it (shutdown) makes it
/// write what the ring holds and end.
pub struct CaptureWriter {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl CaptureWriter {
    /// Starts writing `ring` into `chunks` until the audio thread finishes the capture and the
    /// ring is empty (or the node shuts down: then what is in the ring is written first).
    pub fn spawn(
        name: String,
        mut ring: rtrb::Consumer<f32>,
        meter: Arc<CaptureMeter>,
        mut chunks: ChunkWriter,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new().name(name).spawn(move || {
            let mut result = Ok(());
            loop {
                // Read `finished` before draining: whatever it covers is in the ring by now.
                // An engine dropped mid-take (shutdown) abandons the ring: what is in it is all.
                let last = meter.finished() || stopping.load(Relaxed) || ring.is_abandoned();
                let available = ring.slots();
                if available > 0 {
                    if let Ok(chunk) = ring.read_chunk(available) {
                        let (first, second) = chunk.as_slices();
                        result = result.and_then(|()| chunks.write(first)).and_then(|()| chunks.write(second));
                        chunk.commit_all();
                    }
                }
                if last && ring.is_empty() {
                    break;
                }
                std::thread::sleep(DRAIN_INTERVAL);
            }
            result.and_then(|()| chunks.finish()).map_err(|err| {
                tracing::error!(%err, "capture could not be written");
                err.to_string()
            })
        })?;
        Ok(Self { stop, thread: Some(thread) })
    }

    /// Waits for the writer to put the whole capture on storage (once the audio thread has
    /// finished it). Blocking: call off the runtime.
    pub fn join(mut self) -> Result<(), String> {
        let thread = self.thread.take().expect("joined once");
        thread.join().unwrap_or_else(|_| Err("the capture writer panicked".into()))
    }
}

impl Drop for CaptureWriter {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Sends a capture's manifest and each chunk as soon as it is complete (one second of audio)
/// to the object store, every second until the capture finishes, so a take survives the loss
/// of its node. Returns what it sent; the rest goes when the take stops.
pub async fn upload_capture(
    storage: audiolab_media::storage::Storage,
    capture_key: String,
    chunk_bytes: u64,
    meter: Arc<CaptureMeter>,
) -> std::collections::HashSet<String> {
    let mut sent = std::collections::HashSet::new();
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    while !meter.finished() {
        ticks.tick().await;
        let complete =
            |name: &str, length: u64| name == "manifest" || (name.starts_with("chunk-") && length == chunk_bytes);
        if let Err(error) = storage.publish_new(&capture_key, &mut sent, complete).await {
            tracing::warn!(%capture_key, %error, "cannot send a capture's chunks yet; retrying");
        }
    }
    sent
}

/// The capture's manifest for a source at `sample_rate`.
pub fn manifest(source: InputSource, sample_rate: u32) -> Manifest {
    Manifest { channels: source.channels() as u16, sample_rate }
}
