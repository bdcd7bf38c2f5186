//! The event bus across processes, as it travels: what API processes publish on Redis for the
//! nodes (committed changes, deleted projects, revoked rights). Nodes subscribe in their own
//! crate; workers publish job updates on their own channel.

use audiolab_domain::ProjectId;
use audiolab_domain::history::ProjectChange;
use serde::{Deserialize, Serialize};

/// The channel of model changes made by API processes, for the nodes.
pub const MODEL_CHANNEL: &str = "audiolab:model_changed";

/// A change an API process made, as it travels to the nodes. Ids only: a node reads the rows
/// fresh from the database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BusEvent {
    /// A change to the project was committed (§13): its revision and the rows it touched.
    Changed(ProjectChange),
    /// The project was deleted.
    ProjectDeleted { project_id: ProjectId },
    /// A right was taken away (a token revoked, a member removed or demoted).
    Revoked(audiolab_domain::user::Revocation),
}

/// Publishes `event` for every node.
pub async fn publish(redis: &redis::Client, event: &BusEvent) -> redis::RedisResult<()> {
    let mut connection = redis.get_multiplexed_async_connection().await?;
    let payload = serde_json::to_string(event).unwrap_or_default();
    redis::cmd("PUBLISH").arg(MODEL_CHANNEL).arg(payload).query_async::<i64>(&mut connection).await?;
    Ok(())
}
