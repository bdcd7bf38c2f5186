//! One loaded project: its engine, the threads that drive it, and the tasks that report on it.

use crate::backend::{ClockStats, Output, Worker, spawn_reader, start_output};
use crate::engine::{self, Command, EngineEvent, EngineHandle, TransportState};
use crate::hub::{Hub, message};
use audiolab_domain::clip::Clip;
use audiolab_domain::loop_region::LoopRegion;
use audiolab_domain::project::Project;
use audiolab_domain::track::Track;
use audiolab_domain::transport::{LoadSummary, TransportStatus};
use audiolab_domain::{Frames, LoopRegionId, ProjectId, SampleRate, TrackId};
use audiolab_dsp::transport::ActiveLoop;
use audiolab_media::storage::Storage;
use audiolab_media::timeline::Skipped;
use audiolab_media::timeline::track_mix;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often clients get the playhead while the transport rolls.
pub const POSITION_INTERVAL: Duration = Duration::from_millis(50);

pub struct Session {
    pub project_id: ProjectId,
    pub project_name: String,
    pub tempo: f64,
    pub rate: SampleRate,
    pub duration: i64,
    pub tracks_loaded: u32,
    pub clips_loaded: u32,
    pub handle: Arc<EngineHandle>,
    pub clock_stats: Arc<ClockStats>,
    slots: HashMap<TrackId, usize>,
    active_loop: Mutex<Option<LoopRegionId>>,
    reports: CancellationToken,
    positions: Option<Worker>,
    // Dropped after the reports stop: joins the threads.
    _clock: Worker,
    _reader: Worker,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.reports.cancel();
    }
}

impl Session {
    /// Opens the project's audio and starts its engine threads and report tasks.
    /// Blocking (opens files, spawns threads): call from a blocking context.
    pub fn start(
        project: &Project,
        tracks: &[Track],
        clips: &[Clip],
        storage: &Storage,
        output: Output,
    ) -> std::io::Result<Self> {
        let rate = project.sample_rate;
        let (timeline, skipped) = audiolab_media::timeline::open(rate, tracks, clips, storage);
        for Skipped { clip, reason } in skipped {
            tracing::warn!(clip_id = %clip, %reason, "clip skipped: its audio cannot play");
        }
        let (clips_loaded, duration) = (timeline.clips, timeline.duration);
        let (core, handle, prefetcher) = engine::create(rate.hz(), duration, timeline.tracks);
        let mut slots = HashMap::new();
        for track in tracks {
            let slot = usize::from(track.index.get());
            handle.shared.set_mix(slot, track_mix(track));
            slots.insert(track.id, slot);
        }
        let clock_stats = Arc::new(ClockStats::default());
        let reader = spawn_reader(prefetcher)?;
        let (clock, output) = start_output(core, rate.hz(), clock_stats.clone(), output)?;
        tracing::info!(project_id = %project.id, engine = output.engine_name(), "engine started");
        let session = Self {
            project_id: project.id,
            project_name: project.name.clone(),
            tempo: project.tempo.bpm(),
            rate,
            duration,
            tracks_loaded: tracks.len() as u32,
            clips_loaded,
            handle: Arc::new(handle),
            clock_stats,
            slots,
            active_loop: Mutex::new(None),
            reports: CancellationToken::new(),
            positions: None,
            _clock: clock,
            _reader: reader,
        };
        Ok(session)
    }

    /// Starts the tasks that turn engine state into client messages. Needs a tokio runtime.
    pub fn spawn_reports(&mut self, hub: Arc<Hub>) -> std::io::Result<()> {
        self.positions = Some(spawn_position_reports(self.project_id, self.handle.clone(), self.rate, hub.clone())?);
        tokio::spawn(report_events(self.project_id, self.handle.clone(), self.rate, hub, self.reports.clone()));
        Ok(())
    }

    pub fn summary(&self) -> LoadSummary {
        LoadSummary {
            project_id: self.project_id,
            project_name: self.project_name.clone(),
            tracks_loaded: self.tracks_loaded,
            clips_loaded: self.clips_loaded,
            duration: Frames(self.duration).to_seconds(self.rate),
            duration_frames: self.duration,
            tempo: self.tempo,
            sample_rate: self.rate.hz(),
        }
    }

    /// The output's latency in frames, as the sound card reports it (zero on the mock clock).
    pub fn output_latency_frames(&self) -> i64 {
        let ns = self.clock_stats.output_latency_ns.load(std::sync::atomic::Ordering::Relaxed);
        (ns as f64 * f64::from(self.rate.hz()) / 1e9).round() as i64
    }

    pub fn status(&self) -> TransportStatus {
        let shared = &self.handle.shared;
        let frame = shared.position();
        TransportStatus {
            project_id: self.project_id,
            project_loaded: true,
            status: shared.state().as_str().into(),
            position: Frames(frame).to_seconds(self.rate),
            frame,
            duration: Frames(self.duration).to_seconds(self.rate),
            duration_frames: self.duration,
            tracks_loaded: self.tracks_loaded,
            sample_rate: self.rate.hz(),
            loop_region_id: *self.active_loop.lock().unwrap_or_else(|p| p.into_inner()),
            loop_pass: shared.loop_pass(),
            underruns: shared.underruns(),
        }
    }

    /// Sends a command to the engine and waits until its audio thread has applied it, so the
    /// status returned afterwards reflects it.
    pub async fn command(&self, command: Command) -> Result<(), engine::EngineBusy> {
        let before = self.handle.shared.blocks();
        self.handle.send(command)?;
        let period = Duration::from_secs_f64(engine::BLOCK_FRAMES as f64 / f64::from(self.rate.hz()));
        for _ in 0..20 {
            if self.handle.shared.blocks() > before + 1 {
                break;
            }
            tokio::time::sleep(period / 2).await;
        }
        Ok(())
    }

    pub fn set_loop(&self, region: Option<&LoopRegion>) -> Command {
        *self.active_loop.lock().unwrap_or_else(|p| p.into_inner()) = region.map(|r| r.id);
        Command::SetLoop(region.map(|r| ActiveLoop::new(r.start.get(), r.end.get(), r.repeat_count)))
    }

    pub fn apply_track(&self, track: &Track) {
        if let Some(&slot) = self.slots.get(&track.id) {
            self.handle.shared.set_mix(slot, track_mix(track));
        }
    }

    pub fn state(&self) -> TransportState {
        self.handle.shared.state()
    }
}

/// Sends `position_update` every [`POSITION_INTERVAL`] while the transport rolls, from its own
/// thread on a fixed grid of deadlines, so a busy async runtime cannot make the cadence drift.
fn spawn_position_reports(
    project: ProjectId,
    handle: Arc<EngineHandle>,
    rate: SampleRate,
    hub: Arc<Hub>,
) -> std::io::Result<Worker> {
    crate::backend::spawn_worker("audiolab-positions".into(), move |stop| {
        let started = std::time::Instant::now();
        let mut tick: u32 = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            tick += 1;
            let deadline = started + POSITION_INTERVAL * tick;
            if let Some(wait) = deadline.checked_duration_since(std::time::Instant::now()) {
                std::thread::sleep(wait);
            }
            let shared = &handle.shared;
            if shared.state() != TransportState::Playing || !hub.has_listeners(project) {
                continue;
            }
            let frame = shared.position();
            let server_time = chrono::Utc::now().timestamp_micros() as f64 / 1e6;
            let data = json!({
                "project_id": project,
                "position": Frames(frame).to_seconds(rate),
                "frame": frame,
                "sample_rate": rate.hz(),
                "playing": true,
                "recording": shared.recording(),
                "server_time": server_time,
            });
            hub.publish(project, message("position_update", data));
        }
    })
}

async fn report_events(
    project: ProjectId,
    handle: Arc<EngineHandle>,
    rate: SampleRate,
    hub: Arc<Hub>,
    stop: CancellationToken,
) {
    let mut ticks = tokio::time::interval(Duration::from_millis(10));
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        for event in handle.drain_events() {
            let frame = handle.shared.position();
            let position = Frames(frame).to_seconds(rate);
            let msg = match event {
                EngineEvent::LoopWrapped { pass } => message(
                    "loop_event",
                    json!({"project_id": project, "event": "wrapped", "iteration": pass, "position": position}),
                ),
                EngineEvent::LoopFinished => {
                    message("loop_event", json!({"project_id": project, "event": "ended", "position": position}))
                }
                EngineEvent::ReachedEnd => {
                    message("playback_stopped", json!({"project_id": project, "reason": "end", "position": 0.0}))
                }
                EngineEvent::Underrun { position } => {
                    tracing::debug!(%project, position, "read-ahead underrun");
                    continue;
                }
            };
            hub.publish(project, msg);
        }
    }
}
