//! What the node's engines tell their clients, from one thread per node: every 10 ms the events
//! of engines that rendered since (loop wraps, the end reached), and every 50 ms, on a fixed
//! grid of deadlines, `position_update` for each rolling engine with listeners. A thread, not a
//! task, so a busy async runtime cannot make the cadence drift; one for all engines, so a
//! loaded project that does nothing costs nothing.

use crate::engine::backend::{Worker, spawn_worker};
use crate::engine::{EngineEvent, EngineHandle, TransportState};
use crate::transport::hub::Hub;
use audiolab_domain::{Frames, ProjectId, SampleRate};
use audiolab_transport::protocol::{LoopEvent, PlaybackEvent, PositionUpdate, ServerMessage, TrackLevel};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// How often clients get the playhead while the transport rolls.
pub const POSITION_INTERVAL: Duration = Duration::from_millis(50);
/// How often engine events are collected.
const EVENT_INTERVAL: Duration = Duration::from_millis(10);

struct Watched {
    project: ProjectId,
    rate: SampleRate,
    handle: Weak<EngineHandle>,
    /// Blocks the engine had rendered at the last look: no new block, no new event.
    blocks_seen: u64,
}

/// The node's reporting thread and the engines it watches.
pub struct Reports {
    watched: Arc<Mutex<Vec<Watched>>>,
    _thread: Worker,
}

impl Reports {
    pub fn start(hub: Arc<Hub>) -> std::io::Result<Self> {
        let watched: Arc<Mutex<Vec<Watched>>> = Arc::default();
        let list = watched.clone();
        let thread = spawn_worker("audiolab-reports".into(), move |stop| {
            let started = Instant::now();
            let mut tick: u32 = 0;
            let per_position = (POSITION_INTERVAL.as_millis() / EVENT_INTERVAL.as_millis()) as u32;
            while !stop.load(Relaxed) {
                tick = tick.wrapping_add(1);
                let deadline = started + EVENT_INTERVAL * tick;
                if let Some(wait) = deadline.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let mut list = list.lock().unwrap_or_else(|p| p.into_inner());
                list.retain(|w| w.handle.strong_count() > 0);
                for watched in list.iter_mut() {
                    report(&hub, watched, tick % per_position == 0);
                }
            }
        })?;
        Ok(Self { watched, _thread: thread })
    }

    /// Reports on `handle`'s engine until it is dropped.
    pub fn watch(&self, project: ProjectId, rate: SampleRate, handle: &Arc<EngineHandle>) {
        let watched = Watched { project, rate, handle: Arc::downgrade(handle), blocks_seen: 0 };
        self.watched.lock().unwrap_or_else(|p| p.into_inner()).push(watched);
    }
}

fn report(hub: &Hub, watched: &mut Watched, positions: bool) {
    let Some(handle) = watched.handle.upgrade() else { return };
    let (project, rate) = (watched.project, watched.rate);
    let blocks = handle.shared.blocks();
    if blocks != watched.blocks_seen {
        watched.blocks_seen = blocks;
        for event in handle.drain_events() {
            if let Some(message) = event_message(project, rate, &handle, event) {
                hub.publish(project, message.frame());
            }
        }
    }
    let shared = &handle.shared;
    if !positions {
        return;
    }
    // Taken every tick, reported or not: what no update showed is not shown later.
    let levels = levels(shared);
    if shared.state() == TransportState::Playing && hub.has_listeners(project) {
        let frame = shared.position();
        let update = PositionUpdate {
            project_id: project.0,
            position: Frames(frame).to_seconds(rate),
            frame,
            sample_rate: rate.hz(),
            playing: true,
            recording: shared.recording(),
            server_time: chrono::Utc::now().timestamp_micros() as f64 / 1e6,
            levels,
        };
        hub.publish(project, ServerMessage::PositionUpdate(update).frame());
    }
}

/// The tracks that sounded since the last update, with their peaks (taken: the next update
/// starts from silence).
fn levels(shared: &crate::engine::Shared) -> Vec<TrackLevel> {
    (0..crate::engine::MAX_TRACKS)
        .filter_map(|slot| {
            let [left, right] = shared.take_peaks(slot);
            (left > 0.0 || right > 0.0).then(|| TrackLevel { track_index: slot as u8, left, right })
        })
        .collect()
}

fn event_message(
    project: ProjectId,
    rate: SampleRate,
    handle: &EngineHandle,
    event: EngineEvent,
) -> Option<ServerMessage> {
    let position = Frames(handle.shared.position()).to_seconds(rate);
    let project_id = project.0;
    Some(match event {
        EngineEvent::LoopWrapped { pass } => {
            ServerMessage::LoopEvent(LoopEvent::Wrapped { project_id, iteration: pass, position })
        }
        EngineEvent::LoopFinished => ServerMessage::LoopEvent(LoopEvent::Ended { project_id, position }),
        EngineEvent::ReachedEnd => ServerMessage::PlaybackStopped(PlaybackEvent {
            project_id,
            position: 0.0,
            frame: 0,
            status: audiolab_domain::transport::TransportState::Stopped,
            reason: Some("end".into()),
        }),
        EngineEvent::Underrun { position } => {
            tracing::debug!(%project, position, "read-ahead underrun");
            return None;
        }
    })
}
