//! The AudioLab worker: runs background jobs (capture finalisation, mixdown, import) taken from
//! the job queue. In the embedded default it runs inside `serve` on a SQLite
//! queue; in cloud mode every `worker` process takes jobs from the Redis queue.

pub mod flatten;
pub mod import;
pub mod jobs;
pub mod mixdown;
pub mod progress;

// The queue, job events and finalisation live in `audiolab-jobs`, shared with the API and the
// node; they are re-exported here under the worker's names.
pub use audiolab_jobs::{clip_audio, events, finalize, queue};

use apalis::prelude::{BoxDynError, Data, WorkerBuilder, WorkerBuilderExt};
use apalis_core::backend::ext::BackendExt;
use apalis_core::backend::ext::poll_strategy::Strategy;
use audiolab_jobs::queue::{JobQueue, QueuedJob};
use jobs::Jobs;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Jobs one worker process runs at once.
const CONCURRENCY: usize = 2;

/// Takes jobs from `queue` and runs them until `shutdown` is cancelled. When the queue fails
/// (Redis restarted, say) the worker starts again under a new name after a second, so a
/// restarted queue is picked up again without restarting the process.
pub async fn run(jobs: Jobs, queue: JobQueue, shutdown: CancellationToken) {
    tracing::info!(?queue, backend = ?jobs.store.backend(), "worker ready");
    let jobs = Arc::new(jobs);
    for generation in 0u64.. {
        // Names are unique per run: a queue refuses a second worker under a live one's name,
        // and the jobs a dead worker held go back on the queue for the others.
        let name = format!("worker-{}-{}-{generation}", hostname(), std::process::id());
        let stop = shutdown.clone();
        let signal = async move {
            stop.cancelled().await;
            Ok::<(), std::io::Error>(())
        };
        let outcome = match &queue {
            JobQueue::Sqlite { storage, pushed } => {
                let strategy = Strategy::new().stream(pushed.clone()).interval(queue::SQLITE_POLL);
                WorkerBuilder::new(name)
                    .backend(storage.clone().poll_with_strategy(strategy))
                    .data(jobs.clone())
                    .concurrency(CONCURRENCY)
                    .build(take)
                    .run_until(signal)
                    .await
            }
            JobQueue::Redis { storage, .. } => {
                WorkerBuilder::new(name)
                    .backend(storage.as_ref().clone().poll_with_interval(queue::REDIS_POLL))
                    .data(jobs.clone())
                    .concurrency(CONCURRENCY)
                    .build(take)
                    .run_until(signal)
                    .await
            }
        };
        match outcome {
            Ok(()) => break,
            Err(error) => tracing::warn!(%error, "the job queue failed; the worker starts again in a second"),
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
    tracing::info!("worker stopped");
}

/// The worker's handler: runs the job the queue handed over. The job's own failures are in its
/// row; only an unreadable row (database down) fails the delivery.
async fn take(job: QueuedJob, jobs: Data<Arc<Jobs>>) -> Result<(), BoxDynError> {
    jobs.run(job.job_id).await?;
    Ok(())
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_owned()))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
