//! What every handler can reach: the store, the settings, and what this process knows about
//! its environment and audio engine.

use audiolab_config::{AudioCapability, EnvironmentKind, Settings};
use audiolab_domain::UserId;
use audiolab_domain::user::LOCAL_USER_ID;
use audiolab_store::Store;
use std::sync::Arc;

/// Shared state of the API, cheap to clone.
#[derive(Clone)]
pub struct ApiContext {
    pub store: Store,
    pub settings: Arc<Settings>,
    pub environment: EnvironmentKind,
    pub audio: AudioStatus,
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

impl ApiContext {
    /// The user whose projects a request may see. Until accounts land (§8) every request acts
    /// as the local user; handlers already scope every query by owner through this.
    pub fn owner(&self) -> UserId {
        LOCAL_USER_ID
    }
}

use crate::error::{ApiError, ApiResult};
use audiolab_domain::project::Project;
use audiolab_domain::track::Track;
use audiolab_domain::{ProjectId, TrackId};

impl ApiContext {
    /// The project, if it exists and the caller owns it (otherwise 404: whether someone else's
    /// project exists is not the caller's business).
    pub async fn owned_project(&self, id: ProjectId) -> ApiResult<Project> {
        match self.store.get_project(id).await? {
            Some(project) if project.owner_id == self.owner() => Ok(project),
            _ => Err(ApiError::not_found("project")),
        }
    }

    /// The track and its project, if the caller owns the project.
    pub async fn owned_track(&self, id: TrackId) -> ApiResult<(Track, Project)> {
        let track = self
            .store
            .get_track(id)
            .await?
            .ok_or_else(|| ApiError::not_found("track"))?;
        let project = self
            .owned_project(track.project_id)
            .await
            .map_err(|_| ApiError::not_found("track"))?;
        Ok((track, project))
    }
}
