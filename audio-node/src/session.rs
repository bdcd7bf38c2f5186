//! One loaded project: its engine, the threads that drive it, and the tasks that report on it.

use crate::engine::backend::{ClockStats, Output, Worker, start_output};
use crate::engine::pool::{PoolEntry, RenderPool};
use crate::engine::{self, Command, EngineHandle, TransportState};
use audiolab_domain::clip::Clip;
use audiolab_domain::loop_region::LoopRegion;
use audiolab_domain::project::Project;
use audiolab_domain::track::Track;
use audiolab_domain::transport::{LoadSummary, TransportStatus};
use audiolab_domain::{Frames, ProjectId, SampleRate, TrackId};
use audiolab_dsp::transport::ActiveLoop;
use audiolab_media::storage::Storage;
use audiolab_media::timeline::Skipped;
use audiolab_media::timeline::track_mix;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Monitor frames a listener may fall behind by before it misses some (about 10 s of audio).
const LISTENER_BACKLOG: usize = 1_024;

/// What a listener hears, in the order it happened.
#[derive(Debug, Clone)]
pub enum Heard {
    /// An encoded `MON` frame of the attached device's stream.
    Frame(Arc<Vec<u8>>),
    /// The device changed: the one now attached and its `MON` stream, or none.
    Device { device_id: Option<String>, monitor_stream: Option<u32> },
}

pub struct Session {
    pub project_id: ProjectId,
    pub project_name: String,
    pub rate: SampleRate,
    /// The project revision the engine plays (§13).
    revision: std::sync::atomic::AtomicI64,
    /// The project's tempo and beats per bar, as the metronome counts them.
    grid: Mutex<(f64, u32)>,
    pub handle: Arc<EngineHandle>,
    pub clock_stats: Arc<ClockStats>,
    /// What the engine plays now, as the control side knows it; changed by [`Session::arrange`].
    model: Mutex<Model>,
    /// The loop region the engine plays, as last sent to it.
    active_loop: Mutex<Option<LoopRegion>>,
    /// Held while the session is brought up to date, so refreshes apply in order.
    pub arranging: tokio::sync::Mutex<()>,
    /// When a command last used the engine.
    last_used: Mutex<std::time::Instant>,
    /// The client audio device attached to the engine (§10), connected or away.
    device: Mutex<Option<Arc<crate::device::DeviceLink>>>,
    /// The metronome's settings.
    metronome: Mutex<audiolab_domain::transport::MetronomeSettings>,
    /// What the project's listeners hear: the device's encoded `MON` frames, and each change
    /// of device, in order.
    pub listeners: tokio::sync::broadcast::Sender<Heard>,
    /// The `MON` stream id the next device attached gets: each device its own, so a listener
    /// never takes one device's frames for another's.
    monitor_streams: std::sync::atomic::AtomicU32,
    /// The engine's place in the render pool: dropping it takes the engine out.
    _pooled: PoolEntry,
    /// The sound card's stream, when it plays the engine.
    _card: Option<Worker>,
}

/// The project as its engine was last told it.
#[derive(Debug, Default)]
struct Model {
    duration: i64,
    tracks_loaded: u32,
    clips_loaded: u32,
    /// Each track's mixer slot (its `track_index`).
    slots: HashMap<TrackId, usize>,
}

impl Model {
    fn new(tracks: &[Track], timeline: &audiolab_media::timeline::Timeline) -> Self {
        Self {
            duration: timeline.duration,
            tracks_loaded: tracks.len() as u32,
            clips_loaded: timeline.clips,
            slots: tracks.iter().map(|t| (t.id, usize::from(t.index.get()))).collect(),
        }
    }
}

/// Opens the playable clips of `tracks` for an engine, reporting those that cannot play.
/// Blocking (opens files).
pub fn open_timeline(
    rate: SampleRate,
    tracks: &[Track],
    clips: &[Clip],
    storage: &Storage,
) -> audiolab_media::timeline::Timeline {
    let (timeline, skipped) = audiolab_media::timeline::open(rate, tracks, clips, storage);
    for Skipped { clip, reason } in skipped {
        tracing::warn!(clip_id = %clip, %reason, "clip skipped: its audio cannot play");
    }
    timeline
}

impl Session {
    /// Opens the project's audio and places its engine in the render pool (or on the sound
    /// card). Blocking (opens files): call from a blocking context.
    pub fn start(
        project: &Project,
        tracks: &[Track],
        clips: &[Clip],
        storage: &Storage,
        output: Output,
        pool: &RenderPool,
    ) -> std::io::Result<Self> {
        let rate = project.sample_rate;
        let mut timeline = open_timeline(rate, tracks, clips, storage);
        let model = Model::new(tracks, &timeline);
        let (core, handle, prefetcher) =
            engine::create(rate.hz(), timeline.duration, std::mem::take(&mut timeline.tracks));
        for track in tracks {
            handle.shared.set_mix(usize::from(track.index.get()), track_mix(track));
        }
        let clock_stats = Arc::new(ClockStats::default());
        let pooled = pool.add(prefetcher)?;
        let (card, output) = start_output(core, rate.hz(), clock_stats.clone(), output, &pooled)?;
        tracing::info!(project_id = %project.id, engine = output.engine_name(), "engine started");
        let session = Self {
            project_id: project.id,
            project_name: project.name.clone(),
            rate,
            revision: std::sync::atomic::AtomicI64::new(0),
            grid: Mutex::new((project.tempo.bpm(), u32::from(project.time_signature.beats))),
            handle: Arc::new(handle),
            clock_stats,
            model: Mutex::new(model),
            active_loop: Mutex::new(None),
            arranging: tokio::sync::Mutex::new(()),
            last_used: Mutex::new(std::time::Instant::now()),
            device: Mutex::new(None),
            metronome: Mutex::new(Default::default()),
            listeners: tokio::sync::broadcast::channel(LISTENER_BACKLOG).0,
            monitor_streams: std::sync::atomic::AtomicU32::new(1),
            _pooled: pooled,
            _card: card,
        };
        Ok(session)
    }

    fn model(&self) -> std::sync::MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Frames to the end of the last clip the engine plays.
    pub fn duration(&self) -> i64 {
        self.model().duration
    }

    /// Makes the engine play `tracks` with the clips of `timeline` (opened by
    /// [`open_timeline`]): mixers at once, clips from the next block boundary, without a gap.
    pub fn arrange(
        &self,
        tracks: &[Track],
        timeline: audiolab_media::timeline::Timeline,
    ) -> Result<(), engine::EngineBusy> {
        let mut model = self.model();
        let new = Model::new(tracks, &timeline);
        for (id, slot) in &model.slots {
            if !new.slots.contains_key(id) {
                // A deleted track's slot plays nothing; a track created there later sets it.
                self.handle.shared.set_mix(*slot, audiolab_dsp::mix::TrackMix::default());
            }
        }
        for track in tracks {
            self.handle.shared.set_mix(usize::from(track.index.get()), track_mix(track));
        }
        let arrangement = engine::Arrangement { tracks: timeline.tracks, duration: timeline.duration };
        self.handle.send(engine::Command::Arrange(Box::new(arrangement)))?;
        *model = new;
        Ok(())
    }

    pub fn summary(&self) -> LoadSummary {
        let model = self.model();
        LoadSummary {
            project_id: self.project_id,
            project_name: self.project_name.clone(),
            tracks_loaded: model.tracks_loaded,
            clips_loaded: model.clips_loaded,
            duration: Frames(model.duration).to_seconds(self.rate),
            duration_frames: model.duration,
            tempo: self.tempo(),
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
        let model = self.model();
        TransportStatus {
            project_id: self.project_id,
            project_loaded: true,
            status: shared.state(),
            position: Frames(frame).to_seconds(self.rate),
            frame,
            duration: Frames(model.duration).to_seconds(self.rate),
            duration_frames: model.duration,
            tracks_loaded: model.tracks_loaded,
            sample_rate: self.rate.hz(),
            loop_region_id: self.active_loop.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(|r| r.id),
            loop_pass: shared.loop_pass(),
            underruns: shared.underruns(),
            client_device: self.client_device().map(|link| audiolab_domain::transport::ClientDeviceStatus {
                device_id: link.device_id.clone(),
                channels: u16::from(link.channels),
                latency_frames: link.latency(),
                connected: link.away_for().is_none(),
            }),
            metronome: self.metronome(),
        }
    }

    /// Sends a command to the engine and waits until its audio thread has applied it, so the
    /// status returned afterwards reflects it.
    pub async fn command(&self, command: Command) -> Result<(), engine::EngineBusy> {
        let number = self.handle.send(command)?;
        let period = Duration::from_secs_f64(engine::BLOCK_FRAMES as f64 / f64::from(self.rate.hz()));
        for _ in 0..40 {
            if self.handle.shared.applied() >= number {
                break;
            }
            tokio::time::sleep(period / 4).await;
        }
        Ok(())
    }

    /// Makes `device_id` the engine's client device for `owner`: the output goes to its
    /// monitor feed and the client paces the engine. The same device of the same owner, already
    /// attached (its connection lost or not yet noticed lost), is resumed: returns it with `true`.
    /// (An away device of anyone else is released by the node before this.)
    /// Errors: `conflict` when another device is attached.
    pub async fn attach_device(
        &self,
        device_id: String,
        owner: audiolab_domain::UserId,
        lookahead: u32,
        channels: u8,
        latency: u32,
    ) -> Result<(Arc<crate::device::DeviceLink>, bool), audiolab_domain::transport::TransportError> {
        use audiolab_domain::transport::TransportError;
        // Room for the lookahead twice over: the client reads the feed every few milliseconds.
        let (tap, feed) = engine::monitor(lookahead as usize * 2 + engine::BLOCK_FRAMES * 4);
        let link = {
            let mut device = self.device.lock().unwrap_or_else(|p| p.into_inner());
            // A device the node is releasing (ended) is as good as gone: a new one replaces it.
            if let Some(link) = device.as_ref().filter(|link| link.ended().is_none()) {
                if link.device_id == device_id && link.owner == owner {
                    return Ok((link.clone(), true));
                }
                let other = &link.device_id;
                return Err(TransportError::Conflict(format!("the client device {other} is attached to this project")));
            }
            let stream = self.monitor_streams.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let link =
                Arc::new(crate::device::DeviceLink::new(device_id, owner, channels, lookahead, latency, feed, stream));
            *device = Some(link.clone());
            let _ = self
                .listeners
                .send(Heard::Device { device_id: Some(link.device_id.clone()), monitor_stream: Some(stream) });
            link
        };
        let busy = |e: engine::EngineBusy| TransportError::Unavailable(e.to_string());
        if let Err(busy_engine) = self.command(Command::AttachMonitor(Box::new(tap))).await {
            *self.device.lock().unwrap_or_else(|p| p.into_inner()) = None;
            return Err(busy(busy_engine));
        }
        self.handle.shared.set_client_clock(Some(i64::from(lookahead)));
        Ok((link, false))
    }

    /// Lets go of `link` (if it is still the attached device: one attached since is left
    /// alone): the node's clock paces the engine again.
    pub async fn detach_device(&self, link: &Arc<crate::device::DeviceLink>) {
        {
            let mut device = self.device.lock().unwrap_or_else(|p| p.into_inner());
            if !device.as_ref().is_some_and(|attached| Arc::ptr_eq(attached, link)) {
                return;
            }
            *device = None;
        }
        let _ = self.listeners.send(Heard::Device { device_id: None, monitor_stream: None });
        self.handle.shared.set_client_clock(None);
        let _ = self.command(Command::DetachMonitor).await;
    }

    /// The metronome's settings.
    pub fn metronome(&self) -> audiolab_domain::transport::MetronomeSettings {
        *self.metronome.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The beat grid of the project's tempo and time signature.
    pub fn beat_grid(&self) -> audiolab_dsp::metronome::BeatGrid {
        let (tempo_bpm, beats_per_bar) = *self.grid.lock().unwrap_or_else(|p| p.into_inner());
        audiolab_dsp::metronome::BeatGrid {
            sample_rate: self.rate.hz(),
            tempo_bpm,
            beats_per_bar: beats_per_bar.max(1),
        }
    }

    /// The project's tempo, in beats per minute.
    pub fn tempo(&self) -> f64 {
        self.beat_grid().tempo_bpm
    }

    /// Takes the project's tempo and time signature; returns whether they changed (the
    /// metronome must then be told).
    pub fn follow_settings(&self, project: &audiolab_domain::project::Project) -> bool {
        let wanted = (project.tempo.bpm(), u32::from(project.time_signature.beats));
        let mut grid = self.grid.lock().unwrap_or_else(|p| p.into_inner());
        let changed = *grid != wanted;
        *grid = wanted;
        changed
    }

    /// The project revision the engine plays.
    pub fn revision(&self) -> i64 {
        self.revision.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn set_revision(&self, revision: i64) {
        self.revision.fetch_max(revision, std::sync::atomic::Ordering::AcqRel);
    }

    /// Sets the metronome and tells the engine.
    pub async fn set_metronome(
        &self,
        settings: audiolab_domain::transport::MetronomeSettings,
    ) -> Result<(), engine::EngineBusy> {
        *self.metronome.lock().unwrap_or_else(|p| p.into_inner()) = settings;
        let metronome = audiolab_dsp::metronome::Metronome { level: settings.level, accent: settings.accent };
        let click = engine::Click { metronome: settings.enabled.then_some(metronome), grid: self.beat_grid() };
        self.command(Command::Metronome(click)).await
    }

    /// Clicks up to timeline frame `until` (a take's count-in), whatever the metronome's setting.
    pub async fn count_in(&self, until: i64) -> Result<(), engine::EngineBusy> {
        self.set_metronome(self.metronome()).await?;
        self.command(Command::CountIn(until)).await
    }

    /// The attached client device (connected or away).
    pub fn client_device(&self) -> Option<Arc<crate::device::DeviceLink>> {
        self.device.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// What the attached device `device_id` shares with recording, if it is attached.
    pub fn device_link(&self, device_id: &str) -> Option<Arc<crate::device::DeviceLink>> {
        self.client_device().filter(|link| link.device_id == device_id)
    }

    /// The command that makes the engine loop `region` (or stop looping), unless it already
    /// loops exactly that range: an unrelated edit must not restart the pass count.
    pub fn set_loop(&self, region: Option<&LoopRegion>) -> Option<Command> {
        let mut active = self.active_loop.lock().unwrap_or_else(|p| p.into_inner());
        let plays = |r: &LoopRegion| (r.id, r.start, r.end, r.repeat_count);
        if active.as_ref().map(plays) == region.map(plays) {
            return None;
        }
        *active = region.cloned();
        Some(Command::SetLoop(region.map(|r| ActiveLoop::new(r.start.get(), r.end.get(), r.repeat_count))))
    }

    pub fn apply_track(&self, track: &Track) {
        if let Some(&slot) = self.model().slots.get(&track.id) {
            self.handle.shared.set_mix(slot, track_mix(track));
        }
    }

    pub fn state(&self) -> TransportState {
        self.handle.shared.state()
    }

    /// Notes that a command used the engine now.
    pub fn touch(&self) {
        *self.last_used.lock().unwrap_or_else(|p| p.into_inner()) = std::time::Instant::now();
    }

    /// How long since a command last used the engine.
    pub fn idle_for(&self) -> Duration {
        self.last_used.lock().unwrap_or_else(|p| p.into_inner()).elapsed()
    }

    /// Whether the engine plays or records, or a client device is attached: it must stay loaded.
    pub fn busy(&self) -> bool {
        self.state() == TransportState::Playing || self.handle.shared.recording() || self.client_device().is_some()
    }
}
