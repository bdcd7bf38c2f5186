//! Running a job against its row in the `jobs` table: `running` with progress while it works,
//! retried on transient failures, then `succeeded` with a result or `failed` with a reason.

use crate::import::import;
use crate::mixdown::mixdown;
use audiolab_domain::JobId;
use audiolab_domain::job::{ImportPayload, Job, JobKind, JobStatus};
use audiolab_jobs::JobUpdate;
use audiolab_jobs::events::JobEvents;
use audiolab_jobs::finalize::finalize_capture;
use audiolab_media::storage::Storage;
use audiolab_store::{Store, StoreError};
use serde_json::{Value, json};
use std::time::Duration;

/// Attempts before a transient failure fails the job.
pub const MAX_ATTEMPTS: u32 = 3;

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
        if let Err(reason) = self.execute(&job).await {
            tracing::warn!(job_id = %job.id, kind = job.kind.as_str(), %reason, "job failed");
        }
        Ok(())
    }

    /// One attempt at a job's work: its result, or why not and whether trying again may help.
    async fn work(&self, job: &Job) -> Result<Value, Failure> {
        match job.kind {
            JobKind::FinalizeCapture => {
                let session = job.payload["session_id"].as_str().and_then(|s| s.parse::<uuid::Uuid>().ok());
                let session = session.ok_or_else(|| Failure::permanent("the job's payload names no session_id"))?;
                let done = finalize_capture(&self.store, &self.storage, session.into())
                    .await
                    .map_err(|e| Failure { transient: e.is_transient(), reason: e.to_string() })?;
                Ok(json!({"session_id": session, "clip_ids": done.clips, "frames": done.frames}))
            }
            JobKind::Mixdown => {
                let done = mixdown(&self.store, &self.storage, job, self.reporter(job))
                    .await
                    .map_err(|e| Failure { transient: e.is_transient(), reason: e.to_string() })?;
                Ok(serde_json::to_value(done).expect("results serialise"))
            }
            JobKind::Import => {
                let payload: ImportPayload = serde_json::from_value(job.payload.clone())
                    .map_err(|e| Failure::permanent(&format!("the job's payload is not an import: {e}")))?;
                let done = import(&self.store, &self.storage, &payload, self.reporter(job))
                    .await
                    .map_err(|e| Failure { transient: e.is_transient(), reason: e.to_string() })?;
                Ok(serde_json::to_value(done).expect("results serialise"))
            }
        }
    }

    /// The job's progress reporter for [`crate::progress::run_blocking`].
    fn reporter(&self, job: &Job) -> crate::progress::Report {
        let (jobs, job) = (self.clone(), job.clone());
        Box::new(move |fraction| {
            let (jobs, job) = (jobs.clone(), job.clone());
            Box::pin(async move { jobs.progress(&job, fraction).await })
        })
    }

    /// Records progress and tells clients; `false` once the job is no longer running
    /// (cancelled), so the work can stop.
    async fn progress(&self, job: &Job, fraction: f64) -> bool {
        let running = self.store.set_job_progress(job.id, fraction).await.unwrap_or(true);
        if running {
            self.events.send(update(job, JobStatus::Running, fraction, None, None));
        }
        running
    }

    /// Runs the job's work until it succeeds, fails for good, or has failed transiently
    /// [`MAX_ATTEMPTS`] times, reporting each state change; the job's row ends with the outcome.
    async fn execute(&self, job: &Job) -> Result<Value, String> {
        let mut tries = 1;
        let outcome = loop {
            if !self.store.set_job_progress(job.id, 0.0).await.unwrap_or(true) {
                return Err("the job was cancelled".into());
            }
            self.events.send(update(job, JobStatus::Running, 0.0, None, None));
            match self.work(job).await {
                Err(failure) if failure.transient && tries < MAX_ATTEMPTS => {
                    tracing::warn!(job_id = %job.id, tries, reason = %failure.reason, "job failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200) * 4u32.pow(tries - 1)).await;
                    tries += 1;
                }
                other => break other,
            }
        };
        match outcome {
            Ok(mut result) => {
                if let Value::Object(fields) = &mut result {
                    fields.insert("attempts".into(), json!(tries));
                }
                if self
                    .store
                    .finish_job(job.id, JobStatus::Succeeded, Some(result.clone()), None)
                    .await
                    .unwrap_or(false)
                {
                    self.events.send(update(job, JobStatus::Succeeded, 1.0, None, Some(result.clone())));
                }
                Ok(result)
            }
            Err(failure) => {
                self.fail(job, &failure.reason).await;
                Err(failure.reason)
            }
        }
    }

    async fn fail(&self, job: &Job, reason: &str) {
        if self.store.finish_job(job.id, JobStatus::Failed, None, Some(reason)).await.unwrap_or(false) {
            self.events.send(update(job, JobStatus::Failed, 0.0, Some(reason.to_owned()), None));
        }
    }
}

/// Why an attempt failed.
#[derive(Debug)]
struct Failure {
    transient: bool,
    reason: String,
}

impl Failure {
    fn permanent(reason: &str) -> Self {
        Self { transient: false, reason: reason.to_owned() }
    }
}

fn update(job: &Job, status: JobStatus, progress: f64, error: Option<String>, result: Option<Value>) -> JobUpdate {
    JobUpdate { job_id: job.id, kind: job.kind, project_id: job.project_id, status, progress, error, result }
}
