//! How an API process reaches engines in node processes: transport commands go to the node the
//! project is assigned to, over its internal control route (the socket's own typed commands);
//! announcements go to the hosting node directly and, failing that, out on the Redis bus.

use crate::CONTROL_PATH;
use crate::bus::BusEvent;
use crate::protocol::{ControlCommand, ControlOutcome, InternalCommand};
use audiolab_domain::history::ProjectChange;
use audiolab_domain::transport::{
    AudioControl, LoadSummary, RecordRequest, RecordingStarted, RecordingStopped, TransportError, TransportResult,
    TransportStatus,
};
use audiolab_domain::user::Actor;
use audiolab_domain::{ProjectId, RecordingSessionId, TrackId};
use audiolab_store::Store;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::time::Duration;

/// How long a node may take to answer a control command.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(15);

/// A command the deployment sends for itself, for no user.
fn internal(command: ControlCommand) -> InternalCommand {
    InternalCommand { actor: None, command }
}

pub struct RemoteNodes {
    pub(crate) store: Store,
    http: reqwest::Client,
    redis: Option<redis::Client>,
    stale_after: Duration,
    /// The deployment's internal secret, presented to nodes.
    pub(crate) secret: Option<String>,
}

impl RemoteNodes {
    pub fn new(store: Store, redis: Option<redis::Client>, stale_after: Duration, secret: Option<String>) -> Self {
        let http = reqwest::Client::builder().timeout(CONTROL_TIMEOUT).build().unwrap_or_default();
        Self { store, http, redis, stale_after, secret }
    }

    /// The base URL of the live node hosting `project` (assigning one if needed).
    pub async fn node_url(&self, project: ProjectId) -> TransportResult<String> {
        self.node(project).await.map(|node| node.url)
    }

    /// The live node hosting `project` (assigning one if needed).
    async fn node(&self, project: ProjectId) -> TransportResult<audiolab_store::AudioNode> {
        match self.store.node_for_project(project, self.stale_after).await {
            Ok(Some(node)) => Ok(node),
            Ok(None) => Err(TransportError::Unavailable("no audio node is running".into())),
            Err(error) => {
                tracing::warn!(%error, "cannot look up audio nodes");
                Err(TransportError::Unavailable("cannot look up audio nodes: the database is unavailable".into()))
            }
        }
    }

    /// The URL of the live node the project is assigned to, without assigning it.
    async fn host_url(&self, project: ProjectId) -> Result<Option<String>, audiolab_store::StoreError> {
        let Some(host) = self.store.live_host_of(project, self.stale_after).await? else { return Ok(None) };
        let live = self.store.live_nodes(self.stale_after).await?;
        Ok(live.into_iter().find(|n| n.id == host).map(|n| n.url))
    }

    async fn publish(&self, event: BusEvent) -> TransportResult<()> {
        let Some(redis) = &self.redis else { return Ok(()) };
        crate::bus::publish(redis, &event).await.map_err(|error| {
            tracing::warn!(%error, "could not publish to the nodes");
            TransportError::Unavailable(format!("the bus to the audio nodes is unavailable: {error}"))
        })
    }

    /// Sends a command to the project's node. A node that refuses because it is full (its
    /// heartbeat says so) loses the project to a live node with room, which gets the command.
    async fn call<T: DeserializeOwned>(&self, project: ProjectId, command: ControlCommand) -> TransportResult<T> {
        self.call_as(project, None, command).await
    }

    /// As [`RemoteNodes::call`], for `actor`.
    async fn call_as<T: DeserializeOwned>(
        &self,
        project: ProjectId,
        actor: Option<&Actor>,
        command: ControlCommand,
    ) -> TransportResult<T> {
        let command = InternalCommand { actor: actor.cloned(), command };
        let node = self.node(project).await?;
        let refused = match self.call_at(&node.url, project, &command).await {
            Err(TransportError::Unavailable(message)) => message,
            answered => return answered,
        };
        let full = self
            .store
            .live_nodes(self.stale_after)
            .await
            .ok()
            .and_then(|live| live.into_iter().find(|n| n.id == node.id).map(|n| n.is_full()));
        if full == Some(true) {
            if let Ok(Some(other)) = self.store.move_project(project, node.id, self.stale_after).await {
                tracing::info!(%project, from = %node.id, to = %other.id, "project moved off a full node");
                return self.call_at(&other.url, project, &command).await;
            }
        }
        Err(TransportError::Unavailable(refused))
    }

    async fn call_at<T: DeserializeOwned>(
        &self,
        url: &str,
        project: ProjectId,
        command: &InternalCommand,
    ) -> TransportResult<T> {
        let endpoint = format!("{url}{}", CONTROL_PATH.replace(":project_id", &project.to_string()));
        let response = self
            .http
            .post(endpoint)
            .header(crate::gate::SECRET_HEADER, self.secret.as_deref().unwrap_or_default())
            .json(command)
            .send()
            .await
            .map_err(|e| TransportError::Unavailable(format!("the audio node did not answer: {e}")))?;
        let outcome: ControlOutcome = response
            .json()
            .await
            .map_err(|e| TransportError::Unavailable(format!("bad answer from the audio node: {e}")))?;
        match outcome {
            ControlOutcome { success: true, result, .. } => serde_json::from_value(result.unwrap_or(Value::Null))
                .map_err(|e| TransportError::Internal(format!("bad result from the audio node: {e}"))),
            ControlOutcome { error, .. } => {
                Err(error.unwrap_or_else(|| TransportError::Internal("the audio node refused the command".into())))
            }
        }
    }
}

#[async_trait::async_trait]
impl AudioControl for RemoteNodes {
    async fn load(&self, project: ProjectId) -> TransportResult<LoadSummary> {
        self.call(project, ControlCommand::Load {}).await
    }
    async fn play(&self, project: ProjectId, position: Option<f64>) -> TransportResult<TransportStatus> {
        self.call(project, ControlCommand::Play { position }).await
    }
    async fn pause(&self, project: ProjectId) -> TransportResult<TransportStatus> {
        self.call(project, ControlCommand::Pause {}).await
    }
    async fn resume(&self, project: ProjectId) -> TransportResult<TransportStatus> {
        self.call(project, ControlCommand::Resume {}).await
    }
    async fn stop(&self, project: ProjectId, actor: Option<&Actor>) -> TransportResult<TransportStatus> {
        self.call_as(project, actor, ControlCommand::Stop {}).await
    }
    async fn seek(&self, project: ProjectId, position: f64) -> TransportResult<TransportStatus> {
        self.call(project, ControlCommand::Seek { position }).await
    }
    async fn status(&self, project: ProjectId) -> TransportResult<TransportStatus> {
        self.call(project, ControlCommand::Status {}).await
    }
    async fn set_metronome(
        &self,
        project: ProjectId,
        metronome: audiolab_domain::transport::MetronomeSettings,
    ) -> TransportResult<TransportStatus> {
        self.call(project, ControlCommand::Metronome(metronome)).await
    }
    async fn record_start(&self, project: ProjectId, request: RecordRequest) -> TransportResult<RecordingStarted> {
        self.call(project, ControlCommand::RecordStart(request)).await
    }
    async fn record_stop(
        &self,
        project: ProjectId,
        track: Option<TrackId>,
        session: RecordingSessionId,
        actor: Option<&Actor>,
    ) -> TransportResult<RecordingStopped> {
        let command = ControlCommand::RecordStop { session_id: session.0, track_id: track.map(|t| t.0) };
        self.call_as(project, actor, command).await
    }
    /// Straight to the node hosting the project, so the answer to the change means its engine
    /// plays it; over the bus when that node cannot be reached (and the outbox tries again
    /// when neither can).
    async fn announce(&self, change: &ProjectChange) -> TransportResult<()> {
        let host = self.host_url(change.project_id).await.ok().flatten();
        if let Some(url) = host {
            let direct: TransportResult<Value> =
                self.call_at(&url, change.project_id, &internal(ControlCommand::Announce(change.clone()))).await;
            match direct {
                Ok(_) => return Ok(()),
                Err(error) => tracing::debug!(%error, "the hosting node did not take a change; trying the bus"),
            }
        }
        self.publish(BusEvent::Changed(change.clone())).await
    }
    async fn revoked(&self, revocation: audiolab_domain::user::Revocation) -> TransportResult<()> {
        self.publish(BusEvent::Revoked(revocation)).await
    }
    async fn detach_device(&self, project: ProjectId) -> TransportResult<TransportStatus> {
        self.call(project, ControlCommand::DetachDevice {}).await
    }
    async fn project_deleted(&self, project: ProjectId) {
        // The hosting node stops the takes before the rows go; every node hears it on the bus.
        match self.host_url(project).await {
            Ok(Some(url)) => {
                if let Err(error) = self.call_at::<Value>(&url, project, &internal(ControlCommand::Unload {})).await {
                    tracing::warn!(%project, %error, "the audio node could not unload a deleted project");
                }
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%project, %error, "cannot look up the node of a deleted project"),
        }
        let _ = self.publish(BusEvent::ProjectDeleted { project_id: project }).await;
    }
}
