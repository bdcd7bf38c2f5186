//! The node's internal control route, through which API processes drive its engines:
//! `POST /internal/control/{project_id}` `{"command", "data"}` → a [`ControlOutcome`]. The
//! same typed commands as the socket's `control` messages. Nodes are private services, and
//! the route needs the deployment's internal secret ([`crate::gate`]); the API process that
//! calls it has checked its user's role already.

use crate::node::Node;
use crate::protocol::{ControlCommand, ControlOutcome};
use audiolab_domain::ProjectId;
use poem::web::{Data, Json, Path};
use poem::{IntoResponse, handler};
use serde_json::Value;
use std::sync::Arc;

pub const CONTROL_PATH: &str = "/internal/control/:project_id";

#[handler]
pub async fn control(Path(project): Path<uuid::Uuid>, body: Json<Value>, node: Data<&Arc<Node>>) -> impl IntoResponse {
    let command = body["command"].as_str().unwrap_or_default();
    let outcome = match ControlCommand::parse(command, body.get("data").cloned()) {
        Ok(command) => {
            crate::ws::control(command, ProjectId::from(project), &node, crate::ws::Caller::Deployment).await
        }
        Err(error) => Err(error),
    };
    Json(ControlOutcome::from(outcome))
}
