//! The job queue in cloud mode, with real `worker` processes on Redis and PostgreSQL: a worker
//! killed with -9 in the middle of a job loses nothing (another worker takes the job over and
//! completes it), and workers carry on when Redis restarts.

use audiolab_domain::JobId;
use audiolab_domain::job::JobStatus;
use audiolab_media::storage::Storage;
use audiolab_store::Store;
use audiolab_worker::queue::JobQueue;

mod common;

use common::processes::{OwnRedis, Process, start_worker};
use std::time::{Duration, Instant};

/// What one deployment's processes share: database, Redis, storage and a queue of its own.
struct Deployment {
    store: Store,
    database_url: String,
    redis_url: String,
    storage: tempfile::TempDir,
    queue_name: String,
    _database: audiolab_testkit::TestDatabase,
}

impl Deployment {
    async fn new(redis_url: &str) -> Self {
        let database = audiolab_testkit::TestDatabase::postgres().await.expect("PostgreSQL must be running");
        let store = database.open().await.unwrap();
        Self {
            store,
            database_url: database.url.clone(),
            redis_url: redis_url.to_owned(),
            storage: tempfile::tempdir().unwrap(),
            queue_name: format!("queue-test-{}", uuid::Uuid::new_v4().simple()),
            _database: database,
        }
    }

    fn settings(&self) -> audiolab_config::Settings {
        audiolab_config::Settings {
            data_dir: self.storage.path().to_owned(),
            database_url: Some(self.database_url.clone()),
            redis_url: Some(self.redis_url.clone()),
            storage_url: Some(self.storage.path().display().to_string()),
            queue_name: self.queue_name.clone(),
            ..Default::default()
        }
    }

    fn audio(&self) -> Storage {
        Storage::new(self.storage.path())
    }

    /// Starts `audiolab worker` and waits until it is connected.
    fn worker(&self) -> Process {
        start_worker(&[
            ("DATABASE_URL", self.database_url.clone()),
            ("REDIS_URL", self.redis_url.clone()),
            ("AUDIOLAB_STORAGE_URL", self.storage.path().display().to_string()),
            ("AUDIOLAB_QUEUE_NAME", self.queue_name.clone()),
        ])
    }

    /// A stopped take of `seconds` of stereo audio and its queued (not yet pushed) job.
    async fn take(&self, seconds: u64) -> (audiolab_domain::recording::RecordingSession, JobId) {
        let session = audiolab_testkit::stopped_session(&self.store, &self.audio(), 2, seconds * 48_000).await;
        let job = audiolab_jobs::queue_finalize(&self.store, session.project_id, session.id).await.unwrap();
        (session, job)
    }

    /// Waits until the job's row reaches `status`.
    async fn until(&self, job: JobId, status: JobStatus, within: Duration) -> audiolab_domain::job::Job {
        let deadline = Instant::now() + within;
        loop {
            let row = self.store.get_job(job).await.unwrap().unwrap();
            if row.status == status {
                return row;
            }
            assert!(Instant::now() < deadline, "job still {:?} (error {:?}), not {status:?}", row.status, row.error);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// The clip of a finalised take holds every frame of the capture.
async fn assert_take_saved(
    deployment: &Deployment,
    session: &audiolab_domain::recording::RecordingSession,
    frames: u64,
) {
    let saved = deployment.store.get_recording_session(session.id).await.unwrap().unwrap();
    assert_eq!(saved.status, audiolab_domain::recording::RecordingStatus::Saved);
    let takes = deployment.store.list_takes(session.track_id, audiolab_store::Page::ALL).await.unwrap();
    let clip = deployment.store.get_clip(takes[0].clip_id).await.unwrap().unwrap();
    assert_eq!((clip.status, clip.length.get()), (audiolab_domain::clip::ClipStatus::Ready, frames as i64));
    let path = deployment.audio().path(clip.audio_key.as_deref().unwrap()).unwrap();
    let reader = audiolab_media::wav::WavReader::open(&path).unwrap();
    assert_eq!((reader.info().frames, reader.info().channels), (frames, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_job_loses_it_to_another_worker_which_completes_it() {
    let deployment = Deployment::new("redis://127.0.0.1:6379").await;
    let queue = JobQueue::open(&deployment.settings()).await.unwrap();
    // Long enough that the first worker is still writing the take when it is killed.
    let (session, job) = deployment.take(180).await;
    let mut first = deployment.worker();
    queue.push(job).await.unwrap();
    deployment.until(job, JobStatus::Running, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    let killed = deployment.store.get_job(job).await.unwrap().unwrap();
    assert_eq!(killed.status, JobStatus::Running, "killed mid-job, not after it: {:?}", killed.result);

    let _second = deployment.worker();
    let done = deployment.until(job, JobStatus::Succeeded, Duration::from_secs(90)).await;
    let Some(audiolab_domain::job::JobResult::FinalizeCapture(result)) = &done.result else {
        panic!("a finalize_capture result: {done:?}")
    };
    assert_eq!(result.frames, 180 * 48_000);
    assert_take_saved(&deployment, &session, 180 * 48_000).await;
}

/// A Redis server of the test's own, so that restarting it disturbs no other test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_carry_on_taking_jobs_after_redis_restarts() {
    let mut redis = OwnRedis::start();
    let deployment = Deployment::new(&redis.url()).await;
    let queue = JobQueue::open(&deployment.settings()).await.unwrap();
    let _worker = deployment.worker();
    let (before, job) = deployment.take(1).await;
    queue.push(job).await.unwrap();
    deployment.until(job, JobStatus::Succeeded, Duration::from_secs(20)).await;
    assert_take_saved(&deployment, &before, 48_000).await;

    redis.stop();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    redis.restart();

    // The worker reconnects to the (empty) restarted Redis and takes the next job; its update
    // reaches the job-event channel the nodes follow.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut events = client.get_async_pubsub().await.unwrap();
    events.subscribe(audiolab_worker::events::channel(&deployment.queue_name)).await.unwrap();
    let (after, job) = deployment.take(1).await;
    let pushed = Instant::now();
    loop {
        match queue.push(job).await {
            Ok(()) => break,
            Err(error) => {
                assert!(pushed.elapsed() < Duration::from_secs(10), "the queue never reconnected: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    deployment.until(job, JobStatus::Succeeded, Duration::from_secs(20)).await;
    assert_take_saved(&deployment, &after, 48_000).await;
    use futures_util::StreamExt;
    let mut messages = events.on_message();
    let succeeded = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(message) = messages.next().await {
            let update: serde_json::Value = serde_json::from_str(&message.get_payload::<String>().unwrap()).unwrap();
            if update["job_id"] == job.to_string() && update["status"] == "succeeded" {
                return update;
            }
        }
        panic!("the channel closed");
    })
    .await
    .expect("the worker publishes job updates again");
    assert_eq!(succeeded["result"]["frames"], 48_000);
}
