//! How a node follows what its projects become (§13): committed changes reach a loaded engine
//! (a mixer move at once, anything else by re-reading the project) and its clients; a node
//! that missed revisions catches up; job updates announce the clips they made ready.

use crate::node::{Node, busy, store_error};
use crate::session::Session;
use audiolab_domain::ProjectId;
use audiolab_domain::history::ProjectChange;
use audiolab_domain::job::{JobKind, JobPayload, JobResult, JobStatus};
use audiolab_domain::track::Track;
use audiolab_domain::transport::{LoadSummary, ModelAction, ModelChange, ModelItem, TransportError, TransportResult};
use audiolab_jobs::JobUpdate;
use audiolab_transport::protocol::{JobProgress, LoopEvent, RecordingEvent, ServerMessage, TrackState};
use std::sync::Arc;

impl Node {
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
                    let ready =
                        ServerMessage::ClipReady { project_id: project.0, clip_id, session_id: Some(session_id) };
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
}

/// Whether a change only moved a track's mixer (applied without re-reading the project).
fn is_mixer_move(change: &ModelChange) -> bool {
    const MIXER: [&str; 4] = ["volume", "pan", "muted", "soloed"];
    change.item == ModelItem::Track
        && change.action == ModelAction::Updated
        && !change.fields.is_empty()
        && change.fields.iter().all(|f| MIXER.contains(&f.as_str()))
}
