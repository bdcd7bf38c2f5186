//! The event bus across processes: API processes publish track changes and workers publish job
//! updates on Redis; every node subscribes and applies those for the projects it hosts.

use crate::node::Node;
use audiolab_domain::track::Track;
use audiolab_domain::transport::AudioControl;
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const TRACK_CHANNEL: &str = "audiolab:track_changed";

/// Publishes a changed track for the node hosting its project.
pub async fn publish_track(redis: &redis::Client, track: &Track) -> redis::RedisResult<()> {
    let mut connection = redis.get_multiplexed_async_connection().await?;
    let payload = serde_json::json!({"project_id": track.project_id, "track_id": track.id}).to_string();
    redis::cmd("PUBLISH").arg(TRACK_CHANNEL).arg(payload).query_async::<i64>(&mut connection).await?;
    Ok(())
}

/// Applies published track changes and job updates (on `jobs_channel`) on this node until
/// `shutdown`, reconnecting when Redis goes away. A track message carries ids only; the track
/// is read fresh from the database.
pub async fn follow(redis: redis::Client, jobs_channel: String, node: Arc<Node>, shutdown: CancellationToken) {
    loop {
        let connected = async {
            let mut pubsub = redis.get_async_pubsub().await?;
            pubsub.subscribe(TRACK_CHANNEL).await?;
            pubsub.subscribe(&jobs_channel).await?;
            tracing::info!("following track changes and job updates on Redis");
            let mut messages = pubsub.on_message();
            while let Some(message) = messages.next().await {
                let Ok(payload) = message.get_payload::<String>() else { continue };
                if message.get_channel_name() == TRACK_CHANNEL {
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
    let Ok(value) = serde_json::from_str::<serde_json::Value>(payload) else { return };
    let Some(track_id) = value["track_id"].as_str().and_then(|s| s.parse::<uuid::Uuid>().ok()) else { return };
    match node.store().get_track(track_id.into()).await {
        Ok(Some(track)) => node.track_changed(&track).await,
        Ok(None) => {}
        Err(error) => tracing::warn!(%error, "cannot read a changed track"),
    }
}
