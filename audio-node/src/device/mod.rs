//! A client audio device (§10): the monitor stream it plays, its reports of what it played
//! (which pace the project's engine: the client is the clock), and its microphone — kept
//! across reconnects, so a network drop loses nothing.
//!
//! ```text
//! engine (pool lane, paced by credit) ─▶ monitor tap ─▶ MON frames ─▶ client plays them
//!                                                       └▶ the project's listeners
//! client ─▶ {"type":"played", consumed, runs} ─▶ credit += newly played; play map += runs
//! client ─▶ MIC frames ─▶ sequenced, placed by the play map, written into the take
//!        ◀─ {"type":"mic_ack", stream, next_seq}: what the client may forget
//! ```
//!
//! The device's state ([`DeviceLink`]) belongs to the project's session, not to a connection.
//! A connection that ends without `detach` leaves the device *away*: the engine renders no
//! further than the client's lookahead (time stands still), the take waits. Attaching again
//! under the same name and user resumes it: the client learns what the node has (frames played,
//! microphone frames received), resends the rest, and gets again the monitor frames it had not
//! reported played. After [`AWAY_GRACE`] an away device is detached for good.

#[cfg(feature = "hw-audio")]
pub mod cpal_input;
pub mod play_map;

use crate::device::play_map::{PlayMap, Run};
use crate::engine::MonitorFeed;
use crate::recording::client_take::ClientTake;
use crate::session::Session;
use audiolab_domain::UserId;
use audiolab_transport::protocol::{MicReceived, Played};
use audiolab_transport::wire::{self, AudioFrame, Header, Kind, SampleFormat, SeqOrder, SeqTracker};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use audiolab_domain::device::CLIENT_PREFIX;

/// How long a device whose connection was lost stays attached, waiting for it to come back.
pub const AWAY_GRACE: Duration = Duration::from_secs(60);

/// Microphone frames kept while the client has not yet reported playing as far as they were
/// heard (they are placed once it has); beyond this the oldest are given up.
const MAX_PENDING: usize = 1_024;

/// How much of the client's play history is kept for placing its microphone: 10 s at 192 kHz.
const PLAY_HISTORY_FRAMES: u64 = 1_920_000;

/// Microphone streams one device may open.
const MAX_MIC_STREAMS: usize = 16;

/// A project's client device, for as long as it is attached (or away).
pub struct DeviceLink {
    pub device_id: String,
    /// The user who attached it: only they may resume it.
    pub owner: UserId,
    /// The microphone's channels (1 or 2).
    pub channels: u8,
    /// The frames the engine may render ahead of what the client played.
    pub lookahead: u32,
    /// The played index up to which the microphone's audio has been heard (what a stopping
    /// take waits for).
    pub heard_until: AtomicU64,
    /// The id of its `MON` stream, its own (kept when it resumes).
    pub monitor_stream: u32,
    /// The take recording from this device, if any: the connection writes into it.
    pub take: Mutex<Option<ClientTake>>,
    /// Bumped by every attach: a connection that was replaced stops acting for the device.
    generation: AtomicU64,
    /// Since when no connection has been attached.
    away_since: Mutex<Option<Instant>>,
    /// Why the node detached the device, once it did: its connection stops acting for it.
    ended: Mutex<Option<String>>,
    state: Mutex<DeviceState>,
}

/// What the device's connections share, one at a time.
struct DeviceState {
    feed: MonitorFeed,
    /// The round trip (output + input) in frames: the microphone hears what played this much earlier.
    latency: u64,
    /// Monitor frames the client has reported played, in all.
    consumed: u64,
    /// Monitor frames sent, in all.
    sent: u64,
    monitor_seq: u32,
    /// The MON frames sent and not yet reported played, each with `sent` at its end: sent
    /// again to a client that comes back (it drops the ones it has, by `seq`).
    unplayed: VecDeque<(u64, Arc<Vec<u8>>)>,
    plays: PlayMap,
    /// Microphone frames waiting for the client's report of what it played when they were heard.
    pending: VecDeque<AudioFrame>,
    microphones: HashMap<u32, SeqTracker>,
    /// The `next_seq` last acknowledged per microphone stream.
    acknowledged: HashMap<u32, u32>,
}

impl DeviceLink {
    pub fn new(
        device_id: String,
        owner: UserId,
        channels: u8,
        lookahead: u32,
        latency: u32,
        feed: MonitorFeed,
        monitor_stream: u32,
    ) -> Self {
        Self {
            device_id,
            owner,
            channels,
            lookahead,
            heard_until: AtomicU64::new(0),
            monitor_stream,
            take: Mutex::new(None),
            generation: AtomicU64::new(0),
            away_since: Mutex::new(None),
            ended: Mutex::new(None),
            state: Mutex::new(DeviceState {
                feed,
                latency: u64::from(latency),
                consumed: 0,
                sent: 0,
                monitor_seq: 0,
                unplayed: VecDeque::new(),
                plays: PlayMap::new(PLAY_HISTORY_FRAMES),
                pending: VecDeque::new(),
                microphones: HashMap::new(),
                acknowledged: HashMap::new(),
            }),
        }
    }

    /// The played index the next frame the engine renders will have: what the client has
    /// reported playing, plus what was rendered (sent, or still in the feed) and has not been
    /// reported played yet — every rendered frame is played once, in order. A take that
    /// starts now lays its capture out from here, so nothing rendered before it — the tail of
    /// the last playback, still in the client's buffer or heard while its clock ran on in
    /// silence — can fall into it, however long ago or however recently the transport stood.
    pub fn next_rendered_index(&self) -> u64 {
        let state = self.state();
        state.plays.played() + state.sent.saturating_sub(state.consumed) + state.feed.queued_frames()
    }

    fn state(&self) -> MutexGuard<'_, DeviceState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A connection takes the device (first or again): returns its generation.
    pub fn connect(&self, latency: Option<u32>) -> u64 {
        *self.away_since.lock().unwrap_or_else(|p| p.into_inner()) = None;
        if let Some(latency) = latency {
            self.state().latency = u64::from(latency);
        }
        self.generation.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// The connection of `generation` was lost (unless another has taken over since).
    pub fn disconnect(&self, generation: u64) {
        if self.generation.load(Ordering::Acquire) == generation {
            *self.away_since.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        }
    }

    /// How long the device has been without a connection.
    pub fn away_for(&self) -> Option<Duration> {
        self.away_since.lock().unwrap_or_else(|p| p.into_inner()).map(|since| since.elapsed())
    }

    /// The node detached the device for `reason`: its connection stops acting for it (no more
    /// monitor audio, microphone frames refused) and tells its client why.
    pub fn end(&self, reason: &str) {
        self.ended.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(|| reason.to_owned());
    }

    /// Why the node detached the device, if it did.
    pub fn ended(&self) -> Option<String> {
        self.ended.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The round trip the device's takes are placed with, in frames.
    pub fn latency(&self) -> u64 {
        self.state().latency
    }
}

/// This connection, attached as its project's device.
pub struct ClientDevice {
    pub link: Arc<DeviceLink>,
    generation: u64,
    session: Arc<Session>,
    /// Whether this attach resumed a device that was already attached (a reconnect).
    pub resumed: bool,
    /// When microphone acknowledgements last went out.
    acked_at: Instant,
    /// Monitor frames to send again first (a resumed device's unplayed ones).
    resend: Vec<Arc<Vec<u8>>>,
}

/// How often acknowledgements of microphone frames go out (when there is something new).
const ACK_INTERVAL: Duration = Duration::from_millis(50);

impl ClientDevice {
    /// Attaches this connection as the device `device_id` of the session's project for `owner`,
    /// placing its microphone `latency` frames (its round trip) before it was captured.
    pub async fn attach(
        session: Arc<Session>,
        device_id: String,
        owner: UserId,
        channels: u8,
        lookahead: u32,
        latency: u32,
    ) -> audiolab_domain::transport::TransportResult<Self> {
        let (link, resumed) = session.attach_device(device_id, owner, lookahead, channels, latency).await?;
        let generation = link.connect(resumed.then_some(latency));
        let resend =
            if resumed { link.state().unplayed.iter().map(|(_, frame)| frame.clone()).collect() } else { Vec::new() };
        Ok(Self { link, generation, session, resumed, acked_at: Instant::now(), resend })
    }

    /// Whether this connection still acts for the device (no other connection took it over).
    pub fn current(&self) -> bool {
        self.link.generation.load(Ordering::Acquire) == self.generation && self.link.ended().is_none()
    }

    pub fn sample_rate(&self) -> u32 {
        self.session.rate.hz()
    }

    /// What the node has of the device, for a client that comes back: frames played, the
    /// client frame reported up to, and the microphone frames received per stream.
    pub fn progress(&self) -> (u64, Option<u64>, Vec<MicReceived>) {
        let state = self.link.state();
        let mut microphone: Vec<MicReceived> =
            state.microphones.iter().map(|(&stream, seq)| MicReceived { stream, next_seq: seq.complete() }).collect();
        microphone.sort_by_key(|m| m.stream);
        (state.consumed, state.plays.reported_until(), microphone)
    }

    /// The monitor audio rendered since the last call, as encoded `MON` frames (f32 stereo, at
    /// most [`wire::MAX_FRAMES`] each, one stretch of consecutive timeline frames per frame),
    /// also offered to the project's listeners. A resumed device first gets again the frames
    /// it had not reported played.
    pub fn monitor_frames(&mut self) -> Vec<Arc<Vec<u8>>> {
        if !self.current() {
            return Vec::new();
        }
        let mut frames = std::mem::take(&mut self.resend);
        let mut state = self.link.state();
        while let Some((stretch, samples)) = state.feed.pop() {
            let max = usize::from(wire::MAX_FRAMES) * 2;
            for (index, chunk) in samples.chunks(max).enumerate() {
                let count = chunk.len() / 2;
                let header = Header {
                    kind: Kind::Mon,
                    format: SampleFormat::F32,
                    channels: 2,
                    frames: count as u16,
                    stream: self.link.monitor_stream,
                    seq: state.monitor_seq,
                    frame: (stretch.timeline + (index * usize::from(wire::MAX_FRAMES)) as i64) as u64,
                };
                state.monitor_seq = state.monitor_seq.wrapping_add(1);
                let mut bytes = Vec::new();
                wire::encode(&header, chunk, &mut bytes);
                let bytes = Arc::new(bytes);
                state.sent += count as u64;
                let sent = state.sent;
                state.unplayed.push_back((sent, bytes.clone()));
                let _ = self.session.listeners.send(crate::session::Heard::Frame(bytes.clone()));
                frames.push(bytes);
            }
        }
        frames
    }

    /// Acknowledgements due: per microphone stream, the `next_seq` before which every frame
    /// arrived, when it moved since the last (at most every [`ACK_INTERVAL`]).
    pub fn acknowledgements(&mut self) -> Vec<MicReceived> {
        if self.acked_at.elapsed() < ACK_INTERVAL || !self.current() {
            return Vec::new();
        }
        self.acked_at = Instant::now();
        let mut state = self.link.state();
        let state = &mut *state;
        let mut due = Vec::new();
        for (&stream, seq) in &state.microphones {
            let next_seq = seq.complete();
            if state.acknowledged.insert(stream, next_seq) != Some(next_seq) {
                due.push(MicReceived { stream, next_seq });
            }
        }
        due
    }

    /// Takes a report of what the client played: what it newly played becomes room for the
    /// engine to render into; its runs go into the play map. Errors name what was wrong.
    pub fn played(&mut self, report: Played) -> Result<(), String> {
        if !self.current() {
            return Err("played: another connection has attached as this device".into());
        }
        let mut state = self.link.state();
        if report.consumed < state.consumed {
            return Err(format!(
                "played: consumed went back from {} to {}; it counts every monitor frame played since the device attached",
                state.consumed, report.consumed
            ));
        }
        if report.consumed > state.sent {
            return Err(format!("played: consumed {} is more than the {} frames sent", report.consumed, state.sent));
        }
        for run in &report.runs {
            let run = Run { client: run.client, timeline: run.timeline, frames: run.frames };
            state.plays.record(run).map_err(|e| format!("played: {e}"))?;
        }
        let newly = report.consumed - state.consumed;
        state.consumed = report.consumed;
        while state.unplayed.front().is_some_and(|(end, _)| *end <= report.consumed) {
            state.unplayed.pop_front();
        }
        self.session.handle.shared.add_client_credit(newly as i64);
        self.session.touch();
        if let Some(until) = state.plays.reported_until() {
            let heard = state.plays.played_at(until.saturating_sub(state.latency));
            self.link.heard_until.store(heard, Ordering::Release);
        }
        // Microphone frames that were waiting for this report go where they belong now.
        for frame in std::mem::take(&mut state.pending) {
            record(&self.link, &mut state, frame).map_err(|e| format!("MIC: {e}"))?;
        }
        Ok(())
    }

    /// Takes a microphone frame: written where it was heard (a resend lands on the same
    /// frames, so it changes nothing); a gap in its stream's sequence and a duplicate are
    /// reported, so the client can resend what is missing.
    pub fn microphone(&mut self, frame: AudioFrame) -> Result<(), String> {
        let header = frame.header;
        if header.kind != Kind::Mic {
            return Err("only MIC frames go from a client to the node".into());
        }
        if !self.current() {
            return Err("MIC: another connection has attached as this device".into());
        }
        if header.channels != u16::from(self.link.channels) {
            return Err(format!(
                "MIC frames of this device have {} channel(s), not {}",
                self.link.channels, header.channels
            ));
        }
        let mut state = self.link.state();
        if !state.microphones.contains_key(&header.stream) && state.microphones.len() >= MAX_MIC_STREAMS {
            return Err(format!("at most {MAX_MIC_STREAMS} microphone streams per device"));
        }
        let order = state.microphones.entry(header.stream).or_default().observe(header.seq);
        if order == SeqOrder::Duplicate {
            return Err(format!("MIC stream {}: frame {} arrived again (ignored)", header.stream, header.seq));
        }
        record(&self.link, &mut state, frame)?;
        match order {
            SeqOrder::Ahead { missing_from } => {
                Err(format!("MIC stream {}: frames {missing_from}..{} are missing", header.stream, header.seq))
            }
            _ => Ok(()),
        }
    }
}

/// However the connection ends (closed, lost, or its task failing), the device waits for it to
/// come back (see [`AWAY_GRACE`]); after a `detach` this marks a device no longer attached.
impl Drop for ClientDevice {
    fn drop(&mut self) {
        self.link.disconnect(self.generation);
    }
}

/// Writes a microphone frame into the take recording from the device, if any, at the place it
/// was heard; keeps it for later when the client has not reported playing that far.
fn record(link: &DeviceLink, state: &mut DeviceState, frame: AudioFrame) -> Result<(), String> {
    let frames = u64::from(frame.header.frames);
    let Some(placed) = state.plays.place(frame.header.frame, frames, state.latency) else {
        if state.pending.len() >= MAX_PENDING {
            state.pending.pop_front();
        }
        state.pending.push_back(frame);
        return Ok(());
    };
    let mut take = link.take.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(take) = take.as_mut() {
        take.write(&frame.samples, &placed).map_err(|e| e.to_string())?;
    }
    Ok(())
}
