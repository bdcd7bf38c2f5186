//! The audio-thread half of the engine. `process` never blocks, locks, allocates or does I/O:
//! it reads rings and atomics, mixes pre-rendered blocks, and writes rings and atomics.

use super::capture::{Capture, MAX_CAPTURES};
use super::shared::{EngineEvent, Shared, TransportState};
use super::{Arrangement, BLOCK_FRAMES, Bundle, Command, MAX_TRACKS, Reposition, Retired};
use crate::engine::pool::FillSignal;
use audiolab_dsp::mix::{TrackMix, mix_track, track_peaks};
use audiolab_dsp::transport::{ActiveLoop, LoopEvent, advance};
use std::sync::Arc;

/// How far before 0 a count-in may start the transport: 8 bars of 4/4 at 30 bpm, 192 kHz.
pub const MAX_COUNT_IN_FRAMES: i64 = 8 * 4 * 2 * 192_000;

pub struct EngineCore {
    shared: Arc<Shared>,
    commands: rtrb::Consumer<Command>,
    events: rtrb::Producer<EngineEvent>,
    filled: rtrb::Consumer<Box<Bundle>>,
    free: rtrb::Producer<Box<Bundle>>,
    repositions: rtrb::Producer<Reposition>,
    position: i64,
    state: TransportState,
    active_loop: Option<ActiveLoop>,
    duration: i64,
    hold_at_end: bool,
    generation: u64,
    /// A reposition the prefetcher has not received yet (its ring was full).
    reposition_pending: bool,
    /// Clips for the prefetcher, sent with the next reposition.
    arrangement: Option<Box<Arrangement>>,
    /// After a jump, the playhead holds still (playing silence) until the read-ahead has the
    /// new position's audio, as a tape machine locates before it rolls.
    locating: bool,
    /// The block being played and how many of its frames are already out.
    current: Option<Box<Bundle>>,
    offset: usize,
    mixes: [TrackMix; MAX_TRACKS],
    captures: [Option<Box<Capture>>; MAX_CAPTURES],
    /// A client device's copy of the output, when one is attached.
    monitor: Option<Box<super::MonitorTap>>,
    click: Option<super::Click>,
    /// The end of a take's count-in (`i64::MIN` when none runs).
    count_in_until: i64,
    retired: rtrb::Producer<Retired>,
    /// How to wake the read-ahead thread (none when a test steps the engine by hand).
    fill: Option<FillSignal>,
    /// A bundle was freed or a reposition sent during this block: the read-ahead has work.
    fill_wanted: bool,
    /// Commands applied so far, published with the state at the end of the block.
    applied: u64,
}

/// The audio thread's ends of the engine's rings.
pub(super) struct CoreRings {
    pub commands: rtrb::Consumer<Command>,
    pub events: rtrb::Producer<EngineEvent>,
    pub filled: rtrb::Consumer<Box<Bundle>>,
    pub free: rtrb::Producer<Box<Bundle>>,
    pub repositions: rtrb::Producer<Reposition>,
    pub retired: rtrb::Producer<Retired>,
}

impl EngineCore {
    pub(super) fn new(shared: Arc<Shared>, rings: CoreRings, duration: i64) -> Self {
        let CoreRings { commands, events, filled, free, repositions, retired } = rings;
        Self {
            shared,
            commands,
            events,
            filled,
            free,
            repositions,
            captures: Default::default(),
            monitor: None,
            click: None,
            count_in_until: i64::MIN,
            retired,
            position: 0,
            state: TransportState::Stopped,
            active_loop: None,
            duration,
            hold_at_end: false,
            generation: 0,
            reposition_pending: false,
            arrangement: None,
            locating: false,
            current: None,
            offset: 0,
            mixes: [TrackMix::default(); MAX_TRACKS],
            fill: None,
            fill_wanted: false,
            applied: 0,
        }
    }

    /// Wakes `signal`'s read-ahead thread whenever this engine has room for more blocks.
    pub fn set_fill_signal(&mut self, signal: FillSignal) {
        self.fill = Some(signal);
        self.fill_wanted = true;
    }

    /// Whether the engine must be rendered at the block pace: it rolls, or it still owes the
    /// read-ahead a reposition. An engine that neither plays nor records needs no clock.
    pub fn needs_clock(&self) -> bool {
        self.state == TransportState::Playing || self.reposition_pending
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Applies queued commands, then renders the next `out.len() / 2` frames of stereo
    /// interleaved output.
    pub fn process(&mut self, out: &mut [f32]) {
        self.prepare();
        self.render(out);
    }

    /// Applies queued commands and tells the prefetcher about any jump. A manually stepped
    /// clock calls this, lets the prefetcher fill, then calls [`EngineCore::render`].
    pub fn prepare(&mut self) {
        self.apply_commands();
        if self.reposition_pending {
            // Whatever was planned, a fresh start from the playhead is always right.
            self.restart_read_ahead();
        }
    }

    /// Renders the next `out.len() / 2` frames without looking at new commands.
    pub fn render(&mut self, out: &mut [f32]) {
        out.fill(0.0);
        let total = out.len() / 2;
        let mut done = 0;
        if self.state == TransportState::Playing {
            for (slot, mix) in self.mixes.iter_mut().enumerate() {
                *mix = self.shared.mix(slot);
            }
            let any_soloed = self.mixes.iter().any(|m| m.soloed);
            while done < total && self.state == TransportState::Playing {
                if !self.ensure_bundle() {
                    // Locating, or paced by a client device (which has the lookahead to wait
                    // for the read-ahead): hold still and send nothing rather than a gap.
                    if self.locating || self.shared.client_clocked() {
                        break;
                    }
                    // Read-ahead is late: this stretch is silent, but time goes on.
                    let _ = self.events.push(EngineEvent::Underrun { position: self.position });
                    self.shared.count_underrun();
                    self.advance(total - done);
                    if self.state == TransportState::Playing {
                        self.restart_read_ahead();
                    }
                    break;
                }
                let frames = (BLOCK_FRAMES - self.offset).min(total - done);
                if let Some(bundle) = &self.current {
                    let span = &mut out[done * 2..(done + frames) * 2];
                    let from = self.offset * 2..(self.offset + frames) * 2;
                    for (slot, mix) in self.mixes.iter().enumerate() {
                        if bundle.active & (1 << slot) != 0 {
                            let prefader = &bundle.track(slot)[from.clone()];
                            mix_track(span, prefader, mix, any_soloed);
                            self.shared.note_peaks(slot, track_peaks(prefader, mix, any_soloed));
                        }
                    }
                    self.feed_taps_and_click(span);
                }
                self.offset += frames;
                done += frames;
                if self.offset == BLOCK_FRAMES {
                    self.recycle_current();
                }
                self.advance(frames);
            }
        }
        self.shared.count_block();
        self.announce_state();
        if std::mem::take(&mut self.fill_wanted) {
            if let Some(fill) = &self.fill {
                fill.request();
            }
        }
    }

    fn apply_commands(&mut self) {
        while let Ok(command) = self.commands.pop() {
            self.applied += 1;
            match command {
                Command::Play { from } => {
                    if let Some(frame) = from {
                        self.seek(frame);
                    }
                    self.state = TransportState::Playing;
                    // Rolling, the read-ahead goes further than while standing.
                    self.fill_wanted = true;
                }
                Command::Pause if self.state == TransportState::Playing => {
                    self.state = TransportState::Paused;
                    self.count_in_until = i64::MIN;
                }
                Command::Pause => {}
                Command::Resume => {
                    self.state = TransportState::Playing;
                    self.fill_wanted = true;
                }
                Command::Stop => {
                    self.state = TransportState::Stopped;
                    self.count_in_until = i64::MIN;
                    self.seek(0);
                }
                Command::Seek(frame) => self.seek(frame),
                Command::Restore { frame, paused } => {
                    self.seek(frame);
                    if paused {
                        self.state = TransportState::Paused;
                    }
                }
                Command::SetLoop(active_loop) => {
                    self.active_loop = active_loop;
                    self.follow_change();
                }
                Command::Arrange(arrangement) => {
                    self.duration = arrangement.duration;
                    // A later arrangement replaces one still waiting for the prefetcher's ring
                    // (only when that thread is stuck); the older goes back to be freed.
                    if let Some(older) = self.arrangement.replace(arrangement) {
                        let _ = self.retired.push(Retired::Arrangement(older));
                    }
                    self.follow_change();
                }
                Command::HoldAtEnd(hold) => self.hold_at_end = hold,
                Command::StartCapture(capture) => match self.captures.iter_mut().find(|c| c.is_none()) {
                    Some(free) => *free = Some(capture),
                    None => self.retire(capture),
                },
                Command::AttachMonitor(tap) => {
                    if let Some(old) = self.monitor.replace(tap) {
                        let _ = self.retired.push(Retired::Monitor(old));
                    }
                }
                Command::Metronome(click) => self.click = Some(click),
                Command::CountIn(until) => self.count_in_until = until,
                Command::DetachMonitor => {
                    if let Some(old) = self.monitor.take() {
                        let _ = self.retired.push(Retired::Monitor(old));
                    }
                }
                Command::StopCapture(id) => {
                    if let Some(slot) = self.captures.iter_mut().find(|c| c.as_ref().is_some_and(|c| c.id == id)) {
                        if let Some(capture) = slot.take() {
                            self.retire(capture);
                        }
                    }
                }
            }
            self.shared.set_captures(self.captures.iter().flatten().count() as u32);
        }
    }

    /// Gives every running capture the span just mixed (the playhead is at its first frame),
    /// then adds the metronome's clicks for what the musician hears, and gives that to the
    /// monitor tap; split where the loop wraps so each piece is contiguous on the timeline.
    fn feed_taps_and_click(&mut self, span: &mut [f32]) {
        if self.captures.iter().all(Option::is_none) && self.monitor.is_none() && self.click.is_none() {
            return;
        }
        let mut preview = self.active_loop;
        let step = advance(self.position, span.len() / 2, &mut preview);
        let mut offset = 0;
        for &(start, length) in step.segments() {
            let piece = &mut span[offset * 2..(offset + length) * 2];
            for capture in self.captures.iter_mut().flatten() {
                capture.capture(start, piece);
            }
            if let Some(click) = &self.click {
                click.add(start, piece, self.count_in_until);
            }
            if start + length as i64 >= self.count_in_until {
                self.count_in_until = i64::MIN; // counted in: the take has begun
            }
            if let Some(monitor) = &mut self.monitor {
                monitor.push(start, piece);
                self.shared.spend_client_credit(length as i64);
            }
            offset += length;
        }
    }

    /// Hands a capture back to the control side (dropping it here could free memory).
    fn retire(&mut self, capture: Box<Capture>) {
        capture.finish();
        // Sized for every capture there can be, and drained on every command.
        let _ = self.retired.push(Retired::Capture(capture));
    }

    /// Moves the playhead, clamped to [0, duration] (no upper bound while recording). A move to where it already is keeps the
    /// read-ahead, so play-after-stop starts without a gap.
    fn seek(&mut self, frame: i64) {
        // While recording the timeline extends past the last clip: a take may start there.
        // While recording the timeline also extends before 0: a count-in may start there.
        let (first, end) =
            if self.hold_at_end { (-MAX_COUNT_IN_FRAMES, i64::MAX / 2) } else { (0, self.duration.max(0)) };
        let frame = frame.clamp(first, end);
        if frame != self.position || self.current.is_some() && self.offset != 0 {
            self.position = frame;
            self.restart_read_ahead();
        }
    }

    fn advance(&mut self, frames: usize) {
        let step = advance(self.position, frames, &mut self.active_loop);
        self.position = step.position;
        match step.event {
            Some(LoopEvent::Wrapped { pass }) => {
                let _ = self.events.push(EngineEvent::LoopWrapped { pass });
            }
            Some(LoopEvent::Finished) => {
                let _ = self.events.push(EngineEvent::LoopFinished);
            }
            None => {}
        }
        let past_loop = self.active_loop.is_none_or(|l| self.position >= l.end);
        if !self.hold_at_end && past_loop && self.position >= self.duration {
            let _ = self.events.push(EngineEvent::ReachedEnd);
            self.state = TransportState::Stopped;
            self.position = 0;
            self.restart_read_ahead();
        }
    }

    /// Finds the block for the playhead, dropping blocks of older generations.
    fn ensure_bundle(&mut self) -> bool {
        if self.current.is_some() {
            return true;
        }
        while let Ok(bundle) = self.filled.pop() {
            if bundle.generation == self.generation && bundle.start == self.position {
                self.current = Some(bundle);
                self.offset = 0;
                self.locating = false;
                return true;
            }
            let _ = self.free.push(bundle);
            self.fill_wanted = true;
        }
        false
    }

    fn recycle_current(&mut self) {
        if let Some(bundle) = self.current.take() {
            // The free ring holds every bundle there is, so this never fails.
            let _ = self.free.push(bundle);
            self.fill_wanted = true;
        }
        self.offset = 0;
    }

    /// Starts a new generation of read-ahead from the playhead.
    fn restart_read_ahead(&mut self) {
        self.recycle_current();
        self.locating = true;
        self.generation += 1;
        self.send_reposition();
    }

    /// Starts a new generation of read-ahead at the end of the block being played, which plays
    /// on: a changed arrangement or loop reaches the output at the next block boundary without
    /// a gap. Blocks queued after it followed the old plan and go back to the free ring.
    fn follow_change(&mut self) {
        if self.state != TransportState::Playing || self.locating || !self.ensure_bundle() {
            return self.restart_read_ahead();
        }
        while let Ok(stale) = self.filled.pop() {
            let _ = self.free.push(stale);
            self.fill_wanted = true;
        }
        let mut active_loop = self.active_loop;
        let next = advance(self.position, BLOCK_FRAMES - self.offset, &mut active_loop).position;
        self.generation += 1;
        self.send_reposition_at(next, active_loop);
    }

    fn send_reposition(&mut self) {
        self.send_reposition_at(self.position, self.active_loop);
    }

    fn send_reposition_at(&mut self, position: i64, active_loop: Option<ActiveLoop>) {
        let arrangement = self.arrangement.take();
        let reposition = Reposition { generation: self.generation, position, active_loop, arrangement };
        match self.repositions.push(reposition) {
            Ok(()) => {
                self.reposition_pending = false;
                self.fill_wanted = true;
            }
            Err(rtrb::PushError::Full(back)) => {
                self.arrangement = back.arrangement;
                self.reposition_pending = true;
            }
        }
    }

    /// Publishes the transport state and tells the prefetcher where to start.
    pub(super) fn announce_position(&mut self) {
        self.send_reposition();
        self.announce_state();
    }

    fn announce_state(&self) {
        self.shared.publish(self.position, self.state, self.active_loop.map(|l| l.pass), self.applied);
    }
}
