//! The AudioLab audio node: hosts the real-time engine sessions and the WebSocket transport.

pub mod cluster;
pub mod device;
pub mod engine;
pub mod node;
pub mod recording;
pub mod session;
pub mod transport;

pub use node::Node;

use audiolab_transport::gate::OriginPolicy;
use audiolab_transport::{CONTROL_PATH, WS_PATH};
use poem::web::{Data, Json};
use poem::{EndpointExt, IntoResponse, Route, get, handler, http::StatusCode};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The WebSocket transport endpoint, to mount at [`audiolab_transport::WS_PATH`]; browser pages of other origins
/// than the server's own and `origins` are refused.
pub fn ws_endpoint(node: Arc<Node>, origins: OriginPolicy) -> impl poem::Endpoint {
    get(transport::ws::ws_audio).data(node).data(origins)
}

/// The node's own HTTP routes when it runs as a separate process: all but `/health` need the
/// deployment's internal `secret` when one is set.
pub fn app(node: Arc<Node>, secret: Option<String>) -> impl poem::Endpoint {
    let secret: Option<Arc<str>> = secret.map(Arc::from);
    Route::new()
        .at("/health", get(health))
        .at(WS_PATH, get(transport::ws::ws_audio))
        .at(CONTROL_PATH, poem::post(transport::internal::control))
        .data(node)
        .data(OriginPolicy::default())
        .around(move |endpoint, req| audiolab_transport::gate::internal_only(endpoint, req, secret.clone()))
}

#[handler]
async fn health(node: Data<&Arc<Node>>) -> impl IntoResponse {
    let reachable = node.store().ping().await.is_ok();
    let engine = node.output().engine_name();
    let status = if reachable { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = serde_json::json!({
        "status": if reachable { "healthy" } else { "unhealthy" },
        "role": "node",
        "version": env!("CARGO_PKG_VERSION"),
        "services": {
            "database": if reachable { "healthy" } else { "unhealthy" },
            "audio_engine": "healthy",
            "audio_engine_kind": engine,
        },
    });
    Json(body).with_status(status)
}

/// Runs the node until `shutdown` is cancelled, then stops every engine.
pub async fn run(
    node: Arc<Node>,
    me: Option<uuid::Uuid>,
    stale_after: std::time::Duration,
    shutdown: CancellationToken,
) {
    tracing::info!(backend = ?node.store().backend(), engine = node.output().engine_name(), "audio node ready");
    if me.is_none() {
        // `serve`: takes a crash interrupted are this process's own.
        node.recover_interrupted(stale_after).await;
    }
    node.resume_finalize_jobs(me, stale_after).await;
    let mut idle_checks = tokio::time::interval(
        node.limits().idle_after.clamp(std::time::Duration::from_millis(100), std::time::Duration::from_secs(5)) / 2,
    );
    // Cloud mode: the takes of nodes that died are claimed and recovered by a live one.
    let mut orphan_checks = tokio::time::interval(stale_after / 2);
    // §13: an engine plays nothing but the stored project for more than a second, whatever
    // announcements were lost on the way.
    let mut revision_checks = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = idle_checks.tick() => {
                node.unload_idle().await;
            }
            _ = orphan_checks.tick(), if me.is_some() => node.adopt_orphaned_recordings(stale_after).await,
            _ = revision_checks.tick() => node.catch_up().await,
        }
    }
    node.unload_all().await;
    tracing::info!("audio node stopped");
}
