//! The AudioLab worker: runs background jobs (capture finalisation, mixdown, import).
//!
//! In the embedded default it runs inside `serve` on an in-process queue; in cloud mode it is
//! its own process taking jobs from Redis. Today it connects to its dependencies, reports ready
//! and waits for shutdown; job handlers arrive with the recording and mixdown work.

pub mod finalize;
pub mod jobs;

use audiolab_config::Settings;
use audiolab_store::Store;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("cannot reach Redis at the configured redis_url: {0}")]
    Redis(#[from] redis::RedisError),
}

/// Where the worker takes jobs from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    /// The embedded default: jobs submitted inside this process.
    InProcess,
    /// Cloud mode: the Redis queue shared by every process.
    Redis,
}

/// Checks the worker's dependencies and returns which queue it will use.
///
/// Errors: [`WorkerError::Redis`] when `redis_url` is set but Redis does not answer PING.
pub async fn connect(settings: &Settings) -> Result<Queue, WorkerError> {
    let Some(url) = &settings.redis_url else {
        return Ok(Queue::InProcess);
    };
    let client = redis::Client::open(url.as_str())?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    let _: String = redis::cmd("PING").query_async(&mut connection).await?;
    Ok(Queue::Redis)
}

/// Runs the worker until `shutdown` is cancelled.
pub async fn run(store: Store, queue: Queue, shutdown: CancellationToken) {
    tracing::info!(?queue, backend = ?store.backend(), "worker ready");
    shutdown.cancelled().await;
    tracing::info!("worker stopped");
}
