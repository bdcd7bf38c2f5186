//! Password hashing on a fixed pool: a few threads (about one per core, leaving one for the
//! rest of the server) and a short queue. Argon2id takes 19 MiB and tens of milliseconds per
//! hash by design, so a burst of logins or registrations must not get a thread — and its
//! memory — each: past the queue the caller is told to come back ([`Busy`]), and memory stays
//! at a few hashes' worth whatever the burst.

use std::sync::OnceLock;
use std::sync::mpsc::{SyncSender, TrySendError};

/// The pool is full: retry after this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy(pub u64);

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of hashing threads fed through a bounded queue.
pub struct HashPool {
    jobs: SyncSender<Job>,
    threads: usize,
}

/// Jobs that may wait per hashing thread before callers are turned away.
const QUEUE_PER_THREAD: usize = 8;

impl HashPool {
    /// A pool of `threads` threads with room for `queue` waiting jobs.
    pub fn new(threads: usize, queue: usize) -> Self {
        let threads = threads.max(1);
        let (jobs, receiver) = std::sync::mpsc::sync_channel::<Job>(queue);
        let receiver = std::sync::Arc::new(std::sync::Mutex::new(receiver));
        for index in 0..threads {
            let receiver = receiver.clone();
            let spawned = std::thread::Builder::new().name(format!("password-hash-{index}")).spawn(move || {
                loop {
                    // The lock is held only while waiting for the next job, never while hashing.
                    let job = match receiver.lock().unwrap_or_else(|p| p.into_inner()).recv() {
                        Ok(job) => job,
                        Err(_) => return,
                    };
                    job();
                }
            });
            if let Err(error) = spawned {
                tracing::error!(%error, "cannot start a password hashing thread");
            }
        }
        Self { jobs, threads }
    }

    /// The process's pool: one thread per core but one (at least one), a queue of
    /// [`QUEUE_PER_THREAD`] per thread.
    pub fn shared() -> &'static HashPool {
        static POOL: OnceLock<HashPool> = OnceLock::new();
        POOL.get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            let threads = cores.saturating_sub(1).max(1);
            HashPool::new(threads, threads * QUEUE_PER_THREAD)
        })
    }

    /// Runs `work` on the pool and waits for its result. Errors: [`Busy`] at once when the
    /// queue is full (or the pool is gone).
    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, Busy> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(work());
        });
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => return Err(Busy(1)),
        }
        result.await.map_err(|_| Busy(1))
    }

    /// How many threads hash at once.
    pub fn threads(&self) -> usize {
        self.threads
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn a_full_queue_turns_callers_away_at_once_and_the_pool_carries_on() {
        let pool = Arc::new(HashPool::new(1, 2));
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(std::sync::Mutex::new(gate));
        let ran = Arc::new(AtomicUsize::new(0));
        let mut waiting = Vec::new();
        // One job runs (held at the gate), two wait in the queue: a fourth is turned away.
        for _ in 0..3 {
            let (pool, gate, ran) = (pool.clone(), gate.clone(), ran.clone());
            waiting.push(tokio::spawn(async move {
                pool.run(move || {
                    let _ = gate.lock().unwrap().recv();
                    ran.fetch_add(1, Ordering::SeqCst)
                })
                .await
            }));
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(pool.run(|| 0).await, Err(Busy(1)));
        for _ in 0..3 {
            release.send(()).unwrap();
        }
        for job in waiting {
            assert!(job.await.unwrap().is_ok());
        }
        assert_eq!(ran.load(Ordering::SeqCst), 3);
        assert_eq!(pool.run(|| 7).await, Ok(7), "room again once the queue drained");
    }
}
