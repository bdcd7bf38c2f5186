//! What every handler can reach: the store, the settings, and what this process knows about
//! its environment and audio engine.

use audiolab_config::{AudioCapability, EnvironmentKind, Settings};
use audiolab_domain::transport::{AudioControl, TransportError, TransportResult};
use audiolab_store::Store;
use std::sync::Arc;

/// Shared state of the API, cheap to clone.
#[derive(Clone)]
pub struct ApiContext {
    pub store: Store,
    pub settings: Arc<Settings>,
    pub environment: EnvironmentKind,
    pub audio_status: AudioStatus,
    /// The engines: in this process (`serve`) or reached over the network (`api`).
    pub audio: Arc<dyn AudioControl>,
    /// Where audio objects (takes, peaks, mixdowns) are kept.
    pub storage: audiolab_media::storage::Storage,
    /// The job queue the workers take mixdowns and imports from.
    pub jobs: Arc<dyn audiolab_domain::job::JobSubmitter>,
    /// Whether requests need a token.
    pub auth_enabled: bool,
    /// Failed logins and registrations, counted per address (and username).
    pub limits: Arc<audiolab_app::accounts::Limits>,
    /// Delivers what follows a committed change: announcements through `audio`, jobs to `jobs`.
    pub courier: Arc<audiolab_app::outbox::Courier>,
    /// Where job state changes made here (a cancel) go, as the worker's do: to the nodes.
    pub job_events: audiolab_jobs::events::JobEvents,
}

/// What the audio side of this deployment can do, as `/health` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioStatus {
    pub capability: AudioCapability,
    /// `"mock"` (clock thread), `"cpal"` (sound card) or `"remote"` (engines run in node processes).
    pub engine: &'static str,
    pub has_hardware: bool,
    /// Whether takes can be recorded while other tracks play.
    pub overdubbing: bool,
}

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use audiolab_domain::project::Project;
use audiolab_domain::track::Track;
use audiolab_domain::user::Need;
use audiolab_domain::{ProjectId, TrackId};

impl ApiContext {
    /// Whether a track can record from `device_id` (a virtual device, or a sound-card input of
    /// the audio node).
    pub fn has_input_device(&self, device_id: &str) -> bool {
        self.audio.input_devices().iter().any(|d| d.device_id == device_id)
    }

    /// The use cases every change goes through: the store, then the engine and the clients,
    /// each change named after `caller`.
    pub fn changes<'a>(&'a self, caller: &'a Caller) -> audiolab_app::Changes<'a> {
        audiolab_app::Changes::new(&self.courier, Some(&caller.actor))
    }

    /// The project, if the caller is a member whose role allows `need`: 404 to anyone else
    /// (whether someone else's project exists is not their business), 403 to a member whose
    /// role is too small.
    pub async fn project(&self, caller: &Caller, id: ProjectId, need: Need) -> ApiResult<Project> {
        self.project_as(caller, id, need, "project").await
    }

    /// [`Self::project`] for the project of something else, whose 404 names that thing ("clip").
    pub async fn project_as(
        &self,
        caller: &Caller,
        id: ProjectId,
        need: Need,
        what: &'static str,
    ) -> ApiResult<Project> {
        let (project, _) = audiolab_app::access::project(&self.store, &caller.actor, id, need, what).await?;
        Ok(project)
    }

    /// The track and its project, if the caller's role in the project allows `need`.
    pub async fn track(&self, caller: &Caller, id: TrackId, need: Need) -> ApiResult<(Track, Project)> {
        let track = self.store.get_track(id).await?.ok_or_else(|| ApiError::not_found("track"))?;
        let project = self.project_as(caller, track.project_id, need, "track").await?;
        Ok((track, project))
    }
}

/// The engine port of an API process that has no engine to reach: every transport request is
/// a 503 saying so, and track changes are only stored.
pub struct NoAudio;

#[async_trait::async_trait]
impl AudioControl for NoAudio {
    async fn load(&self, _: ProjectId) -> TransportResult<audiolab_domain::transport::LoadSummary> {
        Err(unavailable())
    }
    async fn play(&self, _: ProjectId, _: Option<f64>) -> TransportResult<audiolab_domain::transport::TransportStatus> {
        Err(unavailable())
    }
    async fn pause(&self, _: ProjectId) -> TransportResult<audiolab_domain::transport::TransportStatus> {
        Err(unavailable())
    }
    async fn resume(&self, _: ProjectId) -> TransportResult<audiolab_domain::transport::TransportStatus> {
        Err(unavailable())
    }
    async fn stop(
        &self,
        _: ProjectId,
        _: Option<&audiolab_domain::user::Actor>,
    ) -> TransportResult<audiolab_domain::transport::TransportStatus> {
        Err(unavailable())
    }
    async fn seek(&self, _: ProjectId, _: f64) -> TransportResult<audiolab_domain::transport::TransportStatus> {
        Err(unavailable())
    }
    async fn status(&self, _: ProjectId) -> TransportResult<audiolab_domain::transport::TransportStatus> {
        Err(unavailable())
    }
    async fn set_metronome(
        &self,
        _: ProjectId,
        _: audiolab_domain::transport::MetronomeSettings,
    ) -> TransportResult<audiolab_domain::transport::TransportStatus> {
        Err(unavailable())
    }
    async fn record_start(
        &self,
        _: ProjectId,
        _: audiolab_domain::transport::RecordRequest,
    ) -> TransportResult<audiolab_domain::transport::RecordingStarted> {
        Err(unavailable())
    }
    async fn record_stop(
        &self,
        _: ProjectId,
        _: Option<TrackId>,
        _: audiolab_domain::RecordingSessionId,
        _: Option<&audiolab_domain::user::Actor>,
    ) -> TransportResult<audiolab_domain::transport::RecordingStopped> {
        Err(unavailable())
    }
    async fn announce(&self, _: &audiolab_domain::history::ProjectChange) -> TransportResult<()> {
        Ok(())
    }
    async fn project_deleted(&self, _: ProjectId) {}
    async fn revoked(&self, _: audiolab_domain::user::Revocation) -> TransportResult<()> {
        Ok(())
    }
    async fn detach_device(&self, _: ProjectId) -> TransportResult<audiolab_domain::transport::TransportStatus> {
        Err(unavailable())
    }
}

fn unavailable() -> TransportError {
    TransportError::Unavailable("no audio node is reachable from this API process".into())
}
