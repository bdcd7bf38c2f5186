//! `finalize_capture` as a job: a good capture becomes ready clips once however often it runs;
//! a broken one fails the job with its reason and keeps everything already saved.

use audiolab_domain::clip::ClipStatus;
use audiolab_domain::job::JobStatus;
use audiolab_domain::project::{NewProject, Project};
use audiolab_domain::recording::{RecordingSession, RecordingStatus};
use audiolab_domain::track::NewTrack;
use audiolab_domain::{Frames, RecordingSessionId};
use audiolab_media::capture::{ChunkWriter, Manifest};
use audiolab_media::storage::LocalStorage;
use audiolab_store::Store;
use audiolab_store::testing::TestDatabase;
use audiolab_worker::finalize::{TakeSpan, create_takes, finalize_capture};
use audiolab_worker::jobs::{queue_finalize, run_finalize};

/// Each test, on SQLite and on a fresh PostgreSQL database.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                super::$name(audiolab_store::testing::TestDatabase::sqlite()).await;
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let db = audiolab_store::testing::TestDatabase::postgres().await.expect("PostgreSQL must be running");
                super::$name(db).await;
            })*
        }
    };
}

on_both_backends!(
    a_finalize_job_succeeds_once_and_running_it_again_changes_nothing,
    a_broken_capture_fails_the_job_with_its_reason_and_deletes_nothing,
);

async fn stopped_session(store: &Store, storage: &LocalStorage, frames: u64) -> RecordingSession {
    store.ensure_local_user().await.unwrap();
    let project = Project::create(
        audiolab_domain::user::LOCAL_USER_ID,
        NewProject { name: "Jobs".into(), ..Default::default() },
        audiolab_domain::now(),
    )
    .unwrap();
    store.insert_project(&project).await.unwrap();
    let track = store
        .create_track(project.id, NewTrack { name: "Vox".into(), track_index: Some(0), ..Default::default() })
        .await
        .unwrap();
    let now = audiolab_domain::now();
    let id = RecordingSessionId::new();
    let session = RecordingSession {
        id,
        project_id: project.id,
        track_id: track.id,
        device_id: "mock_0".into(),
        status: RecordingStatus::Recording,
        start: Frames(4_800),
        applied_offset: Frames(0),
        capture_key: format!("captures/{id}"),
        error: None,
        created_at: now,
        updated_at: now,
    };
    store.insert_recording_session(&session).await.unwrap();
    let mut chunks = ChunkWriter::create(
        &storage.path(&session.capture_key).unwrap(),
        Manifest { channels: 1, sample_rate: 48_000 },
    )
    .unwrap();
    chunks.write(&vec![0.5; frames as usize]).unwrap();
    chunks.finish().unwrap();
    assert!(store.stop_recording_session(id, session.start, session.applied_offset).await.unwrap());
    let span = TakeSpan { capture_offset: 0, timeline_start: 4_800, frames };
    create_takes(store, &session, &[span], 1, 48_000).await.unwrap();
    session
}

async fn a_finalize_job_succeeds_once_and_running_it_again_changes_nothing(db: TestDatabase) {
    let store = db.open().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let storage = LocalStorage::new(dir.path());
    let session = stopped_session(&store, &storage, 60_000).await;

    let job = queue_finalize(&store, session.project_id, session.id).await.unwrap();
    let updates = std::sync::Mutex::new(Vec::new());
    let done =
        run_finalize(&store, &storage, job, session.id, |u| updates.lock().unwrap().push(u.status)).await.unwrap();
    assert_eq!(done.frames, 60_000);
    assert_eq!(*updates.lock().unwrap(), [JobStatus::Running, JobStatus::Succeeded]);
    let row = store.get_job(job).await.unwrap().unwrap();
    assert_eq!((row.status, row.progress), (JobStatus::Succeeded, 1.0));
    let clip = store.get_clip(done.clips[0]).await.unwrap().unwrap();
    assert_eq!((clip.status, clip.start, clip.length), (ClipStatus::Ready, Frames(4_800), Frames(60_000)));
    let audio = std::fs::metadata(storage.path(clip.audio_key.as_deref().unwrap()).unwrap()).unwrap();

    // Again (a retried delivery): nothing is rewritten or duplicated.
    let again = finalize_capture(&store, &storage, session.id).await.unwrap();
    assert_eq!(again.clips, done.clips);
    assert_eq!(store.list_takes(session.track_id).await.unwrap().len(), 1);
    let after = std::fs::metadata(storage.path(clip.audio_key.as_deref().unwrap()).unwrap()).unwrap();
    assert_eq!(after.modified().unwrap(), audio.modified().unwrap());
}

async fn a_broken_capture_fails_the_job_with_its_reason_and_deletes_nothing(db: TestDatabase) {
    let store = db.open().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let storage = LocalStorage::new(dir.path());
    let session = stopped_session(&store, &storage, 4_800).await;
    let capture = storage.path(&session.capture_key).unwrap();
    std::fs::write(capture.join("manifest"), "channels=0\n").unwrap();

    let job = queue_finalize(&store, session.project_id, session.id).await.unwrap();
    let err = run_finalize(&store, &storage, job, session.id, |_| {}).await.unwrap_err();
    assert!(!err.is_transient());
    let row = store.get_job(job).await.unwrap().unwrap();
    assert_eq!(row.status, JobStatus::Failed);
    assert!(row.error.as_deref().unwrap().contains("manifest"), "{:?}", row.error);
    let failed = store.get_recording_session(session.id).await.unwrap().unwrap();
    assert_eq!(failed.status, RecordingStatus::Failed);
    let takes = store.list_takes(session.track_id).await.unwrap();
    let clip = store.get_clip(takes[0].clip_id).await.unwrap().unwrap();
    assert_eq!(clip.status, ClipStatus::Failed);
    assert!(capture.join("chunk-000000.f32").exists(), "the raw capture is kept");
}
