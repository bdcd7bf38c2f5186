//! The AudioLab audio node: hosts the real-time engine sessions and the WebSocket transport.

pub mod engine;

use audiolab_store::Store;
use poem::web::{Data, Json};
use poem::{EndpointExt, IntoResponse, Route, get, handler, http::StatusCode};
use tokio_util::sync::CancellationToken;

/// The node's own HTTP routes (used when it runs as a separate process).
pub fn app(store: Store) -> impl poem::Endpoint {
    Route::new().at("/health", get(health)).data(store)
}

#[handler]
async fn health(store: Data<&Store>) -> impl IntoResponse {
    let reachable = store.ping().await.is_ok();
    let status = if reachable {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "status": if reachable { "healthy" } else { "unhealthy" },
        "role": "node",
        "version": env!("CARGO_PKG_VERSION"),
        "services": { "database": if reachable { "connected" } else { "unavailable" }, "audio_engine": "mock" },
    });
    Json(body).with_status(status)
}

/// Runs the node's background duties until `shutdown` is cancelled.
pub async fn run(store: Store, shutdown: CancellationToken) {
    tracing::info!(backend = ?store.backend(), engine = "mock", "audio node ready");
    shutdown.cancelled().await;
    tracing::info!("audio node stopped");
}
