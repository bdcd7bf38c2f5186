//! Test harness: the real application on `127.0.0.1:0` with a fresh database, and a typed
//! HTTP client for it.
#![allow(dead_code)]

pub mod musician;
pub mod processes;

use audiolab::{Application, Role};
use audiolab_config::Settings;
use audiolab_testkit::TestDatabase;
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr};

/// A running application and what it needs to stay alive.
pub struct TestApp {
    pub base: String,
    /// A client signed in as the test's user (when auth is on; otherwise the local user).
    pub client: reqwest::Client,
    /// The test user's bearer token, when auth is on.
    pub token: Option<String>,
    app: Option<Application>,
    _database: TestDatabase,
    _data_dir: tempfile::TempDir,
    /// The processes of a split deployment, when the application runs as separate processes.
    _deployment: Option<processes::Deployment>,
}

/// Settings for a test: loopback, any free port, a fresh data directory.
pub fn test_settings(data_dir: &std::path::Path, database_url: Option<String>) -> Settings {
    Settings {
        host: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: 0,
        data_dir: data_dir.to_path_buf(),
        database_url,
        ..Settings::default()
    }
}

impl TestApp {
    /// `serve` on a fresh SQLite database: the embedded default.
    pub async fn sqlite() -> Self {
        Self::start(TestDatabase::sqlite(), Role::Serve).await
    }

    /// `api` on a fresh PostgreSQL database: the cloud mode.
    pub async fn postgres() -> Self {
        let database = TestDatabase::postgres().await.expect("PostgreSQL must be running for API tests");
        Self::start(database, Role::Api).await
    }

    /// The cloud mode as separate processes (node, worker, api) on a fresh PostgreSQL database,
    /// the machine's Redis and an object store, reached at the API, signed in as a new user.
    pub async fn split() -> Self {
        let database = TestDatabase::postgres().await.expect("PostgreSQL must be running for split tests");
        let deployment = processes::Deployment::start(&database.url, TEST_INTERNAL_SECRET);
        let mut app = Self {
            base: deployment.api.clone(),
            client: reqwest::Client::new(),
            token: None,
            app: None,
            _database: database,
            _data_dir: tempfile::tempdir().unwrap(),
            _deployment: Some(deployment),
        };
        let (token, client) = app.sign_up("tester").await;
        (app.token, app.client) = (Some(token), client);
        app
    }

    /// `serve` on a fresh SQLite database with adjusted settings.
    pub async fn sqlite_with(adjust: impl FnOnce(&mut Settings)) -> Self {
        Self::start_with(TestDatabase::sqlite(), Role::Serve, adjust).await
    }

    async fn start(database: TestDatabase, role: Role) -> Self {
        Self::start_with(database, role, |_| {}).await
    }

    async fn start_with(database: TestDatabase, role: Role, adjust: impl FnOnce(&mut Settings)) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let mut settings = test_settings(data_dir.path(), Some(database.url.clone()));
        if role != Role::Serve {
            settings.internal_secret = Some(audiolab_config::Secret(TEST_INTERNAL_SECRET.into()));
        }
        adjust(&mut settings);
        let auth = settings.auth_enabled(role == Role::Serve);
        let app = Application::start(settings, role).await.expect("application starts");
        let mut test_app = Self {
            base: format!("http://{}", app.address()),
            client: reqwest::Client::new(),
            token: None,
            app: Some(app),
            _database: database,
            _data_dir: data_dir,
            _deployment: None,
        };
        if auth {
            let (token, client) = test_app.sign_up("tester").await;
            test_app.token = Some(token);
            test_app.client = client;
        }
        test_app
    }

    /// Registers `username` (password [`TEST_PASSWORD`]) and returns its token and a client
    /// that sends it.
    pub async fn sign_up(&self, username: &str) -> (String, reqwest::Client) {
        let body = serde_json::json!({"username": username, "password": TEST_PASSWORD});
        let response = reqwest::Client::new().post(self.url("/api/auth/register")).json(&body).send().await.unwrap();
        let (status, session) = read(response).await;
        assert_eq!(status, 201, "{session}");
        let token = session["token"].as_str().unwrap().to_owned();
        (token.clone(), bearer_client(&token))
    }

    /// A second connection to the app's database, for arranging rows the API cannot create yet.
    pub async fn store(&self) -> audiolab_store::Store {
        audiolab_store::Store::connect(&self._database.url).await.unwrap()
    }

    /// Writes `samples` (interleaved, `channels`) as a ready clip's audio on `track` at `start`
    /// seconds, the way a finished recording or import leaves it. Returns the clip id.
    pub async fn audio_clip(&self, project: &str, track: &str, start: f64, channels: u16, samples: &[f32]) -> String {
        use audiolab_domain::clip::{Clip, ClipStatus, NewClip};
        let store = self.store().await;
        let project_id: audiolab_domain::ProjectId = project.parse::<uuid::Uuid>().unwrap().into();
        let rate = store.get_project(project_id).await.unwrap().unwrap().sample_rate;
        let frames = samples.len() / usize::from(channels);
        let new = NewClip {
            project_id,
            track_id: track.parse::<uuid::Uuid>().unwrap().into(),
            take_id: None,
            name: "Fixture".into(),
            start: audiolab_domain::Frames::from_seconds("start", start, rate).unwrap(),
            length: audiolab_domain::Frames(frames as i64),
            source_sample_rate: rate.hz(),
            channels,
        };
        let mut clip = Clip::create(new, audiolab_domain::now()).unwrap();
        let key = format!("projects/{project}/clips/{}.wav", clip.id);
        let path = self._data_dir.path().join("audio").join(&key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        audiolab_media::wav::write(&path, channels, rate.hz(), audiolab_media::wav::SampleFormat::Float32, samples)
            .unwrap();
        clip.audio_key = Some(key);
        clip.status = ClipStatus::Ready;
        store.insert_clip(&clip).await.unwrap();
        clip.id.to_string()
    }

    /// The WebSocket URL of a project's transport.
    /// Where the object with storage key `key` lives on disk.
    pub fn audio_path(&self, key: &str) -> std::path::PathBuf {
        self._data_dir.path().join("audio").join(key)
    }

    pub fn ws_url(&self, project: &str) -> String {
        let url = format!("{}/ws/audio/{project}", self.base.replace("http://", "ws://"));
        match &self.token {
            Some(token) => format!("{url}?access_token={token}"),
            None => url,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        read(self.client.get(self.url(path)).send().await.unwrap()).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        read(self.client.post(self.url(path)).json(&body).send().await.unwrap()).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        read(self.client.put(self.url(path)).json(&body).send().await.unwrap()).await
    }

    pub async fn post_empty(&self, path: &str) -> (u16, Value) {
        read(self.client.post(self.url(path)).send().await.unwrap()).await
    }

    pub async fn post_raw(&self, path: &str, body: &'static str) -> (u16, Value) {
        let request = self.client.post(self.url(path)).header("content-type", "application/json").body(body);
        read(request.send().await.unwrap()).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        read(self.client.patch(self.url(path)).json(&body).send().await.unwrap()).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        read(self.client.delete(self.url(path)).send().await.unwrap()).await
    }

    /// Creates a project and returns its id.
    /// `GET …/playback/status` of `project`, which must answer 200.
    pub async fn playback_status(&self, project: &str) -> Value {
        let (code, status) = self.get(&format!("/api/audio/projects/{project}/playback/status")).await;
        assert_eq!(code, 200, "{status}");
        status
    }

    pub async fn project(&self, body: Value) -> String {
        let (status, project) = self.post("/api/projects", body).await;
        assert_eq!(status, 201, "{project}");
        project["id"].as_str().unwrap().to_owned()
    }

    /// Creates a track and returns its body.
    pub async fn track(&self, project_id: &str, name: &str, index: i64) -> Value {
        let body = serde_json::json!({"project_id": project_id, "name": name, "track_index": index});
        let (status, track) = self.post("/api/tracks", body).await;
        assert_eq!(status, 201, "{track}");
        track
    }

    /// Waits for a job to end (succeeded, failed or cancelled) and returns its row.
    pub async fn finished_job(&self, job: &str) -> Value {
        for _ in 0..1200 {
            let (status, row) = self.get(&format!("/api/jobs/{job}")).await;
            assert_eq!(status, 200, "{row}");
            if matches!(row["status"].as_str(), Some("succeeded" | "failed" | "cancelled")) {
                return row;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("job {job} did not finish");
    }

    /// Polls the clip until finalisation marks it ready (failing on `failed`, or after two
    /// minutes: a 10-minute take in a debug build on a busy machine takes a while).
    pub async fn ready_clip(&self, clip: &str) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while std::time::Instant::now() < deadline {
            let (_, body) = self.get(&format!("/api/clips/{clip}")).await;
            match body["status"].as_str() {
                Some("ready") => return body,
                Some("failed") => panic!("finalisation failed: {body}"),
                _ => tokio::time::sleep(std::time::Duration::from_millis(25)).await,
            }
        }
        panic!("clip {clip} was not finalised within two minutes");
    }

    pub async fn stop(mut self) {
        if let Some(app) = self.app.take() {
            app.stop().await;
        }
    }
}

/// The internal secret of test deployments that run the API and nodes apart.
pub const TEST_INTERNAL_SECRET: &str = "test-internal-secret-0123456789";
/// Every test user's password.
pub const TEST_PASSWORD: &str = "correct horse battery";

/// A client that sends `Authorization: Bearer <token>` on every request.
pub fn bearer_client(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
    reqwest::Client::builder().default_headers(headers).build().unwrap()
}

pub async fn read(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    (status, body)
}

/// Decodes an audio file's bytes (symphonia): (rate, channels, interleaved samples).
pub fn decode(bytes: &[u8]) -> (u32, usize, Vec<f32>) {
    let mut decoder = audiolab_media::decode::Decoder::from_bytes(bytes.to_vec(), None).unwrap();
    let (rate, channels) = (decoder.sample_rate(), decoder.channels());
    let mut samples = Vec::new();
    while let Some(block) = decoder.next_block().unwrap() {
        samples.extend_from_slice(block);
    }
    (rate, channels, samples)
}

/// Asserts the §3 error shape and returns the detail.
pub fn assert_error(body: &Value) -> String {
    assert_eq!(body["success"], Value::Bool(false), "{body}");
    assert!(body["errors"].is_array(), "{body}");
    body["detail"].as_str().expect("detail").to_owned()
}

/// A WebSocket client of the transport.
pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects to a project's socket and says hello, so its broadcasts start.
pub async fn joined(app: &TestApp, project: &str) -> Socket {
    let (mut socket, _) = tokio_tungstenite::connect_async(app.ws_url(project)).await.expect("WebSocket connects");
    send(&mut socket, serde_json::json!({"type": "ping"})).await;
    next_where(&mut socket, |v| v["type"] == "pong").await;
    socket
}

pub async fn send(socket: &mut Socket, value: Value) {
    use futures_util::SinkExt;
    socket.send(tokio_tungstenite::tungstenite::Message::text(value.to_string())).await.unwrap();
}

/// The next text frame matching `wanted`, skipping others (failing after 5 s or on close).
pub async fn next_where(socket: &mut Socket, wanted: impl Fn(&Value) -> bool) -> Value {
    use futures_util::StreamExt;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let frame = tokio::time::timeout_at(deadline, socket.next()).await.expect("the frame within 5 s");
        match frame.expect("socket open").expect("a frame") {
            tokio_tungstenite::tungstenite::Message::Text(text) => {
                let value: Value = serde_json::from_str(&text).unwrap();
                if wanted(&value) {
                    return value;
                }
            }
            tokio_tungstenite::tungstenite::Message::Close(close) => panic!("closed: {close:?}"),
            _ => {}
        }
    }
}

/// The close frame `socket` receives within 5 s (failing if it ends without one).
pub async fn closed(socket: &mut Socket) -> tokio_tungstenite::tungstenite::protocol::CloseFrame {
    use futures_util::StreamExt;
    tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            match socket.next().await {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(Some(frame)))) => return frame,
                Some(Ok(_)) => continue,
                other => panic!("the socket ended without a close frame: {other:?}"),
            }
        }
    })
    .await
    .expect("closed within 5 s")
}

/// Sends one control command and returns its `control_response` data.
pub async fn control(socket: &mut Socket, command: &str, data: Value) -> Value {
    let id = uuid::Uuid::new_v4().to_string();
    send(socket, serde_json::json!({"type": "control", "id": id, "command": command, "data": data})).await;
    let response = next_where(socket, |v| v["type"] == "control_response" && v["data"]["id"] == id.as_str()).await;
    response["data"].clone()
}
