//! The node's internal control route, through which API processes drive its engines:
//! `POST /internal/control/{project_id}` `{"command", "data"}` → a [`ControlOutcome`]. The
//! same typed commands as the socket's `control` messages. Nodes are private services, and
//! the route needs the deployment's internal secret ([`audiolab_transport::gate`]); the API process that
//! calls it has checked its user's role already.

use crate::node::Node;
use audiolab_domain::ProjectId;
use audiolab_domain::transport::TransportError;
use audiolab_transport::protocol::{ControlOutcome, InternalCommand};
use poem::web::{Data, Json, Path};
use poem::{IntoResponse, handler};
use std::sync::Arc;

/// Runs a command an API process sent: the same typed command the socket parses (§4).
#[handler]
pub async fn control(Path(project): Path<uuid::Uuid>, body: poem::Body, node: Data<&Arc<Node>>) -> impl IntoResponse {
    let outcome = match body.into_bytes().await {
        Ok(bytes) => match serde_json::from_slice::<InternalCommand>(&bytes) {
            Ok(InternalCommand { actor, command }) => {
                let caller = crate::transport::ws::Caller::Deployment { actor: actor.as_ref() };
                crate::transport::ws::control(command, ProjectId::from(project), &node, caller).await
            }
            Err(error) => Err(TransportError::Invalid(format!("not a control command: {error}"))),
        },
        Err(error) => Err(TransportError::Invalid(format!("cannot read the command: {error}"))),
    };
    Json(ControlOutcome::from(outcome))
}
