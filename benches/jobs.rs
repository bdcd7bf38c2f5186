//! Push-to-start latency of a job: from `JobQueue::push` to the worker running it, on the
//! embedded default's SQLite queue and on the cloud's Redis queue (PostgreSQL beside it).
//!
//! `cargo bench --bench jobs [-- --jobs 200]`
//!
//! Each job is pushed onto an idle worker (jobs 30 ms apart), which is the case a musician
//! waits on after `record/stop`. "Started" is the worker's first update for the job (`running`),
//! sent once it has read the job's row. The jobs name no capture, so each fails at once.

use audiolab_config::Settings;
use audiolab_domain::job::{FinalizePayload, Job, JobPayload, JobStatus};
use audiolab_media::storage::Storage;
use audiolab_store::Store;
use audiolab_worker::events::JobEvents;
use audiolab_worker::jobs::Jobs;
use audiolab_worker::queue::JobQueue;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let jobs: usize = args.iter().position(|a| a == "--jobs").map_or(200, |i| args[i + 1].parse().expect("--jobs N"));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = audiolab_testkit::TestDatabase::sqlite();
        let settings = Settings { data_dir: dir.path().to_owned(), ..Settings::default() };
        measure("serve: SQLite queue, SQLite store", sqlite.open().await.unwrap(), settings, jobs).await;

        let postgres = audiolab_testkit::TestDatabase::postgres().await.expect("PostgreSQL must be running");
        let settings = Settings {
            data_dir: dir.path().to_owned(),
            redis_url: Some("redis://127.0.0.1:6379".into()),
            queue_name: format!("bench-{}", uuid::Uuid::new_v4().simple()),
            ..Settings::default()
        };
        measure("cloud: Redis queue, PostgreSQL store", postgres.open().await.unwrap(), settings, jobs).await;
    });
}

async fn measure(label: &str, store: Store, settings: Settings, count: usize) {
    store.ensure_local_user().await.unwrap();
    let queue = JobQueue::open(&settings).await.expect("the queue opens");
    let (sender, mut updates) = tokio::sync::mpsc::unbounded_channel();
    let storage = Storage::new(settings.data_dir.join("audio"));
    let jobs = Jobs { store: store.clone(), storage, events: JobEvents::Local(sender) };
    let shutdown = tokio_util::sync::CancellationToken::new();
    let worker = tokio::spawn(audiolab_worker::run(jobs, queue.clone(), shutdown.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut latencies = Vec::with_capacity(count);
    for _ in 0..count {
        let payload = FinalizePayload { session_id: audiolab_domain::RecordingSessionId::new() };
        let job = Job::queued(None, JobPayload::FinalizeCapture(payload), audiolab_domain::now());
        store.insert_job(&job).await.unwrap();
        let pushed = Instant::now();
        queue.push(job.id).await.unwrap();
        loop {
            let update = tokio::time::timeout(Duration::from_secs(10), updates.recv()).await.unwrap().unwrap();
            if update.job_id == job.id && update.status == JobStatus::Running {
                latencies.push(pushed.elapsed().as_secs_f64() * 1000.0);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    shutdown.cancel();
    let _ = worker.await;
    latencies.sort_by(f64::total_cmp);
    let at = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    println!(
        "{label}: push-to-start over {count} jobs: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        at(0.5),
        at(0.99),
        latencies[latencies.len() - 1]
    );
}
