//! The job queue (apalis): a SQLite file in the embedded default, Redis in cloud mode. A queued
//! item carries only its job's id: the `jobs` row is the record of the kind, input, status and
//! result, and the queue is how a worker learns that there is something to do.

use audiolab_config::Settings;
use audiolab_domain::JobId;
use std::time::Duration;

/// What travels through the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QueuedJob {
    pub job_id: JobId,
}

/// A SQLite worker is woken by the database's update hook when this process pushes, and polls
/// at this interval for items pushed by other processes sharing the file.
pub const SQLITE_POLL: Duration = Duration::from_millis(500);
/// Redis workers poll at this interval: one cheap script call, and push-to-start stays well
/// under a second (about half the interval on average).
pub const REDIS_POLL: Duration = Duration::from_millis(50);
/// Workers announce themselves this often; a worker silent for `MISSED_HEARTBEATS` of them is
/// dead and the jobs it held go back on the queue for the others.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(1);
pub(crate) const MISSED_HEARTBEATS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("cannot reach Redis at the configured redis_url: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("cannot open the job queue in data_dir: {0}")]
    Sqlite(#[from] apalis_sqlite::Error),
    #[error("cannot queue the job: {0}")]
    Push(String),
}

/// The shared queue of background jobs. Cheap to clone: clones push to the same queue.
#[derive(Clone)]
pub enum JobQueue {
    /// The embedded default: a SQLite file beside the data, taken by the worker inside `serve`.
    Sqlite { storage: apalis_sqlite::SqliteStorage<QueuedJob>, pushed: apalis_sqlite::callback::HookCallbackListener },
    /// Cloud mode: Redis, shared by every process of the deployment.
    Redis { storage: Box<apalis_redis::RedisStorage<QueuedJob>>, client: redis::Client, name: String },
}

impl std::fmt::Debug for JobQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobQueue::Sqlite { .. } => f.write_str("JobQueue::Sqlite"),
            JobQueue::Redis { name, .. } => write!(f, "JobQueue::Redis({name})"),
        }
    }
}

impl JobQueue {
    /// Opens the configured queue: Redis when `redis_url` is set, else `data_dir/queue.db`.
    ///
    /// Errors: Redis does not answer, or the SQLite file cannot be created.
    pub async fn open(settings: &Settings) -> Result<Self, QueueError> {
        match &settings.redis_url {
            Some(url) => {
                let client = redis::Client::open(url.as_str())?;
                let connection = client.get_connection_manager().await?;
                let config = apalis_redis::Config::default()
                    .queue(format!("{}:jobs", settings.queue_name))
                    .heartbeat_interval(HEARTBEAT)
                    .missed_heartbeats(MISSED_HEARTBEATS);
                let storage = apalis_redis::RedisStorage::new(connection).with_config(config);
                Ok(JobQueue::Redis { storage: Box::new(storage), client, name: settings.queue_name.clone() })
            }
            None => {
                std::fs::create_dir_all(&settings.data_dir)
                    .map_err(|e| QueueError::Push(format!("cannot create {}: {e}", settings.data_dir.display())))?;
                let url = format!("sqlite://{}?mode=rwc", settings.data_dir.join("queue.db").display());
                let (pool, pushed) = apalis_sqlite::SqliteStorage::connect_with_callback(&url)?;
                apalis_sqlite::SqliteStorage::setup(&pool).await?;
                let config = apalis_sqlite::Config::default()
                    .queue(settings.queue_name.as_str())
                    .heartbeat_interval(HEARTBEAT)
                    .missed_heartbeats(MISSED_HEARTBEATS);
                let storage = apalis_sqlite::SqliteStorage::new(&pool).with_config(config);
                Ok(JobQueue::Sqlite { storage, pushed })
            }
        }
    }

    /// Hands a job (its row already inserted) to the workers.
    pub async fn push(&self, job_id: JobId) -> Result<(), QueueError> {
        use apalis::prelude::TaskSink;
        let job = QueuedJob { job_id };
        match self {
            JobQueue::Sqlite { storage, .. } => {
                storage.clone().push(job).await.map_err(|e| QueueError::Push(e.to_string()))
            }
            JobQueue::Redis { storage, .. } => {
                storage.as_ref().clone().push(job).await.map_err(|e| QueueError::Push(e.to_string()))
            }
        }
    }

    /// The Redis client and the deployment's name, in cloud mode.
    pub fn redis(&self) -> Option<(&redis::Client, &str)> {
        match self {
            JobQueue::Redis { client, name, .. } => Some((client, name)),
            JobQueue::Sqlite { .. } => None,
        }
    }
}

#[async_trait::async_trait]
impl audiolab_domain::job::JobSubmitter for JobQueue {
    async fn submit(&self, job: JobId) -> Result<(), String> {
        self.push(job).await.map_err(|e| e.to_string())
    }
}
