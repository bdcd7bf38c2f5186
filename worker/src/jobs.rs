//! Running a job against its row in the `jobs` table: `running` with progress while it works,
//! retried on transient failures, then `succeeded` with a result or `failed` with a reason.

use crate::finalize::{FinalizeError, Finalized, finalize_capture};
use audiolab_domain::job::{Job, JobKind, JobStatus};
use audiolab_domain::{JobId, ProjectId, RecordingSessionId};
use audiolab_media::storage::LocalStorage;
use audiolab_store::Store;
use serde_json::json;
use std::time::Duration;

/// Attempts before a transient failure fails the job.
pub const MAX_ATTEMPTS: u32 = 3;

/// A change in a job's state, for `job_progress` events.
#[derive(Debug, Clone, PartialEq)]
pub struct JobUpdate {
    pub job_id: JobId,
    pub kind: JobKind,
    pub status: JobStatus,
    pub progress: f64,
    pub error: Option<String>,
}

/// Queues the row of a `finalize_capture` job.
pub async fn queue_finalize(
    store: &Store,
    project: ProjectId,
    session: RecordingSessionId,
) -> Result<JobId, audiolab_store::StoreError> {
    let job =
        Job::queued(JobKind::FinalizeCapture, Some(project), json!({"session_id": session}), audiolab_domain::now());
    store.insert_job(&job).await?;
    Ok(job.id)
}

/// Runs a queued `finalize_capture` job to its end, reporting each state change.
pub async fn run_finalize(
    store: &Store,
    storage: &LocalStorage,
    job_id: JobId,
    session: RecordingSessionId,
    report: impl Fn(JobUpdate),
) -> Result<Finalized, FinalizeError> {
    let update = |status, progress, error: Option<String>| JobUpdate {
        job_id,
        kind: JobKind::FinalizeCapture,
        status,
        progress,
        error,
    };
    let mut attempt = 1;
    let outcome = loop {
        let _ = store.set_job_progress(job_id, 0.0).await;
        report(update(JobStatus::Running, 0.0, None));
        match finalize_capture(store, storage, session).await {
            Err(err) if err.is_transient() && attempt < MAX_ATTEMPTS => {
                tracing::warn!(%job_id, attempt, %err, "finalize_capture failed; retrying");
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
            let _ = store.finish_job(job_id, JobStatus::Succeeded, Some(result), None).await;
            report(update(JobStatus::Succeeded, 1.0, None));
        }
        Err(err) => {
            let reason = err.to_string();
            let _ = store.finish_job(job_id, JobStatus::Failed, None, Some(&reason)).await;
            report(update(JobStatus::Failed, 0.0, Some(reason)));
        }
    }
    outcome
}
