//! Recording on the audio thread: each active [`Capture`] takes the block's input (a virtual
//! device's signal, the engine's own mix for the loopback device, or a sound card's input
//! stream through a ring) and pushes it into its ring for the writer thread, noting where on
//! the timeline its first sample fell.

use audiolab_dsp::input::VirtualSignal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering::Relaxed};

/// Captures one engine runs at once (tracks recording simultaneously).
pub const MAX_CAPTURES: usize = 8;
/// Seconds of audio a capture ring holds before the writer must have drained it.
pub const RING_SECONDS: usize = 4;
/// Loop passes a capture tells apart; later passes extend the last one.
pub const MAX_PASSES: usize = 256;

/// One pass of a capture: where it starts in the capture and on the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub capture_offset: u64,
    pub timeline_start: i64,
}

/// Where a capture's samples come from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InputSource {
    Virtual(VirtualSignal),
    /// The engine's own stereo output, sample-aligned with the timeline it plays.
    Loopback,
    /// A sound card's input, delivered by its stream's callback into the capture's device ring.
    Device {
        channels: u16,
    },
}

impl InputSource {
    pub fn channels(self) -> usize {
        match self {
            Self::Virtual(signal) => signal.channels(),
            Self::Loopback => 2,
            Self::Device { channels } => usize::from(channels),
        }
    }
}

/// What the audio thread reports about one capture, read by the control side and the writer.
#[derive(Debug)]
pub struct CaptureMeter {
    first_frame: AtomicI64,
    frames: AtomicU64,
    pass_offsets: [AtomicU64; MAX_PASSES],
    pass_starts: [AtomicI64; MAX_PASSES],
    pass_count: std::sync::atomic::AtomicUsize,
    dropped: AtomicU64,
    peak: AtomicU32,
    finished: AtomicBool,
}

impl Default for CaptureMeter {
    fn default() -> Self {
        Self {
            first_frame: AtomicI64::new(i64::MIN),
            frames: AtomicU64::new(0),
            pass_offsets: std::array::from_fn(|_| AtomicU64::new(0)),
            pass_starts: std::array::from_fn(|_| AtomicI64::new(0)),
            pass_count: std::sync::atomic::AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            peak: AtomicU32::new(0),
            finished: AtomicBool::new(false),
        }
    }
}

impl CaptureMeter {
    /// The timeline frame that played while the first sample was captured.
    pub fn first_frame(&self) -> Option<i64> {
        Some(self.first_frame.load(Relaxed)).filter(|&f| f != i64::MIN)
    }

    /// Frames captured so far (including any the writer was too late to take).
    pub fn frames(&self) -> u64 {
        self.frames.load(Relaxed)
    }

    /// The passes captured so far: one unless the playhead jumped (a loop wrap, a seek) while
    /// recording. Read it once the
    /// capture is finished for the final list.
    pub fn passes(&self) -> Vec<Pass> {
        let count = self.pass_count.load(std::sync::atomic::Ordering::Acquire);
        (0..count)
            .map(|i| Pass {
                capture_offset: self.pass_offsets[i].load(Relaxed),
                timeline_start: self.pass_starts[i].load(Relaxed),
            })
            .collect()
    }

    fn open_pass(&self, capture_offset: u64, timeline_start: i64) {
        let count = self.pass_count.load(Relaxed);
        if count < MAX_PASSES {
            self.pass_offsets[count].store(capture_offset, Relaxed);
            self.pass_starts[count].store(timeline_start, Relaxed);
            self.pass_count.store(count + 1, std::sync::atomic::Ordering::Release);
        }
    }

    /// Frames lost because the ring was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }

    /// The loudest sample since the last call, 0–1.
    pub fn take_peak(&self) -> f32 {
        f32::from_bits(self.peak.swap(0, Relaxed))
    }

    /// Whether the audio thread has let go of the capture: nothing more will arrive.
    pub fn finished(&self) -> bool {
        self.finished.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// One track's recording as the audio thread holds it.
pub struct Capture {
    pub id: u64,
    source: InputSource,
    sample_rate: u32,
    ring: rtrb::Producer<f32>,
    meter: Arc<CaptureMeter>,
    /// The device's own frame counter (virtual signals are functions of it).
    input_frame: u64,
    /// Only timeline frames in `[in, out)` are captured.
    punch: Option<(i64, i64)>,
    /// The timeline frame that follows the last one played, to tell a jump (a loop wrap, a
    /// seek, a loop change) from continuous playback.
    next_position: Option<i64>,
    /// The playhead jumped since the last captured frame: the next one opens a pass.
    jumped: bool,
    /// A sound card's samples as its input callback delivered them (for `InputSource::Device`).
    device: Option<rtrb::Consumer<f32>>,
}

impl Drop for Capture {
    /// A capture dropped with its engine (the project was deleted, the node is stopping) is
    /// finished too, so whatever waits on its meter ends.
    fn drop(&mut self) {
        self.finish();
    }
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture").field("id", &self.id).field("source", &self.source).finish_non_exhaustive()
    }
}

impl Capture {
    /// A capture and the consumer end of its ring, for the writer thread. `device` is the ring
    /// a sound card's input callback fills, for [`InputSource::Device`].
    pub fn new(
        id: u64,
        source: InputSource,
        sample_rate: u32,
        punch: Option<(i64, i64)>,
        device: Option<rtrb::Consumer<f32>>,
    ) -> (Box<Self>, rtrb::Consumer<f32>, Arc<CaptureMeter>) {
        let capacity = sample_rate as usize * RING_SECONDS * source.channels();
        let (ring, consumer) = rtrb::RingBuffer::new(capacity);
        let meter = Arc::new(CaptureMeter::default());
        let capture = Box::new(Self {
            id,
            source,
            sample_rate,
            ring,
            meter: meter.clone(),
            input_frame: 0,
            punch,
            next_position: None,
            jumped: false,
            device,
        });
        (capture, consumer, meter)
    }

    /// Captures the frames played from timeline frame `position` (contiguous on the timeline);
    /// `mix` is the engine's stereo output for exactly those frames. Only frames inside the
    /// punch range are kept; the device's own clock runs through all of them. Frames that do
    /// not follow on from the last ones played (the playhead jumped) start a new pass, so
    /// every piece of the take keeps the timeline position it was played at.
    pub(super) fn capture(&mut self, position: i64, mix: &[f32]) {
        let frames = mix.len() / 2;
        if self.next_position.is_some_and(|next| next != position) {
            self.jumped = true;
        }
        self.next_position = Some(position + frames as i64);
        let channels = self.source.channels();
        if let Some(device) = &mut self.device
            && self.input_frame == 0
        {
            // The stream ran before the first block reached the capture: keep only the newest
            // block's worth, the sound that is playing now.
            let stale = device.slots().saturating_sub(frames * channels);
            discard(device, stale);
        }
        let (from, to) = match self.punch {
            None => (0, frames),
            Some((punch_in, punch_out)) => {
                // Saturating: a punch open to the end (i64::MAX) seen from before 0 (a count-in).
                let lo = punch_in.saturating_sub(position).clamp(0, frames as i64) as usize;
                let hi = punch_out.saturating_sub(position).clamp(0, frames as i64) as usize;
                (lo, hi.max(lo))
            }
        };
        if let Some(device) = &mut self.device {
            discard(device, from * channels);
        }
        if from < to {
            self.keep(position + from as i64, self.input_frame + from as u64, &mix[from * 2..to * 2]);
        }
        if let Some(device) = &mut self.device {
            discard(device, (frames - to.max(from)) * channels);
        }
        self.input_frame += frames as u64;
    }

    /// Pushes frames (from timeline frame `position`, device frame `device_frame`) to the ring.
    fn keep(&mut self, position: i64, device_frame: u64, mix: &[f32]) {
        let frames = mix.len() / 2;
        let channels = self.source.channels();
        let samples = frames * channels;
        let captured = self.meter.frames.load(Relaxed);
        if self.meter.first_frame.load(Relaxed) == i64::MIN {
            self.meter.first_frame.store(position, Relaxed);
            self.meter.open_pass(0, position);
        } else if self.jumped {
            self.meter.open_pass(captured, position);
        }
        self.jumped = false;
        self.meter.frames.store(captured + frames as u64, Relaxed);
        let Ok(chunk) = self.ring.write_chunk_uninit(samples) else {
            // The writer is seconds behind: lose this block rather than wait.
            self.meter.dropped.fetch_add(frames as u64, Relaxed);
            return;
        };
        let mut peak = 0.0f32;
        let (source, rate, device) = (self.source, self.sample_rate, &mut self.device);
        let written = chunk.fill_from_iter((0..samples).map(|i| {
            let sample = match source {
                InputSource::Loopback => mix[(i / channels) * 2 + i % channels],
                InputSource::Virtual(signal) => signal.sample(device_frame + (i / channels) as u64, i % channels, rate),
                // A card that delivered less than a block (it started late, or its clock is
                // slower) leaves silence, so the take keeps the timeline's length.
                InputSource::Device { .. } => device.as_mut().and_then(|d| d.pop().ok()).unwrap_or(0.0),
            };
            peak = peak.max(sample.abs());
            sample
        }));
        debug_assert_eq!(written, samples);
        self.meter.peak.fetch_max(peak.to_bits(), Relaxed);
    }

    /// Marks the capture finished: everything it will ever capture is in the ring.
    pub(super) fn finish(&self) {
        self.meter.finished.store(true, std::sync::atomic::Ordering::Release);
    }
}

/// Drops up to `samples` samples from a device ring (input played outside a punch range).
fn discard(device: &mut rtrb::Consumer<f32>, samples: usize) {
    let samples = samples.min(device.slots());
    if let Ok(chunk) = device.read_chunk(samples) {
        chunk.commit_all();
    }
}
