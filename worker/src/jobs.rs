//! Running a job against its row in the `jobs` table: `running` with progress while it works,
//! retried on transient failures, then `succeeded` with a result or `failed` with a reason.

use crate::events::JobEvents;
use crate::finalize::{FinalizeError, Finalized, finalize_capture};
use audiolab_domain::job::{Job, JobKind, JobStatus};
use audiolab_domain::{JobId, ProjectId, RecordingSessionId};
use audiolab_media::storage::Storage;
use audiolab_store::{Store, StoreError};
use serde_json::{Value, json};
use std::time::Duration;

/// Attempts before a transient failure fails the job.
pub const MAX_ATTEMPTS: u32 = 3;

/// A change in a job's state, for `job_progress` events and for the node playing the project.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JobUpdate {
    pub job_id: JobId,
    pub kind: JobKind,
    pub project_id: Option<ProjectId>,
    pub status: JobStatus,
    pub progress: f64,
    pub error: Option<String>,
    /// The job's result once it succeeded.
    pub result: Option<Value>,
}

/// What a worker needs to run jobs.
#[derive(Debug, Clone)]
pub struct Jobs {
    pub store: Store,
    pub storage: Storage,
    pub events: JobEvents,
}

impl Jobs {
    /// Runs the job `job_id` to its end. A job already finished (a second delivery) is left
    /// alone; a job whose row is gone is skipped. Errors only when the row cannot be read.
    pub async fn run(&self, job_id: JobId) -> Result<(), StoreError> {
        let Some(job) = self.store.get_job(job_id).await? else {
            tracing::warn!(%job_id, "a queued job has no row; skipped");
            return Ok(());
        };
        if job.status.is_terminal() {
            return Ok(());
        }
        match job.kind {
            JobKind::FinalizeCapture => {
                let session = job.payload["session_id"].as_str().and_then(|s| s.parse::<uuid::Uuid>().ok());
                match session {
                    Some(session) => {
                        let _ = run_finalize(self, &job, session.into()).await;
                    }
                    None => self.fail(&job, "the job's payload names no session_id").await,
                }
            }
            kind => self.fail(&job, &format!("{} jobs are not supported by this worker", kind.as_str())).await,
        }
        Ok(())
    }

    async fn fail(&self, job: &Job, reason: &str) {
        let _ = self.store.finish_job(job.id, JobStatus::Failed, None, Some(reason)).await;
        self.events.send(JobUpdate {
            job_id: job.id,
            kind: job.kind,
            project_id: job.project_id,
            status: JobStatus::Failed,
            progress: 0.0,
            error: Some(reason.to_owned()),
            result: None,
        });
    }
}

/// Inserts the row of a `finalize_capture` job (queued); the caller then pushes it.
pub async fn queue_finalize(
    store: &Store,
    project: ProjectId,
    session: RecordingSessionId,
) -> Result<JobId, StoreError> {
    let job =
        Job::queued(JobKind::FinalizeCapture, Some(project), json!({"session_id": session}), audiolab_domain::now());
    store.insert_job(&job).await?;
    Ok(job.id)
}

/// Runs a `finalize_capture` job to its end, reporting each state change.
async fn run_finalize(jobs: &Jobs, job: &Job, session: RecordingSessionId) -> Result<Finalized, FinalizeError> {
    let Jobs { store, storage, events } = jobs;
    let update = |status, progress, error: Option<String>, result: Option<Value>| JobUpdate {
        job_id: job.id,
        kind: job.kind,
        project_id: job.project_id,
        status,
        progress,
        error,
        result,
    };
    let mut attempt = 1;
    let outcome = loop {
        let _ = store.set_job_progress(job.id, 0.0).await;
        events.send(update(JobStatus::Running, 0.0, None, None));
        match finalize_capture(store, storage, session).await {
            Err(err) if err.is_transient() && attempt < MAX_ATTEMPTS => {
                tracing::warn!(job_id = %job.id, attempt, %err, "finalize_capture failed; retrying");
                tokio::time::sleep(Duration::from_millis(200) * 4u32.pow(attempt - 1)).await;
                attempt += 1;
            }
            other => break other,
        }
    };
    match &outcome {
        Ok(done) => {
            let result =
                json!({"session_id": session, "clip_ids": done.clips, "frames": done.frames, "attempts": attempt});
            let _ = store.finish_job(job.id, JobStatus::Succeeded, Some(result.clone()), None).await;
            events.send(update(JobStatus::Succeeded, 1.0, None, Some(result)));
        }
        Err(err) => {
            let reason = err.to_string();
            let _ = store.finish_job(job.id, JobStatus::Failed, None, Some(&reason)).await;
            events.send(update(JobStatus::Failed, 0.0, Some(reason), None));
        }
    }
    outcome
}
