//! What drives an engine: a clock thread pacing blocks in real time (the mock backend, used
//! whenever there is no sound card) and the read-ahead thread feeding it.

use crate::engine::{BLOCK_FRAMES, EngineCore, Prefetcher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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

/// The mock backend: renders one block every `BLOCK_FRAMES / sample_rate` seconds, exactly as
/// a sound card's callback would, and hands the mix to `output` (discarded in the cloud).
pub fn spawn_mock_clock(
    mut core: EngineCore,
    sample_rate: u32,
    stats: Arc<ClockStats>,
    mut output: impl FnMut(&[f32]) + Send + 'static,
) -> std::io::Result<Worker> {
    let period = Duration::from_secs_f64(BLOCK_FRAMES as f64 / f64::from(sample_rate));
    spawn_worker("audiolab-clock".into(), move |stop| {
        let mut buffer = vec![0.0f32; BLOCK_FRAMES * 2];
        let started = Instant::now();
        let mut block: u32 = 0;
        while !stop.load(Relaxed) {
            let render_start = Instant::now();
            core.process(&mut buffer);
            output(&buffer);
            let finished = Instant::now();
            let render_ns = (finished - render_start).as_nanos() as u64;
            stats.blocks.fetch_add(1, Relaxed);
            stats.total_render_ns.fetch_add(render_ns, Relaxed);
            stats.max_render_ns.fetch_max(render_ns, Relaxed);
            block += 1;
            // Block n is due at the output when block n + 1's period starts.
            let due = started + period * block;
            if finished > due {
                stats.late_blocks.fetch_add(1, Relaxed);
            }
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
    })
}

/// The read-ahead thread: keeps the prefetcher's blocks full, checking every millisecond.
pub fn spawn_reader(mut prefetcher: Prefetcher) -> std::io::Result<Worker> {
    spawn_worker("audiolab-reader".into(), move |stop| {
        while !stop.load(Relaxed) {
            if prefetcher.fill() == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    })
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
        if crate::cpal_output::output_available(48_000) {
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

/// Starts `core` on the sound card if `output` says so and a stream opens at `sample_rate`,
/// else on the mock clock. Returns the driving thread and the output actually used.
pub fn start_output(
    core: crate::engine::EngineCore,
    sample_rate: u32,
    stats: Arc<ClockStats>,
    output: Output,
) -> std::io::Result<(Worker, Output)> {
    #[cfg(feature = "hw-audio")]
    if output == Output::Hardware && crate::cpal_output::output_available(sample_rate) {
        // A stream that fails to open after a successful probe loses this engine's core, so
        // probe first; a failure here is reported and the session fails to start.
        return crate::cpal_output::spawn_output(core, sample_rate, stats)
            .map(|w| (w, Output::Hardware))
            .map_err(std::io::Error::other);
    }
    let _ = output;
    spawn_mock_clock(core, sample_rate, stats, |_| {}).map(|w| (w, Output::Mock))
}
