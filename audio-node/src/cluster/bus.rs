//! A node's subscription to the event bus: committed changes, deleted projects and revoked
//! rights from API processes, and job updates from workers, applied to the projects it hosts.

use crate::node::Node;
use audiolab_transport::bus::{BusEvent, MODEL_CHANNEL};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

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
