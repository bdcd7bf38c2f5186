//! The real-time engine of one project: an audio-thread half ([`EngineCore`]), a control half
//! ([`EngineHandle`]) and a read-ahead half ([`Prefetcher`]), connected only by wait-free rings
//! and atomics.
//!
//! ```text
//!  control (tokio) ──commands──▶ EngineCore (audio thread) ──events──▶ control
//!        │ atomics: mixer ▶            ▲  │ ◀ atomics: position, status
//!        │                    bundles  │  │ repositions
//!        │                             │  ▼
//!        └────────────────────────  Prefetcher (reader thread): files → pre-fader blocks
//! ```
//!
//! The prefetcher renders each track's pre-fader audio (clips, clip gain, fades) block by block
//! in the order the transport will play it, loops included; the audio thread only applies the
//! live fader, pan and mute/solo and sums. A seek, a loop change or an underrun starts a new
//! *generation*: the audio thread tells the prefetcher where to resume and drops older blocks.

pub mod backend;
mod capture;
mod core;
#[cfg(feature = "hw-audio")]
pub mod cpal_output;
mod monitor;
pub mod pool;
mod prefetch;
mod shared;

pub use self::core::EngineCore;
pub use audiolab_media::timeline::{ClipSource, TrackClips};
pub use capture::{Capture, CaptureMeter, InputSource, MAX_CAPTURES, MAX_PASSES, Pass};
pub use monitor::{MonitorFeed, MonitorTap, Stretch, monitor};
pub use prefetch::Prefetcher;
pub use shared::{EngineBusy, EngineEvent, EngineHandle, Shared, TransportState};

use audiolab_dsp::transport::ActiveLoop;

/// Frames per engine block: 10.7 ms at 48 kHz.
pub const BLOCK_FRAMES: usize = 512;
/// Track slots of an engine (a project's track indexes).
pub const MAX_TRACKS: usize = 32;
/// Blocks rendered ahead of the playhead: ≈ 85 ms at 48 kHz.
pub const PREFETCH_BLOCKS: usize = 8;
/// Blocks kept ready while the transport stands: enough to start without a gap (the rest
/// follow within the first block), while an engine that does nothing holds a quarter of the
/// memory.
pub const STANDING_BLOCKS: usize = 2;

/// A control request, applied by the audio thread at the start of its next block.
#[derive(Debug)]
pub enum Command {
    /// Start rolling, from `from` if given, else from the current position.
    Play {
        from: Option<i64>,
    },
    Pause,
    /// Roll again from where pause left off.
    Resume,
    /// Stop and rewind to 0.
    Stop,
    /// Move the playhead (clamped to [0, duration]); keeps rolling if rolling.
    Seek(i64),
    /// Stand where an earlier engine of the project stood when it unloaded: at `frame`,
    /// paused there or stopped.
    Restore {
        frame: i64,
        paused: bool,
    },
    /// Set or clear the loop.
    SetLoop(Option<ActiveLoop>),
    /// Keep rolling past the end of the last clip (while recording).
    HoldAtEnd(bool),
    /// Start capturing from the next played frame.
    StartCapture(Box<Capture>),
    /// Stop the capture with this id; it comes back to the control side to be dropped there.
    StopCapture(u64),
    /// Copy the output to a client device's monitor stream from the next block (replacing
    /// any tap before it).
    AttachMonitor(Box<MonitorTap>),
    /// Stop copying the output; the tap comes back to the control side.
    DetachMonitor,
    /// The metronome's clicks in what the musician hears (the output and the monitor tap,
    /// never the captures).
    Metronome(Click),
    /// A take's count-in: clicks up to this timeline frame whatever the metronome's setting.
    /// It ends when the playhead reaches that frame, or the transport stops or pauses.
    CountIn(i64),
    /// Play the project's clips as they are now (an edit, a delete, an import or take landing).
    /// Applied at the next block boundary, without a gap; the previous arrangement is dropped
    /// by the read-ahead thread.
    Arrange(Box<Arrangement>),
}

/// What the metronome plays: `metronome` on the beat grid when enabled, and during a count-in
/// (with the default sound when it is off).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Click {
    pub metronome: Option<audiolab_dsp::metronome::Metronome>,
    pub grid: audiolab_dsp::metronome::BeatGrid,
}

impl Click {
    /// Adds the clicks of timeline frames `start..` to the stereo `span`, counting in before
    /// `count_in_until`.
    pub fn add(&self, start: i64, span: &mut [f32], count_in_until: i64) {
        match self.metronome {
            Some(metronome) => metronome.add(&self.grid, start, span, 2),
            None if start < count_in_until => {
                let frames = ((count_in_until - start) as usize).min(span.len() / 2);
                audiolab_dsp::metronome::Metronome::default().add(&self.grid, start, &mut span[..frames * 2], 2);
            }
            None => {}
        }
    }
}

/// What the audio thread lets go of, handed back so it is freed on the control side.
#[derive(Debug)]
pub enum Retired {
    Capture(Box<Capture>),
    Monitor(Box<MonitorTap>),
    /// An arrangement replaced before the prefetcher took it.
    Arrangement(Box<Arrangement>),
}

/// A project's opened clips, as the read-ahead renders them, and where the last one ends.
#[derive(Debug)]
pub struct Arrangement {
    pub tracks: Vec<TrackClips>,
    pub duration: i64,
}

/// Where the prefetcher must continue from: sent by the audio thread on every discontinuity,
/// carrying a new arrangement when the clips changed.
#[derive(Debug)]
struct Reposition {
    generation: u64,
    position: i64,
    active_loop: Option<ActiveLoop>,
    arrangement: Option<Box<Arrangement>>,
}

/// One block of pre-fader audio for every track, for the transport frames from `start`.
#[derive(Debug)]
struct Bundle {
    generation: u64,
    start: i64,
    /// Bit `i` set: track slot `i` has audio in this block (others are silent and unwritten).
    active: u32,
    /// Stereo interleaved blocks of the slots the project uses, one after the other; grown by
    /// the read-ahead thread (never the audio thread) when a track takes a higher slot, so an
    /// engine costs memory for the tracks it has, not for all [`MAX_TRACKS`].
    prefader: Box<[f32]>,
}

impl Bundle {
    fn new() -> Box<Self> {
        Box::new(Self { generation: u64::MAX, start: 0, active: 0, prefader: Box::default() })
    }

    /// Slots this bundle has room for.
    fn slots(&self) -> usize {
        self.prefader.len() / (BLOCK_FRAMES * 2)
    }

    /// Makes room for `slots` slots (read-ahead thread only: it allocates).
    fn reserve(&mut self, slots: usize) {
        if slots > self.slots() {
            let mut grown = vec![0.0; slots.min(MAX_TRACKS) * BLOCK_FRAMES * 2].into_boxed_slice();
            grown[..self.prefader.len()].copy_from_slice(&self.prefader);
            self.prefader = grown;
        }
    }

    fn track(&self, slot: usize) -> &[f32] {
        &self.prefader[slot * BLOCK_FRAMES * 2..(slot + 1) * BLOCK_FRAMES * 2]
    }

    fn track_mut(&mut self, slot: usize) -> &mut [f32] {
        &mut self.prefader[slot * BLOCK_FRAMES * 2..(slot + 1) * BLOCK_FRAMES * 2]
    }
}

/// Builds the three halves of an engine for a project with `tracks`, `duration` frames long.
pub fn create(sample_rate: u32, duration: i64, tracks: Vec<TrackClips>) -> (EngineCore, EngineHandle, Prefetcher) {
    let (command_tx, command_rx) = rtrb::RingBuffer::new(256);
    let (event_tx, event_rx) = rtrb::RingBuffer::new(256);
    let (filled_tx, filled_rx) = rtrb::RingBuffer::new(PREFETCH_BLOCKS);
    let (mut free_tx, free_rx) = rtrb::RingBuffer::new(PREFETCH_BLOCKS + 2);
    let (reposition_tx, reposition_rx) = rtrb::RingBuffer::new(64);
    let (retired_tx, retired_rx) = rtrb::RingBuffer::new(MAX_CAPTURES * 2 + 8);
    for _ in 0..PREFETCH_BLOCKS {
        free_tx.push(Bundle::new()).expect("ring sized for every bundle");
    }
    let shared = std::sync::Arc::new(Shared::new(sample_rate, duration));
    let rings = core::CoreRings {
        commands: command_rx,
        events: event_tx,
        filled: filled_rx,
        free: free_tx,
        repositions: reposition_tx,
        retired: retired_tx,
    };
    let mut core = EngineCore::new(shared.clone(), rings, duration);
    core.announce_position();
    let prefetcher = Prefetcher::new(tracks, filled_tx, free_rx, reposition_rx, shared.clone());
    let handle = EngineHandle::new(shared, command_tx, event_rx, retired_rx);
    (core, handle, prefetcher)
}
