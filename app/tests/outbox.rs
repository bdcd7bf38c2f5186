//! The outbox (§13): a change whose announcement cannot be delivered is still committed, and
//! is announced later, in order, once the port takes it again.

use audiolab_app::Changes;
use audiolab_app::outbox::Courier;
use audiolab_domain::history::ProjectChange;
use audiolab_domain::project::{NewProject, Project};
use audiolab_domain::track::{NewTrack, TrackPatch};
use audiolab_domain::transport::*;
use audiolab_domain::user::Actor;
use audiolab_domain::{ProjectId, RecordingSessionId, TrackId};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A port to the engines that is down for its first `failures` announcements.
#[derive(Default)]
struct FlakyEngines {
    failures: Mutex<usize>,
    heard: Mutex<Vec<ProjectChange>>,
    revocations: Mutex<Vec<audiolab_domain::user::Revocation>>,
}

impl FlakyEngines {
    /// Whether this call finds the bus down (using up one failure).
    fn down_now(&self) -> bool {
        let mut failures = self.failures.lock().unwrap();
        let down = *failures > 0;
        *failures = failures.saturating_sub(1);
        down
    }
}

fn down() -> TransportError {
    TransportError::Unavailable("the bus is down".into())
}

#[async_trait::async_trait]
impl AudioControl for FlakyEngines {
    async fn load(&self, _: ProjectId) -> TransportResult<LoadSummary> {
        Err(down())
    }
    async fn play(&self, _: ProjectId, _: Option<f64>) -> TransportResult<TransportStatus> {
        Err(down())
    }
    async fn pause(&self, _: ProjectId) -> TransportResult<TransportStatus> {
        Err(down())
    }
    async fn resume(&self, _: ProjectId) -> TransportResult<TransportStatus> {
        Err(down())
    }
    async fn stop(&self, _: ProjectId, _: Option<&audiolab_domain::user::Actor>) -> TransportResult<TransportStatus> {
        Err(down())
    }
    async fn seek(&self, _: ProjectId, _: f64) -> TransportResult<TransportStatus> {
        Err(down())
    }
    async fn status(&self, _: ProjectId) -> TransportResult<TransportStatus> {
        Err(down())
    }
    async fn set_metronome(&self, _: ProjectId, _: MetronomeSettings) -> TransportResult<TransportStatus> {
        Err(down())
    }
    async fn record_start(&self, _: ProjectId, _: RecordRequest) -> TransportResult<RecordingStarted> {
        Err(down())
    }
    async fn record_stop(
        &self,
        _: ProjectId,
        _: Option<TrackId>,
        _: RecordingSessionId,
        _: Option<&Actor>,
    ) -> TransportResult<RecordingStopped> {
        Err(down())
    }
    async fn announce(&self, change: &ProjectChange) -> TransportResult<()> {
        if self.down_now() {
            return Err(down());
        }
        self.heard.lock().unwrap().push(change.clone());
        Ok(())
    }
    async fn project_deleted(&self, _: ProjectId) {}
    async fn revoked(&self, revocation: audiolab_domain::user::Revocation) -> TransportResult<()> {
        if self.down_now() {
            return Err(down());
        }
        self.revocations.lock().unwrap().push(revocation);
        Ok(())
    }
    async fn detach_device(&self, _: ProjectId) -> TransportResult<TransportStatus> {
        Err(down())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_whose_announcement_failed_are_announced_later_in_order() {
    let database = audiolab_testkit::TestDatabase::sqlite();
    let store = database.open().await.unwrap();
    store.ensure_local_user().await.unwrap();
    let actor = Actor::local();
    let project =
        Project::create(actor.id, NewProject { name: "Flaky".into(), ..Default::default() }, audiolab_domain::now())
            .unwrap();
    store.insert_project(&project).await.unwrap();
    let engines = Arc::new(FlakyEngines { failures: Mutex::new(3), ..Default::default() });
    let courier = Courier::new(store.clone(), engines.clone(), None);
    let changes = Changes::new(&courier, Some(&actor));

    let track = changes.create_track(project.id, NewTrack { name: "Bass".into(), ..Default::default() }).await.unwrap();
    let patch = TrackPatch { volume: Some(0.25), ..Default::default() };
    changes.update_track(&track.value, &patch).await.unwrap();
    assert!(engines.heard.lock().unwrap().is_empty(), "the port was down for both");
    assert_eq!(store.get_track(track.value.id).await.unwrap().unwrap().volume.get(), 0.25, "stored anyway");
    assert_eq!(store.outbox_backlog().await.unwrap(), 2);

    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(courier.clone().run(shutdown.clone()));
    // The committer's grace period passes, then the loop retries with backoff.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while engines.heard.lock().unwrap().len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "the changes were never announced");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let revisions: Vec<i64> = engines.heard.lock().unwrap().iter().map(|c| c.revision).collect();
    assert_eq!(revisions, [1, 2], "in the order they were made");
    assert_eq!(store.outbox_backlog().await.unwrap(), 0);

    // A right taken away while the bus is down reaches the other processes once it is back.
    *engines.failures.lock().unwrap() = 2;
    let removed = audiolab_domain::user::Revocation::Removed { project: project.id, user: actor.id };
    courier.revoke(removed.clone()).await;
    assert!(engines.revocations.lock().unwrap().is_empty(), "the bus was down");
    while engines.revocations.lock().unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the revocation was never delivered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(*engines.revocations.lock().unwrap(), [removed]);
    shutdown.cancel();
    running.await.unwrap();
}
