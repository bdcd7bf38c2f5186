//! A standalone node announces itself in the database while it runs, so API processes can
//! assign projects to it, and withdraws when it stops.

use crate::Node;
use audiolab_store::NodeLoad;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Heartbeats every `every` until `shutdown`, with how many engines the node has and may
/// have, then removes the node's row.
pub async fn announce(node: Arc<Node>, id: Uuid, url: String, every: Duration, shutdown: CancellationToken) {
    let store = node.store().clone();
    let mut ticks = tokio::time::interval(every);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = ticks.tick() => {
                let load = NodeLoad { engines: node.engines().await as i64, max_engines: node.limits().max_engines as i64 };
                if let Err(error) = store.heartbeat_node(id, &url, load).await {
                    tracing::warn!(%error, "node heartbeat failed");
                }
            }
        }
    }
    if let Err(error) = store.remove_node(id).await {
        tracing::warn!(%error, "could not withdraw the node");
    }
}
