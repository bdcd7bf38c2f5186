//! The event bus across processes: API processes publish model changes and workers publish job
//! updates on Redis; every node subscribes and applies those for the projects it hosts.

use crate::node::Node;
use audiolab_domain::ProjectId;
use audiolab_domain::history::ProjectChange;
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
    /// A change to the project was committed (§13): its revision and the rows it touched.
    Changed(ProjectChange),
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

/// Applies published changes and job updates (on `jobs_channel`) on this node until
/// `shutdown`, reconnecting when Redis goes away. A change carries ids and a revision only; the
/// rows are read fresh from the database. Whatever was published while the node was not
/// listening is caught up on reconnecting: every loaded engine re-reads its project.
pub async fn follow(redis: redis::Client, jobs_channel: String, node: Arc<Node>, shutdown: CancellationToken) {
    loop {
        let connected = async {
            let mut pubsub = redis.get_async_pubsub().await?;
            pubsub.subscribe(MODEL_CHANNEL).await?;
            pubsub.subscribe(&jobs_channel).await?;
            tracing::info!("following changes and job updates on Redis");
            node.catch_up().await;
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
        BusEvent::Changed(change) => node.apply_change(&change).await,
        BusEvent::ProjectDeleted { project_id } => {
            audiolab_domain::transport::AudioControl::project_deleted(node, project_id).await
        }
        BusEvent::Revoked(revocation) => node.revoke(revocation).await,
    }
}
