//! Importing audio through the API of `serve`: every supported format (fixtures made with sox
//! and ffmpeg when installed; WAV always) becomes a ready clip at the project rate with its
//! frequency and length preserved; broken and hostile files fail their job with a reason and
//! the server carries on; oversized uploads are refused with 413.

mod common;

use common::{TestApp, assert_error, decode};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

const PROJECT_RATE: u32 = 48_000;
const SOURCE_RATE: u32 = 44_100;

/// Uploads `bytes` as a multipart form; returns (status, body).
async fn upload_form(app: &TestApp, track: &str, file_name: &str, bytes: Vec<u8>, start: f64) -> (u16, Value) {
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(bytes).file_name(file_name.to_owned()))
        .text("start", start.to_string());
    let response =
        app.client.post(app.url(&format!("/api/tracks/{track}/clips"))).multipart(form).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Uploads `bytes` as the raw body; returns (status, body).
async fn upload_raw(app: &TestApp, track: &str, query: &str, bytes: Vec<u8>) -> (u16, Value) {
    let response = app
        .client
        .post(app.url(&format!("/api/tracks/{track}/clips?{query}")))
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Imports and waits: returns (job row, clip row).
async fn import(app: &TestApp, track: &str, file_name: &str, bytes: Vec<u8>) -> (Value, Value) {
    let (status, accepted) = upload_form(app, track, file_name, bytes, 1.5).await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["clip"]["status"], "processing");
    let job = app.finished_job(accepted["job"]["id"].as_str().unwrap()).await;
    let (_, clip) = app.get(&format!("/api/clips/{}", accepted["clip"]["id"].as_str().unwrap())).await;
    (job, clip)
}

/// Two seconds of a 1 kHz stereo sine at 44.1 kHz, 16-bit WAV.
fn sine_wav(dir: &Path) -> PathBuf {
    let path = dir.join("sine.wav");
    let samples: Vec<f32> = (0..2 * SOURCE_RATE as usize)
        .flat_map(|i| {
            let s = 0.5 * (std::f32::consts::TAU * 1000.0 * i as f32 / SOURCE_RATE as f32).sin();
            [s, s]
        })
        .collect();
    audiolab_media::wav::write(&path, 2, SOURCE_RATE, audiolab_media::wav::SampleFormat::Int16, &samples).unwrap();
    path
}

/// The frequency of a tone from its rising zero crossings (interpolated), over the middle.
fn frequency(samples: &[f32], channels: usize, rate: u32) -> f64 {
    let mono: Vec<f64> = samples.chunks_exact(channels).map(|f| f64::from(f[0])).collect();
    let middle = &mono[mono.len() / 4..mono.len() * 3 / 4];
    let crossings: Vec<f64> = middle
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[0] < 0.0 && w[1] >= 0.0)
        .map(|(i, w)| i as f64 + w[0] / (w[0] - w[1]))
        .collect();
    let (first, last) = (crossings[0], crossings[crossings.len() - 1]);
    (crossings.len() - 1) as f64 * f64::from(rate) / (last - first)
}

/// Downloads a ready clip's audio and decodes it.
async fn clip_audio(app: &TestApp, clip: &str) -> (u32, usize, Vec<f32>) {
    let response = app.client.get(app.url(&format!("/api/clips/{clip}/audio"))).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "audio/wav");
    decode(&response.bytes().await.unwrap())
}

async fn project_and_track(app: &TestApp) -> (String, String) {
    let project = app.project(json!({"name": "Imports", "sample_rate": PROJECT_RATE})).await;
    let track = app.track(&project, "Imported", 0).await["id"].as_str().unwrap().to_owned();
    (project, track)
}

/// `program args…` made `output` from `input`, or the tool is missing.
fn convert(program: &str, args: &[&str]) -> bool {
    match Command::new(program).args(args).output() {
        Ok(out) if out.status.success() => true,
        Ok(out) => panic!("{program} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr)),
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_supported_format_imports_at_the_project_rate_with_its_pitch_and_length() {
    let app = TestApp::sqlite().await;
    let (_, track) = project_and_track(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let wav = sine_wav(dir.path());
    let wav_name = wav.to_str().unwrap();
    let mut fixtures = vec![("sine.wav", wav.clone(), true)];
    for (name, program, args) in [
        ("sine.flac", "sox", vec![wav_name, "sine.flac"]),
        ("sine.aiff", "sox", vec![wav_name, "sine.aiff"]),
        ("sine.ogg", "sox", vec![wav_name, "sine.ogg"]),
        ("sine.mp3", "sox", vec![wav_name, "-C", "192", "sine.mp3"]),
        ("sine.m4a", "ffmpeg", vec!["-loglevel", "error", "-i", wav_name, "-c:a", "aac", "-b:a", "192k", "sine.m4a"]),
    ] {
        let output = dir.path().join(name);
        let args: Vec<&str> = args.iter().map(|a| if *a == name { output.to_str().unwrap() } else { a }).collect();
        if convert(program, &args) {
            fixtures.push((name, output, name.ends_with("flac") || name.ends_with("aiff")));
        } else {
            eprintln!("{program} is not installed: skipping the {name} import");
        }
    }
    for (name, path, lossless) in fixtures {
        let (job, clip) = import(&app, &track, name, std::fs::read(&path).unwrap()).await;
        assert_eq!(job["status"], "succeeded", "{name}: {job}");
        assert_eq!(clip["status"], "ready", "{name}: {clip}");
        assert_eq!(clip["source_sample_rate"], SOURCE_RATE, "{name}");
        assert_eq!(clip["channels"], 2, "{name}");
        assert_eq!(clip["start_frame"], (1.5 * f64::from(PROJECT_RATE)) as i64, "{name}: placed where asked");
        let frames = clip["length_frames"].as_i64().unwrap();
        let exact = 2 * i64::from(PROJECT_RATE);
        if lossless {
            assert_eq!(frames, exact, "{name}: two seconds at the project rate");
        } else {
            assert!((frames - exact).abs() <= 2_400, "{name}: {frames} frames for two seconds");
        }
        let (rate, channels, samples) = clip_audio(&app, clip["id"].as_str().unwrap()).await;
        assert_eq!((rate, samples.len() / channels), (PROJECT_RATE, frames as usize), "{name}");
        let hz = frequency(&samples, channels, rate);
        assert!((hz - 1000.0).abs() < 0.5, "{name}: {hz} Hz after import");
        assert!(clip["loudness_lufs"].as_f64().is_some(), "{name}: loudness measured");
        let (status, peaks) = app.get(&format!("/api/clips/{}/peaks", clip["id"].as_str().unwrap())).await;
        assert_eq!(status, 200, "{name}: {peaks}");
    }
    // The raw-body variant, and a lossless file under a misleading name: the content decides.
    let (status, accepted) =
        upload_raw(&app, &track, "start=0&filename=song.mp3&name=Raw", std::fs::read(&wav).unwrap()).await;
    assert_eq!(status, 202, "{accepted}");
    let job = app.finished_job(accepted["job"]["id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(accepted["clip"]["name"], "Raw");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_and_hostile_files_fail_their_job_with_a_reason_and_nothing_else() {
    let app = TestApp::sqlite().await;
    let (_, track) = project_and_track(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(sine_wav(dir.path())).unwrap();
    let (job, clip) = import(&app, &track, "good.wav", good.clone()).await;
    assert_eq!(job["status"], "succeeded");
    let good_clip = clip["id"].as_str().unwrap().to_owned();

    let mut random = vec![0u8; 64 * 1024];
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for byte in &mut random {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *byte = state as u8;
    }
    let with = |at: usize, value: &[u8]| {
        let mut bytes = good.clone();
        bytes[at..at + value.len()].copy_from_slice(value);
        bytes
    };
    // Where the header's fields are: after the `fmt ` and `data` chunk ids.
    let chunk = |id: &[u8]| good.windows(4).position(|w| w == id).expect("chunk");
    let (fmt, data) = (chunk(b"fmt "), chunk(b"data"));
    let (channels_at, rate_at, data_size_at) = (fmt + 10, fmt + 12, data + 4);
    let mut corpus: Vec<(&str, Vec<u8>, &str)> = vec![
        ("truncated.wav", good[..good.len() / 3].to_vec(), "truncated"),
        ("random.mp3", random.clone(), "not a supported audio file"),
        ("notes.wav", b"these are my lyrics, not audio\n".repeat(100), "not a supported audio file"),
        ("huge-rate.wav", with(rate_at, &u32::MAX.to_le_bytes()), ""),
        ("huge-channels.wav", with(channels_at, &u16::MAX.to_le_bytes()), ""),
        ("huge-data.wav", with(data_size_at, &u32::MAX.to_le_bytes()), "corrupt"),
        ("zero-rate.wav", with(rate_at, &0u32.to_le_bytes()), ""),
        ("header-only.wav", good[..data + 8].to_vec(), ""),
    ];
    if Command::new("sox").arg("--version").output().is_ok() {
        let flac = dir.path().join("cut.flac");
        convert("sox", &[dir.path().join("sine.wav").to_str().unwrap(), flac.to_str().unwrap()]);
        let bytes = std::fs::read(&flac).unwrap();
        corpus.push(("cut.flac", bytes[..bytes.len() / 2].to_vec(), ""));
    }
    for (name, bytes, reason) in corpus {
        let (job, clip) = import(&app, &track, name, bytes).await;
        assert_eq!(job["status"], "failed", "{name}: {job}");
        let error = job["error"].as_str().unwrap_or_default();
        assert!(!error.is_empty() && error.contains(reason), "{name}: {error:?} should say {reason:?}");
        assert_eq!((clip["status"].as_str(), clip["error"].as_str()), (Some("failed"), Some(error)), "{name}");
    }
    // An empty upload is refused at once.
    let (status, body) = upload_form(&app, &track, "empty.wav", Vec::new(), 0.0).await;
    assert_eq!(status, 422, "{body}");
    assert!(assert_error(&body).contains("empty"));
    // A hostile file name is only a name: the bytes are kept under a key of the server's making.
    let (job, clip) = import(&app, &track, "../../../etc/passwd.wav", good.clone()).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(clip["name"], "../../../etc/passwd.wav");
    assert!(app.audio_path(&format!("uploads/{}/source", job["id"].as_str().unwrap())).exists());
    // Nothing saved before was harmed, and the server still answers.
    let (status, clip) = app.get(&format!("/api/clips/{good_clip}")).await;
    assert_eq!((status, clip["status"].as_str()), (200, Some("ready")));
    assert_eq!(app.get("/health").await.0, 200);
    let (status, _) = upload_form(&app, &uuid::Uuid::new_v4().to_string(), "a.wav", good, 0.0).await;
    assert_eq!(status, 404, "unknown track");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_over_the_limit_are_refused_with_413() {
    let app = TestApp::sqlite_with(|settings| settings.max_upload_bytes = 50_000).await;
    let (project, track) = project_and_track(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let big = std::fs::read(sine_wav(dir.path())).unwrap();
    assert!(big.len() > 50_000);
    let (status, body) = upload_form(&app, &track, "big.wav", big.clone(), 0.0).await;
    assert_eq!(status, 413, "{body}");
    let (status, _) = upload_raw(&app, &track, "", big.clone()).await;
    assert_eq!(status, 413);
    // Chunked, with no declared length: cut off at the limit all the same.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big.chunks(8_192).map(|c| Ok(c.to_vec())).collect();
    let response = app
        .client
        .post(app.url(&format!("/api/tracks/{track}/clips")))
        .header("content-type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    // Under the limit, the same track takes a small file.
    let header = big.windows(4).position(|w| w == b"data").unwrap() + 8;
    let mut small: Vec<u8> = big[..header].iter().copied().chain(std::iter::repeat_n(0u8, 4_000)).collect();
    let (data, riff) = ((small.len() - header) as u32, (small.len() - 8) as u32);
    small[header - 4..header].copy_from_slice(&data.to_le_bytes());
    small[4..8].copy_from_slice(&riff.to_le_bytes());
    let (status, body) = upload_raw(&app, &track, "", small).await;
    assert_eq!(status, 202, "{body}");
    let (_, clips) = app.get(&format!("/api/tracks/{track}/clips")).await;
    assert_eq!(clips["items"].as_array().unwrap().len(), 1, "refused uploads leave no clip: {clips}");
    let _ = project;
    app.stop().await;
}
