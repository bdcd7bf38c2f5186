//! The node: the registry of loaded projects — loading, parking and unloading engines within
//! the node's limits. The transport operations on them are in [`control`].

mod control;

use crate::engine::{Command, TransportState};
use crate::recording::ActiveRecording;
use crate::session::Session;
use crate::transport::hub::Hub;
use audiolab_domain::track::Track;
use audiolab_domain::transport::{TransportError, TransportResult, TransportStatus};
use audiolab_domain::{Frames, ProjectId, RecordingSessionId};
use audiolab_jobs::queue::JobQueue;
use audiolab_media::storage::Storage;
use audiolab_store::{Page, Store, StoreError};
use audiolab_transport::protocol::{PlaybackEvent, RecordingEvent, ServerMessage};
use std::collections::HashMap;
use std::sync::Arc;

/// How many engines a node keeps, and for how long an unused one stays loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineLimits {
    /// An engine that neither plays nor records and got no command for this long unloads
    /// (keeping its position) and loads again on the next command.
    pub idle_after: std::time::Duration,
    /// Engines loaded at once; a load beyond it first unloads the longest-idle engine, and is
    /// refused (`unavailable`) when every engine is busy.
    pub max_engines: usize,
}

impl Default for EngineLimits {
    fn default() -> Self {
        Self { idle_after: std::time::Duration::from_secs(300), max_engines: Self::machine_max_engines() }
    }
}

impl EngineLimits {
    /// Engines a machine of this many cores carries: the render pool plays 64 rolling projects
    /// of 32 tracks per core in real time, and idle ones cost only memory and open files.
    pub fn machine_max_engines() -> usize {
        256 * std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

/// An engine used more recently than this is never unloaded to make room: a command may be
/// on its way to it.
const MIN_IDLE_TO_EVICT: std::time::Duration = std::time::Duration::from_secs(2);

/// Where an engine unloaded for idleness was, so it comes back there.
#[derive(Debug, Clone, Copy)]
struct Parked {
    frame: i64,
    paused: bool,
}

/// Hosts the engine sessions of the projects loaded on this node.
pub struct Node {
    pub(crate) store: Store,
    output: crate::engine::backend::Output,
    pub(crate) storage: Storage,
    pub(crate) hub: Arc<Hub>,
    /// The loaded engines. An engine is never replaced while loaded: model changes reach it
    /// through [`Session::arrange`], so the takes recording on it are never dropped.
    sessions: tokio::sync::Mutex<HashMap<ProjectId, Arc<Session>>>,
    /// The takes recording on this node (see `recording.rs`, which owns their rules).
    pub(crate) recordings: tokio::sync::Mutex<HashMap<RecordingSessionId, ActiveRecording>>,
    pub(crate) next_capture: std::sync::atomic::AtomicU64,
    /// Projects deleted while this node ran: never loaded again (ids are never reused).
    deleted: std::sync::Mutex<std::collections::HashSet<ProjectId>>,
    /// Where stopped takes go to be finalised by a worker.
    pub(crate) queue: JobQueue,
    /// The threads that render and feed every engine of this node.
    pool: Arc<crate::engine::pool::RenderPool>,
    /// The thread that turns engine state into client messages.
    reports: crate::transport::reports::Reports,
    limits: EngineLimits,
    /// This node's id in the registry of nodes (none in `serve`), written on the takes it
    /// records so another node can claim them if this one dies.
    pub(crate) identity: Option<uuid::Uuid>,
    /// Positions of engines unloaded while idle, restored when they load again.
    parked: std::sync::Mutex<HashMap<ProjectId, Parked>>,
}

pub(crate) fn store_error(err: StoreError) -> TransportError {
    match err {
        StoreError::NotFound(what) | StoreError::MissingParent(what) => TransportError::not_found(what),
        StoreError::Invalid(invalid) => TransportError::Invalid(invalid.to_string()),
        StoreError::Conflict(message) | StoreError::Stale(message) => TransportError::Conflict(message),
        err if err.is_unavailable() => TransportError::Unavailable("the database is unavailable".into()),
        err => TransportError::Internal(err.to_string()),
    }
}

impl Node {
    /// A node with a render pool of one lane per core.
    ///
    /// # Errors
    /// When the pool's or the reports' threads cannot be started.
    pub fn new(store: Store, storage: Storage, queue: JobQueue, limits: EngineLimits) -> std::io::Result<Self> {
        let output = crate::engine::backend::Output::detect();
        let hub = Arc::new(Hub::default());
        Ok(Self {
            store,
            output,
            storage,
            pool: Arc::new(crate::engine::pool::RenderPool::per_core()?),
            reports: crate::transport::reports::Reports::start(hub.clone())?,
            hub,
            sessions: Default::default(),
            recordings: Default::default(),
            next_capture: Default::default(),
            deleted: Default::default(),
            queue,
            limits,
            identity: None,
            parked: Default::default(),
        })
    }

    /// The node as the registry knows it (`id`): its takes carry the id.
    #[must_use]
    pub fn with_identity(mut self, id: uuid::Uuid) -> Self {
        self.identity = Some(id);
        self
    }

    pub fn limits(&self) -> EngineLimits {
        self.limits
    }

    /// What plays this node's engines.
    pub fn output(&self) -> crate::engine::backend::Output {
        self.output
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// The courier that delivers this node's changes: announced here, jobs to its queue.
    pub fn courier(self: &Arc<Self>) -> Arc<audiolab_app::outbox::Courier> {
        let jobs: Arc<dyn audiolab_domain::job::JobSubmitter> = Arc::new(self.queue.clone());
        audiolab_app::outbox::Courier::new(self.store.clone(), self.clone(), Some(jobs))
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The project's session, if loaded.
    pub async fn session(&self, project: ProjectId) -> Option<Arc<Session>> {
        self.sessions.lock().await.get(&project).cloned()
    }

    /// Every loaded session.
    pub async fn sessions(&self) -> Vec<Arc<Session>> {
        self.sessions.lock().await.values().cloned().collect()
    }

    /// Engines loaded on this node.
    pub async fn engines(&self) -> usize {
        self.sessions.lock().await.len()
    }

    /// The project's session, loading it first if needed (where an idle unload left it). Two
    /// callers loading at once get the same engine: the one that started second is discarded.
    /// Counts as a use of the engine: it stays loaded another `idle_after`.
    ///
    /// # Errors
    /// `not_found` for a deleted project; `unavailable` when the node is at `max_engines` and
    /// every engine is busy.
    pub(crate) async fn loaded(&self, project: ProjectId) -> TransportResult<Arc<Session>> {
        if let Some(session) = self.used(project).await {
            return Ok(session);
        }
        if self.deleted.lock().unwrap_or_else(|p| p.into_inner()).contains(&project) {
            return Err(TransportError::not_found("project"));
        }
        self.make_room().await?;
        let started = self.start_session(project).await?;
        let mut sessions = self.sessions.lock().await;
        // Checked again under the lock `unload_project` removes engines under: a project
        // deleted while its engine was starting never gets one.
        let deleted = self.deleted.lock().unwrap_or_else(|p| p.into_inner()).contains(&project);
        // A second engine started meanwhile for the same project is dropped here (it leaves the
        // pool); the first one stays.
        let session = (!deleted).then(|| sessions.entry(project).or_insert_with(|| started.clone()).clone());
        session.ok_or_else(|| TransportError::not_found("project"))
    }

    /// The project's loaded session, marked used now. Under the lock engines unload under, so
    /// an engine a command is about to use is never unloaded for idleness.
    async fn used(&self, project: ProjectId) -> Option<Arc<Session>> {
        let sessions = self.sessions.lock().await;
        let session = sessions.get(&project)?;
        session.touch();
        Some(session.clone())
    }

    /// Makes room for one more engine: nothing to do under `max_engines`; else the engine idle
    /// longest unloads, or, when every engine plays, records or was just used, the load is
    /// refused.
    async fn make_room(&self) -> TransportResult<()> {
        let sessions = self.sessions.lock().await;
        if sessions.len() < self.limits.max_engines {
            return Ok(());
        }
        let idlest = sessions
            .values()
            .filter(|s| !s.busy() && s.idle_for() >= MIN_IDLE_TO_EVICT)
            .max_by_key(|s| s.idle_for())
            .map(|s| s.project_id);
        drop(sessions);
        if let Some(project) = idlest
            && self.park(project, MIN_IDLE_TO_EVICT).await
        {
            return Ok(());
        }
        Err(TransportError::Unavailable(format!(
            "this audio node is at its limit of {} loaded projects, all in use; try again later",
            self.limits.max_engines
        )))
    }

    /// Unloads the engines that neither play nor record and were not used for `idle_after`.
    /// Returns how many unloaded.
    pub async fn unload_idle(&self) -> usize {
        self.release_expired_devices().await;
        let idle: Vec<ProjectId> = self
            .sessions
            .lock()
            .await
            .values()
            .filter(|s| !s.busy() && s.idle_for() >= self.limits.idle_after)
            .map(|s| s.project_id)
            .collect();
        let mut unloaded = 0;
        for project in idle {
            unloaded += usize::from(self.park(project, self.limits.idle_after).await);
        }
        unloaded
    }

    /// Unloads `project`'s engine if it neither plays nor records and was unused for
    /// `unused_for`, keeping where its transport stands for the next load. Returns whether it
    /// unloaded.
    async fn park(&self, project: ProjectId, unused_for: std::time::Duration) -> bool {
        let mut sessions = self.sessions.lock().await;
        let Some(session) = sessions.get(&project).filter(|s| !s.busy() && s.idle_for() >= unused_for).cloned() else {
            return false;
        };
        sessions.remove(&project);
        drop(sessions);
        let parked =
            Parked { frame: session.handle.shared.position(), paused: session.state() == TransportState::Paused };
        self.parked.lock().unwrap_or_else(|p| p.into_inner()).insert(project, parked);
        tracing::info!(%project, frame = parked.frame, "idle engine unloaded");
        true
    }

    /// The project's tracks and clips, with the clips' audio brought to this node.
    pub(crate) async fn project_model(
        &self,
        project: ProjectId,
    ) -> TransportResult<(Vec<Track>, Vec<audiolab_domain::clip::Clip>)> {
        let tracks = self.store.list_tracks(project, Page { limit: 32, offset: 0 }).await.map_err(store_error)?.items;
        let clips = self.store.project_clips(project).await.map_err(store_error)?;
        // Clips finalised or imported by another process are brought here before the engine opens them.
        for key in audiolab_media::timeline::fetch_audio(&self.storage, &clips).await {
            tracing::warn!(%key, "a clip's audio is not available");
        }
        Ok((tracks, clips))
    }

    /// Deletes a project from this node: its takes stop and are discarded (their captures
    /// removed), its engine unloads, and its sockets close saying why.
    pub async fn unload_project(&self, project: ProjectId, reason: &str) {
        // From here on the project cannot load again on this node, so no take can start on it.
        self.deleted.lock().unwrap_or_else(|p| p.into_inner()).insert(project);
        self.parked.lock().unwrap_or_else(|p| p.into_inner()).remove(&project);
        // The recordings lock waits out a `record/start` already under way; its take is
        // discarded with the others.
        let mut recordings = self.recordings.lock().await;
        let session = self.sessions.lock().await.remove(&project);
        let discarded = self.discard_recordings(project, &mut recordings, session.as_deref()).await;
        drop(recordings);
        if discarded > 0 {
            tracing::info!(%project, discarded, "takes discarded with their project");
        }
        if let Some(session) = session {
            tokio::task::spawn_blocking(move || drop(session));
        }
        self.hub.close_project(project, reason);
    }

    async fn start_session(&self, project_id: ProjectId) -> TransportResult<Arc<Session>> {
        let store = &self.store;
        let revision = store.project_revision(project_id).await.map_err(store_error)?;
        let project = store
            .get_project(project_id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| TransportError::not_found("project"))?;
        let (tracks, clips) = self.project_model(project_id).await?;
        let enabled_loop = store.enabled_loop_region(project_id).await.map_err(store_error)?;
        let storage = self.storage.clone();
        let output = self.output;
        let pool = self.pool.clone();
        let session =
            tokio::task::spawn_blocking(move || Session::start(&project, &tracks, &clips, &storage, output, &pool))
                .await
                .map_err(|e| TransportError::Internal(e.to_string()))?
                .map_err(|e| TransportError::Unavailable(format!("cannot start the engine: {e}")))?;
        if let Some(command) = session.set_loop(enabled_loop.as_ref()) {
            session.handle.send(command).map_err(busy)?;
        }
        session.set_revision(revision);
        let parked = self.parked.lock().unwrap_or_else(|p| p.into_inner()).remove(&project_id);
        if let Some(Parked { frame, paused }) = parked {
            session.handle.send(Command::Restore { frame, paused }).map_err(busy)?;
        }
        self.reports.watch(project_id, session.rate, &session.handle);
        Ok(Arc::new(session))
    }

    /// Tells the project's clients what a transport move did; `kind` picks the message.
    pub(crate) fn publish(
        &self,
        project: ProjectId,
        kind: fn(PlaybackEvent) -> ServerMessage,
        status: &TransportStatus,
    ) {
        let event = PlaybackEvent {
            project_id: project.0,
            position: status.position,
            frame: status.frame,
            status: status.status.clone(),
            reason: None,
        };
        self.hub.publish(project, kind(event).frame());
    }

    /// Announces a recording's progress to the project's clients.
    pub(crate) fn publish_recording(&self, project: ProjectId, event: RecordingEvent) {
        self.hub.publish(project, ServerMessage::RecordingStatus(event).frame());
    }

    /// Stops every engine (on shutdown).
    pub async fn unload_all(&self) {
        let sessions: Vec<_> = self.sessions.lock().await.drain().map(|(_, s)| s).collect();
        let _ = tokio::task::spawn_blocking(move || drop(sessions)).await;
    }
}

pub(crate) fn busy(_: crate::engine::EngineBusy) -> TransportError {
    TransportError::Unavailable("the engine is busy; try again".into())
}

pub(crate) fn seconds_to_frames(position: f64, session: &Session) -> TransportResult<i64> {
    if !position.is_finite() {
        return Err(TransportError::Invalid("position: must be a finite number of seconds".into()));
    }
    // Clamped here and by the engine: a position past the end is the end, before 0 is 0.
    Ok(Frames::from_seconds("position", position.clamp(0.0, 864_000.0), session.rate)
        .map_err(|e| TransportError::Invalid(e.to_string()))?
        .get())
}
