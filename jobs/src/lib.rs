//! What every process knows about background jobs: the job queue (apalis: SQLite in `serve`,
//! Redis in cloud mode), the updates a job's progress sends to the nodes, and capture
//! finalisation, which workers run as a job and a node runs itself when it recovers a take a
//! crash interrupted. The API submits, the worker runs, the node follows; none of them needs
//! another service crate.

pub mod clip_audio;
pub mod events;
pub mod finalize;
pub mod queue;

use audiolab_domain::job::{Job, JobKind, JobStatus};
use audiolab_domain::{JobId, ProjectId, RecordingSessionId};
use audiolab_store::{Store, StoreError};

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
    pub result: Option<audiolab_domain::job::JobResult>,
}

/// Inserts the row of a `finalize_capture` job (queued); the caller then pushes it.
pub async fn queue_finalize(
    store: &Store,
    project: ProjectId,
    session: RecordingSessionId,
) -> Result<JobId, StoreError> {
    let payload = audiolab_domain::job::JobPayload::FinalizeCapture(audiolab_domain::job::FinalizePayload {
        session_id: session,
    });
    let job = Job::queued(Some(project), payload, audiolab_domain::now());
    store.insert_job(&job).await?;
    Ok(job.id)
}
