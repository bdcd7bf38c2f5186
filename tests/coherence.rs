//! One source of truth (§5): every change reaches the engine and the clients, takes belong to
//! their project and track, deletes leave nothing running. Each test is a report a user made,
//! replayed against `serve` over real HTTP and WebSocket.

mod common;

use audiolab_dsp::input::VirtualSignal;
use audiolab_media::wav::WavReader;
use common::{TestApp, control, joined, next_where};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::time::Duration;

const RATE: u32 = 48_000;
const CENTRE: f32 = std::f32::consts::FRAC_1_SQRT_2;

async fn armed_track(app: &TestApp, project: &str, index: i64, device: &str) -> String {
    let track = app.track(project, &format!("Track {index}"), index).await;
    let track = track["id"].as_str().unwrap().to_owned();
    let (status, body) = app
        .post(&format!("/api/audio/tracks/{track}/record/enable"), json!({"device_id": device, "enabled": true}))
        .await;
    assert_eq!(status, 200, "{body}");
    track
}

async fn record_start(app: &TestApp, track: &str, body: Value) -> String {
    let (status, started) = app.post(&format!("/api/audio/tracks/{track}/record/start"), body).await;
    assert_eq!(status, 200, "{started}");
    started["session_id"].as_str().unwrap().to_owned()
}

async fn record_stop(app: &TestApp, track: &str, session: &str) -> Value {
    let (status, stopped) = app.post_empty(&format!("/api/audio/tracks/{track}/record/stop/{session}")).await;
    assert_eq!(status, 200, "{stopped}");
    stopped
}

/// A ready clip's playing samples (interleaved) and its JSON.
async fn clip_samples(app: &TestApp, clip: &str) -> (Vec<f32>, Value) {
    let body = app.ready_clip(clip).await;
    let stored = app.store().await.get_clip(clip.parse::<uuid::Uuid>().unwrap().into()).await.unwrap().unwrap();
    let mut reader = WavReader::open(&app.audio_path(stored.audio_key.as_deref().unwrap())).unwrap();
    let channels = usize::from(reader.info().channels);
    let mut samples = vec![0.0; stored.length.get() as usize * channels];
    reader.read_frames(stored.source_offset.get() as u64, &mut samples).unwrap();
    (samples, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_sent_through_another_project_leaves_the_take_recording() {
    let app = TestApp::sqlite().await;
    let a = app.project(json!({"name": "A"})).await;
    let b = app.project(json!({"name": "B"})).await;
    armed_track(&app, &a, 0, "mock_0").await;
    let b_track = armed_track(&app, &b, 0, "mock_0").await;
    let b_session = record_start(&app, &b_track, json!({"start_time": 0.0})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut a_socket = joined(&app, &a).await;
    // The node's internal `unload` is not a socket command.
    let mut b_socket = joined(&app, &b).await;
    let refused = control(&mut b_socket, "unload", json!({})).await;
    assert_eq!((refused["success"].as_bool(), refused["code"].as_str()), (Some(false), Some("invalid")), "{refused}");
    for _ in 0..8 {
        let answer = control(&mut a_socket, "record_stop", json!({"session_id": b_session})).await;
        assert_eq!(answer["success"], false, "{answer}");
        assert_eq!(answer["error"], "recording session not found", "{answer}");
        assert_eq!(answer["code"], "not_found", "{answer}");
    }
    // A track of B named with the wrong project's path is not found either.
    let (_, active) = app.get("/api/audio/recording/active").await;
    assert_eq!(active.as_array().unwrap().len(), 1, "B still records: {active}");
    tokio::time::sleep(Duration::from_millis(700)).await;

    let stopped = record_stop(&app, &b_track, &b_session).await;
    let frames = stopped["frames"].as_u64().unwrap();
    assert!(frames >= RATE as u64 * 9 / 10, "B's take runs the whole second it was recorded: {frames} frames");
    let (samples, _) = clip_samples(&app, stopped["clip_id"].as_str().unwrap()).await;
    assert_eq!(samples.len() as u64, frames, "the finalised take has every frame captured");
    let expected: Vec<f32> = (0..frames).map(|n| VirtualSignal::Sine.sample(n, 0, RATE)).collect();
    assert_eq!(samples, expected);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_project_that_records_stops_and_discards_its_take() {
    let app = TestApp::sqlite().await;
    let project = app.project(json!({"name": "Doomed"})).await;
    let track = armed_track(&app, &project, 0, "mock_0").await;
    let session = record_start(&app, &track, json!({"start_time": 0.0})).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let capture = app.audio_path(&format!("captures/{session}"));
    assert!(capture.exists(), "the capture is being written");

    let (code, _) = app.delete(&format!("/api/projects/{project}")).await;
    assert_eq!(code, 204);
    let (_, active) = app.get("/api/audio/recording/active").await;
    assert_eq!(active, json!([]), "nothing records any more");
    assert!(!capture.exists(), "the discarded take's capture is gone");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!capture.exists(), "and nothing writes it again");
    let (code, _) = app.get(&format!("/api/audio/recording/status/{session}")).await;
    assert_eq!(code, 404);

    // Another project records from the same device at once.
    let other = app.project(json!({"name": "Next"})).await;
    let other_track = armed_track(&app, &other, 0, "mock_0").await;
    let other_session = record_start(&app, &other_track, json!({"start_time": 0.0})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stopped = record_stop(&app, &other_track, &other_session).await;
    assert!(stopped["frames"].as_u64().unwrap() > 0, "{stopped}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_playing_project_unloads_it_and_closes_its_sockets_with_a_reason() {
    let app = TestApp::sqlite().await;
    let project = app.project(json!({"name": "Playing"})).await;
    let track = app.track(&project, "Drums", 0).await;
    app.audio_clip(&project, track["id"].as_str().unwrap(), 0.0, 1, &vec![0.5; 10 * RATE as usize]).await;
    let mut socket = joined(&app, &project).await;
    // A listener that only subscribes, without a ping or a command.
    let (mut listener, _) = tokio_tungstenite::connect_async(app.ws_url(&project)).await.unwrap();
    common::send(&mut listener, json!({"type": "subscribe"})).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let answer = control(&mut socket, "play", json!({"position": 0.0})).await;
    assert_eq!(answer["success"], true, "{answer}");
    next_where(&mut socket, |v| v["type"] == "position_update").await;
    let heard = next_where(&mut listener, |v| v["type"] == "position_update" || v["type"] == "playback_started").await;
    assert_eq!(heard["data"]["project_id"], project.as_str(), "subscribe joined the broadcasts");

    let (code, _) = app.delete(&format!("/api/projects/{project}")).await;
    assert_eq!(code, 204);
    // The socket ends with a close frame saying why; no position_update comes after it.
    let close = loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), socket.next()).await.expect("closed within 5 s");
        match frame {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(close))) => break close,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(close.map(|c| c.reason.to_string()).as_deref(), Some("the project was deleted"));
    let listener_closed = loop {
        match tokio::time::timeout(Duration::from_secs(5), listener.next()).await.expect("closed within 5 s") {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(close))) => break close,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(listener_closed.map(|c| c.reason.to_string()).as_deref(), Some("the project was deleted"));
    assert!(
        tokio::time::timeout(Duration::from_millis(300), socket.next()).await.map_or(true, |f| f.is_none()),
        "nothing after the close"
    );
    let (code, _) = app.get(&format!("/api/audio/projects/{project}/playback/status")).await;
    assert_eq!(code, 404);
    let refused = tokio_tungstenite::connect_async(app.ws_url(&project)).await;
    assert!(refused.is_err(), "a new socket for the deleted project is refused");
    app.stop().await;
}

/// A project with 4 s of a ramp-free constant clip and a loop region over [0.5, 1.0).
async fn looping_project(app: &TestApp) -> (String, String) {
    let project = app.project(json!({"name": "Loops"})).await;
    let track = app.track(&project, "Pad", 0).await;
    app.audio_clip(&project, track["id"].as_str().unwrap(), 0.0, 1, &vec![0.5; 4 * RATE as usize]).await;
    let (code, region) = app.post(&format!("/api/projects/{project}/loops"), json!({"start": 0.5, "end": 1.0})).await;
    assert_eq!(code, 201, "{region}");
    (project, region["id"].as_str().unwrap().to_owned())
}

/// The furthest the playhead gets within `window`.
async fn furthest(app: &TestApp, project: &str, window: Duration) -> f64 {
    let deadline = tokio::time::Instant::now() + window;
    let mut furthest: f64 = 0.0;
    while tokio::time::Instant::now() < deadline {
        furthest = furthest.max(app.playback_status(project).await["position"].as_f64().unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    furthest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loop_enables_and_disables_over_the_socket_and_the_engine_follows() {
    let app = TestApp::sqlite().await;
    let (project, region) = looping_project(&app).await;
    let mut socket = joined(&app, &project).await;
    for _ in 0..2 {
        let enabled = control(&mut socket, "loop_enable", json!({"loop_region_id": region})).await;
        assert_eq!(
            (enabled["success"].as_bool(), enabled["result"]["loop_region_id"].as_str()),
            (Some(true), Some(region.as_str())),
            "{enabled}"
        );
        let disabled = control(&mut socket, "loop_disable", json!({})).await;
        assert_eq!(disabled["success"], true, "{disabled}");
        assert_eq!(disabled["result"]["loop_region_id"], Value::Null, "{disabled}");
    }
    let (_, row) = app.get(&format!("/api/loops/{region}")).await;
    assert_eq!(row["enabled"], false);
    // Disabled: playing from inside the old loop runs past its end.
    control(&mut socket, "play", json!({"position": 0.6})).await;
    assert!(furthest(&app, &project, Duration::from_millis(700)).await > 1.1, "the engine does not loop");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_or_deleting_the_looping_region_reaches_the_engine_and_one_loop_is_enabled() {
    let app = TestApp::sqlite().await;
    let (project, region) = looping_project(&app).await;
    let mut socket = joined(&app, &project).await;
    control(&mut socket, "loop_enable", json!({"loop_region_id": region})).await;
    control(&mut socket, "play", json!({"position": 0.6})).await;
    let looped = furthest(&app, &project, Duration::from_millis(700)).await;
    assert!(looped < 1.0, "looping [0.5, 1.0): the playhead stays inside, reached {looped}");

    // Widened to [0.5, 2.5): the playhead now passes the old end.
    let (code, body) = app.patch(&format!("/api/loops/{region}"), json!({"end": 2.5})).await;
    assert_eq!(code, 200, "{body}");
    let changed = next_where(&mut socket, |v| v["type"] == "model_changed").await;
    assert_eq!(
        (changed["data"]["item"].as_str(), changed["data"]["id"].as_str()),
        (Some("loop_region"), Some(region.as_str()))
    );
    assert!(furthest(&app, &project, Duration::from_millis(900)).await > 1.2, "the widened loop is followed");

    // A second region created enabled takes over; the first is disabled.
    let (code, second) =
        app.post(&format!("/api/projects/{project}/loops"), json!({"start": 3.0, "end": 3.5, "enabled": true})).await;
    assert_eq!(code, 201, "{second}");
    let (_, regions) = app.get(&format!("/api/projects/{project}/loops")).await;
    let enabled: Vec<_> = regions.as_array().unwrap().iter().filter(|r| r["enabled"] == true).collect();
    assert_eq!(enabled.len(), 1, "{regions}");
    assert_eq!(enabled[0]["id"], second["id"]);
    let second = second["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(app.playback_status(&project).await["loop_region_id"], second.as_str());

    // PATCH enabled: false, then DELETE: the engine stops looping either way.
    let (code, _) = app.patch(&format!("/api/loops/{second}"), json!({"enabled": false})).await;
    assert_eq!(code, 200);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(app.playback_status(&project).await["loop_region_id"], Value::Null);
    let (code, _) = app.patch(&format!("/api/loops/{region}"), json!({"enabled": true})).await;
    assert_eq!(code, 200);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(app.playback_status(&project).await["loop_region_id"], region.as_str());
    let (code, _) = app.delete(&format!("/api/loops/{region}")).await;
    assert_eq!(code, 204);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(app.playback_status(&project).await["loop_region_id"], Value::Null);
    control(&mut socket, "play", json!({"position": 0.6})).await;
    assert!(furthest(&app, &project, Duration::from_millis(700)).await > 1.1, "the deleted loop no longer loops");
    app.stop().await;
}

/// The click track a loopback overdub hears, one sample per frame.
fn clicks(seconds: u64) -> Vec<f32> {
    let click = VirtualSignal::Click { tempo: 120.0 };
    (0..seconds * RATE as u64).map(|n| click.sample(n, 0, RATE)).collect()
}

/// Asserts a loopback take's frames are the click track as it played from `start`.
fn assert_click_at(take: &[f32], clicks: &[f32], start: usize) {
    for (i, frame) in take.chunks_exact(2).enumerate() {
        let expected = clicks.get(start + i).copied().unwrap_or(0.0) * CENTRE;
        assert_eq!(frame, [expected, expected], "frame {i} of the piece at timeline frame {start}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seek_while_recording_splits_the_take_and_each_piece_sits_where_it_was_played() {
    let app = TestApp::sqlite().await;
    let project = app.project(json!({"name": "Jumps", "tempo": 120})).await;
    let click_track = app.track(&project, "Click", 0).await;
    let clicks = clicks(14);
    app.audio_clip(&project, click_track["id"].as_str().unwrap(), 0.0, 1, &clicks).await;
    let overdub = armed_track(&app, &project, 1, "loopback").await;
    let session = record_start(&app, &overdub, json!({"start_time": 0.0})).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (code, _) = app.post(&format!("/api/audio/projects/{project}/playback/seek"), json!({"position": 10.0})).await;
    assert_eq!(code, 200);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let stopped = record_stop(&app, &overdub, &session).await;

    let pieces: Vec<String> =
        stopped["clip_ids"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    assert_eq!(pieces.len(), 2, "one piece before the seek, one after: {stopped}");
    let (first, first_clip) = clip_samples(&app, &pieces[0]).await;
    let (second, second_clip) = clip_samples(&app, &pieces[1]).await;
    assert_eq!(first_clip["start_frame"], 0);
    assert_eq!(second_clip["start_frame"], 10 * RATE as i64, "the second piece is where it was played");
    assert_eq!((first_clip["active"].as_bool(), second_clip["active"].as_bool()), (Some(true), Some(true)));
    assert!(first.len() / 2 > RATE as usize * 9 / 10 && second.len() / 2 > RATE as usize / 2);
    assert_click_at(&first, &clicks, 0);
    assert_click_at(&second, &clicks, 10 * RATE as usize);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clip_edit_while_playing_is_heard_at_once_without_a_gap() {
    let app = TestApp::sqlite().await;
    let project = app.project(json!({"name": "Edit"})).await;
    let source = app.track(&project, "Source", 0).await;
    let clip = app.audio_clip(&project, source["id"].as_str().unwrap(), 0.0, 1, &vec![0.5; 6 * RATE as usize]).await;
    let overdub = armed_track(&app, &project, 1, "loopback").await;
    let session = record_start(&app, &overdub, json!({"start_time": 0.0})).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (code, body) = app.patch(&format!("/api/clips/{clip}"), json!({"gain_db": -20.0 * 2f64.log10()})).await;
    assert_eq!(code, 200, "{body}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let stopped = record_stop(&app, &overdub, &session).await;

    let (take, _) = clip_samples(&app, stopped["clip_id"].as_str().unwrap()).await;
    let left: Vec<f32> = take.chunks_exact(2).map(|f| f[0]).collect();
    let (loud, half) = (0.5 * CENTRE, 0.5 * 10f32.powf(-20.0 * 2f32.log10() / 20.0) * CENTRE);
    let switch = left.iter().position(|&s| s != loud).expect("the edit reached the engine");
    assert!(switch > RATE as usize / 4, "the first stretch is at the old gain ({switch} frames)");
    assert!(left[switch..].iter().all(|&s| (s - half).abs() < 1e-6), "then the new gain, with no gap or click");
    assert!(left.len() - switch > RATE as usize / 4, "well before the take ended");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_projects_record_from_their_own_virtual_microphone_at_once() {
    let app = TestApp::sqlite().await;
    let mut takes = Vec::new();
    for i in 0..10 {
        let project = app.project(json!({"name": format!("Band {i}")})).await;
        let track = armed_track(&app, &project, 0, "mock_0").await;
        let session = record_start(&app, &track, json!({"start_time": 0.0})).await;
        takes.push((track, session));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    for (track, session) in &takes {
        let stopped = record_stop(&app, track, session).await;
        let (samples, _) = clip_samples(&app, stopped["clip_id"].as_str().unwrap()).await;
        assert!(samples.len() >= RATE as usize / 2, "each take holds its own audio: {} frames", samples.len());
        let expected: Vec<f32> = (0..samples.len() as u64).map(|n| VirtualSignal::Sine.sample(n, 0, RATE)).collect();
        assert_eq!(samples, expected);
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn takes_started_while_their_project_is_deleted_do_not_outlive_it() {
    let app = std::sync::Arc::new(TestApp::sqlite().await);
    for round in 0..3 {
        let project = app.project(json!({"name": format!("Race {round}")})).await;
        let mut tracks = Vec::new();
        // One device each: a project's virtual devices take one take at a time.
        for (index, device) in ["mock_0", "mock_1", "mock_2", "loopback"].into_iter().enumerate() {
            tracks.push(armed_track(&app, &project, index as i64, device).await);
        }
        let starts: Vec<_> = tracks
            .into_iter()
            .map(|track| {
                let app = app.clone();
                tokio::spawn(async move {
                    app.post(&format!("/api/audio/tracks/{track}/record/start"), json!({"start_time": 0.0})).await.0
                })
            })
            .collect();
        let (code, _) = app.delete(&format!("/api/projects/{project}")).await;
        assert_eq!(code, 204);
        for start in starts {
            let code = start.await.unwrap();
            assert!(matches!(code, 200 | 404), "a start either ran before the delete or finds no project: {code}");
        }
        let (_, active) = app.get("/api/audio/recording/active").await;
        assert_eq!(active, json!([]), "no take of the deleted project records on");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_read_right_after_record_start_agrees_with_its_answer() {
    let app = TestApp::sqlite().await;
    let project = app.project(json!({"name": "Agree"})).await;
    let track = armed_track(&app, &project, 0, "mock_0").await;
    for round in 0..5 {
        let session = record_start(&app, &track, json!({"start_time": 2.0})).await;
        let now = app.playback_status(&project).await;
        assert_eq!(now["status"], "playing", "round {round}: the answer said recording from 2 s: {now}");
        assert!(now["frame"].as_i64().unwrap() >= 96_000, "{now}");
        let (_, journal) = app.get(&format!("/api/audio/recording/status/{session}")).await;
        assert_eq!(journal["status"], "recording", "{journal}");
        record_stop(&app, &track, &session).await;
        let (code, _) = app.post_empty(&format!("/api/audio/projects/{project}/playback/stop")).await;
        assert_eq!(code, 200);
    }
    app.stop().await;
}
