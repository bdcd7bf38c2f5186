//! What a node picks up after a crash: takes a killed process left recording (its own in
//! `serve`, a dead node's in cloud mode), and jobs a crash left unfinished.

use crate::node::Node;
use audiolab_domain::RecordingSessionId;
use audiolab_domain::job::JobKind;
use audiolab_domain::recording::RecordingStatus;
use audiolab_transport::protocol::ServerMessage;

impl Node {
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
            if let Err(err) = self.store.requeue_job(job.id).await {
                tracing::warn!(job_id = %job.id, %err, "cannot queue an interrupted job again");
            }
            if let Err(err) = self.queue.push(job.id).await {
                tracing::error!(job_id = %job.id, %err, "cannot queue an interrupted job");
            }
        }
    }
}
