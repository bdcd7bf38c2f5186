//! Recording latencies: `record/start` over HTTP, and finalising a 10-minute stereo take.
//!
//! `cargo bench --bench recording [-- --starts 200]`
//!
//! 1. Starts `serve` in this process; a project with an armed track; times `record/start`
//!    round trips (client side, real sockets) with the transport stopped (it rolls) and rolling.
//! 2. Writes a 10-minute 48 kHz stereo capture in one-second chunks, as the writer thread does,
//!    and times `finalize_capture` (WAV + three waveform zoom levels + loudness), beside `sox`
//!    converting the same raw audio to WAV when sox is installed.

use audiolab::{Application, Role};
use audiolab_config::Settings;
use serde_json::{Value, json};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let starts: usize =
        args.iter().position(|a| a == "--starts").map_or(200, |i| args[i + 1].parse().expect("--starts N"));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        record_start(starts).await;
        finalize_ten_minutes().await;
    });
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn record_start(starts: usize) {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings { port: 0, data_dir: dir.path().to_path_buf(), ..Settings::default() };
    let app = Application::start(settings, Role::Serve).await.unwrap();
    let base = format!("http://{}", app.address());
    let http = reqwest::Client::new();
    let post = |path: String, body: Value| {
        let http = http.clone();
        let url = format!("{base}{path}");
        async move { http.post(url).json(&body).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let project = post("/api/projects".into(), json!({"name": "Bench"})).await["id"].as_str().unwrap().to_owned();
    let track = post("/api/tracks".into(), json!({"project_id": project, "name": "Mic", "track_index": 0})).await;
    let track = track["id"].as_str().unwrap().to_owned();
    post(format!("/api/audio/tracks/{track}/record/enable"), json!({"device_id": "mock_0"})).await;
    post(format!("/api/audio/projects/{project}/playback/load"), json!({})).await;

    let mut stopped = Vec::new();
    let mut rolling = Vec::new();
    for i in 0..starts {
        // Even runs start from a stopped transport (the start rolls it), odd ones while rolling.
        if i % 2 == 0 {
            post(format!("/api/audio/projects/{project}/playback/stop"), json!({})).await;
        }
        let clock = Instant::now();
        let started = post(format!("/api/audio/tracks/{track}/record/start"), json!({"start_time": 0.0})).await;
        let took = clock.elapsed().as_secs_f64() * 1000.0;
        let session = started["session_id"].as_str().unwrap_or_else(|| panic!("{started}")).to_owned();
        if i % 2 == 0 {
            stopped.push(took)
        } else {
            rolling.push(took)
        }
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        post(format!("/api/audio/tracks/{track}/record/stop/{session}"), json!({})).await;
    }
    for (name, samples) in [("transport stopped (rolls it)", &mut stopped), ("transport rolling", &mut rolling)] {
        samples.sort_by(f64::total_cmp);
        println!(
            "record/start, {name}: p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  ({} starts)",
            percentile(samples, 0.5),
            percentile(samples, 0.99),
            percentile(samples, 1.0),
            samples.len()
        );
    }
    app.stop().await;
}

async fn finalize_ten_minutes() {
    use audiolab_domain::recording::{RecordingSession, RecordingStatus};
    const RATE: u32 = 48_000;
    const SECONDS: u64 = 600;
    let dir = tempfile::tempdir().unwrap();
    let storage = audiolab_media::storage::Storage::new(dir.path().join("audio"));
    let store =
        audiolab_store::Store::connect(&format!("sqlite://{}", dir.path().join("db.sqlite").display())).await.unwrap();
    store.migrate().await.unwrap();
    store.ensure_local_user().await.unwrap();
    let project = audiolab_domain::project::Project::create(
        audiolab_domain::user::LOCAL_USER_ID,
        audiolab_domain::project::NewProject { name: "Long".into(), ..Default::default() },
        audiolab_domain::now(),
    )
    .unwrap();
    store.insert_project(&project).await.unwrap();
    let track = store
        .create_track(
            project.id,
            audiolab_domain::track::NewTrack { name: "Take".into(), track_index: Some(0), ..Default::default() },
        )
        .await
        .unwrap();
    let now = audiolab_domain::now();
    let session = RecordingSession {
        id: audiolab_domain::RecordingSessionId::new(),
        project_id: project.id,
        track_id: track.id,
        device_id: "mock_1".into(),
        status: RecordingStatus::Recording,
        start: audiolab_domain::Frames(0),
        applied_offset: audiolab_domain::Frames(0),
        capture_key: String::new(),
        error: None,
        created_at: now,
        updated_at: now,
    };
    let session = RecordingSession { capture_key: format!("captures/{}", session.id), ..session };
    store.insert_recording_session(&session).await.unwrap();

    // The capture, chunk by chunk, as the writer thread leaves it.
    let capture_dir = storage.path(&session.capture_key).unwrap();
    let mut chunks = audiolab_media::capture::ChunkWriter::create(
        &capture_dir,
        audiolab_media::capture::Manifest { channels: 2, sample_rate: RATE },
    )
    .unwrap();
    let signal = audiolab_dsp::input::VirtualSignal::Tones;
    let second: Vec<f32> = (0..u64::from(RATE)).flat_map(|n| [0, 1].map(|c| signal.sample(n, c, RATE))).collect();
    for _ in 0..SECONDS {
        chunks.write(&second).unwrap();
    }
    chunks.finish().unwrap();
    let frames = SECONDS * u64::from(RATE);
    store.stop_recording_session(session.id, session.start, session.applied_offset).await.unwrap();
    let span = audiolab_worker::finalize::TakeSpan { capture_offset: 0, timeline_start: 0, frames };
    audiolab_worker::finalize::create_takes(&store, &session, &[span], 2, RATE, None).await.unwrap();

    let clock = Instant::now();
    let cpu = cpu_seconds();
    let done = audiolab_worker::finalize::finalize_capture(&store, &storage, session.id).await.unwrap();
    let wall = clock.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu;
    assert_eq!(done.frames, frames);
    println!(
        "finalize_capture, 10 min stereo 48 kHz: {wall:.3} s wall, {cpu:.3} s CPU (WAV + peaks at 3 zooms + loudness)"
    );

    // Reference: sox writing the same raw audio as a float WAV (no peaks, no loudness).
    let raw = dir.path().join("all.f32");
    {
        use std::io::Write;
        let mut file = std::io::BufWriter::new(std::fs::File::create(&raw).unwrap());
        for index in 0..SECONDS {
            let bytes = std::fs::read(capture_dir.join(format!("chunk-{index:06}.f32"))).unwrap();
            file.write_all(&bytes).unwrap();
        }
    }
    let clock = Instant::now();
    let sox = std::process::Command::new("sox")
        .args(["-t", "f32", "-r", "48000", "-c", "2"])
        .arg(&raw)
        .arg(dir.path().join("sox.wav"))
        .status();
    match sox {
        Ok(status) if status.success() => {
            let sox_wall = clock.elapsed().as_secs_f64();
            println!(
                "sox, the same raw audio to a WAV file only: {sox_wall:.3} s wall (AudioLab / sox = {:.2})",
                wall / sox_wall
            );
        }
        _ => println!("sox not installed: no reference run"),
    }
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}
