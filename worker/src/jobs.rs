//! Running a job against its row in the `jobs` table: `running` with progress while it works,
//! retried on transient failures, then `succeeded` with a result or `failed` with a reason.

use crate::import::import;
use crate::mixdown::mixdown;
use audiolab_domain::JobId;
use audiolab_domain::job::{FinalizeResult, Job, JobPayload, JobResult, JobStatus};
use audiolab_jobs::JobUpdate;
use audiolab_jobs::events::JobEvents;
use audiolab_jobs::finalize::finalize_capture;
use audiolab_media::storage::Storage;
use audiolab_store::{Store, StoreError};
use std::time::Duration;

/// Attempts before a transient failure fails the job.
pub const MAX_ATTEMPTS: u32 = 3;

/// How long a running job may go without a sign of life before another delivery may take it
/// over (its worker is taken to be dead).
pub const RUN_LEASE: Duration = Duration::from_secs(30);

/// How often a running job renews its lease.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// What a worker needs to run jobs.
#[derive(Debug, Clone)]
pub struct Jobs {
    pub store: Store,
    pub storage: Storage,
    pub events: JobEvents,
}

impl Jobs {
    /// Runs the job `job_id` to its end, once however often it is delivered (§13: pushes are
    /// at least once). A job already finished is left alone; one running elsewhere is waited
    /// on — it ends, or its worker dies and this delivery takes it over. A job whose row is
    /// gone is skipped. Errors only when the row cannot be read.
    pub async fn run(&self, job_id: JobId) -> Result<(), StoreError> {
        let job = loop {
            let Some(job) = self.store.get_job(job_id).await? else {
                tracing::warn!(%job_id, "a queued job has no row; skipped");
                return Ok(());
            };
            if job.status.is_terminal() {
                return Ok(());
            }
            if self.store.claim_job(job_id, RUN_LEASE).await? {
                break job;
            }
            tracing::debug!(%job_id, "a job delivered again runs elsewhere; waiting on it");
            tokio::time::sleep(HEARTBEAT).await;
        };
        let heartbeat = async {
            let mut beats = tokio::time::interval(HEARTBEAT);
            loop {
                beats.tick().await;
                if let Err(error) = self.store.touch_job(job_id).await {
                    tracing::warn!(%job_id, %error, "cannot renew a running job's lease");
                }
            }
        };
        let outcome = tokio::select! {
            outcome = self.execute(&job) => outcome,
            () = heartbeat => unreachable!("the heartbeat never ends"),
        };
        if let Err(reason) = outcome {
            tracing::warn!(job_id = %job.id, kind = job.kind.as_str(), %reason, "job failed");
        }
        Ok(())
    }

    /// One attempt at a job's work: its result, or why not and whether trying again may help.
    async fn work(&self, job: &Job) -> Result<JobResult, Failure> {
        match &job.payload {
            JobPayload::FinalizeCapture(payload) => {
                let done = finalize_capture(&self.store, &self.storage, payload.session_id)
                    .await
                    .map_err(|e| Failure { transient: e.is_transient(), reason: e.to_string() })?;
                let result =
                    FinalizeResult { session_id: payload.session_id, clip_ids: done.clips, frames: done.frames };
                Ok(JobResult::FinalizeCapture(result))
            }
            JobPayload::Mixdown(payload) => {
                let done = mixdown(&self.store, &self.storage, job, payload, self.reporter(job))
                    .await
                    .map_err(|e| Failure { transient: e.is_transient(), reason: e.to_string() })?;
                Ok(JobResult::Mixdown(done))
            }
            JobPayload::Flatten(payload) => {
                let done = crate::flatten::flatten(&self.store, &self.storage, payload, self.reporter(job))
                    .await
                    .map_err(|e| Failure { transient: e.is_transient(), reason: e.to_string() })?;
                Ok(JobResult::Flatten(done))
            }
            JobPayload::Import(payload) => {
                let done = import(&self.store, &self.storage, payload, self.reporter(job))
                    .await
                    .map_err(|e| Failure { transient: e.is_transient(), reason: e.to_string() })?;
                Ok(JobResult::Import(done))
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
    async fn execute(&self, job: &Job) -> Result<JobResult, String> {
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
            Ok(result) => {
                tracing::debug!(job_id = %job.id, tries, "job succeeded");
                if self.store.finish_job(job.id, JobStatus::Succeeded, Some(&result), None).await.unwrap_or(false) {
                    self.clips_ready(job, &result).await;
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

    /// Clips a job made ready are a revision of their project (§13), the system's own: a node
    /// that missed the job's update still catches up with them by revision.
    async fn clips_ready(&self, job: &Job, result: &JobResult) {
        use audiolab_domain::history::{Change, ChangeKind, Row, RowChange};
        let (Some(project), clips) = (
            job.project_id,
            match result {
                JobResult::FinalizeCapture(done) => done.clip_ids.clone(),
                JobResult::Import(done) => vec![done.clip_id],
                JobResult::Mixdown(_) | JobResult::Flatten(_) => return,
            },
        ) else {
            return;
        };
        let mut rows = Vec::with_capacity(clips.len());
        for clip in clips {
            // The rows are already what they are: the entry records that they are ready.
            if let Ok(Some(ready)) = self.store.get_clip(clip).await {
                rows.push(RowChange::updated(Row::Clip(ready.clone()), Row::Clip(ready)));
            }
        }
        if rows.is_empty() {
            return;
        }
        let summary = match job.kind {
            audiolab_domain::job::JobKind::Import => "The imported audio is ready",
            _ => "The take's audio is ready",
        };
        let change = Change::new(ChangeKind::ClipReady, summary, rows);
        if let Err(error) = self.store.commit(project, None, &change).await {
            tracing::warn!(job_id = %job.id, %error, "cannot record the clips made ready in the project's history");
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

fn update(job: &Job, status: JobStatus, progress: f64, error: Option<String>, result: Option<JobResult>) -> JobUpdate {
    JobUpdate { job_id: job.id, kind: job.kind, project_id: job.project_id, status, progress, error, result }
}
