//! The node: the registry of loaded projects, and the transport operations on them.

use crate::engine::{Command, TransportState};
use crate::hub::Hub;
use crate::protocol::{JobProgress, LoopEvent, PlaybackEvent, RecordingEvent, ServerMessage, TrackState};
use crate::recording::ActiveRecording;
use crate::session::Session;
use audiolab_domain::job::{JobKind, JobPayload, JobResult, JobStatus};
use audiolab_domain::recording::RecordingStatus;
use audiolab_domain::track::Track;
use audiolab_domain::transport::{AudioControl, LoadSummary, TransportError, TransportResult, TransportStatus};
use audiolab_domain::transport::{ModelChange, RecordRequest, RecordingStarted, RecordingStopped};
use audiolab_domain::history::ProjectChange;
use audiolab_domain::transport::{ModelAction, ModelItem};
use audiolab_domain::{Frames, ProjectId, RecordingSessionId, TrackId};
use audiolab_jobs::JobUpdate;
use audiolab_jobs::queue::JobQueue;
use audiolab_media::storage::Storage;
use audiolab_store::{Page, Store, StoreError};
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
    output: crate::backend::Output,
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
    pool: Arc<crate::pool::RenderPool>,
    /// The thread that turns engine state into client messages.
    reports: crate::reports::Reports,
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
        let output = crate::backend::Output::detect();
        let hub = Arc::new(Hub::default());
        Ok(Self {
            store,
            output,
            storage,
            pool: Arc::new(crate::pool::RenderPool::per_core()?),
            reports: crate::reports::Reports::start(hub.clone())?,
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
    pub fn output(&self) -> crate::backend::Output {
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

    /// Brings a loaded engine up to date with the database: the tracks' mixers, the playable
    /// clips (opened off the audio thread, applied at a block boundary without a gap) and the
    /// enabled loop. Refreshes of one project run one at a time, each reading the latest state.
    /// Returns `None` when the project is not loaded here.
    pub async fn refresh(&self, project: ProjectId) -> TransportResult<Option<LoadSummary>> {
        let Some(session) = self.session(project).await else { return Ok(None) };
        let _turn = session.arranging.lock().await;
        // The revision is read first: a change committed while the rest is read shows up as a
        // newer revision at the next check, and is read again then.
        let revision = self.store.project_revision(project).await.map_err(store_error)?;
        let settings = self.store.get_project(project).await.map_err(store_error)?;
        let (tracks, clips) = self.project_model(project).await?;
        let enabled_loop = self.store.enabled_loop_region(project).await.map_err(store_error)?;
        let (storage, rate) = (self.storage.clone(), session.rate);
        let opened_tracks = tracks.clone();
        let timeline =
            tokio::task::spawn_blocking(move || crate::session::open_timeline(rate, &opened_tracks, &clips, &storage))
                .await
                .map_err(|e| TransportError::Internal(e.to_string()))?;
        session.arrange(&tracks, timeline).map_err(busy)?;
        if let Some(command) = session.set_loop(enabled_loop.as_ref()) {
            session.handle.send(command).map_err(busy)?;
            self.publish_loop(&session, enabled_loop.as_ref());
        }
        if let Some(project) = settings
            && session.follow_settings(&project)
        {
            session.set_metronome(session.metronome()).await.map_err(busy)?;
        }
        session.set_revision(revision);
        Ok(Some(session.summary()))
    }

    /// Applies a committed change (§13): the engine plays it from its next block — a mixer
    /// move at once, anything else by re-reading the project, as does a change that does not
    /// follow the revision the engine plays — and the project's clients are told.
    pub async fn apply_change(&self, change: &ProjectChange) {
        let project = change.project_id;
        let tracks = self.changed_tracks(change).await;
        if let Some(session) = self.session(project).await {
            let mixer_only = change.changes.iter().all(is_mixer_move);
            if mixer_only && session.revision() + 1 == change.revision {
                let _turn = session.arranging.lock().await;
                tracks.iter().for_each(|track| session.apply_track(track));
                session.set_revision(change.revision);
            } else if session.revision() < change.revision
                && let Err(err) = self.refresh(project).await
            {
                tracing::warn!(%project, %err, "the engine could not follow a change");
            }
        }
        for model in &change.changes {
            if let Some(track) = tracks.iter().find(|t| t.id.0 == model.id) {
                let state = TrackState { actor: model.actor.clone(), revision: Some(change.revision), ..track.into() };
                self.hub.publish(project, ServerMessage::TrackUpdate(state).frame());
                if is_mixer_move(model) {
                    continue;
                }
            }
            let changed = ServerMessage::ModelChanged {
                project_id: project.0,
                item: model.item,
                id: model.id,
                action: model.action,
                actor: model.actor.clone(),
                fields: model.fields.clone(),
                revision: change.revision,
            };
            self.hub.publish(project, changed.frame());
        }
    }

    /// Delivers the outbox rows of a change this node committed itself (a recording's takes):
    /// its announcement applies here, where the project plays; a job push is left to the
    /// outbox's dispatchers.
    pub(crate) async fn deliver_here(&self, items: Vec<audiolab_store::OutboxItem>) {
        for item in items {
            let audiolab_domain::history::Outgoing::Announce(change) = &item.message else { continue };
            self.apply_change(change).await;
            if let Err(error) = self.store.outbox_delivered(item.id).await {
                tracing::warn!(%error, "cannot record an announcement as delivered");
            }
        }
    }

    /// The tracks a change updated, read fresh (for their `track_update` broadcasts).
    async fn changed_tracks(&self, change: &ProjectChange) -> Vec<Track> {
        let mut tracks = Vec::new();
        for model in &change.changes {
            if model.item == ModelItem::Track && model.action == ModelAction::Updated {
                match self.store.get_track(model.id.into()).await {
                    Ok(Some(track)) => tracks.push(track),
                    Ok(None) => {}
                    Err(error) => tracing::warn!(%error, "cannot read a changed track"),
                }
            }
        }
        tracks
    }

    /// Re-reads every loaded project whose stored revision is not the one its engine plays:
    /// what a missed announcement (a bus down or re-subscribing) left behind.
    pub async fn catch_up(&self) {
        let sessions = self.sessions().await;
        if sessions.is_empty() {
            return;
        }
        let ids: Vec<ProjectId> = sessions.iter().map(|s| s.project_id).collect();
        let stored = match self.store.project_revisions(&ids).await {
            Ok(stored) => stored,
            Err(error) => return tracing::debug!(%error, "cannot check the engines' revisions"),
        };
        for (project, revision) in stored {
            let behind = sessions.iter().any(|s| s.project_id == project && s.revision() != revision);
            if behind && let Err(err) = self.refresh(project).await {
                tracing::warn!(%project, %err, "the engine could not catch up with its project");
            }
        }
    }

    /// The project's tracks and clips, with the clips' audio brought to this node.
    async fn project_model(
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

    /// Tells the project's clients that its engine loops `region` now (or stopped looping).
    fn publish_loop(&self, session: &Session, region: Option<&audiolab_domain::loop_region::LoopRegion>) {
        let project = session.project_id;
        let event = match region {
            Some(r) => LoopEvent::Started {
                project_id: project.0,
                loop_region_id: r.id.0,
                iteration: 1,
                start: r.start.to_seconds(session.rate),
                end: r.end.to_seconds(session.rate),
                repeat_count: r.repeat_count,
            },
            None => LoopEvent::Disabled { project_id: project.0 },
        };
        self.hub.publish(project, ServerMessage::LoopEvent(event).frame());
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

    /// Recovers the recordings a crash of `serve` interrupted: those in `recording` whose
    /// project no live node hosts (cloud nodes claim dead nodes' takes instead, see
    /// [`Node::adopt_orphaned_recordings`]).
    pub async fn recover_interrupted(&self, stale_after: std::time::Duration) {
        let open = match self.store.recording_sessions_with_status(RecordingStatus::Recording).await {
            Ok(open) => open,
            Err(err) => return tracing::warn!(%err, "cannot look for interrupted recordings"),
        };
        for journal in open {
            if self.recordings.lock().await.contains_key(&journal.id) {
                continue;
            }
            match self.store.live_host_of(journal.project_id, stale_after).await {
                Ok(Some(_)) => continue,
                Err(err) => return tracing::warn!(%err, "cannot look for interrupted recordings"),
                _ => {}
            }
            self.recover_one(journal.id).await;
        }
    }

    /// Recovers the takes of nodes that died while recording (cloud mode): claims them (one
    /// statement, so one node recovers each) and rebuilds each from the chunks the dead node
    /// left in the shared storage, at most its last second lost (status `recovered`).
    pub async fn adopt_orphaned_recordings(&self, stale_after: std::time::Duration) {
        let Some(me) = self.identity else { return };
        let claimed = match self.store.claim_orphaned_recordings(me, stale_after).await {
            Ok(claimed) => claimed,
            Err(err) => return tracing::warn!(%err, "cannot look for takes of dead nodes"),
        };
        for session in claimed {
            tracing::info!(session_id = %session, "recovering a take whose node died");
            self.recover_one(session).await;
        }
    }

    /// Rebuilds one interrupted take from its chunks and announces its clips.
    async fn recover_one(&self, session: RecordingSessionId) {
        let project = match self.store.get_recording_session(session).await {
            Ok(Some(journal)) => journal.project_id,
            Ok(None) => return,
            Err(err) => return tracing::warn!(%session, %err, "cannot read an interrupted take"),
        };
        match audiolab_jobs::finalize::recover_capture(&self.store, &self.storage, session).await {
            Ok(Some(done)) => {
                tracing::info!(session_id = %session, frames = done.frames, "recovered an interrupted recording");
                for clip in &done.clips {
                    let ready = ServerMessage::ClipReady {
                        project_id: project.0,
                        clip_id: clip.0,
                        session_id: Some(session.0),
                    };
                    self.hub.publish(project, ready.frame());
                }
            }
            Ok(None) => {}
            Err(err) => tracing::error!(session_id = %session, %err, "recovering a recording failed"),
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
    pub fn local_job_events(self: &Arc<Self>) -> audiolab_jobs::events::JobEvents {
        let (sender, mut updates) = tokio::sync::mpsc::unbounded_channel();
        let node = self.clone();
        tokio::spawn(async move {
            while let Some(update) = updates.recv().await {
                node.job_changed(&update).await;
            }
        });
        audiolab_jobs::events::JobEvents::Local(sender)
    }

    /// Follows a job's progress: tells the project's clients, and once a take is finalised or a
    /// file imported, announces its clips and brings them into the engine if the project plays
    /// here.
    pub async fn job_changed(self: &Arc<Self>, update: &JobUpdate) {
        let Some(project) = update.project_id else { return };
        let progress = JobProgress {
            project_id: project.0,
            job_id: update.job_id.0,
            kind: update.kind,
            status: update.status,
            progress: update.progress,
            error: update.error.clone(),
        };
        self.hub.publish(project, ServerMessage::JobProgress(progress).frame());
        match (&update.result, update.status) {
            (Some(JobResult::Import(imported)), JobStatus::Succeeded) => {
                let clip_id = imported.clip_id.0;
                let ready = ServerMessage::ClipReady { project_id: project.0, clip_id, session_id: None };
                self.hub.publish(project, ready.frame());
                self.refresh_in_background(project);
            }
            (Some(JobResult::FinalizeCapture(finalized)), JobStatus::Succeeded) => {
                let session_id = finalized.session_id.0;
                let clips: Vec<uuid::Uuid> = finalized.clip_ids.iter().map(|c| c.0).collect();
                for &clip_id in &clips {
                    let ready = ServerMessage::ClipReady { project_id: project.0, clip_id, session_id: Some(session_id) };
                    self.hub.publish(project, ready.frame());
                }
                let saved = RecordingEvent::Saved { project_id: project.0, session_id, clip_ids: clips };
                self.publish_recording(project, saved);
                self.refresh_in_background(project);
            }
            (_, JobStatus::Failed) if update.kind == JobKind::FinalizeCapture => {
                let job = self.store.get_job(update.job_id).await.ok().flatten();
                let session_id = job.and_then(|j| match j.payload {
                    JobPayload::FinalizeCapture(payload) => Some(payload.session_id.0),
                    _ => None,
                });
                tracing::error!(?session_id, error = ?update.error, "finalising a capture failed");
                let failed = RecordingEvent::Failed { project_id: project.0, session_id, error: update.error.clone() };
                self.publish_recording(project, failed);
            }
            _ => {}
        }
    }

    /// Brings new clips into the project's engine if it is loaded here, off the caller's path:
    /// updates after this one need not wait for the engine.
    fn refresh_in_background(self: &Arc<Self>, project: ProjectId) {
        let node = self.clone();
        tokio::spawn(async move {
            if let Err(err) = node.refresh(project).await {
                tracing::warn!(%project, %err, "the engine could not follow new clips");
            }
        });
    }

    /// Stops every engine (on shutdown).
    pub async fn unload_all(&self) {
        let sessions: Vec<_> = self.sessions.lock().await.drain().map(|(_, s)| s).collect();
        let _ = tokio::task::spawn_blocking(move || drop(sessions)).await;
    }
}

/// Whether a change only moved a track's mixer (applied without re-reading the project).
fn is_mixer_move(change: &ModelChange) -> bool {
    const MIXER: [&str; 4] = ["volume", "pan", "muted", "soloed"];
    change.item == ModelItem::Track
        && change.action == ModelAction::Updated
        && !change.fields.is_empty()
        && change.fields.iter().all(|f| MIXER.contains(&f.as_str()))
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

impl Node {
    /// One transport move: loads the project if needed, applies `command` on its engine, and
    /// tells the project's clients with an `event` carrying the resulting status.
    async fn drive(
        &self,
        project: ProjectId,
        event: fn(PlaybackEvent) -> ServerMessage,
        command: impl FnOnce(&Session) -> TransportResult<Command>,
    ) -> TransportResult<TransportStatus> {
        let session = self.loaded(project).await?;
        session.command(command(&session)?).await.map_err(busy)?;
        let status = session.status();
        self.publish(project, event, &status);
        Ok(status)
    }
}

#[async_trait::async_trait]
impl AudioControl for Node {
    async fn load(&self, project: ProjectId) -> TransportResult<LoadSummary> {
        match self.refresh(project).await? {
            Some(summary) => Ok(summary),
            None => Ok(self.loaded(project).await?.summary()),
        }
    }

    async fn play(&self, project: ProjectId, position: Option<f64>) -> TransportResult<TransportStatus> {
        self.release_away_device(project, "the transport was started while the device was away").await;
        self.drive(project, ServerMessage::PlaybackStarted, |session| {
            Ok(Command::Play { from: position.map(|p| seconds_to_frames(p, session)).transpose()? })
        })
        .await
    }

    async fn pause(&self, project: ProjectId) -> TransportResult<TransportStatus> {
        self.drive(project, ServerMessage::PlaybackPaused, |_| Ok(Command::Pause)).await
    }

    async fn resume(&self, project: ProjectId) -> TransportResult<TransportStatus> {
        self.release_away_device(project, "the transport was started while the device was away").await;
        self.drive(project, ServerMessage::PlaybackStarted, |_| Ok(Command::Resume)).await
    }

    async fn stop(&self, project: ProjectId) -> TransportResult<TransportStatus> {
        self.drive(project, ServerMessage::PlaybackStopped, |_| Ok(Command::Stop)).await
    }

    async fn seek(&self, project: ProjectId, position: f64) -> TransportResult<TransportStatus> {
        self.drive(project, ServerMessage::PlaybackSeeked, |session| {
            Ok(Command::Seek(seconds_to_frames(position, session)?))
        })
        .await
    }

    async fn status(&self, project: ProjectId) -> TransportResult<TransportStatus> {
        if let Some(session) = self.session(project).await {
            return Ok(session.status());
        }
        let parked = self.parked.lock().unwrap_or_else(|p| p.into_inner()).get(&project).copied();
        let found = self
            .store
            .get_project(project)
            .await
            .map_err(store_error)?
            .ok_or_else(|| TransportError::not_found("project"))?;
        let mut status = TransportStatus::unloaded(project, found.sample_rate.hz());
        if let Some(Parked { frame, paused }) = parked {
            // Unloaded while idle: the next command loads it where it was.
            status.frame = frame;
            status.position = Frames(frame).to_seconds(found.sample_rate);
            status.status = if paused { TransportState::Paused } else { TransportState::Stopped };
        }
        Ok(status)
    }

    async fn set_metronome(
        &self,
        project: ProjectId,
        metronome: audiolab_domain::transport::MetronomeSettings,
    ) -> TransportResult<TransportStatus> {
        metronome.validate().map_err(TransportError::Invalid)?;
        let session = self.loaded(project).await?;
        session.set_metronome(metronome).await.map_err(busy)?;
        Ok(session.status())
    }


    async fn record_start(&self, project: ProjectId, request: RecordRequest) -> TransportResult<RecordingStarted> {
        self.start_recording(project, request).await
    }

    async fn record_stop(
        &self,
        project: ProjectId,
        track: Option<TrackId>,
        session: RecordingSessionId,
        actor: Option<&audiolab_domain::user::Actor>,
    ) -> TransportResult<RecordingStopped> {
        self.stop_recording(project, track, session, actor).await
    }

    async fn announce(&self, change: &ProjectChange) -> TransportResult<()> {
        self.apply_change(change).await;
        Ok(())
    }

    async fn revoked(&self, revocation: audiolab_domain::user::Revocation) {
        self.revoke(revocation).await;
    }

    async fn detach_device(&self, project: ProjectId) -> TransportResult<TransportStatus> {
        Node::detach_device(self, project).await
    }

    async fn project_deleted(&self, project: ProjectId) {
        self.unload_project(project, "the project was deleted").await;
    }

    fn input_devices(&self) -> Vec<audiolab_domain::device::InputDevice> {
        #[allow(unused_mut)]
        let mut devices = audiolab_domain::device::virtual_devices(audiolab_domain::SampleRate::DEFAULT.hz());
        #[cfg(feature = "hw-audio")]
        devices.extend(crate::cpal_input::input_devices());
        devices
    }
}
