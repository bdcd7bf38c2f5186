//! The AudioLab audio node: hosts the real-time engine sessions and the WebSocket transport.

pub mod backend;
pub mod bus;
pub mod client_take;
pub mod coverage;
#[cfg(feature = "hw-audio")]
pub mod cpal_input;
#[cfg(feature = "hw-audio")]
pub mod cpal_output;
pub mod device;
pub mod engine;
mod follow;
pub mod gate;
pub mod hub;
pub mod internal;
pub mod node;
pub mod play_map;
pub mod pool;
pub mod protocol;
pub mod recording;
mod recovery;
pub mod registry;
pub mod remote;
pub mod reports;
pub mod revocation;
pub mod session;
pub mod wire;
pub mod ws;

pub use node::Node;

use poem::web::{Data, Json};
use poem::{EndpointExt, IntoResponse, Route, get, handler, http::StatusCode};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Where the WebSocket transport is mounted, on whichever server hosts the node.
pub const WS_PATH: &str = "/ws/audio/:project_id";

/// The WebSocket transport endpoint, to mount at [`WS_PATH`]; browser pages of other origins
/// than the server's own and `origins` are refused.
pub fn ws_endpoint(node: Arc<Node>, origins: gate::OriginPolicy) -> impl poem::Endpoint {
    get(ws::ws_audio).data(node).data(origins)
}

/// `/asyncapi.json`: the socket protocol's AsyncAPI document, on whichever server hosts it.
pub fn asyncapi_endpoint() -> impl poem::Endpoint {
    get(asyncapi)
}

#[handler]
fn asyncapi() -> impl IntoResponse {
    protocol::asyncapi_json().with_content_type("application/json")
}

/// The WebSocket route of an API process, proxying to the project's node; mount at [`WS_PATH`].
pub fn ws_proxy_endpoint(nodes: Arc<remote::RemoteNodes>, origins: gate::OriginPolicy) -> impl poem::Endpoint {
    get(remote::ws_proxy).data(nodes).data(origins)
}

/// The node's own HTTP routes when it runs as a separate process: all but `/health` need the
/// deployment's internal `secret` when one is set.
pub fn app(node: Arc<Node>, secret: Option<String>) -> impl poem::Endpoint {
    let secret: Option<Arc<str>> = secret.map(Arc::from);
    Route::new()
        .at("/health", get(health))
        .at(WS_PATH, get(ws::ws_audio))
        .at(internal::CONTROL_PATH, poem::post(internal::control))
        .data(node)
        .data(gate::OriginPolicy::default())
        .around(move |endpoint, req| gate::internal_only(endpoint, req, secret.clone()))
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
