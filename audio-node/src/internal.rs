//! The node's internal control route, through which API processes drive its engines:
//! `POST /internal/control/{project_id}` `{"command", "data"}` → `{"success", "result"}` or
//! `{"success": false, "kind", "error"}`. Nodes are private services; this route is not public.

use crate::node::Node;
use audiolab_domain::ProjectId;
use audiolab_domain::transport::TransportError;
use poem::web::{Data, Json, Path};
use poem::{IntoResponse, handler};
use serde_json::{Value, json};
use std::sync::Arc;

pub const CONTROL_PATH: &str = "/internal/control/:project_id";

/// The `kind` naming each error, so the caller can rebuild it.
pub fn error_kind(err: &TransportError) -> &'static str {
    match err {
        TransportError::NotFound(_) => "not_found",
        TransportError::Invalid(_) => "invalid",
        TransportError::Conflict(_) => "conflict",
        TransportError::Unavailable(_) => "unavailable",
        TransportError::Internal(_) => "internal",
    }
}

#[handler]
pub async fn control(Path(project): Path<uuid::Uuid>, body: Json<Value>, node: Data<&Arc<Node>>) -> impl IntoResponse {
    let command = body["command"].as_str().unwrap_or_default();
    let data = body.get("data").cloned().unwrap_or(Value::Null);
    match crate::ws::control(command, &data, ProjectId::from(project), &node).await {
        Ok(result) => Json(json!({"success": true, "result": result})),
        Err(err) => Json(json!({"success": false, "kind": error_kind(&err), "error": err.to_string()})),
    }
}
