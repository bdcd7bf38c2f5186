//! What an attacker tried, as regression tests over real HTTP and sockets (§8): revocation that
//! reaches open sockets at once, sessions a user can see and end, login limits that slow an
//! attacker without locking the user out, bounded password hashing, a client device that never
//! outlives its user's right to record, pages that defend themselves, and saturating ranges.

mod common;

use common::musician::{Musician, attach_message};
use common::{Socket, TEST_PASSWORD, TestApp, bearer_client, closed, next_where, read, send};
use serde_json::{Value, json};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

async fn with_auth() -> TestApp {
    TestApp::sqlite_with(|s| s.auth = audiolab_config::AuthMode::Enabled).await
}

/// A socket to `project` opened with `token`, past its first pong.
async fn socket_with(app: &TestApp, project: &str, token: &str) -> Socket {
    let url = format!("{}/ws/audio/{project}?access_token={token}", app.base.replace("http://", "ws://"));
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.expect("the socket opens");
    send(&mut socket, json!({"type": "ping"})).await;
    next_where(&mut socket, |v| v["type"] == "pong").await;
    socket
}

async fn assert_closed_for(socket: &mut Socket, words: &str) {
    let frame = closed(socket).await;
    assert_eq!(u16::from(frame.code), 1008, "{frame:?}");
    assert!(frame.reason.contains(words), "{:?} does not say {words:?}", frame.reason);
}

/// Still open and answering.
async fn assert_open(socket: &mut Socket) {
    send(socket, json!({"type": "ping"})).await;
    next_where(socket, |v| v["type"] == "pong").await;
}

/// A client whose connections come from `address` (any 127.x.y.z is this machine).
fn from(address: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder().local_address(IpAddr::V4(Ipv4Addr::from(address))).build().unwrap()
}

async fn login(client: &reqwest::Client, app: &TestApp, username: &str, password: &str) -> (u16, Value) {
    let body = json!({"username": username, "password": password});
    read(client.post(app.url("/api/auth/login")).json(&body).send().await.unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_token_closes_the_sockets_opened_with_it_at_once() {
    let app = with_auth().await;
    let project = app.project(json!({"name": "Band"})).await;
    let track = app.track(&project, "Keys", 0).await["id"].as_str().unwrap().to_owned();

    // An API key deleted while its socket is open: the socket closes, its commands stop.
    let (_, key) = app.post("/api/auth/tokens", json!({"name": "script"})).await;
    let mut keyed = socket_with(&app, &project, key["token"].as_str().unwrap()).await;
    let (status, _) = app.delete(&format!("/api/auth/tokens/{}", key["id"].as_str().unwrap())).await;
    assert_eq!(status, 204);
    assert_closed_for(&mut keyed, "API key was deleted").await;

    // Logout: the socket of that login closes; others of the user stay.
    let (_, second) = login(&reqwest::Client::new(), &app, "tester", TEST_PASSWORD).await;
    let second = second["token"].as_str().unwrap().to_owned();
    let mut logged_in = socket_with(&app, &project, &second).await;
    let mut main = socket_with(&app, &project, app.token.as_deref().unwrap()).await;
    assert_eq!(bearer_client(&second).post(app.url("/api/auth/logout")).send().await.unwrap().status(), 204);
    assert_closed_for(&mut logged_in, "signed out").await;
    assert_open(&mut main).await;
    let changed = app.post_empty(&format!("/api/audio/tracks/{track}/volume?volume=0.77")).await;
    assert_eq!(changed.0, 200);
    let update = next_where(&mut main, |v| v["type"] == "track_update").await;
    assert_eq!(update["data"]["volume"], 0.77);

    // A token that expires while its socket is open: closed when it does.
    let store = app.store().await;
    let user = store.user_by_name("tester").await.unwrap().unwrap();
    let secret = "al_short-lived-token-for-the-test";
    let now = audiolab_domain::now();
    store
        .insert_token(&audiolab_domain::user::ApiToken {
            id: audiolab_domain::TokenId::new(),
            user_id: user.id,
            kind: audiolab_domain::user::TokenKind::ApiKey,
            name: "short".into(),
            secret_hash: audiolab_app::accounts::hash_secret(secret),
            created_at: now,
            expires_at: now + chrono::Duration::milliseconds(1_500),
            last_used_at: None,
            address: None,
            user_agent: None,
        })
        .await
        .unwrap();
    let mut short = socket_with(&app, &project, secret).await;
    assert_closed_for(&mut short, "expired").await;

    // A new password: every other token is revoked and its sockets close; this one stays.
    let (_, third) = login(&reqwest::Client::new(), &app, "tester", TEST_PASSWORD).await;
    let third = third["token"].as_str().unwrap().to_owned();
    let mut other_session = socket_with(&app, &project, &third).await;
    let change = json!({"current": TEST_PASSWORD, "new": "a brand new passphrase"});
    let (status, body) = app.post("/api/auth/password", change).await;
    assert_eq!(status, 204, "{body}");
    assert_closed_for(&mut other_session, "password was changed").await;
    assert_open(&mut main).await;
    assert_eq!(bearer_client(&third).get(app.url("/api/me")).send().await.unwrap().status(), 401);
    assert_eq!(app.get("/api/me").await.0, 200, "the token that changed it stays");
    assert_eq!(login(&reqwest::Client::new(), &app, "tester", TEST_PASSWORD).await.0, 401);
    let (status, fourth) = login(&reqwest::Client::new(), &app, "tester", "a brand new passphrase").await;
    assert_eq!(status, 200);

    // Sign out everywhere: every login session, this one included, and their sockets.
    let mut fourth_socket = socket_with(&app, &project, fourth["token"].as_str().unwrap()).await;
    assert_eq!(app.post_empty("/api/auth/logout-all").await.0, 204);
    assert_closed_for(&mut fourth_socket, "signed out everywhere").await;
    assert_closed_for(&mut main, "signed out everywhere").await;
    assert_eq!(app.get("/api/me").await.0, 401);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_sees_their_sessions_and_ends_one() {
    let app = with_auth().await;
    let laptop = reqwest::Client::builder().user_agent("laptop-browser/1.0").build().unwrap();
    let (_, session) = login(&laptop, &app, "tester", TEST_PASSWORD).await;
    let stolen = bearer_client(session["token"].as_str().unwrap());
    let (_, key) = app.post("/api/auth/tokens", json!({"name": "script"})).await;

    let (status, sessions) = app.get("/api/auth/sessions").await;
    assert_eq!(status, 200, "{sessions}");
    let sessions = sessions.as_array().unwrap();
    assert_eq!(sessions.len(), 2, "two logins (the API key is not a session): {sessions:?}");
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    let other = sessions.iter().find(|s| s["current"] == false).unwrap();
    assert_eq!(other["user_agent"], "laptop-browser/1.0");
    assert_eq!(other["address"], "127.0.0.1");
    assert!(other["last_used_at"].is_string() && other["created_at"].is_string(), "{other}");

    let id = other["id"].as_str().unwrap();
    assert_eq!(app.delete(&format!("/api/auth/sessions/{id}")).await.0, 204);
    assert_eq!(stolen.get(app.url("/api/me")).send().await.unwrap().status(), 401);
    assert_eq!(app.delete(&format!("/api/auth/sessions/{id}")).await.0, 404, "already ended");
    let key_id = key["id"].as_str().unwrap();
    assert_eq!(app.delete(&format!("/api/auth/sessions/{key_id}")).await.0, 404, "an API key is not a session");
    assert_eq!(app.get("/api/auth/sessions").await.1.as_array().unwrap().len(), 1);

    // A wrong current password changes nothing; five of them wait.
    for _ in 0..5 {
        let (status, body) =
            app.post("/api/auth/password", json!({"current": "not it at all", "new": "whatever else"})).await;
        assert_eq!(status, 403, "{body}");
    }
    let (status, _) = app.post("/api/auth/password", json!({"current": TEST_PASSWORD, "new": "whatever else"})).await;
    assert_eq!(status, 429);
    assert_eq!(login(&reqwest::Client::new(), &app, "tester", TEST_PASSWORD).await.0, 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_slow_the_attacker_but_never_lock_the_user_out() {
    let app = TestApp::sqlite_with(|s| {
        s.auth = audiolab_config::AuthMode::Enabled;
        s.registrations_per_hour = 3;
    })
    .await;
    // Five wrong passwords for the user from one address: that address waits...
    let attacker = from([127, 0, 0, 2]);
    for _ in 0..5 {
        assert_eq!(login(&attacker, &app, "tester", "wrong-password").await.0, 401);
    }
    let (status, body) = login(&attacker, &app, "tester", TEST_PASSWORD).await;
    assert_eq!(status, 429, "{body}");
    // ...but the user, from an address that has not failed, signs in.
    assert_eq!(login(&from([127, 0, 0, 3]), &app, "tester", TEST_PASSWORD).await.0, 200);
    // An address that fails for many usernames waits for all of them.
    let sprayer = from([127, 0, 0, 4]);
    for n in 0..20 {
        assert_eq!(login(&sprayer, &app, &format!("user{n}"), "wrong-password").await.0, 401);
    }
    assert_eq!(login(&sprayer, &app, "tester", TEST_PASSWORD).await.0, 429);

    // Registrations are limited per address.
    let register = |client: reqwest::Client, name: &str| {
        let body = json!({"username": name, "password": TEST_PASSWORD});
        let url = app.url("/api/auth/register");
        async move { client.post(url).json(&body).send().await.unwrap() }
    };
    for name in ["reg1", "reg2", "reg3"] {
        assert_eq!(register(from([127, 0, 0, 5]), name).await.status(), 201);
    }
    let refused = register(from([127, 0, 0, 5]), "reg4").await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(register(from([127, 0, 0, 6]), "reg4").await.status(), 201);

    // Two Authorization headers: ambiguous, whichever comes first.
    let token = app.token.clone().unwrap();
    for pair in
        [["Bearer al_garbage".to_owned(), format!("Bearer {token}")], [format!("Bearer {token}"), "Bearer x".into()]]
    {
        let request = reqwest::Client::new().get(app.url("/api/me"));
        let response =
            request.header("authorization", &pair[0]).header("authorization", &pair[1]).send().await.unwrap();
        assert_eq!(response.status(), 400, "{pair:?}");
    }
    app.stop().await;
}

/// An editor's browser as the project's device (the synthetic musician), recording a take.
struct EditorDevice {
    project: String,
    editor_id: String,
    session: String,
    musician: Musician,
}

async fn editor_recording(app: &TestApp) -> EditorDevice {
    let project = app.project(json!({"name": "Session"})).await;
    let vox = app.track(&project, "Vox", 0).await["id"].as_str().unwrap().to_owned();
    let armed = json!({"device_id": "client:laptop", "enabled": true});
    assert_eq!(app.post(&format!("/api/audio/tracks/{vox}/record/enable"), armed).await.0, 200);
    let (token, _) = app.sign_up("eddie").await;
    let (_, member) =
        app.post(&format!("/api/projects/{project}/members"), json!({"username": "eddie", "role": "editor"})).await;
    let editor_id = member["user_id"].as_str().unwrap().to_owned();
    let url = format!("{}/ws/audio/{project}?access_token={token}", app.base.replace("http://", "ws://"));
    let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    send(&mut socket, attach_message()).await;
    let attached = next_where(&mut socket, |v| v["type"] == "attached" || v["type"] == "error").await;
    assert_eq!(attached["type"], "attached", "{attached}");
    let mut musician = Musician::new(url, socket);
    let started = musician.control("record_start", json!({"track_id": vox, "start_time": 0.0})).await;
    assert_eq!(started["success"], true, "{started}");
    let session = started["result"]["session_id"].as_str().unwrap().to_owned();
    musician.play_until(48_000, 0).await;
    EditorDevice { project, editor_id, session, musician }
}

/// The take stopped and was kept (not left recording, not lost).
async fn assert_take_saved(app: &TestApp, session: &str) {
    for _ in 0..100 {
        let (_, journal) = app.get(&format!("/api/audio/recording/status/{session}")).await;
        if journal["status"] == "saved" {
            return;
        }
        assert_ne!(journal["status"], "failed", "{journal}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the take of a released device was not saved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demoted_editor_loses_the_device_at_once_and_keeps_listening() {
    let app = with_auth().await;
    let EditorDevice { project, editor_id, session, mut musician } = editor_recording(&app).await;
    let (status, _) =
        app.patch(&format!("/api/projects/{project}/members/{editor_id}"), json!({"role": "viewer"})).await;
    assert_eq!(status, 200);
    let detached = next_where(musician.socket(), |v| v["type"] == "detached").await;
    assert!(detached["data"]["reason"].as_str().unwrap().contains("no longer allows recording"), "{detached}");
    assert_eq!(app.playback_status(&project).await["client_device"], Value::Null);
    assert_take_saved(&app, &session).await;
    // The viewer's socket stays open, for listening; their microphone is refused.
    assert_open(musician.socket()).await;
    let attach = json!({"type": "attach", "data": {"role": "device", "name": "laptop"}});
    send(musician.socket(), attach).await;
    let refused = next_where(musician.socket(), |v| v["type"] == "error").await;
    assert!(refused["data"]["message"].as_str().unwrap().contains("attach"), "{refused}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_s_device_goes_with_them_and_the_owner_plays_and_attaches() {
    let app = with_auth().await;
    let EditorDevice { project, editor_id, session, mut musician } = editor_recording(&app).await;
    assert_eq!(app.delete(&format!("/api/projects/{project}/members/{editor_id}")).await.0, 204);
    assert_closed_for(musician.socket(), "no longer a member").await;
    assert_eq!(app.playback_status(&project).await["client_device"], Value::Null);
    assert_take_saved(&app, &session).await;
    // The owner's play moves the transport (the node's clock again)...
    let (status, _) = app.post(&format!("/api/audio/projects/{project}/playback/play"), json!({"position": 0.0})).await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let position = app.playback_status(&project).await["position"].as_f64().unwrap();
    assert!(position > 0.3, "the transport moves: {position}");
    // ...and the owner attaches their own device.
    let mut owner = socket_with(&app, &project, app.token.as_deref().unwrap()).await;
    send(&mut owner, json!({"type": "attach", "data": {"role": "device", "name": "owner-laptop"}})).await;
    let attached = next_where(&mut owner, |v| v["type"] == "attached" || v["type"] == "error").await;
    assert_eq!(attached["type"], "attached", "{attached}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_detaches_any_device_and_an_away_device_never_holds_the_transport() {
    let app = with_auth().await;
    let EditorDevice { project, session, mut musician, .. } = editor_recording(&app).await;
    let device = format!("/api/audio/projects/{project}/device");
    // Only the owner detaches.
    let (eddie, _) = login(&reqwest::Client::new(), &app, "eddie", TEST_PASSWORD).await;
    assert_eq!(eddie, 200);
    let (status, body) = app.delete(&device).await;
    assert_eq!(status, 200, "{body}");
    let detached = next_where(musician.socket(), |v| v["type"] == "detached").await;
    assert!(detached["data"]["reason"].as_str().unwrap().contains("owner detached"), "{detached}");
    assert_take_saved(&app, &session).await;
    assert_eq!(app.delete(&device).await.0, 404, "nothing attached");

    // The editor attaches again, then their connection is lost (no detach): the device is away.
    let attach = json!({"type": "attach", "data": {"role": "device", "name": "laptop"}});
    send(musician.socket(), attach).await;
    next_where(musician.socket(), |v| v["type"] == "attached").await;
    drop(musician);
    for _ in 0..50 {
        if app.playback_status(&project).await["client_device"]["connected"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(app.playback_status(&project).await["client_device"]["connected"], false);
    // The owner's play is not held by the absent device.
    let (status, _) = app.post(&format!("/api/audio/projects/{project}/playback/play"), json!({"position": 0.0})).await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let status = app.playback_status(&project).await;
    assert!(status["position"].as_f64().unwrap() > 0.3, "the transport moves: {status}");
    assert_eq!(status["client_device"], Value::Null);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_editor_cannot_detach_and_nobody_outside_moves_a_project_s_takes() {
    let app = with_auth().await;
    let project = app.project(json!({"name": "Mine"})).await;
    let (_, stranger) = app.sign_up("stranger").await;
    let (_, editor) = app.sign_up("editor").await;
    let (_, viewer) = app.sign_up("viewer").await;
    for (name, role) in [("editor", "editor"), ("viewer", "viewer")] {
        app.post(&format!("/api/projects/{project}/members"), json!({"username": name, "role": role})).await;
    }
    let offset = app.url(&format!("/api/projects/{project}/devices/mock_0/offset"));
    let put = |client: &reqwest::Client, ms: f64| client.put(&offset).json(&json!({"offset_ms": ms})).send();
    assert_eq!(put(&stranger, 250.0).await.unwrap().status(), 404);
    assert_eq!(put(&viewer, 250.0).await.unwrap().status(), 403);
    assert_eq!(put(&editor, 5.0).await.unwrap().status(), 200);
    let old = stranger.put(app.url("/api/audio/devices/mock_2/offset")).json(&json!({"offset_ms": -1000})).send();
    assert_eq!(old.await.unwrap().status(), 404, "no deployment-wide offset");
    let (_, devices) = app.get(&format!("/api/audio/devices?project_id={project}")).await;
    let offsets: Vec<f64> = devices.as_array().unwrap().iter().map(|d| d["offset_ms"].as_f64().unwrap()).collect();
    assert_eq!(offsets[..3], [5.0, 0.0, 0.0]);
    let detach = editor.delete(app.url(&format!("/api/audio/projects/{project}/device"))).send().await.unwrap();
    assert_eq!(detach.status(), 403);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_defends_itself_and_sockets_open_only_from_their_own_origin() {
    let app = TestApp::sqlite_with(|s| {
        s.auth = audiolab_config::AuthMode::Enabled;
        s.allowed_origins = Some("https://studio.example.com".into());
    })
    .await;
    for path in ["/", "/web/studio/api.js", "/api/me", "/health"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
        let policy = header("content-security-policy").unwrap_or_default();
        assert!(policy.contains("default-src 'self'") && policy.contains("frame-ancestors 'none'"), "{path}: {policy}");
        assert!(!policy.contains("unsafe-inline"), "{path}: {policy}");
        assert_eq!(header("x-content-type-options").as_deref(), Some("nosniff"), "{path}");
        assert_eq!(header("referrer-policy").as_deref(), Some("no-referrer"), "{path}");
        assert_eq!(header("x-frame-options").as_deref(), Some("DENY"), "{path}");
    }
    let project = app.project(json!({"name": "Origins"})).await;
    let upgrade = |origin: Option<&str>| {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = app.ws_url(&project).into_client_request().unwrap();
        if let Some(origin) = origin {
            request.headers_mut().insert("origin", origin.parse().unwrap());
        }
        async move {
            match tokio_tungstenite::connect_async(request).await {
                Ok(_) => 101,
                Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
                Err(other) => panic!("{other}"),
            }
        }
    };
    assert_eq!(upgrade(Some("https://evil.example")).await, 403);
    assert_eq!(upgrade(None).await, 101, "SDKs and scripts send no Origin");
    assert_eq!(upgrade(Some(&app.base)).await, 101, "the studio's own page");
    assert_eq!(upgrade(Some("https://studio.example.com")).await, 101, "an allowed origin");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_at_the_edge_of_u64_saturate_over_http() {
    let app = TestApp::sqlite().await;
    let project = app.project(json!({"name": "Ranges"})).await;
    let track = app.track(&project, "T", 0).await["id"].as_str().unwrap().to_owned();
    let clip = app.audio_clip(&project, &track, 0.0, 1, &[0.5; 1_000]).await;
    let url = app.url(&format!("/api/clips/{clip}/audio"));
    let whole = app.client.get(&url).send().await.unwrap().bytes().await.unwrap();
    let length = whole.len() as u64;
    let get = |range: String| {
        let request = app.client.get(&url).header("range", range);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let header = |n: &str| response.headers().get(n).map(|v| v.to_str().unwrap().to_owned());
            let (content_length, content_range) = (header("content-length"), header("content-range"));
            (status, content_length, content_range, response.bytes().await.unwrap())
        }
    };
    let (status, size, range, body) = get(format!("bytes=5-{}", u64::MAX)).await;
    assert_eq!(
        (status, size, range),
        (206, Some((length - 5).to_string()), Some(format!("bytes 5-{}/{length}", length - 1)))
    );
    assert_eq!(body, whole[5..]);
    let (status, size, _, body) = get(format!("bytes=0-{}", u64::MAX)).await;
    assert_eq!((status, size), (206, Some(length.to_string())));
    assert_eq!(body, whole);
    let (status, _, range, body) = get("bytes=-10".into()).await;
    assert_eq!((status, range), (206, Some(format!("bytes {}-{}/{length}", length - 10, length - 1))));
    assert_eq!(body, whole[whole.len() - 10..]);
    let (status, _, range, _) = get(format!("bytes={}-", length - 1)).await;
    assert_eq!((status, range), (206, Some(format!("bytes {}-{}/{length}", length - 1, length - 1))));
    let (status, _, range, _) = get(format!("bytes={length}-")).await;
    assert_eq!((status, range), (416, Some(format!("bytes */{length}"))));
    app.stop().await;
}
