//! Per-project broadcast of WebSocket messages: every client of a project gets every event.

use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

use audiolab_domain::ProjectId;

/// Messages queued per client before a slow client starts missing some.
const CHANNEL_CAPACITY: usize = 256;

/// A serialised `{"type", "data"}` message, shared by every receiver.
pub type Message = Arc<str>;

/// Builds a `{"type": kind, "data": data}` message.
pub fn message(kind: &str, data: Value) -> Message {
    json!({ "type": kind, "data": data }).to_string().into()
}

#[derive(Debug, Default)]
pub struct Hub {
    channels: Mutex<HashMap<ProjectId, broadcast::Sender<Message>>>,
}

impl Hub {
    fn sender(&self, project: ProjectId) -> broadcast::Sender<Message> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        channels.entry(project).or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0).clone()
    }

    pub fn subscribe(&self, project: ProjectId) -> broadcast::Receiver<Message> {
        self.sender(project).subscribe()
    }

    /// Sends to every client of `project` (nobody listening is fine).
    pub fn publish(&self, project: ProjectId, message: Message) {
        let _ = self.sender(project).send(message);
    }

    /// Whether any client is connected to `project`.
    pub fn has_listeners(&self, project: ProjectId) -> bool {
        let channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        channels.get(&project).is_some_and(|s| s.receiver_count() > 0)
    }
}
