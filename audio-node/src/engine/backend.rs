//! What drives an engine: the sound card's callback (cpal), or the node's render pool pacing
//! blocks in real time (the mock clock, whenever there is no sound card).

use crate::engine::EngineCore;
use crate::engine::pool::PoolEntry;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::thread::JoinHandle;

/// Timing of the blocks a clock rendered.
#[derive(Debug, Default)]
pub struct ClockStats {
    /// Blocks whose render finished after the block was due at the output.
    pub late_blocks: AtomicU64,
    pub blocks: AtomicU64,
    /// Longest and total render time of a block, in nanoseconds.
    pub max_render_ns: AtomicU64,
    pub total_render_ns: AtomicU64,
    /// Output latency (callback → sound leaving the card) as the sound card last reported it;
    /// zero on the mock clock.
    pub output_latency_ns: AtomicU64,
}

/// A background thread that stops (and is joined) when dropped.
#[derive(Debug)]
pub struct Worker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Runs `body` on a named thread; it should return once the flag it is given turns true.
pub fn spawn_worker(name: String, body: impl FnOnce(Arc<AtomicBool>) + Send + 'static) -> std::io::Result<Worker> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::Builder::new().name(name).spawn(move || body(flag))?;
    Ok(Worker { stop, thread: Some(thread) })
}

/// What plays a node's engines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The mock clock: real-time pace, the mix goes to subscribers or nowhere.
    Mock,
    /// The sound card, through cpal.
    Hardware,
}

impl Output {
    /// The sound card when the `hw-audio` feature is built in and a device plays stereo `f32`
    /// at 48 kHz; else the mock clock.
    pub fn detect() -> Output {
        #[cfg(feature = "hw-audio")]
        if crate::engine::cpal_output::output_available(48_000) {
            return Output::Hardware;
        }
        Output::Mock
    }

    pub fn engine_name(self) -> &'static str {
        match self {
            Output::Mock => "mock",
            Output::Hardware => "cpal",
        }
    }
}

/// Starts `core` on the sound card if `output` says so and a stream opens at `sample_rate`
/// (returning the thread holding the stream), else on the render pool's clock through its
/// `entry`. Returns the output actually used.
pub fn start_output(
    #[allow(unused_mut)] mut core: EngineCore,
    sample_rate: u32,
    stats: Arc<ClockStats>,
    output: Output,
    entry: &PoolEntry,
) -> std::io::Result<(Option<Worker>, Output)> {
    #[cfg(feature = "hw-audio")]
    if output == Output::Hardware && crate::engine::cpal_output::output_available(sample_rate) {
        // A stream that fails to open after a successful probe loses this engine's core, so
        // probe first; a failure here is reported and the session fails to start.
        core.set_fill_signal(entry.fill_signal());
        return crate::engine::cpal_output::spawn_output(core, sample_rate, stats)
            .map(|w| (Some(w), Output::Hardware))
            .map_err(std::io::Error::other);
    }
    let _ = output;
    entry.render(core, sample_rate, stats)?;
    Ok((None, Output::Mock))
}
