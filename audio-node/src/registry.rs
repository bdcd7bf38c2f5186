//! A standalone node announces itself in the database while it runs, so API processes can
//! assign projects to it, and withdraws when it stops.

use audiolab_store::Store;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Heartbeats every `every` until `shutdown`, then removes the node's row.
pub async fn announce(store: Store, id: Uuid, url: String, every: Duration, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(every);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = ticks.tick() => {
                if let Err(error) = store.heartbeat_node(id, &url).await {
                    tracing::warn!(%error, "node heartbeat failed");
                }
            }
        }
    }
    if let Err(error) = store.remove_node(id).await {
        tracing::warn!(%error, "could not withdraw the node");
    }
}
