//! The §3 playback contract and the §4 WebSocket protocol against `serve`, over real sockets.

mod common;

use common::{TestApp, assert_error};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A project with one track holding `seconds` of a constant 0.5 mono clip at 1 s.
async fn project_with_audio(app: &TestApp, seconds: f64) -> (String, Value) {
    let project = app.project(json!({"name": "Playback"})).await;
    let track = app.track(&project, "Drums", 0).await;
    let samples = vec![0.5f32; (seconds * 48_000.0) as usize];
    app.audio_clip(&project, track["id"].as_str().unwrap(), 1.0, 1, &samples).await;
    (project, track)
}

async fn connect(app: &TestApp, project: &str) -> Socket {
    tokio_tungstenite::connect_async(app.ws_url(project)).await.expect("WebSocket connects").0
}

async fn send(socket: &mut Socket, value: Value) {
    socket.send(Message::text(value.to_string())).await.unwrap();
}

/// The next text frame as JSON (failing after 5 s).
async fn next(socket: &mut Socket) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), socket.next()).await.expect("a frame within 5 s");
        match frame.expect("socket open").expect("frame") {
            Message::Text(text) => {
                return serde_json::from_str(&text).unwrap();
            }
            Message::Close(close) => panic!("closed: {close:?}"),
            _ => continue,
        }
    }
}

/// The next frame of type `kind`, skipping others.
async fn next_of(socket: &mut Socket, kind: &str) -> Value {
    loop {
        let frame = next(socket).await;
        if frame["type"] == kind {
            return frame;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_transport_loads_plays_pauses_seeks_and_stops() {
    let app = TestApp::sqlite().await;
    let (project, _) = project_with_audio(&app, 2.0).await;
    let base = format!("/api/audio/projects/{project}/playback");

    let (status, idle) = app.get(&format!("{base}/status")).await;
    assert_eq!((status, idle["project_loaded"].as_bool()), (200, Some(false)));

    let (status, loaded) = app.post_empty(&format!("{base}/load")).await;
    assert_eq!(status, 200, "{loaded}");
    assert_eq!((loaded["tracks_loaded"].as_u64(), loaded["clips_loaded"].as_u64()), (Some(1), Some(1)));
    assert_eq!((loaded["duration"].as_f64(), loaded["sample_rate"].as_u64()), (Some(3.0), Some(48_000)));
    assert_eq!(loaded["success"], true);

    let started = Instant::now();
    let (status, playing) = app.post_empty(&format!("{base}/play")).await;
    assert_eq!((status, playing["status"].as_str()), (200, Some("playing")), "{playing}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, rolling) = app.get(&format!("{base}/status")).await;
    let position = rolling["position"].as_f64().unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    assert!(position > 0.2 && position <= elapsed + 0.05, "real-time pace: {position} s after {elapsed} s");
    assert_eq!(rolling["frame"].as_i64().unwrap(), (position * 48_000.0).round() as i64);

    let (_, paused) = app.post_empty(&format!("{base}/pause")).await;
    assert_eq!(paused["status"], "paused");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_, still) = app.get(&format!("{base}/status")).await;
    assert_eq!(still["frame"], paused["frame"], "pause keeps the position");

    let (_, sought) = app.post(&format!("{base}/seek"), json!({"position": 1.25})).await;
    assert_eq!((sought["frame"].as_i64(), sought["status"].as_str()), (Some(60_000), Some("paused")));
    let (_, clamped) = app.post(&format!("{base}/seek"), json!({"position": 99.0})).await;
    assert_eq!(clamped["position"].as_f64(), Some(3.0), "seek clamps to the duration");
    let (status, error) = app.post(&format!("{base}/seek"), json!({})).await;
    assert_eq!(status, 422);
    assert_error(&error);

    let (_, from_two) = app.post(&format!("{base}/play"), json!({"position": 2.0})).await;
    assert!(from_two["position"].as_f64().unwrap() >= 2.0);
    let (_, stopped) = app.post_empty(&format!("{base}/stop")).await;
    assert_eq!((stopped["status"].as_str(), stopped["frame"].as_i64()), (Some("stopped"), Some(0)), "stop rewinds");
    assert_eq!(stopped["underruns"], 0);

    assert_eq!(app.post_empty("/api/audio/projects/5f0c43f8-7d2c-4c55-9b7e-2f3f9f1b2c3d/playback/play").await.0, 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playback_stops_by_itself_at_the_end() {
    let app = TestApp::sqlite().await;
    let project = app.project(json!({"name": "Short"})).await;
    let track = app.track(&project, "Blip", 0).await;
    app.audio_clip(&project, track["id"].as_str().unwrap(), 0.0, 1, &vec![0.1; 9_600]).await;
    let mut socket = connect(&app, &project).await;
    send(&mut socket, json!({"type": "ping"})).await;
    assert_eq!(next(&mut socket).await["type"], "pong");
    app.post_empty(&format!("/api/audio/projects/{project}/playback/play")).await;
    let stopped = next_of(&mut socket, "playback_stopped").await;
    assert_eq!(stopped["data"]["reason"], "end");
    let (_, status) = app.get(&format!("/api/audio/projects/{project}/playback/status")).await;
    assert_eq!((status["status"].as_str(), status["frame"].as_i64()), (Some("stopped"), Some(0)));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pong_is_the_first_frame_even_while_the_project_plays() {
    let app = TestApp::sqlite().await;
    let (project, _) = project_with_audio(&app, 5.0).await;
    app.post_empty(&format!("/api/audio/projects/{project}/playback/play")).await;
    let mut socket = connect(&app, &project).await;
    // Nothing arrives before the client speaks, though position updates are flowing.
    let silent = tokio::time::timeout(Duration::from_millis(200), socket.next()).await;
    assert!(silent.is_err(), "the server spoke first: {silent:?}");
    send(&mut socket, json!({"type": "ping"})).await;
    assert_eq!(next(&mut socket).await["type"], "pong");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn position_updates_arrive_every_50_ms_and_move_forward() {
    let app = TestApp::sqlite().await;
    let (project, _) = project_with_audio(&app, 5.0).await;
    let mut socket = connect(&app, &project).await;
    send(&mut socket, json!({"type": "ping"})).await;
    next(&mut socket).await;
    send(&mut socket, json!({"type": "control", "id": "p1", "command": "play", "data": {}})).await;
    let response = next_of(&mut socket, "control_response").await;
    assert_eq!(
        (response["data"]["id"].as_str(), response["data"]["success"].as_bool()),
        (Some("p1"), Some(true)),
        "{response}"
    );

    let mut updates = Vec::new();
    while updates.len() < 12 {
        let update = next_of(&mut socket, "position_update").await;
        updates.push((Instant::now(), update["data"].clone()));
    }
    for field in ["project_id", "position", "frame", "sample_rate", "playing", "recording", "server_time"] {
        assert!(!updates[0].1[field].is_null(), "{field} missing: {}", updates[0].1);
    }
    let frames: Vec<i64> = updates.iter().map(|(_, d)| d["frame"].as_i64().unwrap()).collect();
    // A render lane starved by a busy machine may hold the position for one update; over the
    // whole run it must move forward with the clock.
    assert!(frames.windows(2).all(|w| w[1] >= w[0]), "positions never go back: {frames:?}");
    let rolled = (frames[11] - frames[0]) as f64 / 48_000.0;
    let elapsed = updates[11].1["server_time"].as_f64().unwrap() - updates[0].1["server_time"].as_f64().unwrap();
    assert!(rolled > elapsed * 0.5 && rolled < elapsed * 1.5, "{rolled} s rolled in {elapsed} s: {frames:?}");
    let gaps: Vec<f64> = updates.windows(2).map(|w| (w[1].0 - w[0].0).as_secs_f64() * 1000.0).collect();
    let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
    assert!((40.0..65.0).contains(&mean), "mean interval {mean} ms: {gaps:?}");
    let server: Vec<f64> = updates.iter().map(|(_, d)| d["server_time"].as_f64().unwrap()).collect();
    assert!(server.windows(2).all(|w| w[1] > w[0]));
    app.stop().await;
}

/// Output meters ride on position updates (§11): each sounding track's loudest sample after
/// fader and pan since the last update; a muted track, or one with nothing under the playhead,
/// is not listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn position_updates_carry_each_sounding_tracks_output_peaks() {
    let app = TestApp::sqlite().await;
    let (project, drums) = project_with_audio(&app, 5.0).await;
    let bass = app.track(&project, "Bass", 1).await;
    app.audio_clip(&project, bass["id"].as_str().unwrap(), 1.0, 1, &vec![0.9f32; 48_000 * 5]).await;
    let quiet = app.track(&project, "Pad", 2).await;
    app.audio_clip(&project, quiet["id"].as_str().unwrap(), 4.0, 1, &vec![0.3f32; 48_000]).await;
    let drums_id = drums["id"].as_str().unwrap();
    assert_eq!(app.patch(&format!("/api/tracks/{drums_id}"), json!({"volume": 0.5, "pan": 1.0})).await.0, 200);
    let bass_id = bass["id"].as_str().unwrap();
    assert_eq!(app.patch(&format!("/api/tracks/{bass_id}"), json!({"muted": true})).await.0, 200);

    let mut socket = connect(&app, &project).await;
    send(&mut socket, json!({"type": "control", "id": "p", "command": "play", "data": {"position": 1.5}})).await;
    next_of(&mut socket, "control_response").await;
    // Updates of a stretch well inside the clips (the first may still hold the start).
    let mut levels = Vec::new();
    while levels.len() < 6 {
        let update = next_of(&mut socket, "position_update").await;
        let frame = update["data"]["frame"].as_i64().unwrap();
        if (96_000..180_000).contains(&frame) {
            levels.push(update["data"]["levels"].clone());
        }
    }
    for level in &levels {
        // Drums: 0.5 × volume 0.5, panned hard right. Bass is muted; the pad starts at 4 s.
        let list = level.as_array().unwrap();
        assert_eq!(list.len(), 1, "only the drums sound: {level}");
        assert_eq!(list[0]["track_index"], 0);
        assert!(list[0]["left"].as_f64().unwrap().abs() < 1e-6, "{level}");
        assert!((list[0]["right"].as_f64().unwrap() - 0.25).abs() < 1e-6, "{level}");
    }
    // Paused mid-drums and played again where nothing sounds: what the engine played after
    // the last update before the pause is not shown as the first level of the new run.
    send(&mut socket, json!({"type": "control", "id": "pause", "command": "pause", "data": {}})).await;
    while next_of(&mut socket, "control_response").await["data"]["id"] != "pause" {}
    tokio::time::sleep(Duration::from_millis(300)).await;
    send(&mut socket, json!({"type": "control", "id": "again", "command": "play", "data": {"position": 0.1}})).await;
    let mut silent = 0;
    while silent < 3 {
        let update = next_of(&mut socket, "position_update").await;
        if update["data"]["frame"].as_i64().unwrap() < 36_000 {
            assert_eq!(update["data"]["levels"], json!([]), "nothing sounds before 1 s: {update}");
            silent += 1;
        }
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_see_each_others_track_changes_and_the_rest_apis() {
    let app = TestApp::sqlite().await;
    let (project, track) = project_with_audio(&app, 1.0).await;
    let track_id = track["id"].as_str().unwrap();
    let mut alice = connect(&app, &project).await;
    let mut bob = connect(&app, &project).await;
    for socket in [&mut alice, &mut bob] {
        send(socket, json!({"type": "ping"})).await;
        next(socket).await;
    }
    send(&mut alice, json!({"type": "control", "id": "m1", "command": "set_track", "data": {"track_id": track_id, "volume": 0.5, "muted": true}})).await;
    // The broadcast and the answer may come in either order: the change is announced as it
    // commits, before the command is answered.
    let (mut response, mut alice_update) = (None, None);
    while response.is_none() || alice_update.is_none() {
        let frame = next(&mut alice).await;
        match frame["type"].as_str() {
            Some("control_response") => response = Some(frame),
            Some("track_update") => alice_update = Some(frame),
            _ => {}
        }
    }
    let response = response.unwrap();
    assert_eq!(response["data"]["success"], true, "{response}");
    let revision = response["data"]["result"]["revision"].as_i64().expect("the answer names its revision");
    assert_eq!(alice_update.as_ref().unwrap()["data"]["revision"].as_i64(), Some(revision));
    for (socket, seen) in [(&mut alice, alice_update), (&mut bob, None)] {
        let update = match seen {
            Some(update) => update,
            None => next_of(socket, "track_update").await,
        };
        assert_eq!(
            (update["data"]["id"].as_str(), update["data"]["volume"].as_f64(), update["data"]["muted"].as_bool()),
            (Some(track_id), Some(0.5), Some(true))
        );
    }
    let (_, stored) = app.get(&format!("/api/tracks/{track_id}")).await;
    assert_eq!(stored["volume"].as_f64(), Some(0.5), "WS mixer changes are persisted");

    app.post_empty(&format!("/api/audio/tracks/{track_id}/pan?pan=-0.25")).await;
    for socket in [&mut alice, &mut bob] {
        let update = next_of(socket, "track_update").await;
        assert_eq!(update["data"]["pan"].as_f64(), Some(-0.25));
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_get_errors_and_the_connection_stays_open() {
    let app = TestApp::sqlite().await;
    let (project, _) = project_with_audio(&app, 1.0).await;
    let mut socket = connect(&app, &project).await;
    socket.send(Message::text("{not json")).await.unwrap();
    assert_eq!(next(&mut socket).await["type"], "error");
    send(&mut socket, json!({"type": "dance"})).await;
    assert_eq!(next(&mut socket).await["type"], "error");
    send(&mut socket, json!({"type": "control", "id": "x", "command": "teleport"})).await;
    let response = next(&mut socket).await;
    assert_eq!(
        (response["type"].as_str(), response["data"]["success"].as_bool()),
        (Some("control_response"), Some(false))
    );
    assert!(response["data"]["error"].as_str().unwrap().contains("teleport"));
    send(&mut socket, json!({"type": "control", "id": "y", "command": "seek", "data": {"position": "soon"}})).await;
    assert_eq!(next_of(&mut socket, "control_response").await["data"]["success"], false);
    send(&mut socket, json!({"type": "ping"})).await;
    assert_eq!(next_of(&mut socket, "pong").await["type"], "pong", "still open");

    socket.send(Message::text("x".repeat(200 * 1024))).await.unwrap();
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(5), socket.next()).await.unwrap() {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(u16::from(closed.expect("close frame").code), 1009);

    let refused = tokio_tungstenite::connect_async(app.ws_url("5f0c43f8-7d2c-4c55-9b7e-2f3f9f1b2c3d")).await;
    assert!(refused.is_err(), "unknown project is refused before the upgrade");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loop_region_wraps_and_reports_its_passes() {
    let app = TestApp::sqlite().await;
    let (project, _) = project_with_audio(&app, 2.0).await;
    let (_, region) =
        app.post(&format!("/api/projects/{project}/loops"), json!({"start": 0.5, "end": 0.8, "repeat_count": 1})).await;
    let mut socket = connect(&app, &project).await;
    send(&mut socket, json!({"type": "ping"})).await;
    next(&mut socket).await;
    send(
        &mut socket,
        json!({"type": "control", "id": "l", "command": "loop_enable", "data": {"loop_region_id": region["id"]}}),
    )
    .await;
    let response = next_of(&mut socket, "control_response").await;
    assert_eq!(response["data"]["result"]["loop_region_id"], region["id"], "{response}");
    let (_, stored) = app.get(&format!("/api/loops/{}", region["id"].as_str().unwrap())).await;
    assert_eq!(stored["enabled"], true, "the enabled region is the transport's loop");

    app.post(&format!("/api/audio/projects/{project}/playback/play"), json!({"position": 0.4})).await;
    let wrapped = loop {
        let event = next_of(&mut socket, "loop_event").await;
        if event["data"]["event"] == "wrapped" {
            break event;
        }
    };
    assert_eq!(wrapped["data"]["iteration"], 2);
    let ended = next_of(&mut socket, "loop_event").await;
    assert_eq!(ended["data"]["event"], "ended", "repeat_count 1: two passes, then on");
    let (_, status) = app.get(&format!("/api/audio/projects/{project}/playback/status")).await;
    assert!(status["position"].as_f64().unwrap() >= 0.8, "{status}");

    let (_, disabled) = app.post_empty(&format!("/api/audio/projects/{project}/playback/loop/disable")).await;
    assert_eq!(disabled["loop_region_id"], Value::Null);
    app.stop().await;
}
