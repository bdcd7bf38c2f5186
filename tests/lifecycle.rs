//! Engines whose cost follows their activity, against `serve`: an idle engine unloads and comes
//! back where it was, and a node at `max_engines` makes room or refuses with 503.

mod common;

use common::{TestApp, assert_error};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A project with one track holding `seconds` of a constant mono clip at 0 s.
async fn project_with_audio(app: &TestApp, name: &str, seconds: f64) -> String {
    let project = app.project(json!({"name": name})).await;
    let track = app.track(&project, "Bass", 0).await;
    let samples = vec![0.25f32; (seconds * 48_000.0) as usize];
    app.audio_clip(&project, track["id"].as_str().unwrap(), 0.0, 1, &samples).await;
    project
}

async fn transport(app: &TestApp, project: &str, action: &str, body: Value) -> (u16, Value) {
    app.post(&format!("/api/audio/projects/{project}/playback/{action}"), body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_engine_unloads_and_comes_back_where_it_was() {
    let app = TestApp::sqlite_with(|settings| settings.engine_idle_secs = 1).await;
    let project = project_with_audio(&app, "Idle", 8.0).await;
    let (code, _) = transport(&app, &project, "play", json!({"position": 2.0})).await;
    assert_eq!(code, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (code, paused) = transport(&app, &project, "pause", json!({})).await;
    assert_eq!(code, 200, "{paused}");
    assert_eq!(paused["status"], "paused");
    let frame = paused["frame"].as_i64().unwrap();
    assert!(frame > 2 * 48_000, "paused after 2 s: {frame}");

    // Playing engines never unload: only after the pause does the idle clock run.
    let deadline = Instant::now() + Duration::from_secs(6);
    let unloaded = loop {
        let now = app.playback_status(&project).await;
        if now["project_loaded"] == false {
            break now;
        }
        assert!(Instant::now() < deadline, "the idle engine never unloaded: {now}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(unloaded["frame"].as_i64(), Some(frame), "the unloaded status keeps the position: {unloaded}");
    assert_eq!(unloaded["status"], "paused");

    // The next command loads it again where it stood.
    let (code, resumed) = transport(&app, &project, "resume", json!({})).await;
    assert_eq!(code, 200, "{resumed}");
    assert_eq!(resumed["status"], "playing");
    assert_eq!(resumed["project_loaded"], true);
    let at = resumed["frame"].as_i64().unwrap();
    assert!((frame..frame + 24_000).contains(&at), "resumed at {at}, paused at {frame}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_node_unloads_an_idle_engine_or_refuses_with_503() {
    let app = TestApp::sqlite_with(|settings| settings.max_engines = Some(2)).await;
    let first = project_with_audio(&app, "First", 20.0).await;
    let second = project_with_audio(&app, "Second", 20.0).await;
    let third = project_with_audio(&app, "Third", 20.0).await;
    for project in [&first, &second] {
        let (code, body) = transport(&app, project, "play", json!({"position": 0.0})).await;
        assert_eq!(code, 200, "{body}");
    }

    // Both engines play: the third project cannot load.
    let response = app
        .client
        .post(app.url(&format!("/api/audio/projects/{third}/playback/play")))
        .json(&json!({"position": 0.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let retry = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    assert!(retry.as_deref().and_then(|v| v.parse::<u32>().ok()).is_some_and(|s| s > 0), "Retry-After: {retry:?}");
    let body: Value = response.json().await.unwrap();
    assert!(assert_error(&body).contains("limit"), "{body}");
    assert_eq!(app.playback_status(&first).await["status"], "playing", "the playing engines are untouched");

    // Once one stops (and is left alone for a moment: a command may be on its way to an engine
    // just used), it makes room: the third loads and the stopped one unloads.
    let (code, _) = transport(&app, &second, "stop", json!({})).await;
    assert_eq!(code, 200);
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    let (code, body) = transport(&app, &third, "play", json!({"position": 0.0})).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(app.playback_status(&second).await["project_loaded"], false);
    assert_eq!(app.playback_status(&first).await["status"], "playing");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_deleted_while_its_engine_is_unloaded_stays_gone() {
    let app = TestApp::sqlite_with(|settings| settings.engine_idle_secs = 1).await;
    let project = project_with_audio(&app, "Parked", 4.0).await;
    let (code, _) = transport(&app, &project, "seek", json!({"position": 1.5})).await;
    assert_eq!(code, 200);
    let deadline = Instant::now() + Duration::from_secs(6);
    while app.playback_status(&project).await["project_loaded"] == true {
        assert!(Instant::now() < deadline, "the idle engine never unloaded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (code, _) = app.delete(&format!("/api/projects/{project}")).await;
    assert_eq!(code, 204);
    for action in ["play", "resume"] {
        let (code, body) = transport(&app, &project, action, json!({})).await;
        assert_eq!(code, 404, "{action} on a deleted project: {body}");
    }
    let (code, _) = app.get(&format!("/api/audio/projects/{project}/playback/status")).await;
    assert_eq!(code, 404);
    app.stop().await;
}
