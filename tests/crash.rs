//! kill -9 in the middle of a take: after a restart the recording is `recovered` and its clip
//! holds the audio up to the last flush.

use audiolab_dsp::input::VirtualSignal;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_audiolab");

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(dir: &std::path::Path) -> (Serve, String) {
    let mut child = Command::new(BINARY)
        .args(["--port", "0"])
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env_remove("PORT")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start audiolab");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.split_whitespace().find(|w| w.starts_with("http://")).expect("a URL").trim().to_owned();
    (Serve(child), url)
}

async fn post(http: &reqwest::Client, url: String, body: Value) -> Value {
    let response = http.post(url).json(&body).send().await.unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(status.is_success(), "{status}: {body}");
    body
}

/// A project whose armed track is recording from `mock_0` from 0 s: (project, track, session).
async fn start_take(http: &reqwest::Client, url: &str) -> (String, String, String) {
    let project =
        post(http, format!("{url}/api/projects"), json!({"name": "Crash"})).await["id"].as_str().unwrap().to_owned();
    let track =
        post(http, format!("{url}/api/tracks"), json!({"project_id": project, "name": "Vox", "track_index": 0})).await;
    let track = track["id"].as_str().unwrap().to_owned();
    post(http, format!("{url}/api/audio/tracks/{track}/record/enable"), json!({"device_id": "mock_0"})).await;
    let started = post(http, format!("{url}/api/audio/tracks/{track}/record/start"), json!({"start_time": 0.0})).await;
    (project, track, started["session_id"].as_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_take_interrupted_by_kill_9_is_recovered_with_at_most_a_second_lost() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let (mut first, url) = serve(dir.path());
    let (project, _track, session) = start_take(&http, &url).await;
    let clock = Instant::now();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    first.0.kill().unwrap();
    let recorded_for = clock.elapsed().as_secs_f64();
    first.0.wait().unwrap();

    let (_second, url) = serve(dir.path());
    let mut journal = Value::Null;
    for _ in 0..200 {
        journal =
            http.get(format!("{url}/api/audio/recording/status/{session}")).send().await.unwrap().json().await.unwrap();
        if journal["status"] == "recovered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(journal["status"], "recovered", "{journal}");
    let clip_id = journal["clip_ids"][0].as_str().expect("the recovered take's clip").to_owned();
    let clip: Value = http.get(format!("{url}/api/clips/{clip_id}")).send().await.unwrap().json().await.unwrap();
    assert_eq!((clip["status"].as_str(), clip["start"].as_f64()), (Some("ready"), Some(0.0)), "{clip}");
    let kept = clip["length"].as_f64().unwrap();
    assert!(kept >= recorded_for - 1.0 - 0.1 && kept <= recorded_for + 0.05, "kept {kept} s of {recorded_for} s");

    // The audio is the microphone's sine, from its first sample to the last flushed one.
    let path = dir.path().join(format!("audiolab-data/audio/projects/{project}/takes/{session}.wav"));
    let mut reader = audiolab_media::wav::WavReader::open(&path).unwrap();
    let frames = reader.info().frames as usize;
    assert_eq!(frames as f64 / 48_000.0, kept);
    let mut samples = vec![0.0; frames];
    reader.read_frames(0, &mut samples).unwrap();
    let expected: Vec<f32> = (0..frames as u64).map(|n| VirtualSignal::Sine.sample(n, 0, 48_000)).collect();
    assert_eq!(samples, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finalize_job_cut_short_by_a_crash_runs_again_at_restart_and_completes() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let (mut first, url) = serve(dir.path());
    let (project, track, session) = start_take(&http, &url).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let stopped = post(&http, format!("{url}/api/audio/tracks/{track}/record/stop/{session}"), json!({})).await;
    let job = stopped["finalize_job_id"].as_str().unwrap().to_owned();
    let frames = stopped["frames"].as_u64().unwrap();
    let job_status = |url: String| {
        let http = http.clone();
        async move { http.get(url).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    for _ in 0..200 {
        if job_status(format!("{url}/api/jobs/{job}")).await["status"] == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    first.0.kill().unwrap();
    first.0.wait().unwrap();

    // Wind the job back to the moment of a crash mid-finalisation: job running, session
    // finalizing, clip processing, the take's audio only half written.
    let data = dir.path().join("audiolab-data");
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", data.join("audiolab.db").display())).await.unwrap();
    let job_id: uuid::Uuid = job.parse().unwrap();
    let session_id: uuid::Uuid = session.parse().unwrap();
    sqlx::query("UPDATE jobs SET status = 'running', progress = 0.3, result = NULL WHERE id = $1")
        .bind(job_id)
        .execute(&db)
        .await
        .unwrap();
    sqlx::query("UPDATE recording_sessions SET status = 'finalizing' WHERE id = $1")
        .bind(session_id)
        .execute(&db)
        .await
        .unwrap();
    sqlx::query("UPDATE clips SET status = 'processing' WHERE take_id IN (SELECT id FROM takes WHERE session_id = $1)")
        .bind(session_id)
        .execute(&db)
        .await
        .unwrap();
    db.close().await;
    let wav = data.join(format!("audio/projects/{project}/takes/{session}.wav"));
    std::fs::write(&wav, b"RIFF").unwrap();

    let (_second, url) = serve(dir.path());
    let mut row = Value::Null;
    for _ in 0..200 {
        row = job_status(format!("{url}/api/jobs/{job}")).await;
        if row["status"] == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(row["status"], "succeeded", "{row}");
    let journal = job_status(format!("{url}/api/audio/recording/status/{session}")).await;
    assert_eq!(journal["status"], "saved");
    let clip = job_status(format!("{url}/api/clips/{}", journal["clip_ids"][0].as_str().unwrap())).await;
    assert_eq!(clip["status"], "ready");
    assert_eq!(
        audiolab_media::wav::WavReader::open(&wav).unwrap().info().frames,
        frames,
        "the take's audio is whole again"
    );
}
