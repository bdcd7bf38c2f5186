//! The job table the API shows: status, progress, result and error of background work.

use crate::{Store, StoreError, StoreResult, corrupt, on_pool};
use audiolab_domain::JobId;
use audiolab_domain::job::{Job, JobKind, JobPayload, JobResult, JobStatus};
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use uuid::Uuid;

#[derive(sqlx::FromRow)]
struct JobRow {
    id: Uuid,
    kind: String,
    project_id: Option<Uuid>,
    status: String,
    progress: f64,
    payload: Json<serde_json::Value>,
    result: Option<Json<serde_json::Value>>,
    error: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<JobRow> for Job {
    type Error = StoreError;
    fn try_from(row: JobRow) -> StoreResult<Self> {
        let kind = JobKind::parse(&row.kind).ok_or_else(|| corrupt("jobs.kind", &row.kind))?;
        Ok(Job {
            id: row.id.into(),
            kind,
            project_id: row.project_id.map(Into::into),
            status: JobStatus::parse(&row.status).ok_or_else(|| corrupt("jobs.status", &row.status))?,
            progress: row.progress,
            payload: JobPayload::decode(kind, row.payload.0).map_err(StoreError::Corrupt)?,
            result: row.result.map(|r| JobResult::decode(kind, r.0)).transpose().map_err(StoreError::Corrupt)?,
            error: row.error,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// The bound INSERT of a job row (skipped on a conflict), for a pool or a transaction.
macro_rules! insert_job_query {
    ($job:expr, $fingerprint:expr) => {{
        let job: &Job = $job;
        sqlx::query(
            "INSERT INTO jobs (id, kind, project_id, status, progress, payload, result, error, created_at, updated_at,
                               fingerprint)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT DO NOTHING",
        )
        .bind(job.id.0)
        .bind(job.kind.as_str())
        .bind(job.project_id.map(|p| p.0))
        .bind(job.status.as_str())
        .bind(job.progress)
        .bind(Json(&job.payload))
        .bind(job.result.as_ref().map(Json))
        .bind(&job.error)
        .bind(job.created_at)
        .bind(job.updated_at)
        .bind($fingerprint)
    }};
}
pub(crate) use insert_job_query;

impl Store {
    #[tracing::instrument(skip_all, fields(job_id = %job.id, kind = job.kind.as_str()))]
    pub async fn insert_job(&self, job: &Job) -> StoreResult<()> {
        if !self.insert_job_row(job, None).await? {
            return Err(StoreError::Conflict("a job with this id already exists".into()));
        }
        Ok(())
    }

    /// Inserts the row unless it conflicts (same id, or a live job with the same
    /// `fingerprint`); returns whether it was inserted.
    async fn insert_job_row(&self, job: &Job, fingerprint: Option<&str>) -> StoreResult<bool> {
        let inserted = on_pool!(self, pool => insert_job_query!(job, fingerprint)
        .execute(pool)
        .await
        .map_err(|e| StoreError::from_write(e, "a job with this id already exists", "project"))?
        .rows_affected());
        Ok(inserted == 1)
    }

    /// Inserts a queued job and the outbox row that hands it to the workers, in one
    /// transaction, unless it conflicts as [`Store::insert_mixdown_job`] says. Returns the
    /// outbox row to deliver at once, or `None` when the job was not inserted.
    pub async fn queue_job(&self, job: &Job, fingerprint: Option<&str>) -> StoreResult<Option<crate::OutboxItem>> {
        let message = audiolab_domain::history::Outgoing::PushJob { job_id: job.id };
        let text = serde_json::to_string(&message).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let now = audiolab_domain::now();
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let inserted = insert_job_query!(job, fingerprint)
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::from_write(e, "a job with this id already exists", "project"))?
                .rows_affected();
            if inserted == 0 {
                return Ok(None);
            }
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO outbox (project_id, message, created_at, due_ms) VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(job.project_id.map(|p| p.0))
            .bind(text)
            .bind(now)
            .bind(now.timestamp_millis() + crate::history::INLINE_GRACE_MS)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Some(crate::OutboxItem { id, project_id: job.project_id, message, attempts: 1 }))
        })
    }

    /// Inserts a mixdown job unless one with the same `fingerprint` is queued, running or
    /// succeeded. Returns the job that stands and whether it is the one just inserted. The
    /// database's unique index decides, so identical requests at the same moment share a job.
    #[tracing::instrument(skip_all, fields(job_id = %job.id))]
    pub async fn insert_mixdown_job(
        &self,
        job: &Job,
        fingerprint: &str,
    ) -> StoreResult<(Job, Option<crate::OutboxItem>)> {
        if let Some(push) = self.queue_job(job, Some(fingerprint)).await? {
            return Ok((job.clone(), Some(push)));
        }
        let row: Option<JobRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT * FROM jobs WHERE fingerprint = $1 AND status IN ('queued', 'running', 'succeeded')",
        )
        .bind(fingerprint)
        .fetch_optional(pool)
        .await?);
        match row {
            Some(row) => Ok((Job::try_from(row)?, None)),
            // The standing job finished unsuccessfully in between: this request may render.
            None => Box::pin(self.insert_mixdown_job(job, fingerprint)).await,
        }
    }

    #[tracing::instrument(skip(self))]
    pub async fn get_job(&self, id: JobId) -> StoreResult<Option<Job>> {
        let row: Option<JobRow> = on_pool!(self, pool => sqlx::query_as("SELECT * FROM jobs WHERE id = $1")
            .bind(id.0)
            .fetch_optional(pool)
            .await?);
        row.map(Job::try_from).transpose()
    }

    /// Jobs of `kind` that were queued or running: after a crash, the ones to run again.
    pub async fn unfinished_jobs(&self, kind: audiolab_domain::job::JobKind) -> StoreResult<Vec<Job>> {
        let rows: Vec<JobRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT * FROM jobs WHERE kind = $1 AND status IN ('queued', 'running') ORDER BY created_at",
        )
        .bind(kind.as_str())
        .fetch_all(pool)
        .await?);
        rows.into_iter().map(Job::try_from).collect()
    }

    /// A project's jobs of `kind`, newest first.
    pub async fn project_jobs(
        &self,
        project_id: audiolab_domain::ProjectId,
        kind: JobKind,
        page: crate::Page,
    ) -> StoreResult<Vec<Job>> {
        let rows: Vec<JobRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT * FROM jobs WHERE project_id = $1 AND kind = $2 ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4",
        )
        .bind(project_id.0)
        .bind(kind.as_str())
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(pool)
        .await?);
        rows.into_iter().map(Job::try_from).collect()
    }

    /// Takes a job to run: `true` when it was queued, or was running without a sign of life for
    /// `lease` (its worker died). A second delivery of a job that runs elsewhere, or that has
    /// finished, gets `false` and must be left alone: pushes are at least once (§13), runs once.
    #[tracing::instrument(skip(self))]
    pub async fn claim_job(&self, id: JobId, lease: std::time::Duration) -> StoreResult<bool> {
        let now = Utc::now();
        let stale = now - chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let changed = on_pool!(self, pool => sqlx::query(
            "UPDATE jobs SET status = 'running', progress = 0, updated_at = $2
             WHERE id = $1 AND (status = 'queued' OR (status = 'running' AND updated_at < $3))",
        )
        .bind(id.0)
        .bind(now)
        .bind(stale)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(changed == 1)
    }

    /// A running job's sign of life (see [`Store::claim_job`]): its lease is renewed.
    pub async fn touch_job(&self, id: JobId) -> StoreResult<()> {
        on_pool!(self, pool => sqlx::query("UPDATE jobs SET updated_at = $2 WHERE id = $1 AND status = 'running'")
            .bind(id.0)
            .bind(Utc::now())
            .execute(pool)
            .await
            .map(drop)?);
        Ok(())
    }

    /// A job a crash left running is queued again, for the next delivery to take (the
    /// process that ran it is gone, whatever its lease says).
    pub async fn requeue_job(&self, id: JobId) -> StoreResult<()> {
        on_pool!(self, pool => sqlx::query("UPDATE jobs SET status = 'queued', progress = 0 WHERE id = $1 AND status = 'running'")
            .bind(id.0)
            .execute(pool)
            .await
            .map(drop)?);
        Ok(())
    }

    /// Records progress of a running job (clamped to 0–1). Finished jobs are left alone.
    #[tracing::instrument(skip(self))]
    pub async fn set_job_progress(&self, id: JobId, progress: f64) -> StoreResult<bool> {
        let progress = if progress.is_finite() { progress.clamp(0.0, 1.0) } else { 0.0 };
        let changed = on_pool!(self, pool => sqlx::query(
            "UPDATE jobs SET status = 'running', progress = $2, updated_at = $3
             WHERE id = $1 AND status IN ('queued', 'running')",
        )
        .bind(id.0)
        .bind(progress)
        .bind(Utc::now())
        .execute(pool)
        .await?
        .rows_affected());
        Ok(changed == 1)
    }

    /// Ends a job with `status` (a terminal one), its result or its error. A job that already
    /// finished keeps its first outcome, so a retried handler cannot overwrite it. Returns
    /// whether this call finished it.
    #[tracing::instrument(skip(self, result))]
    pub async fn finish_job(
        &self,
        id: JobId,
        status: JobStatus,
        result: Option<&JobResult>,
        error: Option<&str>,
    ) -> StoreResult<bool> {
        debug_assert!(status.is_terminal());
        let progress = if status == JobStatus::Succeeded { 1.0 } else { 0.0 };
        let changed = on_pool!(self, pool => sqlx::query(
            "UPDATE jobs SET status = $2, result = $3, error = $4, updated_at = $5,
                    progress = CASE WHEN $6 = 1.0 THEN 1.0 ELSE progress END
             WHERE id = $1 AND status IN ('queued', 'running')",
        )
        .bind(id.0)
        .bind(status.as_str())
        .bind(result.map(Json))
        .bind(error)
        .bind(Utc::now())
        .bind(progress)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(changed == 1)
    }
}
