//! Recording takes through the §3 API against `serve`: overdubs aligned to the sample, the
//! virtual microphone's sine, and the errors a musician can run into.

mod common;

use audiolab_dsp::input::VirtualSignal;
use audiolab_media::wav::WavReader;
use common::{TestApp, assert_error};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const RATE: u32 = 48_000;
const CENTRE: f32 = std::f32::consts::FRAC_1_SQRT_2;

async fn arm(app: &TestApp, track: &str, device: &str) {
    let (status, body) = app
        .post(&format!("/api/audio/tracks/{track}/record/enable"), json!({"device_id": device, "enabled": true}))
        .await;
    assert_eq!((status, body["record_enabled"].as_bool()), (200, Some(true)), "{body}");
}

/// The take's audio: (channels, samples from the clip's source offset, length frames).
async fn take_audio(app: &TestApp, clip_id: &str) -> (usize, Vec<f32>, Value) {
    let clip = app.ready_clip(clip_id).await;
    let store = app.store().await;
    let id: uuid::Uuid = clip_id.parse().unwrap();
    let stored = store.get_clip(id.into()).await.unwrap().unwrap();
    let mut reader = WavReader::open(&app.audio_path(stored.audio_key.as_deref().unwrap())).unwrap();
    let channels = reader.info().channels as usize;
    let mut samples = vec![0.0; stored.length.get() as usize * channels];
    let read = reader.read_frames(stored.source_offset.get() as u64, &mut samples).unwrap();
    assert_eq!(read as i64, stored.length.get());
    (channels, samples, clip)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overdub_from_the_loopback_lines_up_with_the_click_track_to_the_sample() {
    let app = TestApp::sqlite().await;
    let project = app.project(json!({"name": "Overdub", "tempo": 120})).await;
    let click_track = app.track(&project, "Click", 0).await;
    let click = VirtualSignal::Click { tempo: 120.0 };
    let clicks: Vec<f32> = (0..4 * RATE as u64).map(|n| click.sample(n, 0, RATE)).collect();
    app.audio_clip(&project, click_track["id"].as_str().unwrap(), 0.0, 1, &clicks).await;
    let overdub = app.track(&project, "Overdub", 1).await;
    let overdub = overdub["id"].as_str().unwrap();
    arm(&app, overdub, "loopback").await;
    // The metronome clicks in what the musician hears, never in a take (even the loopback's),
    // and a bar of count-in rolls from −1.5 s.
    let metronome = json!({"enabled": true, "level": 0.8, "accent": true});
    let (status, set) = app.put(&format!("/api/audio/projects/{project}/metronome"), metronome.clone()).await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(set["metronome"]["enabled"], true);
    let (status, refused) = app
        .put(&format!("/api/audio/projects/{project}/metronome"), json!({"enabled": true, "level": 2, "accent": true}))
        .await;
    assert_eq!(status, 422, "{refused}");

    let (status, started) = app
        .post(&format!("/api/audio/tracks/{overdub}/record/start"), json!({"start_time": 0.5, "count_in_bars": 1}))
        .await;
    assert_eq!(status, 200, "{started}");
    assert_eq!((started["success"].as_bool(), started["clip_id"].clone()), (Some(true), Value::Null));
    let session = started["session_id"].as_str().unwrap().to_owned();
    let (_, active) = app.get("/api/audio/recording/active").await;
    assert_eq!(active[0]["session_id"], session.as_str());
    // The engine applies the roll within a block of the answer.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (_, playing) = app.get(&format!("/api/audio/projects/{project}/playback/status")).await;
    assert_eq!(playing["status"], "playing", "record/start rolled the transport");

    tokio::time::sleep(Duration::from_millis(3500)).await;
    let (status, stopped) = app.post_empty(&format!("/api/audio/tracks/{overdub}/record/stop/{session}")).await;
    assert_eq!(status, 200, "{stopped}");
    assert_eq!(stopped["start_frame"], 24_000, "the take starts at the record point, after the count-in");
    let clip_id = stopped["clip_id"].as_str().unwrap().to_owned();

    let (channels, take, clip) = take_audio(&app, &clip_id).await;
    assert_eq!(channels, 2);
    assert_eq!(clip["start"].as_f64(), Some(0.5));
    let frames = take.len() / 2;
    assert!(frames > 48_000, "about 1.5 s recorded, got {frames} frames");
    // Every frame of the take is the click track as it played at that timeline frame.
    let start = 24_000usize;
    for (i, frame) in take.chunks_exact(2).enumerate() {
        let expected = clicks.get(start + i).copied().unwrap_or(0.0) * CENTRE;
        assert_eq!(frame, [expected, expected], "frame {i} of the take (timeline {})", start + i);
    }
    let (_, journal) = app.get(&format!("/api/audio/recording/status/{session}")).await;
    assert_eq!((journal["status"].as_str(), journal["clip_ids"][0].as_str()), (Some("saved"), Some(clip_id.as_str())));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_virtual_microphone_records_its_sine_where_and_for_as_long_as_it_played() {
    let app = TestApp::sqlite().await;
    let project = app.project(json!({"name": "Vocals"})).await;
    let track = app.track(&project, "Mic", 0).await;
    let track = track["id"].as_str().unwrap();
    arm(&app, track, "mock_0").await;

    let (status, started) =
        app.post(&format!("/api/audio/tracks/{track}/record/start"), json!({"start_time": 1.0})).await;
    assert_eq!(status, 200, "{started}");
    let clock = Instant::now();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let session = started["session_id"].as_str().unwrap();
    let (status, stopped) = app.post_empty(&format!("/api/audio/tracks/{track}/record/stop/{session}")).await;
    let elapsed = clock.elapsed().as_secs_f64();
    assert_eq!(status, 200, "{stopped}");
    assert_eq!(stopped["start_frame"], 48_000);

    let (channels, take, clip) = take_audio(&app, stopped["clip_id"].as_str().unwrap()).await;
    assert_eq!(channels, 1);
    assert_eq!(clip["start"].as_f64(), Some(1.0));
    // Exactly what the engine captured, and as long as the transport rolled between the two
    // calls (the roll starts within a block or two of the answer; slack for a busy machine).
    assert_eq!(take.len() as u64, stopped["frames"].as_u64().unwrap());
    let seconds = take.len() as f64 / f64::from(RATE);
    assert!((seconds - elapsed).abs() < 0.25, "{seconds} s recorded in {elapsed} s");
    let expected: Vec<f32> = (0..take.len() as u64).map(|n| VirtualSignal::Sine.sample(n, 0, RATE)).collect();
    assert_eq!(take, expected, "the take is the microphone's sine from its first sample");

    // Finalisation measured it: a −12 dBFS-peak sine is −15.7 LUFS (BS.1770: −0.691 + 10·log10(A²/2)).
    let lufs = clip["loudness_lufs"].as_f64().expect("loudness measured");
    assert!((lufs - (-0.691 + 10.0 * (0.25f64 * 0.25 / 2.0).log10())).abs() < 0.2, "{lufs} LUFS");
    // And drew its waveform: the zoom level nearest 1000 is 1024 frames per pixel.
    let response =
        reqwest::get(app.url(&format!("/api/clips/{}/peaks?samples_per_pixel=1000", clip["id"].as_str().unwrap())))
            .await
            .unwrap();
    assert_eq!(response.status(), 200);
    let dat = response.bytes().await.unwrap();
    let word = |at: usize| i32::from_le_bytes(dat[at..at + 4].try_into().unwrap());
    let pixels = take.len().div_ceil(1024);
    assert_eq!([word(0), word(4), word(8), word(12), word(16), word(20)], [2, 0, 48_000, 1024, pixels as i32, 1]);
    assert_eq!(dat.len(), 24 + pixels * 4);
    let first_max = i16::from_le_bytes([dat[26], dat[27]]);
    assert!((i32::from(first_max) - 8_192).abs() < 20, "a full pixel of the sine peaks at 0.25: {first_max}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_mistakes_get_clear_errors_and_lose_nothing() {
    let app = TestApp::sqlite().await;
    let project = app.project(json!({"name": "Errors"})).await;
    let vox = app.track(&project, "Vox", 0).await;
    let vox = vox["id"].as_str().unwrap().to_owned();
    let gtr = app.track(&project, "Guitar", 1).await;
    let gtr = gtr["id"].as_str().unwrap().to_owned();

    // Not armed.
    let (status, body) = app.post(&format!("/api/audio/tracks/{vox}/record/start"), json!({})).await;
    assert_eq!(status, 409, "{body}");
    assert!(assert_error(&body).contains("not armed"));
    // No waveform for a clip that has no audio yet.
    let pending = app.audio_clip(&project, &vox, 0.0, 1, &[0.0; 480]).await;
    let store = app.store().await;
    let pending_id: uuid::Uuid = pending.parse().unwrap();
    assert!(store.get_clip(pending_id.into()).await.unwrap().unwrap().peaks_key.is_none());
    let (status, body) = app.get(&format!("/api/clips/{pending}/peaks")).await;
    assert_eq!(status, 409, "{body}");
    // An unknown device.
    let (status, body) =
        app.post(&format!("/api/audio/tracks/{vox}/record/enable"), json!({"device_id": "mic_99"})).await;
    assert_eq!(status, 422, "{body}");

    arm(&app, &vox, "mock_0").await;
    arm(&app, &gtr, "mock_0").await;
    let (status, started) = app.post(&format!("/api/audio/tracks/{vox}/record/start"), json!({})).await;
    assert_eq!(status, 200, "{started}");
    // The device records one session at a time.
    let (status, body) = app.post(&format!("/api/audio/tracks/{gtr}/record/start"), json!({})).await;
    assert_eq!(status, 409, "{body}");
    assert!(assert_error(&body).contains("already recording"));
    // Another device on the other track is fine: two takes at once.
    let (status, second) =
        app.post(&format!("/api/audio/tracks/{gtr}/record/start"), json!({"device_id": "mock_1"})).await;
    assert_eq!(status, 200, "{second}");

    tokio::time::sleep(Duration::from_millis(300)).await;
    let session = started["session_id"].as_str().unwrap();
    let (status, stopped) = app.post_empty(&format!("/api/audio/tracks/{vox}/record/stop/{session}")).await;
    assert_eq!(status, 200, "{stopped}");
    // Stop twice.
    let (status, body) = app.post_empty(&format!("/api/audio/tracks/{vox}/record/stop/{session}")).await;
    assert_eq!(status, 409, "{body}");
    assert_error(&body);
    // Unknown and malformed sessions.
    let unknown = uuid::Uuid::new_v4();
    assert_eq!(app.post_empty(&format!("/api/audio/tracks/{vox}/record/stop/{unknown}")).await.0, 404);
    assert_eq!(app.post_empty(&format!("/api/audio/tracks/{vox}/record/stop/not-a-uuid")).await.0, 422);
    assert_eq!(app.get(&format!("/api/audio/recording/status/{unknown}")).await.0, 404);

    // The first take is intact and the second still recording.
    let (_, take, first) = take_audio(&app, stopped["clip_id"].as_str().unwrap()).await;
    assert_eq!(first["status"], "ready");
    assert!(!take.is_empty());
    let (_, active) = app.get("/api/audio/recording/active").await;
    assert_eq!(active.as_array().unwrap().len(), 1);
    assert_eq!(active[0]["session_id"], second["session_id"]);
    let (status, _) = app
        .post_empty(&format!("/api/audio/tracks/{gtr}/record/stop/{}", second["session_id"].as_str().unwrap()))
        .await;
    assert_eq!(status, 200);
    app.stop().await;
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn send(socket: &mut Socket, value: Value) {
    use futures_util::SinkExt;
    socket.send(tokio_tungstenite::tungstenite::Message::text(value.to_string())).await.unwrap();
}

/// The next frame matching `wanted`, skipping others (failing after 5 s).
async fn next_where(socket: &mut Socket, wanted: impl Fn(&Value) -> bool) -> Value {
    use futures_util::StreamExt;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let frame = tokio::time::timeout_at(deadline, socket.next()).await.expect("the frame within 5 s");
        if let tokio_tungstenite::tungstenite::Message::Text(text) = frame.unwrap().unwrap() {
            let value: Value = serde_json::from_str(&text).unwrap();
            if wanted(&value) {
                return value;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_client_records_a_take_and_watches_its_level_and_finalisation() {
    let app = TestApp::sqlite().await;
    let project = app.project(json!({"name": "Live"})).await;
    let track = app.track(&project, "Keys", 0).await;
    let track = track["id"].as_str().unwrap().to_owned();
    arm(&app, &track, "mock_1").await;
    let (mut socket, _) = tokio_tungstenite::connect_async(app.ws_url(&project)).await.unwrap();
    send(&mut socket, json!({"type": "ping"})).await;
    next_where(&mut socket, |v| v["type"] == "pong").await;

    send(&mut socket, json!({"type": "control", "id": "r1", "command": "record_start", "data": {"track_id": track}}))
        .await;
    let response = next_where(&mut socket, |v| v["type"] == "control_response").await;
    assert_eq!(
        (response["data"]["id"].as_str(), response["data"]["success"].as_bool()),
        (Some("r1"), Some(true)),
        "{response}"
    );
    let session = response["data"]["result"]["session_id"].as_str().unwrap().to_owned();
    let rolling = next_where(&mut socket, |v| v["type"] == "position_update").await;
    assert_eq!(rolling["data"]["recording"], true);
    let progress =
        next_where(&mut socket, |v| v["type"] == "recording_status" && v["data"]["event"] == "progress").await;
    assert_eq!(progress["data"]["session_id"], session.as_str());
    let level = progress["data"]["level"].as_f64().unwrap();
    assert!((level - 0.25).abs() < 0.01, "the meter shows the tones' −12 dBFS peak: {progress}");

    send(
        &mut socket,
        json!({"type": "control", "id": "r2", "command": "record_stop", "data": {"session_id": session}}),
    )
    .await;
    let response = next_where(&mut socket, |v| v["type"] == "control_response").await;
    assert_eq!(response["data"]["success"], true, "{response}");
    let clip = response["data"]["result"]["clip_id"].as_str().unwrap().to_owned();
    let job = response["data"]["result"]["finalize_job_id"].as_str().unwrap().to_owned();
    let finished = next_where(&mut socket, |v| v["type"] == "job_progress" && v["data"]["status"] == "succeeded").await;
    assert_eq!(
        (finished["data"]["job_id"].as_str(), finished["data"]["kind"].as_str()),
        (Some(job.as_str()), Some("finalize_capture"))
    );
    assert_eq!(finished["data"]["progress"].as_f64(), Some(1.0));
    let (status, row) = app.get(&format!("/api/jobs/{job}")).await;
    assert_eq!(
        (status, row["status"].as_str(), row["progress"].as_f64()),
        (200, Some("succeeded"), Some(1.0)),
        "{row}"
    );
    assert_eq!(row["result"]["clip_ids"][0], clip.as_str());
    let ready = next_where(&mut socket, |v| v["type"] == "clip_ready").await;
    assert_eq!(ready["data"]["clip_id"], clip.as_str());
    let saved = next_where(&mut socket, |v| v["type"] == "recording_status" && v["data"]["event"] == "saved").await;
    assert_eq!(saved["data"]["session_id"], session.as_str());

    // A bad command gets an answer, not a closed socket.
    send(&mut socket, json!({"type": "control", "id": "r3", "command": "record_stop", "data": {"session_id": "nope"}}))
        .await;
    let response = next_where(&mut socket, |v| v["type"] == "control_response").await;
    assert_eq!((response["data"]["success"].as_bool(), response["data"]["id"].as_str()), (Some(false), Some("r3")));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loop_recording_makes_a_take_per_pass_and_any_take_can_be_made_active() {
    let app = TestApp::sqlite().await;
    let project = app.project(json!({"name": "Loops"})).await;
    let track = app.track(&project, "Mic", 0).await;
    let track = track["id"].as_str().unwrap().to_owned();
    arm(&app, &track, "mock_0").await;
    let (_, region) = app.post(&format!("/api/projects/{project}/loops"), json!({"start": 1.0, "end": 1.5})).await;
    let (status, _) = app
        .post(&format!("/api/audio/projects/{project}/playback/loop/enable"), json!({"loop_region_id": region["id"]}))
        .await;
    assert_eq!(status, 200);

    let (status, started) =
        app.post(&format!("/api/audio/tracks/{track}/record/start"), json!({"start_time": 1.0})).await;
    assert_eq!(status, 200, "{started}");
    tokio::time::sleep(Duration::from_millis(1800)).await;
    let session = started["session_id"].as_str().unwrap();
    let (status, stopped) = app.post_empty(&format!("/api/audio/tracks/{track}/record/stop/{session}")).await;
    assert_eq!(status, 200, "{stopped}");
    let clip_ids: Vec<String> =
        stopped["clip_ids"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    assert!(clip_ids.len() >= 3, "1.8 s over a 0.5 s loop: {stopped}");
    assert_eq!(stopped["clip_id"].as_str(), clip_ids.last().map(String::as_str), "the newest pass is the take");

    // Every pass but the last is exactly one loop long and starts at the loop start.
    for clip in &clip_ids {
        app.ready_clip(clip).await;
    }
    let (_, takes) = app.get(&format!("/api/tracks/{track}/takes")).await;
    let takes = takes.as_array().unwrap();
    assert_eq!(takes.len(), clip_ids.len());
    let oldest_first: Vec<&Value> = takes.iter().rev().collect();
    for (pass, take) in oldest_first.iter().enumerate() {
        assert_eq!(take["pass_index"], pass);
        assert_eq!(take["clip_id"], clip_ids[pass].as_str());
        assert_eq!(take["capture_offset_frames"], pass * 24_000);
        // The newest pass plays where it was played; a last pass cut short by the stop leaves
        // the one before it playing the rest of the loop (§14).
        let last_is_short = oldest_first.last().unwrap()["length_frames"].as_i64().unwrap() < 24_000;
        let plays = pass + 1 == clip_ids.len() || (last_is_short && pass + 2 == clip_ids.len());
        assert_eq!(take["active"], plays, "pass {pass}");
        let (_, clip) = app.get(&format!("/api/clips/{}", clip_ids[pass])).await;
        assert_eq!(clip["start"].as_f64(), Some(1.0));
        if pass + 1 < clip_ids.len() {
            assert_eq!(take["length_frames"], 24_000);
        }
    }
    // Each pass's audio continues the microphone's sine where the previous pass stopped.
    let (_, second, _) = take_audio(&app, &clip_ids[1]).await;
    let expected: Vec<f32> =
        (24_000..24_000 + second.len() as u64).map(|n| VirtualSignal::Sine.sample(n, 0, RATE)).collect();
    assert_eq!(second, expected);

    // Choose the first pass instead.
    let first_take = oldest_first[0]["id"].as_str().unwrap();
    let (status, chosen) = app.post_empty(&format!("/api/takes/{first_take}/activate")).await;
    assert_eq!((status, chosen["active"].as_bool()), (200, Some(true)), "{chosen}");
    let (_, takes) = app.get(&format!("/api/tracks/{track}/takes")).await;
    let active: Vec<&str> =
        takes.as_array().unwrap().iter().filter(|t| t["active"] == true).map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(active, [first_take]);
    assert_eq!(app.post_empty(&format!("/api/takes/{}/activate", uuid::Uuid::new_v4())).await.0, 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_punch_range_keeps_only_the_audio_inside_it() {
    let app = TestApp::sqlite().await;
    let project = app.project(json!({"name": "Punch"})).await;
    let track = app.track(&project, "Gtr", 0).await;
    let track = track["id"].as_str().unwrap().to_owned();
    arm(&app, &track, "mock_1").await;
    let (status, body) = app
        .post(
            &format!("/api/audio/tracks/{track}/record/start"),
            json!({"start_time": 0.0, "punch_in": 0.75, "punch_out": 0.5}),
        )
        .await;
    assert_eq!(status, 422, "{body}");

    let punch = json!({"start_time": 0.0, "punch_in": 0.25, "punch_out": 0.75});
    let (status, started) = app.post(&format!("/api/audio/tracks/{track}/record/start"), punch).await;
    assert_eq!(status, 200, "{started}");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let session = started["session_id"].as_str().unwrap();
    let (_, stopped) = app.post_empty(&format!("/api/audio/tracks/{track}/record/stop/{session}")).await;
    assert_eq!(
        (stopped["start_frame"].as_i64(), stopped["frames"].as_u64()),
        (Some(12_000), Some(24_000)),
        "{stopped}"
    );
    let (channels, take, clip) = take_audio(&app, stopped["clip_id"].as_str().unwrap()).await;
    assert_eq!((channels, clip["start"].as_f64(), clip["length"].as_f64()), (2, Some(0.25), Some(0.5)));
    // The device ran from the roll; the take holds its frames 12,000 to 36,000.
    let expected: Vec<f32> =
        (12_000..36_000u64).flat_map(|n| [0, 1].map(|c| VirtualSignal::Tones.sample(n, c, RATE))).collect();
    assert_eq!(take, expected);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_offset_moves_its_takes_and_is_kept_with_them() {
    let app = TestApp::sqlite().await;
    let put = |path: String, body: Value| {
        let url = app.url(&path);
        async move {
            let response = reqwest::Client::new().put(url).json(&body).send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let project = app.project(json!({"name": "Offset"})).await;
    let other = app.project(json!({"name": "Elsewhere"})).await;
    let offset = |project: &str, device: &str| format!("/api/projects/{project}/devices/{device}/offset");
    assert_eq!(put(offset(&project, "mock_0"), json!({"offset_ms": 1500})).await.0, 422);
    assert_eq!(put(offset(&project, "nope"), json!({"offset_ms": 1})).await.0, 404);
    let (status, set) = put(offset(&project, "mock_0"), json!({"offset_ms": 12.5})).await;
    assert_eq!((status, set["offset_ms"].as_f64()), (200, Some(12.5)), "{set}");
    let (_, devices) = app.get(&format!("/api/audio/devices?project_id={project}")).await;
    assert_eq!(devices[0]["offset_ms"].as_f64(), Some(12.5));
    let (_, elsewhere) = app.get(&format!("/api/audio/devices?project_id={other}")).await;
    assert_eq!(elsewhere[0]["offset_ms"].as_f64(), Some(0.0), "another project's devices are not moved");
    let (status, _) = put("/api/audio/devices/mock_0/offset".into(), json!({"offset_ms": 250})).await;
    assert_eq!(status, 404, "the deployment-wide route is gone");

    let track = app.track(&project, "Mic", 0).await;
    let track = track["id"].as_str().unwrap().to_owned();
    arm(&app, &track, "mock_0").await;
    let (_, started) = app.post(&format!("/api/audio/tracks/{track}/record/start"), json!({"start_time": 1.0})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let session = started["session_id"].as_str().unwrap();
    let (_, stopped) = app.post_empty(&format!("/api/audio/tracks/{track}/record/stop/{session}")).await;
    // 12.5 ms at 48 kHz is 600 frames later than the engine's frame at the first sample.
    assert_eq!(stopped["start_frame"], 48_600, "{stopped}");
    let (_, journal) = app.get(&format!("/api/audio/recording/status/{session}")).await;
    assert_eq!((journal["start_frame"].as_i64(), journal["applied_offset_frames"].as_i64()), (Some(48_600), Some(600)));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_transport_during_takes_ends_and_saves_each_of_them() {
    let app = TestApp::sqlite().await;
    let project = app.project(json!({"name": "Stop"})).await;
    let mic = app.track(&project, "Mic", 0).await["id"].as_str().unwrap().to_owned();
    let echo = app.track(&project, "Echo", 1).await["id"].as_str().unwrap().to_owned();
    arm(&app, &mic, "mock_0").await;
    arm(&app, &echo, "loopback").await;
    let (status, first) = app.post(&format!("/api/audio/tracks/{mic}/record/start"), json!({"start_time": 1.0})).await;
    assert_eq!(status, 200, "{first}");
    let (status, second) = app.post(&format!("/api/audio/tracks/{echo}/record/start"), json!({})).await;
    assert_eq!(status, 200, "{second}");
    tokio::time::sleep(Duration::from_millis(1000)).await;

    // ■: the transport stops, and with it both takes.
    let (status, stopped) = app.post_empty(&format!("/api/audio/projects/{project}/playback/stop")).await;
    assert_eq!((status, stopped["status"].as_str()), (200, Some("stopped")), "{stopped}");
    let (_, active) = app.get("/api/audio/recording/active").await;
    assert_eq!(active, json!([]), "no take is left recording");
    for (track, started) in [(&mic, &first), (&echo, &second)] {
        let session = started["session_id"].as_str().unwrap();
        let (_, journal) = app.get(&format!("/api/audio/recording/status/{session}")).await;
        assert_ne!(journal["status"], "recording", "{journal}");
        let clip_id = journal["clip_ids"][0].as_str().unwrap_or_else(|| panic!("a take was saved: {journal}"));
        let (_, take, clip) = take_audio(&app, clip_id).await;
        assert_eq!(clip["track_id"], track.as_str());
        let seconds = take.len() as f64 / f64::from(RATE) / if track == &echo { 2.0 } else { 1.0 };
        assert!((0.7..1.5).contains(&seconds), "about a second recorded: {seconds} s");
        // A second stop of the same take answers that it is no longer recording.
        let (status, again) = app.post_empty(&format!("/api/audio/tracks/{track}/record/stop/{session}")).await;
        assert_eq!(status, 409, "{again}");
    }
    let (_, takes) = app.get(&format!("/api/tracks/{mic}/takes")).await;
    assert_eq!(takes.as_array().map(Vec::len), Some(1));
    app.stop().await;
}
