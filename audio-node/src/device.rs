//! A client audio device on one socket (§10): the monitor stream it plays, its reports of what
//! it played (which pace the project's engine: the client is the clock), and its microphone.
//!
//! ```text
//! engine (pool lane, paced by credit) ─▶ monitor tap ─▶ MON frames ─▶ client plays them
//! client ─▶ {"type":"played", consumed, runs} ─▶ credit += newly played; play map += runs
//! client ─▶ MIC frames ─▶ checked, sequenced (placed by the play map when a take records)
//! ```

use crate::client_take::ClientTake;
use crate::engine::MonitorFeed;
use crate::node::Node;
use crate::play_map::{PlayMap, Run};
use crate::protocol::{Attach, Played};
use crate::session::Session;
use crate::wire::{self, AudioFrame, Header, Kind, SampleFormat, SeqOrder, SeqTracker};
use audiolab_domain::ProjectId;
use audiolab_domain::transport::{TransportError, TransportResult};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

/// The stream id of the monitor feed a device receives.
pub const MONITOR_STREAM: u32 = 1;

/// Client devices are listed, armed and recorded from as `client:<name>`.
pub const CLIENT_PREFIX: &str = "client:";

/// Microphone frames kept while the client has not yet reported playing as far as they were
/// heard (they are placed once it has); beyond this the oldest are given up.
const MAX_PENDING: usize = 1_024;

/// What an attached device's connection shares with the node's recording side.
#[derive(Default)]
pub struct DeviceLink {
    /// The microphone's channels (1 or 2).
    pub channels: u8,
    /// The client frame, as heard (its played frames less the latency), up to which the
    /// device has reported playing: a take starting now keeps what is heard from here on.
    pub heard_until: AtomicU64,
    /// The take recording from this device, if any: the connection writes into it.
    pub take: std::sync::Mutex<Option<ClientTake>>,
}

/// How much of the client's play history is kept for placing its microphone: 10 s at 192 kHz.
const PLAY_HISTORY_FRAMES: u64 = 1_920_000;

/// Microphone streams one device may open.
const MAX_MIC_STREAMS: usize = 16;

/// This connection, attached as its project's device.
pub struct ClientDevice {
    pub device_id: String,
    pub lookahead: u32,
    project: ProjectId,
    session: Arc<Session>,
    feed: MonitorFeed,
    link: Arc<DeviceLink>,
    /// The round trip (output + input) in frames: the microphone hears what played this much earlier.
    latency: u64,
    /// Microphone frames waiting for the client's report of what it played when they were heard.
    pending: VecDeque<AudioFrame>,
    /// When the engine was last marked used (at most once a second, not on every report).
    touched: std::time::Instant,
    /// Monitor frames the client has reported played, in all.
    consumed: u64,
    monitor_seq: u32,
    plays: PlayMap,
    microphones: HashMap<u32, SeqTracker>,
}

impl ClientDevice {
    /// Attaches as `project`'s device (loading its engine if needed).
    pub async fn attach(node: &Node, project: ProjectId, request: &Attach) -> TransportResult<Self> {
        let (device_id, lookahead) = request.check().map_err(TransportError::Invalid)?;
        let session = node.loaded(project).await?;
        let channels = request.channels.unwrap_or(1);
        let (feed, link) = session.attach_device(&device_id, lookahead, channels).await?;
        Ok(Self {
            device_id,
            lookahead,
            project,
            session,
            feed,
            link,
            latency: u64::from(request.latency_frames.unwrap_or(0)),
            pending: VecDeque::new(),
            touched: std::time::Instant::now(),
            consumed: 0,
            monitor_seq: 0,
            plays: PlayMap::new(PLAY_HISTORY_FRAMES),
            microphones: HashMap::new(),
        })
    }

    pub fn sample_rate(&self) -> u32 {
        self.session.rate.hz()
    }

    /// Lets the engine go back to the node's clock.
    pub async fn detach(self) {
        self.session.detach_device(&self.device_id).await;
    }

    /// The monitor audio rendered since the last call, as encoded `MON` frames (f32 stereo, at
    /// most [`wire::MAX_FRAMES`] each, one stretch of consecutive timeline frames per frame).
    pub fn monitor_frames(&mut self) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        while let Some((stretch, samples)) = self.feed.pop() {
            let max = usize::from(wire::MAX_FRAMES) * 2;
            for (index, chunk) in samples.chunks(max).enumerate() {
                let header = Header {
                    kind: Kind::Mon,
                    format: SampleFormat::F32,
                    channels: 2,
                    frames: (chunk.len() / 2) as u16,
                    stream: MONITOR_STREAM,
                    seq: self.monitor_seq,
                    frame: (stretch.timeline + (index * usize::from(wire::MAX_FRAMES)) as i64) as u64,
                };
                self.monitor_seq = self.monitor_seq.wrapping_add(1);
                let mut bytes = Vec::new();
                wire::encode(&header, chunk, &mut bytes);
                frames.push(bytes);
            }
        }
        frames
    }

    /// Takes a report of what the client played: what it newly played becomes room for the
    /// engine to render into; its runs go into the play map. Errors name what was wrong.
    pub async fn played(&mut self, node: &Node, report: Played) -> Result<(), String> {
        if report.consumed < self.consumed {
            return Err(format!(
                "played: consumed went back from {} to {}; it counts every monitor frame played since attach",
                self.consumed, report.consumed
            ));
        }
        for run in &report.runs {
            let run = Run { client: run.client, timeline: run.timeline, frames: run.frames };
            self.plays.record(run).map_err(|e| format!("played: {e}"))?;
        }
        let newly = report.consumed - self.consumed;
        self.consumed = report.consumed;
        self.session.handle.shared.add_client_credit(newly as i64);
        // Playing keeps the engine in use (once a second is plenty against idle unloading); an
        // engine that was unloaded meanwhile is reloaded and this device attached to it again.
        if self.touched.elapsed() >= std::time::Duration::from_secs(1) {
            self.touched = std::time::Instant::now();
            if let Ok(session) = node.loaded(self.project).await
                && !Arc::ptr_eq(&session, &self.session)
            {
                let (feed, link) = session
                    .attach_device(&self.device_id, self.lookahead, self.link.channels)
                    .await
                    .map_err(|e| e.to_string())?;
                (self.feed, self.link, self.session) = (feed, link, session);
            }
        }
        if let Some(until) = self.plays.reported_until() {
            self.link.heard_until.store(until.saturating_sub(self.latency), std::sync::atomic::Ordering::Release);
        }
        // Microphone frames that were waiting for this report go where they belong now.
        for frame in std::mem::take(&mut self.pending) {
            self.record(frame).map_err(|e| format!("MIC: {e}"))?;
        }
        Ok(())
    }

    /// Writes a microphone frame into the take recording from this device, if any, at the
    /// place it was heard; keeps it for later when the client has not reported that far.
    fn record(&mut self, frame: AudioFrame) -> Result<(), String> {
        let frames = u64::from(frame.header.frames);
        let Some(placed) = self.plays.place(frame.header.frame, frames, self.latency) else {
            if self.pending.len() >= MAX_PENDING {
                self.pending.pop_front();
            }
            self.pending.push_back(frame);
            return Ok(());
        };
        let mut take = self.link.take.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(take) = take.as_mut() {
            let heard = frame.header.frame.saturating_sub(self.latency);
            take.write(heard, &frame.samples, &placed).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Takes a microphone frame: written where it was heard (a resend lands on the same
    /// frames, so a duplicate changes nothing); a gap in its stream's sequence and a duplicate
    /// are reported, so the client can resend what is missing.
    pub fn microphone(&mut self, frame: AudioFrame) -> Result<(), String> {
        let header = frame.header;
        if header.kind != Kind::Mic {
            return Err("only MIC frames go from a client to the node".into());
        }
        if header.channels != u16::from(self.link.channels) {
            return Err(format!(
                "MIC frames of this device have {} channel(s), not {}",
                self.link.channels, header.channels
            ));
        }
        if !self.microphones.contains_key(&header.stream) && self.microphones.len() >= MAX_MIC_STREAMS {
            return Err(format!("at most {MAX_MIC_STREAMS} microphone streams per device"));
        }
        let order = self.microphones.entry(header.stream).or_default().observe(header.seq);
        self.record(frame)?;
        match order {
            SeqOrder::Next => Ok(()),
            SeqOrder::Ahead { missing_from } => {
                Err(format!("MIC stream {}: frames {missing_from}..{} are missing", header.stream, header.seq))
            }
            SeqOrder::Behind => Err(format!(
                "MIC stream {}: frame {} arrived again or late (written where it belongs)",
                header.stream, header.seq
            )),
        }
    }
}
