//! Accounts and members, checked the way a stranger and a viewer would try them: every
//! operation of the OpenAPI document that names something of a project is called by both, and
//! the owner's data is compared before and after. Then the socket, tokens and the login limit.

mod common;

use common::{TEST_PASSWORD, TestApp, bearer_client, read};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The ids a test project's operations are called with.
struct Fixture {
    project: String,
    track: String,
    clip: String,
    loop_region: String,
    take: String,
    session: String,
    job: String,
    mixdown: String,
    /// An editor of the project: the member the members operations name.
    editor: String,
}

/// A one-second 48 kHz mono WAV of a quiet sine.
fn wav() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sine.wav");
    let samples: Vec<f32> = (0..48_000).map(|n| 0.25 * (n as f32 * 0.05).sin()).collect();
    audiolab_media::wav::write(&path, 1, 48_000, audiolab_media::wav::SampleFormat::Int16, &samples).unwrap();
    std::fs::read(path).unwrap()
}

async fn arrange(app: &TestApp, viewer: &str) -> Fixture {
    let project = app.project(json!({"name": "Private"})).await;
    let track = app.track(&project, "Vox", 0).await["id"].as_str().unwrap().to_owned();
    let response = app
        .client
        .post(app.url(&format!("/api/tracks/{track}/clips?start=0")))
        .header("content-type", "application/octet-stream")
        .body(wav())
        .send()
        .await
        .unwrap();
    let (status, imported) = read(response).await;
    assert_eq!(status, 202, "{imported}");
    let job = imported["job"]["id"].as_str().unwrap().to_owned();
    assert_eq!(app.finished_job(&job).await["status"], "succeeded");
    let clip = imported["clip"]["id"].as_str().unwrap().to_owned();

    let (status, region) = app.post(&format!("/api/projects/{project}/loops"), json!({"start": 0.0, "end": 1.0})).await;
    assert_eq!(status, 201, "{region}");
    let loop_region = region["id"].as_str().unwrap().to_owned();

    let (status, armed) = app
        .post(&format!("/api/audio/tracks/{track}/record/enable"), json!({"device_id": "mock_0", "enabled": true}))
        .await;
    assert_eq!(status, 200, "{armed}");
    let (status, started) = app.post(&format!("/api/audio/tracks/{track}/record/start"), json!({})).await;
    assert_eq!(status, 200, "{started}");
    let session = started["session_id"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (status, stopped) = app.post_empty(&format!("/api/audio/tracks/{track}/record/stop/{session}")).await;
    assert_eq!(status, 200, "{stopped}");
    app.ready_clip(stopped["clip_id"].as_str().unwrap()).await;
    let (_, takes) = app.get(&format!("/api/tracks/{track}/takes")).await;
    let take = takes[0]["id"].as_str().unwrap().to_owned();
    app.post_empty(&format!("/api/audio/projects/{project}/playback/stop")).await;

    let (status, submitted) = app.post(&format!("/api/projects/{project}/mixdown"), json!({"stems": true})).await;
    assert!(status == 200 || status == 202, "{submitted}");
    let mixdown = submitted["job"]["id"].as_str().unwrap().to_owned();
    assert_eq!(app.finished_job(&mixdown).await["status"], "succeeded");

    let (_, editor_client) = app.sign_up("editor").await;
    drop(editor_client);
    let (status, editor) =
        app.post(&format!("/api/projects/{project}/members"), json!({"username": "editor", "role": "editor"})).await;
    assert_eq!(status, 201, "{editor}");
    let (status, added) =
        app.post(&format!("/api/projects/{project}/members"), json!({"username": viewer, "role": "viewer"})).await;
    assert_eq!((status, added["role"].as_str()), (201, Some("viewer")), "{added}");
    Fixture {
        project,
        track,
        clip,
        loop_region,
        take,
        session,
        job,
        mixdown,
        editor: editor["user_id"].as_str().unwrap().to_owned(),
    }
}

/// The path with its parameters filled from the fixture, or `None` for operations that name
/// nothing of a project (accounts, devices).
fn fill(path: &str, f: &Fixture) -> Option<String> {
    let id = match path.split('/').nth(2)? {
        _ if path.starts_with("/api/audio/projects/") || path.starts_with("/api/projects/{id}") => &f.project,
        _ if path.starts_with("/api/audio/tracks/") || path.starts_with("/api/tracks/{id}") => &f.track,
        "clips" => &f.clip,
        "loops" => &f.loop_region,
        "takes" => &f.take,
        "jobs" => &f.job,
        "mixdowns" => &f.mixdown,
        _ if path.starts_with("/api/audio/recording/status/") => &f.session,
        _ => return None,
    };
    Some(
        path.replace("{id}", id)
            .replace("{job_id}", id)
            .replace("{session_id}", &f.session)
            .replace("{track_id}", &f.track)
            .replace("{user_id}", &f.editor),
    )
}

/// A valid request body (or query) for each operation that needs one, so a refusal is about
/// who asks, not what they sent.
fn request_for(operation: &str, f: &Fixture) -> (Option<Value>, &'static str) {
    let body = match operation {
        "update_project" => json!({"name": "Taken"}),
        "add_member" => json!({"username": "editor", "role": "viewer"}),
        "update_member" => json!({"role": "viewer"}),
        "create_track" => json!({"project_id": f.project, "name": "Intruder", "track_index": 5}),
        "update_track" | "update_clip" | "update_loop_region" => json!({"name": "Taken"}),
        "create_loop_region" => json!({"start": 2.0, "end": 3.0}),
        "playback_play" | "playback_seek" => json!({"position": 0.5}),
        "playback_loop_enable" => json!({"loop_region_id": f.loop_region}),
        "set_metronome" => json!({"enabled": true, "level": 0.5, "accent": true}),
        "enable_recording" => json!({"device_id": "mock_1", "enabled": true}),
        "start_recording" => json!({"device_id": "mock_1"}),
        "create_mixdown" => json!({"format": "flac16"}),
        "set_comp" => json!({"segments": [], "crossfade_ms": 10}),
        "select_in_comp" => json!({"take_id": f.take, "start": 0.0, "end": 0.1}),
        "split_clip" => json!({"at": 0.1}),
        "duplicate_clip" => json!({"start": 1.0}),
        _ => Value::Null,
    };
    let query = match operation {
        "set_track_volume" => "?volume=0.1",
        "set_track_pan" => "?pan=1",
        "set_track_mute" => "?muted=true",
        "set_track_solo" => "?soloed=true",
        "import_clip" => "?start=0",
        _ => "",
    };
    ((!body.is_null()).then_some(body), query)
}

async fn call(client: &reqwest::Client, base: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let mut request = client.request(method, format!("{base}{path}"));
    if path.contains("/clips?") {
        request = request.header("content-type", "application/octet-stream").body(wav());
    } else if let Some(body) = body {
        request = request.json(&body);
    }
    read(request.send().await.unwrap()).await
}

/// Everything the owner can read of the project, to compare before and after.
async fn snapshot(app: &TestApp, f: &Fixture) -> BTreeMap<String, Value> {
    let mut seen = BTreeMap::new();
    for path in [
        format!("/api/projects/{}", f.project),
        format!("/api/projects/{}/tracks", f.project),
        format!("/api/projects/{}/members", f.project),
        format!("/api/projects/{}/loops", f.project),
        format!("/api/projects/{}/mixdowns", f.project),
        format!("/api/tracks/{}/clips", f.track),
        format!("/api/tracks/{}/takes", f.track),
        format!("/api/clips/{}", f.clip),
        format!("/api/jobs/{}", f.job),
    ] {
        let (status, body) = app.get(&path).await;
        assert_eq!(status, 200, "{path}: {body}");
        seen.insert(path, body);
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_find_nothing_and_viewers_change_nothing_in_every_operation_of_the_document() {
    let app = TestApp::sqlite_with(|s| s.auth = audiolab_config::AuthMode::Enabled).await;
    let (_, viewer) = app.sign_up("viewer").await;
    let (_, stranger) = app.sign_up("stranger").await;
    let f = arrange(&app, "viewer").await;
    let before = snapshot(&app, &f).await;

    let document: Value = serde_json::from_str(&audiolab_api::openapi_json()).unwrap();
    let mut checked = 0;
    for (path, operations) in document["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap();
            let names_project = operation["requestBody"].to_string().contains("CreateTrack");
            let Some(filled) = fill(path, &f).or_else(|| names_project.then(|| path.clone())) else {
                continue;
            };
            let (body, query) = request_for(id, &f);
            let url = format!("{filled}{query}");

            let (status, answer) = call(&stranger, &app.base, method, &url, body.clone()).await;
            assert_eq!(status, 404, "a stranger's {method} {url} ({id}): {answer}");
            common::assert_error(&answer);

            let (status, answer) = call(&viewer, &app.base, method, &url, body).await;
            let expected = if method == "get" { 200 } else { 403 };
            assert_eq!(status, expected, "a viewer's {method} {url} ({id}): {answer}");
            checked += 1;
        }
    }
    assert!(checked >= 45, "only {checked} operations name something of a project");
    assert_eq!(snapshot(&app, &f).await, before, "the owner's data is unchanged");

    // The project lists for its members only.
    let (_, listed) = read(stranger.get(app.url("/api/projects")).send().await.unwrap()).await;
    assert_eq!(listed["total"], 0, "{listed}");
    let (_, listed) = read(viewer.get(app.url("/api/projects")).send().await.unwrap()).await;
    assert_eq!(listed["items"][0]["id"].as_str(), Some(f.project.as_str()), "{listed}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socket_refuses_strangers_and_the_anonymous_before_the_upgrade_and_viewers_only_listen() {
    use tokio_tungstenite::tungstenite::Error as WsError;
    let app = TestApp::sqlite_with(|s| s.auth = audiolab_config::AuthMode::Enabled).await;
    let project = app.project(json!({"name": "Band"})).await;
    let (stranger, _) = app.sign_up("stranger").await;
    let (viewer, _) = app.sign_up("viewer").await;
    app.post(&format!("/api/projects/{project}/members"), json!({"username": "viewer", "role": "viewer"})).await;
    let plain = app.ws_url(&project).split('?').next().unwrap().to_owned();

    let refused = |result: Result<_, WsError>| match result {
        Err(WsError::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("the upgrade was accepted"),
    };
    assert_eq!(refused(tokio_tungstenite::connect_async(&plain).await), 401);
    assert_eq!(refused(tokio_tungstenite::connect_async(format!("{plain}?access_token=al_nonsense")).await), 401);
    assert_eq!(refused(tokio_tungstenite::connect_async(format!("{plain}?access_token={stranger}")).await), 404);

    // A viewer hears the broadcasts (a change the owner makes, naming the owner) and may ask
    // for the status, but not drive the transport.
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("{plain}?access_token={viewer}")).await.unwrap();
    common::send(&mut socket, json!({"type": "ping"})).await;
    common::next_where(&mut socket, |v| v["type"] == "pong").await;
    let status = common::control(&mut socket, "status", json!({})).await;
    assert_eq!(status["success"], true, "{status}");
    let play = common::control(&mut socket, "play", json!({})).await;
    assert_eq!((play["success"].as_bool(), play["code"].as_str()), (Some(false), Some("forbidden")), "{play}");
    let track = app.track(&project, "Keys", 0).await;
    let changed = common::next_where(&mut socket, |v| v["type"] == "model_changed").await;
    assert_eq!(changed["data"]["id"], track["id"]);
    assert_eq!(changed["data"]["actor"]["username"], "tester", "{changed}");
    let volume =
        app.post_empty(&format!("/api/audio/tracks/{}/volume?volume=0.5", track["id"].as_str().unwrap())).await;
    assert_eq!(volume.0, 200);
    let update = common::next_where(&mut socket, |v| v["type"] == "track_update").await;
    assert_eq!(update["data"]["actor"]["username"], "tester", "{update}");

    // Removed from the project, the viewer's socket closes at once, saying why.
    let (_, members) = app.get(&format!("/api/projects/{project}/members")).await;
    let viewer_id = members.as_array().unwrap().iter().find(|m| m["username"] == "viewer").unwrap()["user_id"].clone();
    let (status, _) = app.delete(&format!("/api/projects/{project}/members/{}", viewer_id.as_str().unwrap())).await;
    assert_eq!(status, 204);
    let closed = common::closed(&mut socket).await;
    assert_eq!(u16::from(closed.code), 1008);
    assert!(closed.reason.contains("no longer a member"), "{}", closed.reason);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_and_expired_tokens_are_refused_and_keys_work_until_revoked() {
    let app = TestApp::sqlite_with(|s| s.auth = audiolab_config::AuthMode::Enabled).await;
    let anonymous = reqwest::Client::new();
    let (status, body) = read(anonymous.get(app.url("/api/projects")).send().await.unwrap()).await;
    assert_eq!(status, 401, "{body}");
    for public in ["/health", "/api/info", "/openapi.json", "/asyncapi.json"] {
        assert_eq!(anonymous.get(app.url(public)).send().await.unwrap().status(), 200, "{public}");
    }

    // A personal API key works, is listed without its secret, and stops working when revoked.
    let (status, key) = app.post("/api/auth/tokens", json!({"name": "script", "expires_in_days": 7})).await;
    assert_eq!(status, 201, "{key}");
    let script = bearer_client(key["token"].as_str().unwrap());
    let (status, me) = read(script.get(app.url("/api/me")).send().await.unwrap()).await;
    assert_eq!((status, me["username"].as_str()), (200, Some("tester")), "{me}");
    let (_, keys) = app.get("/api/auth/tokens").await;
    assert_eq!(keys.as_array().unwrap().len(), 1);
    assert!(!keys.to_string().contains(key["token"].as_str().unwrap()), "the secret is shown once");
    let (status, _) = app.delete(&format!("/api/auth/tokens/{}", key["id"].as_str().unwrap())).await;
    assert_eq!(status, 204);
    let (status, body) = read(script.get(app.url("/api/me")).send().await.unwrap()).await;
    assert_eq!(status, 401, "{body}");

    // An expired token (made to have expired an hour ago) is refused with a reason.
    let store = app.store().await;
    let user = store.user_by_name("tester").await.unwrap().unwrap();
    let secret = "al_expired-token-for-the-test";
    let past = audiolab_domain::now() - chrono::Duration::hours(1);
    store
        .insert_token(&audiolab_domain::user::ApiToken {
            id: audiolab_domain::TokenId::new(),
            user_id: user.id,
            kind: audiolab_domain::user::TokenKind::ApiKey,
            name: "old".into(),
            secret_hash: audiolab_app::accounts::hash_secret(secret),
            created_at: past - chrono::Duration::days(1),
            expires_at: past,
            last_used_at: None,
            address: None,
            user_agent: None,
        })
        .await
        .unwrap();
    let (status, body) = read(bearer_client(secret).get(app.url("/api/me")).send().await.unwrap()).await;
    assert_eq!(status, 401);
    assert!(common::assert_error(&body).contains("expired"), "{body}");

    // Logging in gives a fresh token; logging out revokes the one presented.
    let login = json!({"username": "Tester", "password": TEST_PASSWORD});
    let (status, session) = read(anonymous.post(app.url("/api/auth/login")).json(&login).send().await.unwrap()).await;
    assert_eq!(status, 200, "{session}");
    let fresh = bearer_client(session["token"].as_str().unwrap());
    assert_eq!(fresh.post(app.url("/api/auth/logout")).send().await.unwrap().status(), 204);
    assert_eq!(fresh.get(app.url("/api/me")).send().await.unwrap().status(), 401);
    assert_eq!(app.get("/api/me").await.0, 200, "other sessions of the user stay");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_get_one_message_and_a_sixth_try_waits() {
    let app = TestApp::sqlite_with(|s| s.auth = audiolab_config::AuthMode::Enabled).await;
    let client = reqwest::Client::new();
    let login = |username: &str, password: &str| {
        client.post(app.url("/api/auth/login")).json(&json!({"username": username, "password": password})).send()
    };
    let (status, unknown) = read(login("nobody", "whatever-password").await.unwrap()).await;
    assert_eq!(status, 401);
    // Five failures for the user from one address reach the limit for that address.
    for _ in 0..4 {
        let (status, wrong) = read(login("tester", "wrong-password").await.unwrap()).await;
        assert_eq!(status, 401);
        assert_eq!(wrong["detail"], unknown["detail"], "one message for an unknown user and a wrong password");
    }
    let (status, _) = read(login("tester", "wrong-password").await.unwrap()).await;
    assert_eq!(status, 401);
    let limited = login("tester", TEST_PASSWORD).await.unwrap();
    assert_eq!(limited.status(), 429, "even the right password waits at an address that failed");
    let wait: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((60..=900).contains(&wait), "{wait}");

    // Registration rules and a taken name.
    let register = |body: Value| client.post(app.url("/api/auth/register")).json(&body).send();
    let (status, _) = read(register(json!({"username": "TESTER", "password": TEST_PASSWORD})).await.unwrap()).await;
    assert_eq!(status, 409, "usernames are case-insensitive");
    let (status, _) =
        read(register(json!({"username": "ada lovelace", "password": TEST_PASSWORD})).await.unwrap()).await;
    assert_eq!(status, 422);
    let (status, _) = read(register(json!({"username": "ada", "password": "short"})).await.unwrap()).await;
    assert_eq!(status, 422);
    app.stop().await;
}
