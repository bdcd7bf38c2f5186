//! What the audio thread and the control side share: atomics one way, rings the other.

use super::{Command, MAX_TRACKS};
use audiolab_dsp::mix::TrackMix;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU32, AtomicU64, Ordering::Relaxed};

pub use audiolab_domain::transport::TransportState;

/// The state as the audio thread stores it in an atomic.
fn state_from_u8(value: u8) -> TransportState {
    match value {
        1 => TransportState::Playing,
        2 => TransportState::Paused,
        _ => TransportState::Stopped,
    }
}

fn state_to_u8(state: TransportState) -> u8 {
    match state {
        TransportState::Stopped => 0,
        TransportState::Playing => 1,
        TransportState::Paused => 2,
    }
}

/// Something the audio thread noticed, for the control side to announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineEvent {
    /// The loop wrapped; `pass` (from 1) is the pass now playing.
    LoopWrapped { pass: u32 },
    /// The last pass of the loop ended; playback goes on.
    LoopFinished,
    /// Playback reached the end of the last clip and stopped.
    ReachedEnd,
    /// Read-ahead audio was not ready in time; the block played silence.
    Underrun { position: i64 },
}

/// One track's live mixer settings, as atomics.
#[derive(Debug, Default)]
struct TrackParams {
    volume: AtomicU32,
    pan: AtomicU32,
    muted: AtomicBool,
    soloed: AtomicBool,
}

/// State published by the audio thread and mixer settings read by it. Relaxed ordering is
/// enough: each value stands alone, and a reader one block late is within the contract.
#[derive(Debug)]
pub struct Shared {
    pub sample_rate: u32,
    position: AtomicI64,
    state: AtomicU8,
    duration: AtomicI64,
    loop_pass: AtomicU32,
    looping: AtomicBool,
    underruns: AtomicU64,
    blocks: AtomicU64,
    captures: AtomicU32,
    /// Commands the audio thread has applied (published at the end of the block).
    applied: AtomicU64,
    /// Set by a command for an engine that may be asleep in the render pool.
    woken: AtomicBool,
    /// The thread that renders this engine in the pool, woken by each command.
    waker: std::sync::OnceLock<std::thread::Thread>,
    /// A client device paces the engine (§10): it renders blocks as the client has room for
    /// them, instead of on the node's clock.
    client_clocked: AtomicBool,
    /// Frames the client has room for: raised as it reports playing what it was sent.
    client_credit: AtomicI64,
    mixer: [TrackParams; MAX_TRACKS],
    /// Each track's output peaks (left, right; f32 bits) since they were last taken: the
    /// audio thread raises them, the reporter takes them (latest wins, nothing queues).
    peaks: [[AtomicU32; 2]; MAX_TRACKS],
}

impl Shared {
    pub(crate) fn new(sample_rate: u32, duration: i64) -> Self {
        let shared = Self {
            sample_rate,
            position: AtomicI64::new(0),
            state: AtomicU8::new(0),
            duration: AtomicI64::new(duration),
            loop_pass: AtomicU32::new(0),
            looping: AtomicBool::new(false),
            underruns: AtomicU64::new(0),
            blocks: AtomicU64::new(0),
            captures: AtomicU32::new(0),
            applied: AtomicU64::new(0),
            woken: AtomicBool::new(false),
            waker: std::sync::OnceLock::new(),
            client_clocked: AtomicBool::new(false),
            client_credit: AtomicI64::new(0),
            mixer: std::array::from_fn(|_| TrackParams::default()),
            peaks: std::array::from_fn(|_| [AtomicU32::new(0), AtomicU32::new(0)]),
        };
        for slot in 0..MAX_TRACKS {
            shared.set_mix(slot, TrackMix::default());
        }
        shared
    }

    pub fn position(&self) -> i64 {
        self.position.load(Relaxed)
    }

    pub fn state(&self) -> TransportState {
        state_from_u8(self.state.load(Relaxed))
    }

    pub fn duration(&self) -> i64 {
        self.duration.load(Relaxed)
    }

    /// The loop pass being played, when a loop is active.
    pub fn loop_pass(&self) -> Option<u32> {
        self.looping.load(Relaxed).then(|| self.loop_pass.load(Relaxed))
    }

    /// Whether any capture is running (a take is being recorded).
    pub fn recording(&self) -> bool {
        self.captures.load(Relaxed) > 0
    }

    pub(crate) fn set_captures(&self, count: u32) {
        self.captures.store(count, Relaxed);
    }

    pub fn underruns(&self) -> u64 {
        self.underruns.load(Relaxed)
    }

    /// Blocks the audio thread has processed.
    pub fn blocks(&self) -> u64 {
        self.blocks.load(Relaxed)
    }

    pub fn mix(&self, slot: usize) -> TrackMix {
        let p = &self.mixer[slot];
        TrackMix {
            volume: f32::from_bits(p.volume.load(Relaxed)),
            pan: f32::from_bits(p.pan.load(Relaxed)),
            muted: p.muted.load(Relaxed),
            soloed: p.soloed.load(Relaxed),
        }
    }

    /// Raises track `slot`'s peaks to `peaks` if they are louder (audio thread). Non-negative
    /// floats order as their bits do, so this is one atomic max per channel.
    pub(crate) fn note_peaks(&self, slot: usize, peaks: [f32; 2]) {
        for (held, peak) in self.peaks[slot].iter().zip(peaks) {
            held.fetch_max(peak.max(0.0).to_bits(), Relaxed);
        }
    }

    /// Track `slot`'s loudest output (left, right) since the last call, which starts it again.
    pub fn take_peaks(&self, slot: usize) -> [f32; 2] {
        let [left, right] = &self.peaks[slot];
        [f32::from_bits(left.swap(0, Relaxed)), f32::from_bits(right.swap(0, Relaxed))]
    }

    /// Sets a track's mixer; the audio thread uses it from its next block.
    pub fn set_mix(&self, slot: usize, mix: TrackMix) {
        let p = &self.mixer[slot];
        p.volume.store(mix.volume.to_bits(), Relaxed);
        p.pan.store(mix.pan.to_bits(), Relaxed);
        p.muted.store(mix.muted, Relaxed);
        p.soloed.store(mix.soloed, Relaxed);
    }

    /// Commands the audio thread has applied, counting from the engine's creation.
    pub fn applied(&self) -> u64 {
        self.applied.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Makes commands wake `thread` (the render pool's thread for this engine).
    pub(crate) fn set_waker(&self, thread: std::thread::Thread) {
        let _ = self.waker.set(thread);
    }

    /// Whether a command came since the last call.
    pub(crate) fn take_woken(&self) -> bool {
        self.woken.swap(false, std::sync::atomic::Ordering::AcqRel)
    }

    /// Hands the engine's pace to a client device with room for `lookahead` frames, or (with
    /// `None`) back to the node's clock.
    pub fn set_client_clock(&self, lookahead: Option<i64>) {
        self.client_credit.store(lookahead.unwrap_or(0), std::sync::atomic::Ordering::Release);
        self.client_clocked.store(lookahead.is_some(), std::sync::atomic::Ordering::Release);
        self.wake();
    }

    /// The client played `frames` more of what it was sent: that much more may be rendered.
    pub fn add_client_credit(&self, frames: i64) {
        self.client_credit.fetch_add(frames, std::sync::atomic::Ordering::AcqRel);
        self.wake();
    }

    pub fn client_clocked(&self) -> bool {
        self.client_clocked.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Frames the client has room for now.
    pub fn client_credit(&self) -> i64 {
        self.client_credit.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The audio thread sent `frames` to the client's monitor stream: that much less room.
    pub(crate) fn spend_client_credit(&self, frames: i64) {
        self.client_credit.fetch_sub(frames, std::sync::atomic::Ordering::AcqRel);
    }

    fn wake(&self) {
        self.woken.store(true, std::sync::atomic::Ordering::Release);
        if let Some(thread) = self.waker.get() {
            thread.unpark();
        }
    }

    pub(crate) fn publish(&self, position: i64, state: TransportState, loop_pass: Option<u32>, applied: u64) {
        self.position.store(position, Relaxed);
        self.state.store(state_to_u8(state), Relaxed);
        self.looping.store(loop_pass.is_some(), Relaxed);
        self.loop_pass.store(loop_pass.unwrap_or(0), Relaxed);
        // Last: whoever sees the count sees the state the commands produced.
        self.applied.store(applied, std::sync::atomic::Ordering::Release);
    }

    pub(crate) fn count_block(&self) {
        self.blocks.fetch_add(1, Relaxed);
    }

    pub(crate) fn count_underrun(&self) {
        self.underruns.fetch_add(1, Relaxed);
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the engine is not keeping up with commands; try again")]
pub struct EngineBusy;

/// The control side of an engine. The mutexes guard only the control side's ends of the
/// rings (several tasks may send); the audio thread's ends are wait-free.
#[derive(Debug)]
pub struct EngineHandle {
    pub shared: std::sync::Arc<Shared>,
    commands: Mutex<rtrb::Producer<Command>>,
    /// Commands sent so far (under the `commands` lock).
    sent: AtomicU64,
    events: Mutex<rtrb::Consumer<EngineEvent>>,
    retired: Mutex<rtrb::Consumer<super::Retired>>,
}

impl EngineHandle {
    pub(crate) fn new(
        shared: std::sync::Arc<Shared>,
        commands: rtrb::Producer<Command>,
        events: rtrb::Consumer<EngineEvent>,
        retired: rtrb::Consumer<super::Retired>,
    ) -> Self {
        Self {
            shared,
            commands: Mutex::new(commands),
            sent: AtomicU64::new(0),
            events: Mutex::new(events),
            retired: Mutex::new(retired),
        }
    }

    /// Queues `command` for the audio thread's next block. Returns its number: once
    /// [`Shared::applied`] reaches it, the published state reflects it.
    pub fn send(&self, command: Command) -> Result<u64, EngineBusy> {
        {
            // Captures the audio thread let go of are freed here, off the audio thread.
            let mut retired = self.retired.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            while retired.pop().is_ok() {}
        }
        let mut commands = self.commands.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        commands.push(command).map_err(|_| EngineBusy)?;
        let number = self.sent.fetch_add(1, Relaxed) + 1;
        drop(commands);
        self.shared.wake();
        Ok(number)
    }

    /// Events the audio thread reported since the last call.
    pub fn drain_events(&self) -> Vec<EngineEvent> {
        let mut events = self.events.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        std::iter::from_fn(|| events.pop().ok()).collect()
    }
}
