//! The event bus across processes: API processes publish model changes and workers publish job
//! updates on Redis; every node subscribes and applies those for the projects it hosts.

use crate::node::Node;
use audiolab_domain::transport::{AudioControl, ModelChange};
use audiolab_domain::{ProjectId, TrackId};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The channel of model changes made by API processes, for the nodes.
pub const MODEL_CHANNEL: &str = "audiolab:model_changed";

/// A change an API process made, as it travels to the nodes. Ids only: a node reads the rows
/// fresh from the database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BusEvent {
    /// A track's mixer or metadata changed.
    TrackChanged {
        project_id: ProjectId,
        track_id: TrackId,
        #[serde(default)]
        actor: Option<audiolab_domain::user::Actor>,
    },
    /// A track, clip or loop region of the project was created, changed or deleted.
    ProjectChanged { project_id: ProjectId, change: ModelChange },
    /// The project was deleted.
    ProjectDeleted { project_id: ProjectId },
    /// A right was taken away (a token revoked, a member removed or demoted).
    Revoked(audiolab_domain::user::Revocation),
}

/// Publishes `event` for every node.
pub async fn publish(redis: &redis::Client, event: &BusEvent) -> redis::RedisResult<()> {
    let mut connection = redis.get_multiplexed_async_connection().await?;
    let payload = serde_json::to_string(event).unwrap_or_default();
    redis::cmd("PUBLISH").arg(MODEL_CHANNEL).arg(payload).query_async::<i64>(&mut connection).await?;
    Ok(())
}

/// Applies published track changes and job updates (on `jobs_channel`) on this node until
/// `shutdown`, reconnecting when Redis goes away. A track message carries ids only; the track
/// is read fresh from the database.
pub async fn follow(redis: redis::Client, jobs_channel: String, node: Arc<Node>, shutdown: CancellationToken) {
    loop {
        let connected = async {
            let mut pubsub = redis.get_async_pubsub().await?;
            pubsub.subscribe(MODEL_CHANNEL).await?;
            pubsub.subscribe(&jobs_channel).await?;
            tracing::info!("following track changes and job updates on Redis");
            let mut messages = pubsub.on_message();
            while let Some(message) = messages.next().await {
                let Ok(payload) = message.get_payload::<String>() else { continue };
                if message.get_channel_name() == MODEL_CHANNEL {
                    apply(&node, &payload).await;
                } else if let Ok(update) = serde_json::from_str(&payload) {
                    node.job_changed(&update).await;
                }
            }
            redis::RedisResult::Ok(())
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            result = connected => {
                if let Err(error) = result {
                    tracing::warn!(%error, "lost Redis; reconnecting");
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

async fn apply(node: &Node, payload: &str) {
    let event = match serde_json::from_str::<BusEvent>(payload) {
        Ok(event) => event,
        Err(error) => return tracing::warn!(%error, "ignoring a malformed bus message"),
    };
    match event {
        BusEvent::TrackChanged { track_id, actor, .. } => match node.store().get_track(track_id).await {
            Ok(Some(track)) => node.track_changed(&track, actor.as_ref()).await,
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "cannot read a changed track"),
        },
        BusEvent::ProjectChanged { project_id, change } => node.project_changed(project_id, change).await,
        BusEvent::ProjectDeleted { project_id } => node.project_deleted(project_id).await,
        BusEvent::Revoked(revocation) => node.revoke(revocation).await,
    }
}
