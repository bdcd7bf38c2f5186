//! The node: the registry of loaded projects, and the transport operations on them.

use crate::engine::{Command, TransportState};
use crate::hub::{Hub, message};
use crate::session::Session;
use audiolab_domain::track::Track;
use audiolab_domain::transport::{AudioControl, LoadSummary, TransportError, TransportResult, TransportStatus};
use audiolab_domain::{Frames, LoopRegionId, ProjectId};
use audiolab_media::storage::LocalStorage;
use audiolab_store::{Page, Store, StoreError};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// Hosts the engine sessions of the projects loaded on this node.
pub struct Node {
    store: Store,
    output: crate::backend::Output,
    storage: LocalStorage,
    hub: Arc<Hub>,
    sessions: tokio::sync::Mutex<HashMap<ProjectId, Arc<Session>>>,
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
    pub fn new(store: Store, storage: LocalStorage) -> Self {
        let output = crate::backend::Output::detect();
        Self { store, output, storage, hub: Arc::new(Hub::default()), sessions: Default::default() }
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
        self.load(project).await?;
        self.session(project).await.ok_or_else(|| TransportError::Internal("session vanished after load".into()))
    }

    async fn start_session(&self, project_id: ProjectId) -> TransportResult<Arc<Session>> {
        let store = &self.store;
        let project =
            store.get_project(project_id).await.map_err(store_error)?.ok_or(TransportError::NotFound("project"))?;
        let tracks = store.list_tracks(project_id, Page { limit: 32, offset: 0 }).await.map_err(store_error)?.items;
        let clips = store.project_clips(project_id).await.map_err(store_error)?;
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

    /// Stops every engine (on shutdown).
    pub async fn unload_all(&self) {
        let sessions: Vec<_> = self.sessions.lock().await.drain().map(|(_, s)| s).collect();
        let _ = tokio::task::spawn_blocking(move || drop(sessions)).await;
    }
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

#[async_trait::async_trait]
impl AudioControl for Node {
    async fn load(&self, project: ProjectId) -> TransportResult<LoadSummary> {
        let previous = self.session(project).await.map(|s| (s.status(), s.state()));
        let session = self.start_session(project).await?;
        // A reload keeps the playhead, and keeps rolling if it was.
        if let Some((status, state)) = previous {
            let frame = status.frame.min(session.duration);
            let command = match state {
                TransportState::Playing => Command::Play { from: Some(frame) },
                _ => Command::Seek(frame),
            };
            session.handle.send(command).map_err(busy)?;
        }
        let summary = session.summary();
        let replaced = self.sessions.lock().await.insert(project, session);
        // Stopping an engine joins its threads: not on the async runtime.
        if let Some(old) = replaced {
            tokio::task::spawn_blocking(move || drop(old));
        }
        Ok(summary)
    }

    async fn play(&self, project: ProjectId, position: Option<f64>) -> TransportResult<TransportStatus> {
        let session = self.loaded(project).await?;
        let from = position.map(|p| seconds_to_frames(p, &session)).transpose()?;
        session.command(Command::Play { from }).await.map_err(busy)?;
        let status = session.status();
        self.publish(project, "playback_started", &status);
        Ok(status)
    }

    async fn pause(&self, project: ProjectId) -> TransportResult<TransportStatus> {
        let session = self.loaded(project).await?;
        session.command(Command::Pause).await.map_err(busy)?;
        let status = session.status();
        self.publish(project, "playback_paused", &status);
        Ok(status)
    }

    async fn resume(&self, project: ProjectId) -> TransportResult<TransportStatus> {
        let session = self.loaded(project).await?;
        session.command(Command::Resume).await.map_err(busy)?;
        let status = session.status();
        self.publish(project, "playback_started", &status);
        Ok(status)
    }

    async fn stop(&self, project: ProjectId) -> TransportResult<TransportStatus> {
        let session = self.loaded(project).await?;
        session.command(Command::Stop).await.map_err(busy)?;
        let status = session.status();
        self.publish(project, "playback_stopped", &status);
        Ok(status)
    }

    async fn seek(&self, project: ProjectId, position: f64) -> TransportResult<TransportStatus> {
        let session = self.loaded(project).await?;
        let frame = seconds_to_frames(position, &session)?;
        session.command(Command::Seek(frame)).await.map_err(busy)?;
        let status = session.status();
        self.publish(project, "playback_seeked", &status);
        Ok(status)
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
}
