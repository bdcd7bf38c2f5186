//! Job state changes leaving the worker. Clients see them as `job_progress`; the node playing
//! the project learns from them that a take is ready. Inside one process they go straight to
//! the node; across processes they travel, in order, on a Redis channel every node follows.

use crate::JobUpdate;
use std::time::Duration;

/// Where a worker sends [`JobUpdate`]s.
#[derive(Clone)]
pub enum JobEvents {
    /// Nobody listens (a worker with no node to tell).
    Discard,
    /// A receiver in this process (the node of `serve`), in order.
    Local(tokio::sync::mpsc::UnboundedSender<JobUpdate>),
    /// A Redis channel, through one publishing task so that updates keep their order.
    Redis(tokio::sync::mpsc::UnboundedSender<JobUpdate>),
}

impl std::fmt::Debug for JobEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            JobEvents::Discard => "JobEvents::Discard",
            JobEvents::Local(_) => "JobEvents::Local",
            JobEvents::Redis(_) => "JobEvents::Redis",
        })
    }
}

/// The channel carrying a deployment's job updates.
pub fn channel(queue_name: &str) -> String {
    format!("{queue_name}:job_events")
}

impl JobEvents {
    /// Publishes on `channel` through `client`, reconnecting when Redis goes away. An update
    /// that cannot be published while Redis is down is dropped (the `jobs` row still has it).
    pub fn redis(client: redis::Client, channel: String) -> Self {
        let (sender, mut updates) = tokio::sync::mpsc::unbounded_channel::<JobUpdate>();
        tokio::spawn(async move {
            let mut connection = None;
            while let Some(update) = updates.recv().await {
                let Ok(payload) = serde_json::to_string(&update) else { continue };
                for attempt in 0..3 {
                    if connection.is_none() {
                        connection = client.get_multiplexed_async_connection().await.ok();
                    }
                    let Some(open) = connection.as_mut() else {
                        tokio::time::sleep(Duration::from_millis(100) * (attempt + 1)).await;
                        continue;
                    };
                    let published: redis::RedisResult<i64> =
                        redis::cmd("PUBLISH").arg(&channel).arg(&payload).query_async(open).await;
                    match published {
                        Ok(_) => break,
                        Err(error) => {
                            tracing::warn!(%error, "cannot publish a job update; reconnecting");
                            connection = None;
                        }
                    }
                }
            }
        });
        JobEvents::Redis(sender)
    }

    pub fn send(&self, update: JobUpdate) {
        match self {
            JobEvents::Discard => {}
            JobEvents::Local(sender) | JobEvents::Redis(sender) => {
                let _ = sender.send(update);
            }
        }
    }
}
