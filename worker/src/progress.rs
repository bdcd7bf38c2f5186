//! Blocking work (a render, a decode) run off the async runtime while its progress becomes job
//! updates: the work stores the fraction done in an atomic and asks whether to go on; a task
//! reports the fraction every 250 ms and, once the report says the job is no longer running
//! (cancelled), tells the work to stop.

use futures_util::future::BoxFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// How often progress is reported.
const REPORT_EVERY: Duration = Duration::from_millis(250);

/// The work's side: where it says how far it got.
#[derive(Debug, Default)]
pub struct Progress {
    done: AtomicU64,
    cancelled: AtomicBool,
}

impl Progress {
    /// Records `fraction` (0–1) done; returns whether to go on.
    pub fn set(&self, fraction: f64) -> bool {
        self.done.store(fraction.to_bits(), Ordering::Relaxed);
        !self.cancelled.load(Ordering::Relaxed)
    }

    fn fraction(&self) -> f64 {
        f64::from_bits(self.done.load(Ordering::Relaxed))
    }
}

/// A job's way of publishing progress: `false` once the job was cancelled.
pub type Report = Box<dyn Fn(f64) -> BoxFuture<'static, bool> + Send + Sync>;

/// Runs `work` on the blocking pool, reporting its progress scaled to `0..=scale` (the rest is
/// left for what the job does after it). Errors only if the work panicked.
pub async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce(&Progress) -> T + Send + 'static,
    report: &Report,
    scale: f64,
) -> Result<T, std::io::Error> {
    let progress = Arc::new(Progress::default());
    let task = {
        let progress = progress.clone();
        tokio::task::spawn_blocking(move || work(&progress))
    };
    tokio::pin!(task);
    let mut reported = 0.0;
    loop {
        tokio::select! {
            finished = &mut task => return finished.map_err(|e| std::io::Error::other(e.to_string())),
            () = tokio::time::sleep(REPORT_EVERY) => {
                let fraction = progress.fraction();
                if fraction > reported {
                    reported = fraction;
                    if !report(fraction * scale).await {
                        progress.cancelled.store(true, Ordering::Relaxed);
                    }
                }
            }
        }
    }
}
