//! The outbox's courier (§13): delivers what must follow a committed change — announcements
//! to engines and clients, jobs to the queue — at least once and in order per project.
//!
//! A use case delivers its own change's messages right after the commit (so a response means
//! the engine already plays the change), and the commit leaves them due a little later; if that
//! delivery fails or the process dies first, the courier's loop in this or any other process
//! finds them due and retries with backoff until Redis or the queue takes them.

use audiolab_domain::ProjectId;
use audiolab_domain::history::Outgoing;
use audiolab_domain::job::JobSubmitter;
use audiolab_domain::transport::AudioControl;
use audiolab_store::{OutboxItem, Store};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the loop looks for due messages when nothing woke it.
const POLL: Duration = Duration::from_secs(1);
/// How long a claimed message is another dispatcher's to leave alone.
const LEASE: Duration = Duration::from_secs(30);
/// The longest wait between two tries of one message.
const MAX_BACKOFF: Duration = Duration::from_secs(15);
/// Messages taken per round.
const BATCH: i64 = 100;

/// Delivers outbox messages through this process's port to the engines and its job queue.
pub struct Courier {
    store: Store,
    audio: Arc<dyn AudioControl>,
    jobs: Option<Arc<dyn JobSubmitter>>,
}

impl Courier {
    pub fn new(store: Store, audio: Arc<dyn AudioControl>, jobs: Option<Arc<dyn JobSubmitter>>) -> Arc<Self> {
        Arc::new(Self { store, audio, jobs })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The port to the engines, for what is not history (transport, project deletion).
    pub fn audio(&self) -> &dyn AudioControl {
        self.audio.as_ref()
    }

    async fn send(&self, message: &Outgoing) -> Result<(), String> {
        match message {
            Outgoing::Announce(change) => self.audio.announce(change).await.map_err(|e| e.to_string()),
            Outgoing::PushJob { job_id } => match &self.jobs {
                Some(jobs) => jobs.submit(*job_id).await,
                None => Err("this process has no job queue".into()),
            },
            Outgoing::Revoke(revocation) => self.audio.revoked(revocation.clone()).await.map_err(|e| e.to_string()),
        }
    }

    /// Tells every process that a right was taken away (§8), now and, if the bus is down,
    /// again until it is told.
    pub async fn revoke(&self, revocation: audiolab_domain::user::Revocation) {
        match self.store.enqueue(None, &[Outgoing::Revoke(revocation.clone())], true).await {
            Ok(items) => self.deliver(items).await,
            Err(error) => {
                // The database is away: tell what can be told now.
                tracing::warn!(%error, "cannot keep a revocation in the outbox; announcing it once");
                let _ = self.audio.revoked(revocation).await;
            }
        }
    }

    /// Delivers `items` now, oldest first. One that fails is put back for a later try with
    /// backoff, and so is every later one of its project, so a project's messages keep their
    /// order.
    pub async fn deliver(&self, items: Vec<OutboxItem>) {
        let mut blocked: HashSet<Option<ProjectId>> = HashSet::new();
        for item in items {
            let outcome = if blocked.contains(&item.project_id) {
                Err("an earlier message of the project is still undelivered".to_owned())
            } else {
                self.send(&item.message).await
            };
            let recorded = match outcome {
                Ok(()) => self.store.outbox_delivered(item.id).await,
                Err(error) => {
                    blocked.insert(item.project_id);
                    let retry_at = chrono::Utc::now() + backoff(item.attempts);
                    tracing::warn!(id = item.id, attempts = item.attempts, %error, "an outbox message waits for another try");
                    self.store.outbox_failed(item.id, retry_at, &error).await
                }
            };
            if let Err(error) = recorded {
                // The row stays leased and comes due again: delivered twice at worst.
                tracing::warn!(id = item.id, %error, "cannot record an outbox delivery");
            }
        }
    }

    /// Delivers due messages until `shutdown`: those whose first delivery failed, and those
    /// a process that died left behind.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut warned = false;
        loop {
            match self.store.claim_outbox(BATCH, LEASE).await {
                Ok(items) if !items.is_empty() => {
                    warned = false;
                    let full = items.len() as i64 == BATCH;
                    self.deliver(items).await;
                    if full {
                        continue;
                    }
                }
                Ok(_) => warned = false,
                Err(error) if !warned => {
                    warned = true;
                    tracing::warn!(%error, "cannot read the outbox; retrying");
                }
                Err(_) => {}
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }
}

/// The wait before try `attempts + 1`: doubling from a quarter second up to [`MAX_BACKOFF`].
fn backoff(attempts: i32) -> chrono::Duration {
    let exponent = u32::try_from(attempts.clamp(0, 16)).unwrap_or(0);
    let wait = Duration::from_millis(250u64.saturating_mul(1 << exponent)).min(MAX_BACKOFF);
    chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::seconds(15))
}

#[cfg(test)]
mod tests {
    #[test]
    fn backoff_doubles_up_to_a_ceiling() {
        assert_eq!(super::backoff(0).num_milliseconds(), 250);
        assert_eq!(super::backoff(2).num_milliseconds(), 1_000);
        assert_eq!(super::backoff(30).num_milliseconds(), 15_000);
    }
}
