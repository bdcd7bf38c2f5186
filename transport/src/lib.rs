//! What an API process and a node speak: the socket protocol in types (and its AsyncAPI
//! document), the binary audio frames, the gate that admits sockets and guards internal routes,
//! the bus events, and the API side of the boundary — the node client that drives engines in
//! node processes and the socket proxy. Nothing here links the engine, so the `api` role needs
//! none of it.

pub mod bus;
pub mod gate;
pub mod nodes;
pub mod protocol;
pub mod proxy;
pub mod wire;

use poem::{EndpointExt, IntoResponse, get, handler};
use std::sync::Arc;

/// Where the WebSocket transport is mounted, on whichever server hosts it (a node, or an API
/// process proxying to one).
pub const WS_PATH: &str = "/ws/audio/:project_id";

/// A node's internal control route, through which API processes run commands on its engines.
pub const CONTROL_PATH: &str = "/internal/control/:project_id";

/// The largest frame a socket accepts; a larger one closes it with 1009.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// Whether a socket error is a frame over the size limit (answered with close code 1009).
/// poem hands the socket's errors over as `io::Error`s carrying only the WebSocket library's
/// message, so the message is compared with the one the library's own capacity error has.
pub fn is_oversized(error: &std::io::Error) -> bool {
    use tokio_tungstenite::tungstenite::error::{CapacityError, Error};
    let capacity = Error::Capacity(CapacityError::MessageTooLong { size: 0, max_size: 0 }).to_string();
    let kind = capacity.split(':').next().unwrap_or_default();
    !kind.is_empty() && error.to_string().starts_with(kind)
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
pub fn ws_proxy_endpoint(nodes: Arc<nodes::RemoteNodes>, origins: gate::OriginPolicy) -> impl poem::Endpoint {
    get(proxy::ws_proxy).data(nodes).data(origins)
}
