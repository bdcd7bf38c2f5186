//! A capture on its way to storage: the thread that drains the audio thread's ring into
//! one-second chunks, and (cloud mode) the task that sends each complete chunk to the bucket.

use crate::engine::{CaptureMeter, InputSource};
use audiolab_media::capture::{ChunkWriter, Manifest};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

/// How often the writer drains a capture ring: far inside its [`crate::engine::capture`] capacity.
const DRAIN_INTERVAL: Duration = Duration::from_millis(20);

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
