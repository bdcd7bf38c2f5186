//! A client audio device on one socket (§10): the monitor stream it plays, its reports of what
//! it played (which pace the project's engine: the client is the clock), and its microphone.
//!
//! ```text
//! engine (pool lane, paced by credit) ─▶ monitor tap ─▶ MON frames ─▶ client plays them
//! client ─▶ {"type":"played", consumed, runs} ─▶ credit += newly played; play map += runs
//! client ─▶ MIC frames ─▶ checked, sequenced (placed by the play map when a take records)
//! ```

use crate::engine::MonitorFeed;
use crate::node::Node;
use crate::play_map::{PlayMap, Run};
use crate::protocol::{Attach, Played};
use crate::session::Session;
use crate::wire::{self, AudioFrame, Header, Kind, SampleFormat, SeqOrder, SeqTracker};
use audiolab_domain::ProjectId;
use audiolab_domain::transport::{TransportError, TransportResult};
use std::collections::HashMap;
use std::sync::Arc;

/// The stream id of the monitor feed a device receives.
pub const MONITOR_STREAM: u32 = 1;

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
        let feed = session.attach_device(&device_id, lookahead).await?;
        Ok(Self {
            device_id,
            lookahead,
            project,
            session,
            feed,
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
        // Playing keeps the engine in use; an engine that was unloaded meanwhile is reloaded
        // and this device attached to it again.
        if let Ok(session) = node.loaded(self.project).await
            && !Arc::ptr_eq(&session, &self.session)
        {
            self.feed = session.attach_device(&self.device_id, self.lookahead).await.map_err(|e| e.to_string())?;
            self.session = session;
        }
        Ok(())
    }

    /// Takes a microphone frame: checks its stream's sequence. Duplicates and late resends are
    /// reported (and change nothing); a gap is reported so the client can resend.
    pub fn microphone(&mut self, frame: &AudioFrame) -> Result<(), String> {
        let header = frame.header;
        if header.kind != Kind::Mic {
            return Err("only MIC frames go from a client to the node".into());
        }
        if !self.microphones.contains_key(&header.stream) && self.microphones.len() >= MAX_MIC_STREAMS {
            return Err(format!("at most {MAX_MIC_STREAMS} microphone streams per device"));
        }
        match self.microphones.entry(header.stream).or_default().observe(header.seq) {
            SeqOrder::Next => Ok(()),
            SeqOrder::Ahead { missing_from } => {
                Err(format!("MIC stream {}: frames {missing_from}..{} are missing", header.stream, header.seq))
            }
            SeqOrder::Behind => {
                Err(format!("MIC stream {}: frame {} arrived again or too late; ignored", header.stream, header.seq))
            }
        }
    }

    /// Where the client's microphone frames from client frame `client` land on the timeline,
    /// heard `latency` frames earlier (see [`PlayMap::place`]).
    pub fn place(&self, client: u64, frames: u64, latency: u64) -> Option<Vec<crate::play_map::Placed>> {
        self.plays.place(client, frames, latency)
    }
}
