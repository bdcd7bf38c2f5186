//! The node: the registry of loaded projects, and the transport operations on them.

use crate::engine::{Command, TransportState};
use crate::hub::{Hub, message};
use crate::recording::{ActiveRecording, CaptureWriter, device_latency, manifest, open_input};
use crate::session::Session;
use audiolab_domain::job::{JobKind, JobStatus};
use audiolab_domain::recording::{RecordingSession, RecordingStatus};
use audiolab_domain::track::Track;
use audiolab_domain::transport::{AudioControl, LoadSummary, TransportError, TransportResult, TransportStatus};
use audiolab_domain::transport::{RecordRequest, RecordingStarted, RecordingStopped};
use audiolab_domain::{Frames, LoopRegionId, ProjectId, RecordingSessionId};
use audiolab_media::storage::Storage;
use audiolab_store::{Page, Store, StoreError};
use audiolab_worker::jobs::JobUpdate;
use audiolab_worker::queue::JobQueue;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// Hosts the engine sessions of the projects loaded on this node.
pub struct Node {
    store: Store,
    output: crate::backend::Output,
    storage: Storage,
    hub: Arc<Hub>,
    sessions: tokio::sync::Mutex<HashMap<ProjectId, Arc<Session>>>,
    recordings: tokio::sync::Mutex<HashMap<RecordingSessionId, ActiveRecording>>,
    next_capture: std::sync::atomic::AtomicU64,
    /// Where stopped takes go to be finalised by a worker.
    queue: JobQueue,
}

fn store_error(err: StoreError) -> TransportError {
    match err {
        StoreError::NotFound(what) | StoreError::MissingParent(what) => TransportError::NotFound(what),
        StoreError::Invalid(invalid) => TransportError::Invalid(invalid.to_string()),
        StoreError::Conflict(message) => TransportError::Conflict(message),
        err if err.is_unavailable() => TransportError::Unavailable("the database is unavailable".into()),
        err => TransportError::Internal(err.to_string()),
    }
}

impl Node {
    pub fn new(store: Store, storage: Storage, queue: JobQueue) -> Self {
        let output = crate::backend::Output::detect();
        Self {
            store,
            output,
            storage,
            hub: Arc::new(Hub::default()),
            sessions: Default::default(),
            recordings: Default::default(),
            next_capture: Default::default(),
            queue,
        }
    }

    /// What plays this node's engines.
    pub fn output(&self) -> crate::backend::Output {
        self.output
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The project's session, if loaded.
    pub async fn session(&self, project: ProjectId) -> Option<Arc<Session>> {
        self.sessions.lock().await.get(&project).cloned()
    }

    /// The project's session, loading it first if needed.
    async fn loaded(&self, project: ProjectId) -> TransportResult<Arc<Session>> {
        if let Some(session) = self.session(project).await {
            return Ok(session);
        }
        self.reload(project).await?;
        self.session(project).await.ok_or_else(|| TransportError::Internal("session vanished after load".into()))
    }

    async fn start_session(&self, project_id: ProjectId) -> TransportResult<Arc<Session>> {
        let store = &self.store;
        let project =
            store.get_project(project_id).await.map_err(store_error)?.ok_or(TransportError::NotFound("project"))?;
        let tracks = store.list_tracks(project_id, Page { limit: 32, offset: 0 }).await.map_err(store_error)?.items;
        let clips = store.project_clips(project_id).await.map_err(store_error)?;
        // Clips finalised or imported by another process are brought here before the engine opens them.
        for key in audiolab_media::timeline::fetch_audio(&self.storage, &clips).await {
            tracing::warn!(%key, "a clip's audio is not available");
        }
        let enabled_loop = store.enabled_loop_region(project_id).await.map_err(store_error)?;
        let storage = self.storage.clone();
        let output = self.output;
        let session = tokio::task::spawn_blocking(move || Session::start(&project, &tracks, &clips, &storage, output))
            .await
            .map_err(|e| TransportError::Internal(e.to_string()))?
            .map_err(|e| TransportError::Unavailable(format!("cannot start the engine: {e}")))?;
        if let Some(region) = &enabled_loop {
            let command = session.set_loop(Some(region));
            session.handle.send(command).map_err(busy)?;
        }
        let mut session = session;
        session
            .spawn_reports(self.hub.clone())
            .map_err(|e| TransportError::Unavailable(format!("cannot start the engine: {e}")))?;
        Ok(Arc::new(session))
    }

    fn publish(&self, project: ProjectId, kind: &str, status: &TransportStatus) {
        let data =
            json!({"project_id": project, "position": status.position, "frame": status.frame, "status": status.status});
        self.hub.publish(project, message(kind, data));
    }

    /// Announces a recording's progress to the project's clients.
    fn publish_recording(&self, project: ProjectId, event: &str, data: serde_json::Value) {
        let mut data = data;
        data["project_id"] = json!(project);
        data["event"] = json!(event);
        self.hub.publish(project, message("recording_status", data));
    }

    /// Recovers recordings a crash interrupted: those in `recording` whose project no other
    /// live node hosts. `me` is this node's registry id (none in `serve`).
    pub async fn recover_interrupted(&self, me: Option<uuid::Uuid>, stale_after: std::time::Duration) {
        let open = match self.store.recording_sessions_with_status(RecordingStatus::Recording).await {
            Ok(open) => open,
            Err(err) => return tracing::warn!(%err, "cannot look for interrupted recordings"),
        };
        for journal in open {
            if self.recordings.lock().await.contains_key(&journal.id) {
                continue;
            }
            match self.store.live_host_of(journal.project_id, stale_after).await {
                Ok(Some(host)) if Some(host) != me => continue,
                Err(err) => return tracing::warn!(%err, "cannot look for interrupted recordings"),
                _ => {}
            }
            match audiolab_worker::finalize::recover_capture(&self.store, &self.storage, journal.id).await {
                Ok(Some(done)) => {
                    tracing::info!(session_id = %journal.id, frames = done.frames, "recovered an interrupted recording");
                    for clip in &done.clips {
                        let data = json!({"project_id": journal.project_id, "clip_id": clip, "session_id": journal.id});
                        self.hub.publish(journal.project_id, message("clip_ready", data));
                    }
                }
                Ok(None) => {}
                Err(err) => tracing::error!(session_id = %journal.id, %err, "recovering a recording failed"),
            }
        }
    }

    /// Queues again the jobs a crash left queued or running (their sessions
    /// are on this node's projects, as for [`Node::recover_interrupted`]). Only for the node of
    /// `serve`, which is also the only worker: in cloud mode a job may be running on a worker
    /// right now, and the queue itself gives a dead worker's jobs to the others.
    pub async fn resume_finalize_jobs(&self, me: Option<uuid::Uuid>, stale_after: std::time::Duration) {
        if me.is_some() {
            return;
        }
        let mut jobs = Vec::new();
        for kind in JobKind::ALL {
            match self.store.unfinished_jobs(kind).await {
                Ok(found) => jobs.extend(found),
                Err(err) => return tracing::warn!(%err, "cannot look for unfinished jobs"),
            }
        }
        for job in jobs {
            let Some(project) = job.project_id else { continue };
            match self.store.live_host_of(project, stale_after).await {
                Ok(Some(_)) => continue,
                Err(err) => return tracing::warn!(%err, "cannot look for unfinished jobs"),
                _ => {}
            }
            tracing::info!(job_id = %job.id, kind = job.kind.as_str(), "resuming an interrupted job");
            if let Err(err) = self.queue.push(job.id).await {
                tracing::error!(job_id = %job.id, %err, "cannot queue an interrupted job");
            }
        }
    }

    /// Job updates for this node from a worker in the same process, handled in order.
    pub fn local_job_events(self: &Arc<Self>) -> audiolab_worker::events::JobEvents {
        let (sender, mut updates) = tokio::sync::mpsc::unbounded_channel();
        let node = self.clone();
        tokio::spawn(async move {
            while let Some(update) = updates.recv().await {
                node.job_changed(&update).await;
            }
        });
        audiolab_worker::events::JobEvents::Local(sender)
    }

    /// Follows a job's progress: tells the project's clients, and once a take is finalised or a
    /// file imported, announces its clips and brings them into the engine if the project plays
    /// here.
    pub async fn job_changed(self: &Arc<Self>, update: &JobUpdate) {
        let Some(project) = update.project_id else { return };
        let data = json!({"project_id": project, "job_id": update.job_id, "kind": update.kind.as_str(),
                          "status": update.status.as_str(), "progress": update.progress, "error": update.error});
        self.hub.publish(project, message("job_progress", data));
        match (update.kind, update.status) {
            (JobKind::Import, JobStatus::Succeeded) => {
                let clip = update.result.as_ref().map(|r| r["clip_id"].clone()).unwrap_or_default();
                self.hub.publish(project, message("clip_ready", json!({"project_id": project, "clip_id": clip})));
                self.reload_in_background(project).await;
            }
            (JobKind::FinalizeCapture, JobStatus::Succeeded) => {
                let result = update.result.clone().unwrap_or_default();
                let session_id = &result["session_id"];
                let clips = result["clip_ids"].as_array().cloned().unwrap_or_default();
                for clip in &clips {
                    let data = json!({"project_id": project, "clip_id": clip, "session_id": session_id});
                    self.hub.publish(project, message("clip_ready", data));
                }
                self.publish_recording(project, "saved", json!({"session_id": session_id, "clip_ids": clips}));
                self.reload_in_background(project).await;
            }
            (JobKind::FinalizeCapture, JobStatus::Failed) => {
                let job = self.store.get_job(update.job_id).await.ok().flatten();
                let session_id = job.map(|j| j.payload["session_id"].clone()).unwrap_or_default();
                tracing::error!(%session_id, error = ?update.error, "finalising a capture failed");
                self.publish_recording(project, "failed", json!({"session_id": session_id, "error": update.error}));
            }
            _ => {}
        }
    }

    /// Brings new clips into the project's engine if it plays here, once no take is being
    /// recorded into it (a take being recorded keeps the engine; the next reload brings both).
    /// Off the caller's path: updates after this one need not wait for the engine.
    async fn reload_in_background(self: &Arc<Self>, project: ProjectId) {
        if self.session(project).await.is_some() {
            let node = self.clone();
            tokio::spawn(async move {
                match node.reload_unless_recording(project).await {
                    Ok(_) | Err(TransportError::Conflict(_)) => {}
                    Err(err) => tracing::warn!(%project, %err, "reload after new clips failed"),
                }
            });
        }
    }

    /// Starts recording (see [`AudioControl::record_start`]); `self` is shared so the take can be
    /// finalised in the background when it stops.
    pub async fn start_recording(
        &self,
        project: ProjectId,
        request: RecordRequest,
    ) -> TransportResult<RecordingStarted> {
        let track = self.store.get_track(request.track_id).await.map_err(store_error)?;
        let track = track.filter(|t| t.project_id == project).ok_or(TransportError::NotFound("track"))?;
        if !track.record_enabled {
            return Err(TransportError::Conflict(format!(
                "track {} is not armed: enable recording on it first (POST /api/audio/tracks/{}/record/enable)",
                track.id, track.id
            )));
        }
        let device_id = request.device_id.or(track.input_device_id.clone()).unwrap_or_else(|| "mock_0".into());
        // Held until the capture is on the engine, so no reload can replace the engine between.
        let mut recordings = self.recordings.lock().await;
        let session = self.loaded(project).await?;
        // Busy devices are refused before a sound card's stream is opened (below).
        if let Some(busy) = recordings.values().find(|r| r.device_id == device_id) {
            return Err(TransportError::Conflict(format!(
                "device {device_id} is already recording (session {})",
                busy.id
            )));
        }
        let start_frame = request.start_time.map(|t| seconds_to_frames(t, &session)).transpose()?;
        let punch = match (request.punch_in, request.punch_out) {
            (None, None) => None,
            (Some(punch_in), Some(punch_out)) => {
                let (punch_in, punch_out) =
                    (seconds_to_frames(punch_in, &session)?, seconds_to_frames(punch_out, &session)?);
                if punch_in >= punch_out {
                    return Err(TransportError::Invalid("punch_in: must be before punch_out".into()));
                }
                Some((punch_in, punch_out))
            }
            _ => return Err(TransportError::Invalid("punch_in and punch_out: give both or neither".into())),
        };

        if recordings.values().any(|r| r.track_id == track.id) {
            return Err(TransportError::Conflict(format!("track {} is already recording", track.id)));
        }
        if recordings.values().filter(|r| r.project_id == project).count() >= crate::engine::MAX_CAPTURES {
            return Err(TransportError::Conflict("too many tracks are recording in this project".into()));
        }

        let (source, opened) = open_input(&device_id, session.tempo, session.rate.hz()).map_err(|e| {
            if e.starts_with("no input device") {
                TransportError::Invalid(format!("device_id: {e}"))
            } else {
                TransportError::Unavailable(format!("cannot open the input: {e}"))
            }
        })?;
        let (hardware, device_ring) = opened.map_or((None, None), |(input, ring)| (Some(input), Some(ring)));

        // The journal row comes before the first sample, and the manifest before the writer.
        let now = audiolab_domain::now();
        let journal = RecordingSession {
            id: RecordingSessionId::new(),
            project_id: project,
            track_id: track.id,
            device_id: device_id.clone(),
            status: RecordingStatus::Recording,
            start: Frames(start_frame.unwrap_or_else(|| session.handle.shared.position())),
            applied_offset: Frames::ZERO,
            capture_key: String::new(),
            error: None,
            created_at: now,
            updated_at: now,
        };
        let journal = RecordingSession { capture_key: format!("captures/{}", journal.id), ..journal };
        let dir = self.storage.path(&journal.capture_key).map_err(|e| TransportError::Internal(e.to_string()))?;
        self.store.insert_recording_session(&journal).await.map_err(store_error)?;
        let rate = session.rate.hz();
        let chunks = tokio::task::spawn_blocking(move || {
            audiolab_media::capture::ChunkWriter::create(&dir, manifest(source, rate))
        })
        .await
        .map_err(|e| TransportError::Internal(e.to_string()))?
        .map_err(|e| TransportError::Unavailable(format!("cannot write the capture: {e}")))?;
        let capture_id = self.next_capture.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (capture, ring, meter) = crate::engine::Capture::new(capture_id, source, rate, punch, device_ring);
        let meter_for_reports = meter.clone();
        let writer = CaptureWriter::spawn(format!("audiolab-capture-{capture_id}"), ring, meter.clone(), chunks)
            .map_err(|e| TransportError::Unavailable(format!("cannot start the capture writer: {e}")))?;

        let rolling = session.state() == TransportState::Playing;
        session.handle.send(Command::StartCapture(capture)).map_err(busy)?;
        session.handle.send(Command::HoldAtEnd(true)).map_err(busy)?;
        if !rolling {
            // Starting while stopped rolls the transport: the other tracks play (the overdub).
            // Not waited for: the engine applies it within a block, and the take's position
            // comes from the engine's own frame counter whenever that is.
            session.handle.send(Command::Play { from: Some(journal.start.get()) }).map_err(busy)?;
            let data = json!({"project_id": project, "position": journal.start.to_seconds(session.rate),
                              "frame": journal.start.get(), "status": "playing"});
            self.hub.publish(project, message("playback_started", data));
        }
        let started = RecordingStarted {
            session_id: journal.id,
            track_id: track.id,
            device_id: device_id.clone(),
            start_time: journal.start.to_seconds(session.rate),
        };
        let uploader = self.storage.is_mirrored().then(|| {
            let chunk_bytes = u64::from(rate) * source.channels() as u64 * 4;
            let (storage, key) = (self.storage.clone(), journal.capture_key.clone());
            tokio::spawn(crate::recording::upload_capture(storage, key, chunk_bytes, meter.clone()))
        });
        recordings.insert(
            journal.id,
            ActiveRecording {
                id: journal.id,
                project_id: project,
                track_id: track.id,
                device_id,
                capture_id,
                source,
                meter,
                writer,
                hardware,
                uploader,
            },
        );
        drop(recordings);
        tokio::spawn(report_progress(self.hub.clone(), project, journal.id, meter_for_reports, rate));
        self.publish_recording(
            project,
            "started",
            json!({"session_id": journal.id, "track_id": track.id, "start_time": started.start_time}),
        );
        Ok(started)
    }

    /// Stops a recording (see [`AudioControl::record_stop`]) and finalises it in the background.
    pub async fn stop_recording(
        &self,
        project: ProjectId,
        session_id: RecordingSessionId,
    ) -> TransportResult<RecordingStopped> {
        let Some(recording) = self.recordings.lock().await.remove(&session_id).filter(|r| r.project_id == project)
        else {
            return match self.store.get_recording_session(session_id).await.map_err(store_error)? {
                Some(found) if found.project_id == project => Err(TransportError::Conflict(format!(
                    "recording session {session_id} is not recording (it is {})",
                    found.status.as_str()
                ))),
                _ => Err(TransportError::NotFound("recording session")),
            };
        };
        let session = self.loaded(project).await?;
        session.command(Command::StopCapture(recording.capture_id)).await.map_err(busy)?;
        if !self.recordings.lock().await.values().any(|r| r.project_id == project) {
            session.handle.send(Command::HoldAtEnd(false)).map_err(busy)?;
        }
        let ActiveRecording { writer, meter, source, device_id, hardware, track_id, uploader, .. } = recording;
        let output_latency = session.output_latency_frames();
        let latency = device_latency(hardware.as_ref(), output_latency, session.rate.hz());
        // The take is over: the sound card's stream stops (joining its thread, off the runtime).
        if let Some(input) = hardware {
            let _ = tokio::task::spawn_blocking(move || drop(input)).await;
        }
        // The writer ends once the audio thread lets go of the capture and the ring is drained.
        let written = tokio::task::spawn_blocking(move || writer.join())
            .await
            .map_err(|e| TransportError::Internal(e.to_string()))?;

        let frames = meter.frames() - meter.dropped().min(meter.frames());
        // Placement: the engine's frame at the first sample, minus the device's latency, plus
        // the musician's manual offset for the device.
        let offset_us = self.store.device_offset_us(&device_id).await.map_err(store_error)?;
        let offset = (offset_us as f64 * f64::from(session.rate.hz()) / 1e6).round() as i64;
        let shift = offset - latency;
        let first = meter.first_frame();
        let start = first.map_or(0, |f| (f + shift).max(0));
        self.store.stop_recording_session(session_id, Frames(start), Frames(shift)).await.map_err(store_error)?;
        let mut stopped = RecordingStopped {
            session_id,
            track_id,
            clip_id: None,
            clip_ids: Vec::new(),
            finalize_job_id: None,
            start: Frames(start).to_seconds(session.rate),
            start_frame: start,
            frames,
            dropped_frames: meter.dropped(),
        };
        if let Err(reason) = written {
            let _ = self
                .store
                .transition_recording_session(
                    session_id,
                    RecordingStatus::Stopped,
                    RecordingStatus::Failed,
                    Some(&reason),
                )
                .await;
            self.publish_recording(project, "failed", json!({"session_id": session_id, "error": reason}));
            return Err(TransportError::Unavailable(format!("the capture could not be written: {reason}")));
        }
        if first.is_none() {
            let reason = "nothing was captured: the transport did not roll";
            let _ = self
                .store
                .transition_recording_session(
                    session_id,
                    RecordingStatus::Stopped,
                    RecordingStatus::Failed,
                    Some(reason),
                )
                .await;
            self.publish_recording(project, "stopped", json!({"session_id": session_id, "clip_id": null, "frames": 0}));
            return Ok(stopped);
        }

        let journal = self.store.get_recording_session(session_id).await.map_err(store_error)?;
        let journal = journal.ok_or(TransportError::NotFound("recording session"))?;
        let spans = take_spans(&meter.passes(), meter.frames(), shift);
        let clips = audiolab_worker::finalize::create_takes(
            &self.store,
            &journal,
            &spans,
            source.channels() as u16,
            session.rate.hz(),
        )
        .await
        .map_err(|e| TransportError::Internal(e.to_string()))?;
        let clip = *clips.last().ok_or_else(|| TransportError::Internal("a capture with frames has a pass".into()))?;
        stopped.clip_ids = clips;
        stopped.clip_id = Some(clip);
        self.publish_recording(
            project,
            "stopped",
            json!({"session_id": session_id, "clip_id": clip, "frames": frames, "start": stopped.start}),
        );
        let job_id =
            audiolab_worker::jobs::queue_finalize(&self.store, project, session_id).await.map_err(store_error)?;
        stopped.finalize_job_id = Some(job_id);
        // The capture goes where workers read it (the object store in cloud mode), then to the
        // queue. In the background: the take is safe on this node's disk already, and its job
        // row is queued, so a failure here leaves it for the next start to queue again.
        let (storage, queue, capture_key) = (self.storage.clone(), self.queue.clone(), journal.capture_key.clone());
        tokio::spawn(async move {
            let mut sent = match uploader {
                Some(uploader) => uploader.await.unwrap_or_default(),
                None => Default::default(),
            };
            if let Err(err) = storage.publish_new(&capture_key, &mut sent, |_, _| true).await {
                return tracing::error!(%job_id, %err, "cannot publish the capture for its worker");
            }
            if let Err(err) = queue.push(job_id).await {
                tracing::error!(%job_id, %err, "cannot queue the finalize_capture job");
            }
        });
        Ok(stopped)
    }

    /// Stops every engine (on shutdown).
    pub async fn unload_all(&self) {
        let sessions: Vec<_> = self.sessions.lock().await.drain().map(|(_, s)| s).collect();
        let _ = tokio::task::spawn_blocking(move || drop(sessions)).await;
    }
}

/// How often a recording's clients get its length and input level.
const PROGRESS_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

/// Sends `recording_status` progress (length and peak level) until the capture finishes.
async fn report_progress(
    hub: Arc<Hub>,
    project: ProjectId,
    session_id: RecordingSessionId,
    meter: Arc<crate::engine::CaptureMeter>,
    rate: u32,
) {
    let mut ticks = tokio::time::interval(PROGRESS_INTERVAL);
    ticks.tick().await;
    while !meter.finished() {
        ticks.tick().await;
        let peak = meter.take_peak();
        let data = json!({
            "project_id": project,
            "event": "progress",
            "session_id": session_id,
            "frames": meter.frames(),
            "seconds": meter.frames() as f64 / f64::from(rate),
            "level": peak,
            "level_db": if peak > 0.0 { (20.0 * peak.log10()).max(-120.0) } else { -120.0 },
            "dropped_frames": meter.dropped(),
        });
        hub.publish(project, message("recording_status", data));
    }
}

/// The takes of a capture of `frames` frames from its passes, each moved by `shift` frames.
fn take_spans(passes: &[crate::engine::Pass], frames: u64, shift: i64) -> Vec<audiolab_worker::finalize::TakeSpan> {
    passes
        .iter()
        .enumerate()
        .map(|(i, pass)| {
            let end = passes.get(i + 1).map_or(frames, |next| next.capture_offset);
            audiolab_worker::finalize::TakeSpan {
                capture_offset: pass.capture_offset,
                timeline_start: (pass.timeline_start + shift).max(0),
                frames: end.saturating_sub(pass.capture_offset),
            }
        })
        .filter(|span| span.frames > 0)
        .collect()
}

fn busy(_: crate::engine::EngineBusy) -> TransportError {
    TransportError::Unavailable("the engine is busy; try again".into())
}

fn seconds_to_frames(position: f64, session: &Session) -> TransportResult<i64> {
    if !position.is_finite() {
        return Err(TransportError::Invalid("position: must be a finite number of seconds".into()));
    }
    // Clamped here and by the engine: a position past the end is the end, before 0 is 0.
    Ok(Frames::from_seconds("position", position.clamp(0.0, 864_000.0), session.rate)
        .map_err(|e| TransportError::Invalid(e.to_string()))?
        .get())
}

impl Node {
    /// (Re)starts the project's engine from the database. Only for a project with no take
    /// recording: [`Node::reload_unless_recording`] is the checked form.
    async fn reload(&self, project: ProjectId) -> TransportResult<LoadSummary> {
        let session = self.start_session(project).await?;
        Ok(self.install(project, session).await)
    }

    /// Reloads the project's engine unless a take is being recorded into it (then the new
    /// engine is discarded and `Err` names the conflict). The slow part, starting the new
    /// engine, runs outside the recordings lock, so `record/start` never waits for it.
    async fn reload_unless_recording(&self, project: ProjectId) -> TransportResult<LoadSummary> {
        let session = self.start_session(project).await?;
        let recordings = self.recordings.lock().await;
        if recordings.values().any(|r| r.project_id == project) {
            drop(recordings);
            tokio::task::spawn_blocking(move || drop(session));
            return Err(TransportError::Conflict(
                "a take is recording in this project: stop it before reloading".into(),
            ));
        }
        let summary = self.install(project, session).await;
        drop(recordings);
        Ok(summary)
    }

    /// One transport move: loads the project if needed, applies `command` on its engine, and
    /// tells the project's clients with an `event` carrying the resulting status.
    async fn drive(
        &self,
        project: ProjectId,
        event: &str,
        command: impl FnOnce(&Session) -> TransportResult<Command>,
    ) -> TransportResult<TransportStatus> {
        let session = self.loaded(project).await?;
        session.command(command(&session)?).await.map_err(busy)?;
        let status = session.status();
        self.publish(project, event, &status);
        Ok(status)
    }

    /// Puts `session` in place of the project's engine, carrying over the playhead (and
    /// rolling on if it was).
    async fn install(&self, project: ProjectId, session: Arc<Session>) -> LoadSummary {
        let mut sessions = self.sessions.lock().await;
        if let Some(previous) = sessions.get(&project) {
            let frame = previous.status().frame.min(session.duration);
            let command = match previous.state() {
                TransportState::Playing => Command::Play { from: Some(frame) },
                _ => Command::Seek(frame),
            };
            // A fresh engine's command ring is empty: this cannot fail.
            let _ = session.handle.send(command);
        }
        let summary = session.summary();
        let replaced = sessions.insert(project, session);
        drop(sessions);
        // Stopping an engine joins its threads: not on the async runtime.
        if let Some(old) = replaced {
            tokio::task::spawn_blocking(move || drop(old));
        }
        summary
    }
}

#[async_trait::async_trait]
impl AudioControl for Node {
    async fn load(&self, project: ProjectId) -> TransportResult<LoadSummary> {
        self.reload_unless_recording(project).await
    }

    async fn play(&self, project: ProjectId, position: Option<f64>) -> TransportResult<TransportStatus> {
        self.drive(project, "playback_started", |session| {
            Ok(Command::Play { from: position.map(|p| seconds_to_frames(p, session)).transpose()? })
        })
        .await
    }

    async fn pause(&self, project: ProjectId) -> TransportResult<TransportStatus> {
        self.drive(project, "playback_paused", |_| Ok(Command::Pause)).await
    }

    async fn resume(&self, project: ProjectId) -> TransportResult<TransportStatus> {
        self.drive(project, "playback_started", |_| Ok(Command::Resume)).await
    }

    async fn stop(&self, project: ProjectId) -> TransportResult<TransportStatus> {
        self.drive(project, "playback_stopped", |_| Ok(Command::Stop)).await
    }

    async fn seek(&self, project: ProjectId, position: f64) -> TransportResult<TransportStatus> {
        self.drive(project, "playback_seeked", |session| Ok(Command::Seek(seconds_to_frames(position, session)?))).await
    }

    async fn status(&self, project: ProjectId) -> TransportResult<TransportStatus> {
        if let Some(session) = self.session(project).await {
            return Ok(session.status());
        }
        let found =
            self.store.get_project(project).await.map_err(store_error)?.ok_or(TransportError::NotFound("project"))?;
        Ok(TransportStatus::unloaded(project, found.sample_rate.hz()))
    }

    async fn set_loop(&self, project: ProjectId, region: Option<LoopRegionId>) -> TransportResult<TransportStatus> {
        let enabled = self.store.enable_loop_region(project, region).await.map_err(store_error)?;
        let session = self.loaded(project).await?;
        let command = session.set_loop(enabled.as_ref());
        session.command(command).await.map_err(busy)?;
        let status = session.status();
        let event = match &enabled {
            Some(r) => json!({"project_id": project, "event": "started", "loop_region_id": r.id, "iteration": 1,
                              "start": r.start.to_seconds(session.rate), "end": r.end.to_seconds(session.rate), "repeat_count": r.repeat_count}),
            None => json!({"project_id": project, "event": "disabled"}),
        };
        self.hub.publish(project, message("loop_event", event));
        Ok(status)
    }

    async fn track_changed(&self, track: &Track) {
        if let Some(session) = self.session(track.project_id).await {
            session.apply_track(track);
        }
        self.hub.publish(track.project_id, message("track_update", crate::ws::track_json(track)));
    }

    async fn record_start(&self, project: ProjectId, request: RecordRequest) -> TransportResult<RecordingStarted> {
        self.start_recording(project, request).await
    }

    async fn record_stop(&self, project: ProjectId, session: RecordingSessionId) -> TransportResult<RecordingStopped> {
        self.stop_recording(project, session).await
    }

    fn input_devices(&self) -> Vec<audiolab_domain::device::InputDevice> {
        #[allow(unused_mut)]
        let mut devices = audiolab_domain::device::virtual_devices(audiolab_domain::SampleRate::DEFAULT.hz());
        #[cfg(feature = "hw-audio")]
        devices.extend(crate::cpal_input::input_devices());
        devices
    }
}
