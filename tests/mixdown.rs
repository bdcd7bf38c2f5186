//! Mixdowns through the API of `serve`: exact samples for gain, pan, mute, solo and fades; stems
//! that sum to the mix; loudness normalisation; reuse of an identical request; cancellation;
//! ranged downloads; and the files parse back (symphonia, and `sox` when installed).

mod common;

use common::{TestApp, assert_error, decode};
use serde_json::{Value, json};
use std::f32::consts::FRAC_1_SQRT_2;
use std::time::Duration;

const RATE: u32 = 48_000;

/// Submits a mixdown and waits for it; returns (HTTP status of the submission, job row).
async fn mixdown(app: &TestApp, project: &str, body: Value) -> (u16, Value) {
    let (status, submitted) = app.post(&format!("/api/projects/{project}/mixdown"), body).await;
    assert!(status == 200 || status == 202, "{status} {submitted}");
    let job = submitted["job"]["id"].as_str().unwrap().to_owned();
    (status, app.finished_job(&job).await)
}

async fn download(app: &TestApp, path: &str) -> (reqwest::header::HeaderMap, Vec<u8>) {
    let response = app.client.get(app.url(path)).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    let headers = response.headers().clone();
    (headers, response.bytes().await.unwrap().to_vec())
}

/// A project with three tracks of known constant audio:
/// 0: mono 0.5 for 1 s from 0, volume 0.5, hard left;
/// 1: stereo (0.2, −0.1) for 1 s from 0.5 s, centre, fade-in 0.25 s;
/// 2: mono 0.9 for 2 s from 0, volume 1.0, hard right.
async fn known_project(app: &TestApp) -> (String, [String; 3]) {
    let project = app.project(json!({"name": "Known", "sample_rate": RATE})).await;
    let mut tracks = Vec::new();
    for (index, name) in ["Bass", "Keys", "Pad"].iter().enumerate() {
        tracks.push(app.track(&project, name, index as i64).await["id"].as_str().unwrap().to_owned());
    }
    let second = RATE as usize;
    app.audio_clip(&project, &tracks[0], 0.0, 1, &vec![0.5; second]).await;
    let keys = app.audio_clip(&project, &tracks[1], 0.5, 2, &[0.2, -0.1].repeat(second)).await;
    app.audio_clip(&project, &tracks[2], 0.0, 1, &vec![0.9; 2 * second]).await;
    let (status, body) = app.patch(&format!("/api/clips/{keys}"), json!({"fade_in": 0.25})).await;
    assert_eq!(status, 200, "{body}");
    for (track, query) in [(&tracks[0], "volume?volume=0.5"), (&tracks[0], "pan?pan=-1"), (&tracks[2], "pan?pan=1")] {
        let (status, body) = app.post_empty(&format!("/api/audio/tracks/{track}/{query}")).await;
        assert_eq!(status, 200, "{body}");
    }
    (project, [tracks[0].clone(), tracks[1].clone(), tracks[2].clone()])
}

/// The expected mix at frame `i` (left, right) given which tracks sound, summed in slot order
/// in f32 as the mix law says.
fn expected(i: usize, sounding: [bool; 3]) -> (f32, f32) {
    let second = RATE as usize;
    let (mut l, mut r) = (0.0f32, 0.0f32);
    if sounding[0] && i < second {
        l += 0.5 * 0.5;
    }
    if sounding[1] && (second / 2..second / 2 + second).contains(&i) {
        let n = i - second / 2;
        let fade = if n < second / 4 { n as f32 / (second / 4) as f32 } else { 1.0 };
        l += 0.2 * fade * FRAC_1_SQRT_2;
        r += -0.1 * fade * FRAC_1_SQRT_2;
    }
    if sounding[2] && i < 2 * second {
        r += 0.9;
    }
    (l, r)
}

fn assert_mix(samples: &[f32], sounding: [bool; 3]) {
    assert_eq!(samples.len(), 2 * 2 * RATE as usize, "two seconds of stereo");
    for (i, frame) in samples.chunks_exact(2).enumerate() {
        let (l, r) = expected(i, sounding);
        assert!(
            (frame[0] - l).abs() <= 1e-6 && (frame[1] - r).abs() <= 1e-6,
            "frame {i}: {frame:?}, expected ({l}, {r})"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixdown_has_exact_samples_stems_that_sum_to_it_and_is_reused_until_the_project_changes() {
    let app = TestApp::sqlite().await;
    let (project, tracks) = known_project(&app).await;

    let request = json!({"format": "wav_f32", "stems": true});
    let (status, job) = mixdown(&app, &project, request.clone()).await;
    assert_eq!((status, job["status"].as_str()), (202, Some("succeeded")), "{job}");
    let result = &job["result"];
    assert_eq!((result["frames"].as_u64(), result["sample_rate"].as_u64()), (Some(2 * RATE as u64), Some(RATE as u64)));
    let id = job["id"].as_str().unwrap();
    let files = result["files"].as_array().unwrap();
    assert_eq!(files.len(), 4, "the mix and three stems: {result}");
    assert_eq!(files[0]["url"], format!("/api/mixdowns/{id}/file").as_str());
    let (headers, bytes) = download(&app, files[0]["url"].as_str().unwrap()).await;
    assert_eq!(files[0]["bytes"].as_u64(), Some(bytes.len() as u64));
    assert_eq!(headers["content-type"], "audio/wav");
    assert_eq!(headers["content-length"], bytes.len().to_string().as_str());
    let (rate, channels, mix) = decode(&bytes);
    assert_eq!((rate, channels), (RATE, 2));
    assert_mix(&mix, [true, true, true]);

    // Stems: each track alone through its fader and pan; they sum to the mix.
    let mut sum = vec![0.0f32; mix.len()];
    for track in &tracks {
        let (headers, bytes) = download(&app, &format!("/api/mixdowns/{id}/stems/{track}")).await;
        assert_eq!(headers["content-type"], "audio/wav");
        let (_, _, stem) = decode(&bytes);
        assert_eq!(stem.len(), mix.len());
        sum.iter_mut().zip(&stem).for_each(|(s, x)| *s += x);
    }
    let worst = sum.iter().zip(&mix).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst <= 1e-6, "stems differ from the mix by {worst}");

    // The same request on the unchanged project: the same job, at once.
    let (status, again) = app.post(&format!("/api/projects/{project}/mixdown"), request.clone()).await;
    assert_eq!((status, again["reused"].as_bool(), again["job"]["id"].as_str()), (200, Some(true), Some(id)));

    // Mute and solo change the mix and so the fingerprint.
    app.post_empty(&format!("/api/audio/tracks/{}/mute?muted=true", tracks[2])).await;
    let (status, muted) = mixdown(&app, &project, request.clone()).await;
    assert_eq!(status, 202, "a changed project renders again");
    let (_, bytes) = download(&app, &format!("/api/mixdowns/{}/file", muted["id"].as_str().unwrap())).await;
    assert_mix(&decode(&bytes).2, [true, true, false]);
    app.post_empty(&format!("/api/audio/tracks/{}/solo?soloed=true", tracks[1])).await;
    let (_, soloed) = mixdown(&app, &project, json!({"format": "wav_f32"})).await;
    let (_, bytes) = download(&app, &format!("/api/mixdowns/{}/file", soloed["id"].as_str().unwrap())).await;
    assert_mix(&decode(&bytes).2, [false, true, false]);
    let (status, body) =
        app.get(&format!("/api/mixdowns/{}/stems/{}", soloed["id"].as_str().unwrap(), tracks[0])).await;
    assert_eq!(status, 404, "no stems were asked: {body}");
    let (status, listed) = app.get(&format!("/api/projects/{project}/mixdowns")).await;
    assert_eq!(status, 200, "{listed}");
    let ids: Vec<&str> = listed.as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [soloed["id"].as_str().unwrap(), muted["id"].as_str().unwrap(), id], "newest first");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integer_flac_and_resampled_mixdowns_parse_back_and_ranges_download() {
    let app = TestApp::sqlite().await;
    let (project, _) = known_project(&app).await;
    let (_, job) =
        mixdown(&app, &project, json!({"format": "flac24", "sample_rate": 44_100, "start": 0.5, "end": 1.5})).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let id = job["id"].as_str().unwrap();
    let (headers, flac) = download(&app, &format!("/api/mixdowns/{id}/file")).await;
    assert_eq!(headers["content-type"], "audio/flac");
    assert_eq!(&flac[..4], b"fLaC");
    let (rate, channels, samples) = decode(&flac);
    assert_eq!((rate, channels, samples.len() / 2), (44_100, 2, 44_100), "one second at the new rate");
    // Track 2 is constant 0.9 on the right; away from the edges the resampled value holds.
    let right = samples[2 * 22_050 + 1];
    assert!((right - (0.9 + -0.1 * FRAC_1_SQRT_2)).abs() < 1e-3, "{right}");

    // Ranges: the first 44 bytes, the last 10, and one past the end.
    let url = app.url(&format!("/api/mixdowns/{id}/file"));
    let head = app.client.get(&url).header("Range", "bytes=0-43").send().await.unwrap();
    assert_eq!(head.status(), 206);
    assert_eq!(head.headers()["content-range"], format!("bytes 0-43/{}", flac.len()).as_str());
    assert_eq!(head.headers()["content-length"], "44");
    assert_eq!(head.bytes().await.unwrap(), &flac[..44]);
    let tail = app.client.get(&url).header("Range", "bytes=-10").send().await.unwrap();
    assert_eq!(tail.status(), 206);
    assert_eq!(tail.bytes().await.unwrap(), &flac[flac.len() - 10..]);
    let past = app.client.get(&url).header("Range", format!("bytes={}-", flac.len())).send().await.unwrap();
    assert_eq!(past.status(), 416);
    assert_eq!(past.headers()["content-range"], format!("bytes */{}", flac.len()).as_str());

    // 16-bit WAV with dither, checked by sox when it is installed.
    let (_, job) = mixdown(&app, &project, json!({"format": "wav16"})).await;
    let (_, wav) = download(&app, &format!("/api/mixdowns/{}/file", job["id"].as_str().unwrap())).await;
    let (_, _, samples) = decode(&wav);
    assert!((samples[1] - 0.9).abs() < 2.0 / 32_768.0, "dither stays within a bit or two: {}", samples[1]);
    match std::process::Command::new("sox").arg("--version").output() {
        Ok(_) => {
            let dir = tempfile::tempdir().unwrap();
            for (name, bytes, expect) in [
                ("mix.flac", &flac, ["44100", "24-bit", "FLAC"]),
                ("mix.wav", &wav, ["48000", "16-bit", "Signed Integer PCM"]),
            ] {
                let path = dir.path().join(name);
                std::fs::write(&path, bytes).unwrap();
                let info = std::process::Command::new("sox").arg("--i").arg(&path).output().unwrap();
                let text = String::from_utf8_lossy(&info.stdout);
                assert!(info.status.success(), "sox --i {name}: {}", String::from_utf8_lossy(&info.stderr));
                for word in expect {
                    assert!(text.contains(word), "sox --i {name} lacks {word}:\n{text}");
                }
            }
        }
        Err(_) => eprintln!("sox is not installed: skipping the sox --i check of mixdown files"),
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normalisation_reaches_the_target_loudness_under_the_ceiling() {
    let app = TestApp::sqlite().await;
    let project = app.project(json!({"name": "Loud", "sample_rate": RATE})).await;
    let track = app.track(&project, "Tone", 0).await["id"].as_str().unwrap().to_owned();
    // Ten seconds of a 997 Hz tone with a slow tremolo at about −30 LUFS.
    let samples: Vec<f32> = (0..10 * RATE as usize)
        .map(|i| {
            let t = i as f32 / RATE as f32;
            0.03 * (std::f32::consts::TAU * 997.0 * t).sin() * (1.0 + 0.5 * (std::f32::consts::TAU * 0.5 * t).sin())
        })
        .collect();
    app.audio_clip(&project, &track, 0.0, 1, &samples).await;
    for (target, ceiling, format) in [(-16.0, -1.0, "wav24"), (-23.0, -2.0, "flac16")] {
        let body = json!({"format": format, "normalize": {"target_lufs": target, "ceiling_dbtp": ceiling}});
        let (_, job) = mixdown(&app, &project, body).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        let result = &job["result"];
        assert_eq!(result["limited_by_ceiling"], false);
        let (_, bytes) = download(&app, &format!("/api/mixdowns/{}/file", job["id"].as_str().unwrap())).await;
        let (rate, channels, written) = decode(&bytes);
        // Measured here, independently of the job, on the decoded file.
        let mut meter =
            ebur128::EbuR128::new(channels as u32, rate, ebur128::Mode::I | ebur128::Mode::TRUE_PEAK).unwrap();
        meter.add_frames_f32(&written).unwrap();
        let loudness = meter.loudness_global().unwrap();
        let peak = (0..channels as u32).map(|c| meter.true_peak(c).unwrap()).fold(0.0, f64::max);
        let peak_db = 20.0 * peak.log10();
        assert!((loudness - target).abs() < 0.5, "{format}: {loudness} LUFS for a target of {target}");
        assert!(peak_db <= ceiling, "{format}: true peak {peak_db} dBTP over the ceiling {ceiling}");
        let reported = result["loudness_lufs"].as_f64().unwrap();
        assert!((reported - loudness).abs() < 0.1, "reported {reported}, measured {loudness}");
        assert!((result["true_peak_dbtp"].as_f64().unwrap() - peak_db).abs() < 0.1);
    }
    // A ceiling below what the target needs: the ceiling wins, and the result says so.
    for format in ["wav_f32", "wav16"] {
        let body = json!({"format": format, "normalize": {"target_lufs": -5.0, "ceiling_dbtp": -3.0}});
        let (_, job) = mixdown(&app, &project, body).await;
        assert_eq!(job["result"]["limited_by_ceiling"], true, "{job}");
        let (_, bytes) = download(&app, &format!("/api/mixdowns/{}/file", job["id"].as_str().unwrap())).await;
        let (rate, channels, written) = decode(&bytes);
        let mut meter = ebur128::EbuR128::new(channels as u32, rate, ebur128::Mode::TRUE_PEAK).unwrap();
        meter.add_frames_f32(&written).unwrap();
        let peak = (0..channels as u32).map(|c| meter.true_peak(c).unwrap()).fold(0.0, f64::max);
        assert!(20.0 * peak.log10() <= -3.0, "{format}: the ceiling holds even at the ceiling ({peak})");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_mixdown_can_be_cancelled_and_leaves_no_files() {
    let app = TestApp::sqlite().await;
    let (project, _) = known_project(&app).await;
    let mut listener = common::joined(&app, &project).await;
    // An hour of timeline (mostly silence after the clips), normalised: two long passes.
    let body = json!({"end": 3600.0, "stems": true, "normalize": {"target_lufs": -14.0}});
    let (status, submitted) = app.post(&format!("/api/projects/{project}/mixdown"), body).await;
    assert_eq!(status, 202, "{submitted}");
    let job = submitted["job"]["id"].as_str().unwrap().to_owned();
    loop {
        let (_, row) = app.get(&format!("/api/jobs/{job}")).await;
        if row["status"] == "running" {
            break;
        }
        assert_eq!(row["status"], "queued", "{row}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, cancelled) = app.post_empty(&format!("/api/jobs/{job}/cancel")).await;
    assert_eq!((status, cancelled["status"].as_str()), (200, Some("cancelled")), "{cancelled}");
    let heard =
        common::next_where(&mut listener, |m| m["type"] == "job_progress" && m["data"]["status"] == "cancelled").await;
    assert_eq!(heard["data"]["job_id"].as_str(), Some(job.as_str()), "the project's clients hear the cancel");
    let (status, again) = app.post_empty(&format!("/api/jobs/{job}/cancel")).await;
    assert_eq!(status, 409, "{again}");
    let (status, body) = app.get(&format!("/api/mixdowns/{job}/file")).await;
    assert_eq!(status, 409, "{body}");
    let dir = app.audio_path(&format!("projects/{project}/mixdowns/{job}"));
    for _ in 0..100 {
        if !dir.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!dir.exists(), "the partial files are removed");
    assert_eq!(app.finished_job(&job).await["status"], "cancelled", "the worker does not overwrite it");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_mixdown_requests_are_refused_with_reasons() {
    let app = TestApp::sqlite().await;
    let (project, _) = known_project(&app).await;
    for (body, field) in [
        (json!({"format": "mp3"}), "format"),
        (json!({"start": 2.0, "end": 1.0}), "end"),
        (json!({"sample_rate": 1_000_000}), "sample_rate"),
        (json!({"normalize": {"target_lufs": 3.0}}), "target_lufs"),
    ] {
        let (status, error) = app.post(&format!("/api/projects/{project}/mixdown"), body).await;
        assert_eq!(status, 422, "{error}");
        assert_error(&error);
        assert!(error["errors"].to_string().to_lowercase().contains(field), "{error}");
    }
    let (status, _) = app.post(&format!("/api/projects/{}/mixdown", uuid::Uuid::new_v4()), json!({})).await;
    assert_eq!(status, 404);
    let (status, _) = app.get(&format!("/api/mixdowns/{}/file", uuid::Uuid::new_v4())).await;
    assert_eq!(status, 404);
    // A range past the last clip renders nothing: the job fails and says why.
    let (_, job) = mixdown(&app, &project, json!({"start": 10.0})).await;
    assert_eq!(job["status"], "failed");
    assert!(job["error"].as_str().unwrap().contains("nothing to render"), "{job}");
    // An empty project likewise.
    let empty = app.project(json!({"name": "Empty"})).await;
    let (_, job) = mixdown(&app, &empty, json!({})).await;
    assert!(job["error"].as_str().unwrap().contains("no ready clips"), "{job}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_follow_a_mixdown_and_a_playing_engine_picks_up_an_import() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let app = TestApp::sqlite().await;
    let (project, tracks) = known_project(&app).await;
    let (mut socket, _) = tokio_tungstenite::connect_async(app.ws_url(&project)).await.unwrap();
    socket.send(Message::text(json!({"type": "ping"}).to_string())).await.unwrap();
    let mut next = async move |kind: &str| loop {
        let frame = tokio::time::timeout(Duration::from_secs(60), socket.next()).await.expect("a frame in time");
        if let Message::Text(text) = frame.unwrap().unwrap() {
            let value: Value = serde_json::from_str(&text).unwrap();
            if value["type"] == kind {
                return value["data"].clone();
            }
        }
    };

    // A minute of timeline with stems: long enough for progress reports on the way.
    let body = json!({"end": 60.0, "stems": true});
    let (status, submitted) = app.post(&format!("/api/projects/{project}/mixdown"), body).await;
    assert_eq!(status, 202, "{submitted}");
    let job = submitted["job"]["id"].as_str().unwrap().to_owned();
    let mut seen = Vec::new();
    loop {
        let update = next("job_progress").await;
        assert_eq!((update["job_id"].as_str(), update["kind"].as_str()), (Some(job.as_str()), Some("mixdown")));
        seen.push((update["status"].as_str().unwrap().to_owned(), update["progress"].as_f64().unwrap()));
        if update["status"] != "running" {
            break;
        }
    }
    assert_eq!(seen.last().unwrap(), &("succeeded".to_owned(), 1.0), "{seen:?}");
    let partial: Vec<f64> =
        seen.iter().filter(|(s, p)| s == "running" && *p > 0.0 && *p < 1.0).map(|(_, p)| *p).collect();
    assert!(!partial.is_empty(), "progress while running: {seen:?}");
    assert!(partial.windows(2).all(|w| w[0] <= w[1]), "progress only grows: {partial:?}");

    // A loaded project takes an imported clip once its job ends.
    let (status, loaded) = app.post_empty(&format!("/api/audio/projects/{project}/playback/load")).await;
    assert_eq!((status, loaded["duration"].as_f64()), (200, Some(2.0)), "{loaded}");
    let samples: Vec<f32> = (0..RATE as usize).map(|i| (i as f32 * 0.05).sin() * 0.3).collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("line.wav");
    audiolab_media::wav::write(&path, 1, RATE, audiolab_media::wav::SampleFormat::Int16, &samples).unwrap();
    let response = app
        .client
        .post(app.url(&format!("/api/tracks/{}/clips?start=3", tracks[0])))
        .header("content-type", "application/octet-stream")
        .body(std::fs::read(&path).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let accepted: Value = response.json().await.unwrap();
    let ready = next("clip_ready").await;
    assert_eq!(ready["clip_id"], accepted["clip"]["id"]);
    let mut duration = 0.0;
    for _ in 0..100 {
        let (_, status) = app.get(&format!("/api/audio/projects/{project}/playback/status")).await;
        duration = status["duration"].as_f64().unwrap_or_default();
        if duration == 4.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(duration, 4.0, "the engine reloaded with the clip imported at 3 s");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixdown_longer_than_the_limit_is_refused_before_it_renders() {
    let app = TestApp::sqlite().await;
    let project = app.project(json!({"name": "Far out", "sample_rate": RATE})).await;
    let track = app.track(&project, "Late", 0).await;
    // A clip at 24,000 s: the whole project would mix to 6.7 hours (4.6 GB at 24 bits).
    let clip = app.audio_clip(&project, track["id"].as_str().unwrap(), 24_000.0, 1, &[0.25; 4_800]).await;
    app.ready_clip(&clip).await;
    let (status, error) = app.post(&format!("/api/projects/{project}/mixdown"), json!({})).await;
    assert_eq!(status, 422, "{error}");
    let detail = assert_error(&error);
    assert!(detail.contains("end") && error.to_string().contains("6.0 hours"), "{error}");
    let (_, jobs) = app.get(&format!("/api/projects/{project}/mixdowns")).await;
    assert_eq!(jobs.as_array().map(Vec::len), Some(0), "nothing was queued");

    // The same clip, mixed over a range around it, renders.
    let (status, job) = mixdown(&app, &project, json!({"start": 23_999.9, "end": 24_000.2, "format": "wav_f32"})).await;
    assert_eq!(status, 202);
    assert_eq!(job["status"], "succeeded", "{job}");
    let (_, bytes) = download(&app, &format!("/api/mixdowns/{}/file", job["id"].as_str().unwrap())).await;
    let (_, channels, samples) = decode(&bytes);
    assert_eq!(samples.len() / channels, 14_400, "0.3 s at 48 kHz");
    assert_eq!(samples[4_800 * channels], 0.25 * FRAC_1_SQRT_2, "the clip starts at 24,000 s");
    app.stop().await;
}
