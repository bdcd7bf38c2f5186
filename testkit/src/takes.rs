//! Fixtures for tests of jobs, here and in the tests of the processes that run them.

use audiolab_domain::project::{NewProject, Project};
use audiolab_domain::recording::{RecordingSession, RecordingStatus};
use audiolab_domain::track::NewTrack;
use audiolab_domain::{Frames, RecordingSessionId};
use audiolab_jobs::finalize::{TakeSpan, create_takes};
use audiolab_media::capture::{ChunkWriter, Manifest};
use audiolab_media::storage::Storage;
use audiolab_store::Store;

/// A project with one track whose take of `frames` frames of a constant 0.5 (on `channels`
/// channels, 48 kHz, placed at 0.1 s) is stopped and waits for its `finalize_capture` job.
pub async fn stopped_session(store: &Store, storage: &Storage, channels: u16, frames: u64) -> RecordingSession {
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
    let mut chunks =
        ChunkWriter::create(&storage.path(&session.capture_key).unwrap(), Manifest { channels, sample_rate: 48_000 })
            .unwrap();
    let second = vec![0.5; 48_000 * usize::from(channels)];
    let mut left = frames as usize * usize::from(channels);
    while left > 0 {
        let n = left.min(second.len());
        chunks.write(&second[..n]).unwrap();
        left -= n;
    }
    chunks.finish().unwrap();
    assert!(store.stop_recording_session(id, session.start, session.applied_offset).await.unwrap());
    let span = TakeSpan { capture_offset: 0, timeline_start: 4_800, frames };
    create_takes(store, &session, &[span], channels, 48_000, None).await.unwrap();
    session
}
