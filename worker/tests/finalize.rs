//! `finalize_capture` as a job: pushed on the real queue (apalis SQLite beside SQLite, Redis
//! beside PostgreSQL, as deployed), a good capture becomes ready clips once however often it
//! runs; a broken one fails the job with its reason and keeps everything already saved.

use audiolab_domain::Frames;
use audiolab_domain::clip::ClipStatus;
use audiolab_domain::job::JobStatus;
use audiolab_domain::recording::RecordingStatus;
use audiolab_jobs::{JobUpdate, queue_finalize};
use audiolab_media::storage::Storage;
use audiolab_store::Store;
use audiolab_testkit::TestDatabase;
use audiolab_worker::events::JobEvents;
use audiolab_worker::finalize::finalize_capture;
use audiolab_worker::jobs::Jobs;
use audiolab_worker::queue::JobQueue;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

/// Each test, on SQLite and on a fresh PostgreSQL database.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                super::$name(audiolab_testkit::TestDatabase::sqlite()).await;
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let db = audiolab_testkit::TestDatabase::postgres().await.expect("PostgreSQL must be running");
                super::$name(db).await;
            })*
        }
    };
}

on_both_backends!(
    a_finalize_job_succeeds_once_and_running_it_again_changes_nothing,
    a_broken_capture_fails_the_job_with_its_reason_and_deletes_nothing,
    a_job_delivered_twice_at_once_runs_once,
);

/// A worker's context whose updates arrive on the returned receiver.
fn jobs(store: &Store, storage: &Storage) -> (Jobs, UnboundedReceiver<JobUpdate>) {
    let (sender, updates) = tokio::sync::mpsc::unbounded_channel();
    (Jobs { store: store.clone(), storage: storage.clone(), events: JobEvents::Local(sender) }, updates)
}

async fn next(updates: &mut UnboundedReceiver<JobUpdate>) -> JobUpdate {
    tokio::time::timeout(Duration::from_secs(20), updates.recv()).await.expect("a job update in time").unwrap()
}

async fn a_finalize_job_succeeds_once_and_running_it_again_changes_nothing(db: TestDatabase) {
    let store = db.open().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::new(dir.path().join("audio"));
    let session = audiolab_testkit::stopped_session(&store, &storage, 1, 60_000).await;
    // The queue each deployment uses: Redis beside PostgreSQL, a SQLite file beside SQLite.
    let settings = audiolab_config::Settings {
        data_dir: dir.path().to_owned(),
        redis_url: (store.backend() == audiolab_store::Backend::Postgres).then(|| "redis://127.0.0.1:6379".into()),
        queue_name: format!("test-{}", uuid::Uuid::new_v4().simple()),
        ..Default::default()
    };
    let queue = JobQueue::open(&settings).await.expect("the job queue opens");
    let (jobs, mut updates) = jobs(&store, &storage);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let worker = tokio::spawn(audiolab_worker::run(jobs.clone(), queue.clone(), shutdown.clone()));

    let job = queue_finalize(&store, session.project_id, session.id).await.unwrap();
    queue.push(job).await.unwrap();
    let running = next(&mut updates).await;
    assert_eq!(
        (running.job_id, running.status, running.project_id),
        (job, JobStatus::Running, Some(session.project_id))
    );
    let done = next(&mut updates).await;
    assert_eq!(done.status, JobStatus::Succeeded, "{done:?}");
    let Some(audiolab_domain::job::JobResult::FinalizeCapture(result)) = done.result else {
        panic!("a finalize_capture result: {done:?}")
    };
    assert_eq!(result.frames, 60_000);
    let clip_id = result.clip_ids[0];
    let row = store.get_job(job).await.unwrap().unwrap();
    assert_eq!((row.status, row.progress), (JobStatus::Succeeded, 1.0));
    let clip = store.get_clip(clip_id).await.unwrap().unwrap();
    assert_eq!((clip.status, clip.start, clip.length), (ClipStatus::Ready, Frames(4_800), Frames(60_000)));
    let audio = std::fs::metadata(storage.path(clip.audio_key.as_deref().unwrap()).unwrap()).unwrap();

    // Delivered again: a finished job is left alone. Finalised again: nothing is rewritten.
    queue.push(job).await.unwrap();
    jobs.run(job).await.unwrap();
    let again = finalize_capture(&store, &storage, session.id).await.unwrap();
    assert_eq!(again.clips, [clip.id]);
    assert_eq!(store.list_takes(session.track_id, audiolab_store::Page::ALL).await.unwrap().len(), 1);
    let after = std::fs::metadata(storage.path(clip.audio_key.as_deref().unwrap()).unwrap()).unwrap();
    assert_eq!(after.modified().unwrap(), audio.modified().unwrap());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(updates.try_recv().is_err(), "a finished job runs once");
    shutdown.cancel();
    worker.await.unwrap();
}

async fn a_broken_capture_fails_the_job_with_its_reason_and_deletes_nothing(db: TestDatabase) {
    let store = db.open().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::new(dir.path());
    let session = audiolab_testkit::stopped_session(&store, &storage, 1, 4_800).await;
    let capture = storage.path(&session.capture_key).unwrap();
    std::fs::write(capture.join("manifest"), "channels=0\n").unwrap();

    let job = queue_finalize(&store, session.project_id, session.id).await.unwrap();
    let (jobs, mut updates) = jobs(&store, &storage);
    jobs.run(job).await.unwrap();
    assert_eq!(next(&mut updates).await.status, JobStatus::Running);
    let failed = next(&mut updates).await;
    assert_eq!(failed.status, JobStatus::Failed);
    assert!(failed.error.as_deref().unwrap().contains("manifest"), "{:?}", failed.error);
    assert!(updates.try_recv().is_err(), "not retried: a broken manifest stays broken");
    let row = store.get_job(job).await.unwrap().unwrap();
    assert_eq!(row.status, JobStatus::Failed);
    assert!(row.error.as_deref().unwrap().contains("manifest"), "{:?}", row.error);
    let failed = store.get_recording_session(session.id).await.unwrap().unwrap();
    assert_eq!(failed.status, RecordingStatus::Failed);
    let takes = store.list_takes(session.track_id, audiolab_store::Page::ALL).await.unwrap();
    let clip = store.get_clip(takes[0].clip_id).await.unwrap().unwrap();
    assert_eq!(clip.status, ClipStatus::Failed);
    assert!(capture.join("chunk-000000.f32").exists(), "the raw capture is kept");
}

async fn a_job_delivered_twice_at_once_runs_once(db: TestDatabase) {
    let store = db.open().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::new(dir.path());
    let session = audiolab_testkit::stopped_session(&store, &storage, 2, 240_000).await;
    let job = queue_finalize(&store, session.project_id, session.id).await.unwrap();
    let (jobs, mut updates) = jobs(&store, &storage);
    // The outbox pushes at least once: two workers may take the same job id together.
    let (first, second) = tokio::join!(jobs.run(job), jobs.run(job));
    (first.unwrap(), second.unwrap());
    let mut seen = Vec::new();
    while let Ok(update) = updates.try_recv() {
        seen.push(update.status);
    }
    assert_eq!(seen, [JobStatus::Running, JobStatus::Succeeded], "one run, reported once");
    assert_eq!(store.list_takes(session.track_id, audiolab_store::Page::ALL).await.unwrap().len(), 1);
    // A job whose worker died (running, silent past the lease) is taken over by the next delivery.
    let stalled = queue_finalize(&store, session.project_id, session.id).await.unwrap();
    let lease = audiolab_worker::jobs::RUN_LEASE;
    assert!(store.claim_job(stalled, lease).await.unwrap());
    assert!(!store.claim_job(stalled, lease).await.unwrap(), "it runs");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(store.claim_job(stalled, Duration::from_millis(10)).await.unwrap(), "its worker is gone");
    // A crash left it running: the process that starts again queues it for the next delivery.
    store.requeue_job(stalled).await.unwrap();
    assert!(store.claim_job(stalled, lease).await.unwrap(), "taken again after a restart");
}
