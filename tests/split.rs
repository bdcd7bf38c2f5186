//! Cloud mode as separate processes: `api`, `node` and `worker` binaries sharing PostgreSQL,
//! Redis and an S3-compatible object store (`s3s-fs`), each with a data directory of its own.
//! The transport is driven through the API, the WebSocket is reached at the API's address, and
//! a project moves to another node when its node dies.

mod common;

use common::musician::{CutProxy, LATENCY, Musician, attach_message};
use common::processes::{ObjectStore, OwnRedis, cluster_env, start, start_worker};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// The secret the test deployments' API and node processes share.
const INTERNAL_SECRET: &str = "split-test-internal-secret";

/// Registers a user on the API at `api`: a client sending its token, and the token.
async fn signed_up(api: &str) -> (reqwest::Client, String) {
    signed_up_as(api, "splitter").await
}

async fn signed_up_as(api: &str, username: &str) -> (reqwest::Client, String) {
    let body = json!({"username": username, "password": "correct horse battery"});
    let (status, session) = post(&reqwest::Client::new(), format!("{api}/api/auth/register"), body).await;
    assert_eq!(status, 201, "{session}");
    let token = session["token"].as_str().unwrap().to_owned();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
    (reqwest::Client::builder().default_headers(headers).build().unwrap(), token)
}

async fn post(client: &reqwest::Client, url: String, body: Value) -> (u16, Value) {
    let response = client.post(url).json(&body).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

/// Polls a job through the API until it ends.
async fn finished_job(client: &reqwest::Client, api: &str, job: &str) -> Value {
    for _ in 0..300 {
        let row: Value = client.get(format!("{api}/api/jobs/{job}")).send().await.unwrap().json().await.unwrap();
        if matches!(row["status"].as_str(), Some("succeeded" | "failed" | "cancelled")) {
            return row;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("job {job} did not finish");
}

async fn next_of(
    socket: &mut tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    kind: &str,
) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), socket.next()).await.expect("a frame within 5 s");
        if let Message::Text(text) = frame.unwrap().unwrap() {
            let value: Value = serde_json::from_str(&text).unwrap();
            if value["type"] == kind {
                return value;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_and_node_processes_play_a_project_together() {
    let database = audiolab_testkit::TestDatabase::postgres().await.expect("PostgreSQL must be running");
    let objects = ObjectStore::start();
    let (storage, bucket_dir) = objects.env("s");
    let data_dirs = [(); 4].map(|()| tempfile::tempdir().unwrap());
    let data_dir = |i: usize| ("AUDIOLAB_DATA_DIR", data_dirs[i].path().display().to_string());
    let mut env = [storage, cluster_env(&database.url, "redis://127.0.0.1:6379", "split", INTERNAL_SECRET)].concat();
    let with_dir = |env: &[(&'static str, String)], i: usize| [env, &[data_dir(i)]].concat();
    env.shrink_to_fit();
    let (node, node_url) = start("node", &with_dir(&env, 0));
    let _worker = start_worker(&with_dir(&env, 1));
    let (_api, api) = start("api", &with_dir(&env, 2));
    let (client, token) = signed_up(&api).await;

    // Arrange: a project with one 4 s clip, its audio in the object store.
    let (_, project) = post(&client, format!("{api}/api/projects"), json!({"name": "Split"})).await;
    let project = project["id"].as_str().unwrap().to_owned();
    let (_, track) =
        post(&client, format!("{api}/api/tracks"), json!({"project_id": project, "name": "Bass", "track_index": 0}))
            .await;
    let track = track["id"].as_str().unwrap().to_owned();
    let store = audiolab_store::Store::connect(&database.url).await.unwrap();
    line_clip(&store, &bucket_dir, &project, &track).await;

    // The transport through the API reaches the node.
    let playback = format!("{api}/api/audio/projects/{project}/playback");
    let (status, loaded) = post(&client, format!("{playback}/load"), Value::Null).await;
    assert_eq!(status, 200, "{loaded}");
    assert_eq!((loaded["clips_loaded"].as_u64(), loaded["duration"].as_f64()), (Some(1), Some(4.0)));

    // The WebSocket at the API's address reaches the same session.
    let ws_url = format!("{}/ws/audio/{project}?access_token={token}", api.replace("http://", "ws://"));

    // A client device through the API's socket proxy: binary MON frames come through, paced by
    // what it reports played, labelled with their timeline frames.
    let (mut device, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
    let attach = json!({"type": "attach", "data": {"role": "device", "name": "remote", "lookahead_frames": 2048}});
    device.send(Message::text(attach.to_string())).await.unwrap();
    next_of(&mut device, "attached").await;
    let play = json!({"type": "control", "id": 1, "command": "play", "data": {"position": 0.0}});
    device.send(Message::text(play.to_string())).await.unwrap();
    let mut received = 0u64;
    while received < 4_096 {
        let frame = tokio::time::timeout(Duration::from_secs(5), device.next()).await.expect("MON within 5 s");
        let Message::Binary(bytes) = frame.unwrap().unwrap() else { continue };
        let mon = audiolab_transport::wire::decode(&bytes).expect("a valid MON frame");
        assert_eq!(mon.header.frame, received, "consecutive timeline frames");
        assert!(mon.samples.iter().all(|s| (s - 0.25 * std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6));
        received += u64::from(mon.header.frames);
        let played = json!({"type": "played", "data": {"consumed": received}});
        device.send(Message::text(played.to_string())).await.unwrap();
    }
    device.send(Message::text(json!({"type": "detach"}).to_string())).await.unwrap();
    next_of(&mut device, "detached").await;
    // Stopped again, so the checks below start from a still transport.
    let stop = json!({"type": "control", "id": 2, "command": "stop", "data": {}});
    device.send(Message::text(stop.to_string())).await.unwrap();
    while next_of(&mut device, "control_response").await["data"]["id"] != 2 {}
    let _ = device.close(None).await;

    // A take from a client device through the API's proxy survives a 2 s network drop: time
    // stands still, the client resends what was not acknowledged, the take is whole.
    let body = json!({"project_id": project, "name": "Vox", "track_index": 1});
    let (_, vox) = post(&client, format!("{api}/api/tracks"), body).await;
    let vox = vox["id"].as_str().unwrap().to_owned();
    let arm = json!({"device_id": "client:laptop", "enabled": true});
    assert_eq!(post(&client, format!("{api}/api/audio/tracks/{vox}/record/enable"), arm).await.0, 200);
    let proxy = CutProxy::start(&api).await;
    let url = proxy.through(&ws_url, &api);
    let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    socket.send(Message::text(attach_message().to_string())).await.unwrap();
    next_of(&mut socket, "attached").await;
    let mut musician = Musician::new(url, socket);
    let request = json!({"track_id": vox, "start_time": 0.5, "punch_in": 1.0, "punch_out": 2.0});
    let started = common::control(musician.socket(), "record_start", request).await;
    assert_eq!(started["success"], true, "{started}");
    let session = started["result"]["session_id"].as_str().unwrap().to_owned();
    musician.play_until(72_000, 0).await;
    proxy.cut();
    tokio::time::sleep(Duration::from_secs(2)).await;
    proxy.restore();
    musician.play_until(96_000 + LATENCY as i64 + 4_800, 96_000).await;
    let stopped = common::control(musician.socket(), "record_stop", json!({"session_id": session})).await;
    assert_eq!(stopped["success"], true, "{stopped}");
    assert_eq!(stopped["result"]["missing_frames"], 0, "{stopped}");
    assert_eq!(stopped["result"]["start_frame"], 48_000, "{stopped}");
    let take_clip = stopped["result"]["clip_id"].as_str().unwrap().to_owned();
    let detach = json!({"type": "detach"});
    musician.socket().send(Message::text(detach.to_string())).await.unwrap();
    let finalize = stopped["result"]["finalize_job_id"].as_str().unwrap().to_owned();
    assert_eq!(finished_job(&client, &api, &finalize).await["status"], "succeeded");
    let audio = client.get(format!("{api}/api/clips/{take_clip}/audio")).send().await.unwrap().bytes().await.unwrap();
    let wav = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(wav.path(), &audio).unwrap();
    let mut reader = audiolab_media::wav::WavReader::open(wav.path()).unwrap();
    let clip: Value = client.get(format!("{api}/api/clips/{take_clip}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(clip["length_frames"], 48_000, "exactly the punch range: {clip}");
    let mut take = vec![0.0f32; 48_000];
    let offset = clip["offset_frames"].as_u64().unwrap();
    assert_eq!(reader.read_frames(offset, &mut take).unwrap(), 48_000);
    let heard = 0.25 * std::f32::consts::FRAC_1_SQRT_2;
    let wrong = take.iter().position(|s| (s - heard).abs() > 1e-5);
    assert_eq!(wrong, None, "every frame of the take holds what was heard");
    drop(musician);

    let (mut socket, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
    socket.send(Message::text(json!({"type": "ping"}).to_string())).await.unwrap();
    next_of(&mut socket, "pong").await;

    // Accounts hold across processes: a stranger finds nothing through the API or its socket
    // proxy, and the node's own routes answer only the deployment's API processes.
    let (stranger, stranger_token) = signed_up_as(&api, "stranger").await;
    let response = stranger.get(format!("{api}/api/projects/{project}")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    let stranger_ws = format!("{}/ws/audio/{project}?access_token={stranger_token}", api.replace("http://", "ws://"));
    match tokio_tungstenite::connect_async(&stranger_ws).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 404),
        other => panic!("the stranger's socket was not refused: {other:?}"),
    }
    let control = format!("{node_url}/internal/control/{project}");
    let unsigned = reqwest::Client::new().post(&control).json(&json!({"command": "status"})).send().await.unwrap();
    assert_eq!(unsigned.status(), 401, "the internal route needs the secret");
    let node_ws = format!("{}/ws/audio/{project}", node_url.replace("http://", "ws://"));
    match tokio_tungstenite::connect_async(&node_ws).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("the node's socket took a client without the secret: {other:?}"),
    }

    let (status, playing) = post(&client, format!("{playback}/play"), json!({"position": 1.0})).await;
    assert_eq!((status, playing["status"].as_str()), (200, Some("playing")), "{playing}");
    let update = next_of(&mut socket, "position_update").await;
    assert!(update["data"]["position"].as_f64().unwrap() >= 1.0);

    // A mixer change through the API reaches the node's clients through the Redis bus.
    let (status, _) = post(&client, format!("{api}/api/audio/tracks/{track}/volume?volume=0.4"), Value::Null).await;
    assert_eq!(status, 200);
    let change = next_of(&mut socket, "track_update").await;
    assert_eq!(change["data"]["volume"].as_f64(), Some(0.4));

    // WS control through the proxy.
    socket.send(Message::text(json!({"type": "control", "id": "s", "command": "stop"}).to_string())).await.unwrap();
    let response = next_of(&mut socket, "control_response").await;
    assert_eq!(
        (response["data"]["success"].as_bool(), response["data"]["result"]["frame"].as_i64()),
        (Some(true), Some(0))
    );

    // A take recorded through the API lands on the node, is finalised by the worker, and its clip,
    // journal and waveform are visible through the API.
    let (status, _) =
        post(&client, format!("{api}/api/audio/tracks/{track}/record/enable"), json!({"device_id": "mock_2"})).await;
    assert_eq!(status, 200);
    let (status, started) =
        post(&client, format!("{api}/api/audio/tracks/{track}/record/start"), json!({"start_time": 0.5})).await;
    assert_eq!(status, 200, "{started}");
    let session = started["session_id"].as_str().unwrap().to_owned();
    let recording = next_of(&mut socket, "recording_status").await;
    assert_eq!(recording["data"]["session_id"], session.as_str());
    // While the take records, each completed second of it reaches the object store.
    let first_chunk = bucket_dir.join(format!("captures/{session}/chunk-000000.f32"));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !first_chunk.exists() {
        assert!(std::time::Instant::now() < deadline, "the first second of the take never reached the bucket");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, stopped) =
        post(&client, format!("{api}/api/audio/tracks/{track}/record/stop/{session}"), Value::Null).await;
    assert_eq!((status, stopped["start_frame"].as_i64()), (200, Some(24_000)), "{stopped}");
    let clip = stopped["clip_id"].as_str().unwrap().to_owned();
    let ready = next_of(&mut socket, "clip_ready").await;
    assert_eq!(ready["data"]["clip_id"], clip.as_str());
    let journal: Value =
        client.get(format!("{api}/api/audio/recording/status/{session}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(journal["status"], "saved");
    let peaks = client.get(format!("{api}/api/clips/{clip}/peaks")).send().await.unwrap();
    assert_eq!(peaks.status(), 200);
    assert_eq!(&peaks.bytes().await.unwrap()[..4], &2i32.to_le_bytes());
    // Each process worked on its own disk; the take travelled through the object store.
    let take = format!("projects/{project}/takes/{session}.wav");
    assert!(bucket_dir.join(format!("captures/{session}/manifest")).exists(), "the node published the capture");
    assert!(bucket_dir.join(&take).exists(), "the worker published the take");
    assert!(data_dirs[1].path().join(format!("audio/captures/{session}/chunk-000000.f32")).exists());
    assert!(data_dirs[1].path().join(format!("audio/{take}")).exists(), "the worker wrote the take");
    assert!(!data_dirs[2].path().join(format!("audio/{take}")).exists(), "the API fetched only the waveform");
    assert!(data_dirs[2].path().join(format!("audio/projects/{project}/peaks/{session}/256.dat")).exists());

    // An upload through the API is imported by the worker; a mixdown rendered by the worker
    // downloads through the API. Both travel through the object store.
    let samples: Vec<f32> = (0..44_100).map(|i| 0.5 * (i as f32 * 0.05).sin()).collect();
    let source = data_dirs[2].path().join("upload.wav");
    audiolab_media::wav::write(&source, 1, 44_100, audiolab_media::wav::SampleFormat::Int16, &samples).unwrap();
    let response = client
        .post(format!("{api}/api/tracks/{track}/clips?start=5&filename=line.wav"))
        .header("content-type", "application/octet-stream")
        .body(std::fs::read(&source).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let accepted: Value = response.json().await.unwrap();
    let imported = finished_job(&client, &api, accepted["job"]["id"].as_str().unwrap()).await;
    assert_eq!(imported["status"], "succeeded", "{imported}");
    let clip_id = accepted["clip"]["id"].as_str().unwrap();
    let audio = client.get(format!("{api}/api/clips/{clip_id}/audio")).send().await.unwrap();
    assert_eq!(audio.status(), 200);
    let info = audiolab_media::decode::Decoder::from_bytes(audio.bytes().await.unwrap().to_vec(), None).unwrap();
    assert_eq!(info.sample_rate(), 48_000, "resampled to the project rate by the worker");
    let (status, submitted) =
        post(&client, format!("{api}/api/projects/{project}/mixdown"), json!({"format": "flac16", "stems": true}))
            .await;
    assert_eq!(status, 202, "{submitted}");
    let job = submitted["job"]["id"].as_str().unwrap().to_owned();
    let mixed = finished_job(&client, &api, &job).await;
    assert_eq!(mixed["status"], "succeeded", "{mixed}");
    assert_eq!(mixed["result"]["frames"].as_u64(), Some(6 * 48_000), "to the end of the imported clip");
    let file = client.get(format!("{api}/api/mixdowns/{job}/file")).send().await.unwrap();
    assert_eq!((file.status().as_u16(), file.headers()["content-type"].to_str().unwrap()), (200, "audio/flac"));
    let bytes = file.bytes().await.unwrap();
    let key = format!("projects/{project}/mixdowns/{job}/mix.flac");
    assert_eq!(std::fs::read(bucket_dir.join(&key)).unwrap(), bytes, "the API served the worker's file");
    assert!(bucket_dir.join(format!("projects/{project}/mixdowns/{job}/stems/{track}.flac")).exists());
    // A file larger than one upload part (8 MB) reaches the bucket in parts, whole.
    let (status, submitted) =
        post(&client, format!("{api}/api/projects/{project}/mixdown"), json!({"format": "wav_f32", "end": 30.0})).await;
    assert_eq!(status, 202, "{submitted}");
    let big = submitted["job"]["id"].as_str().unwrap().to_owned();
    assert_eq!(finished_job(&client, &api, &big).await["status"], "succeeded");
    let bytes = client.get(format!("{api}/api/mixdowns/{big}/file")).send().await.unwrap().bytes().await.unwrap();
    assert!(bytes.len() > 30 * 48_000 * 8, "{} bytes", bytes.len());
    let key = format!("projects/{project}/mixdowns/{big}/mix.wav");
    assert_eq!(std::fs::read(bucket_dir.join(&key)).unwrap(), bytes);

    // A clip moved through the API reaches the node's engine and clients through the bus.
    let response =
        client.patch(format!("{api}/api/clips/{clip_id}")).json(&json!({"start": 20.0})).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let changed = next_of(&mut socket, "model_changed").await;
    assert_eq!((changed["data"]["item"].as_str(), changed["data"]["id"].as_str()), (Some("clip"), Some(clip_id)));
    let status: Value = client.get(format!("{playback}/status")).send().await.unwrap().json().await.unwrap();
    assert_eq!(status["duration"].as_f64(), Some(21.0), "the engine plays the moved clip: {status}");

    // The node dies without a word 3 s into a take; a second node takes the project once the
    // first goes stale, and recovers the take from the chunks in the bucket.
    let (status, started) = post(
        &client,
        format!("{api}/api/audio/tracks/{track}/record/start"),
        json!({"start_time": 30.0, "device_id": "mock_0"}),
    )
    .await;
    assert_eq!(status, 200, "{started}");
    let orphan = started["session_id"].as_str().unwrap().to_owned();
    let third_second = bucket_dir.join(format!("captures/{orphan}/chunk-000002.f32"));
    let deadline = std::time::Instant::now() + Duration::from_secs(8);
    while !third_second.exists() {
        assert!(std::time::Instant::now() < deadline, "three seconds of the take never reached the bucket");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_second, _) = start("node", &with_dir(&env, 3));
    drop(node);
    let recovered = loop {
        let journal: Value = client
            .get(format!("{api}/api/audio/recording/status/{orphan}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if matches!(journal["status"].as_str(), Some("recovered" | "failed" | "saved")) {
            break journal;
        }
        assert!(std::time::Instant::now() < deadline + Duration::from_secs(15), "the take stayed recording: {journal}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(recovered["status"], "recovered", "{recovered}");
    let (_, takes) = (0, client.get(format!("{api}/api/tracks/{track}/takes")).send().await.unwrap());
    let takes: Value = takes.json().await.unwrap();
    let take =
        takes.as_array().unwrap().iter().find(|t| t["session_id"] == orphan.as_str()).expect("the recovered take");
    let clip = take["clip_id"].as_str().unwrap();
    let audio = client.get(format!("{api}/api/clips/{clip}/audio")).send().await.unwrap();
    assert_eq!(audio.status(), 200);
    let mut decoder = audiolab_media::decode::Decoder::from_bytes(audio.bytes().await.unwrap().to_vec(), None).unwrap();
    let mut samples = Vec::new();
    while let Some(block) = decoder.next_block().unwrap() {
        samples.extend_from_slice(block);
    }
    assert!(samples.len() >= 3 * 48_000, "at least the three seconds in the bucket: {} frames", samples.len());
    let expected = |n: usize| audiolab_dsp::input::VirtualSignal::Sine.sample(n as u64, 0, 48_000);
    assert!(
        (0..samples.len()).step_by(997).all(|n| (samples[n] - expected(n)).abs() < 1e-6),
        "the microphone's sine, exact"
    );

    let (status, replayed) = post(&client, format!("{playback}/play"), json!({"position": 2.0})).await;
    assert_eq!((status, replayed["status"].as_str()), (200, Some("playing")), "{replayed}");
    assert_eq!(replayed["project_loaded"], true);

    // Deleting the project through the API closes its socket on the new node with the reason.
    let (mut socket, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
    socket.send(Message::text(json!({"type": "ping"}).to_string())).await.unwrap();
    next_of(&mut socket, "pong").await;
    let response = client.delete(format!("{api}/api/projects/{project}")).send().await.unwrap();
    assert_eq!(response.status(), 204);
    let reason = loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), socket.next()).await.expect("closed within 5 s");
        match frame {
            Some(Ok(Message::Close(close))) => break close.map(|c| c.reason.to_string()),
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(reason.as_deref(), Some("the project was deleted"));
    let status = client.get(format!("{playback}/status")).send().await.unwrap().status();
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_refused_by_a_full_node_goes_to_a_node_with_room() {
    let database = audiolab_testkit::TestDatabase::postgres().await.expect("PostgreSQL must be running");
    let data_dirs = [(); 3].map(|()| tempfile::tempdir().unwrap());
    let shared = cluster_env(&database.url, "redis://127.0.0.1:6379", "full", INTERNAL_SECRET);
    let env = |i: usize| {
        let own = [
            ("AUDIOLAB_MAX_ENGINES", "1".to_owned()),
            ("AUDIOLAB_DATA_DIR", data_dirs[i].path().display().to_string()),
        ];
        [&shared[..], &own].concat()
    };
    let (_first, _) = start("node", &env(0));
    let (_api, api) = start("api", &env(1));
    let (client, _) = signed_up(&api).await;
    let mut projects = Vec::new();
    for name in ["Busy", "Waiting"] {
        let (_, project) = post(&client, format!("{api}/api/projects"), json!({"name": name})).await;
        let project = project["id"].as_str().unwrap().to_owned();
        let (_, track) =
            post(&client, format!("{api}/api/tracks"), json!({"project_id": project, "name": "Mic", "track_index": 0}))
                .await;
        projects.push((project, track["id"].as_str().unwrap().to_owned()));
    }
    // The only node's one engine records: it cannot be unloaded to make room.
    let (busy, busy_track) = &projects[0];
    let (status, _) =
        post(&client, format!("{api}/api/audio/tracks/{busy_track}/record/enable"), json!({"device_id": "mock_0"}))
            .await;
    assert_eq!(status, 200);
    let (status, started) =
        post(&client, format!("{api}/api/audio/tracks/{busy_track}/record/start"), json!({"start_time": 0.0})).await;
    assert_eq!(status, 200, "{started}");
    tokio::time::sleep(Duration::from_millis(2_500)).await; // the heartbeat reports the node full

    let (waiting, _) = &projects[1];
    let play = format!("{api}/api/audio/projects/{waiting}/playback/play");
    let response = client.post(&play).json(&json!({"position": 0.0})).send().await.unwrap();
    assert_eq!(response.status(), 503, "no node has room");
    assert!(response.headers().contains_key("retry-after"));

    // A second node comes up: the refused project moves there.
    let (_second, _) = start("node", &env(2));
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let (status, played) = post(&client, play.clone(), json!({"position": 0.0})).await;
    assert_eq!(status, 200, "{played}");
    assert_eq!(played["project_loaded"], true);
    let store = audiolab_store::Store::connect(&database.url).await.unwrap();
    let stale = Duration::from_secs(3);
    let busy_host = store.live_host_of(busy.parse::<uuid::Uuid>().unwrap().into(), stale).await.unwrap();
    let waiting_host = store.live_host_of(waiting.parse::<uuid::Uuid>().unwrap().into(), stale).await.unwrap();
    assert!(busy_host.is_some() && waiting_host.is_some());
    assert_ne!(busy_host, waiting_host, "each project on its own node");
    let journal: Value = client
        .get(format!("{api}/api/audio/recording/status/{}", started["session_id"].as_str().unwrap()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(journal["status"], "recording", "the busy project's take records on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_key_or_removing_a_member_closes_their_socket_through_the_api_proxy() {
    let database = audiolab_testkit::TestDatabase::postgres().await.expect("PostgreSQL must be running");
    let data_dirs = [(); 2].map(|()| tempfile::tempdir().unwrap());
    let shared = cluster_env(&database.url, "redis://127.0.0.1:6379", "revoke", INTERNAL_SECRET);
    let env = |i: usize| [&shared[..], &[("AUDIOLAB_DATA_DIR", data_dirs[i].path().display().to_string())]].concat();
    let (_node, _) = start("node", &env(0));
    let (_api, api) = start("api", &env(1));
    let (owner, _) = signed_up(&api).await;
    let (_, guest_token) = signed_up_as(&api, "guest").await;
    let (_, project) = post(&owner, format!("{api}/api/projects"), json!({"name": "Proxied"})).await;
    let project = project["id"].as_str().unwrap().to_owned();
    let (status, _) =
        post(&owner, format!("{api}/api/projects/{project}/members"), json!({"username": "guest", "role": "viewer"}))
            .await;
    assert_eq!(status, 201);
    let (_, key) = post(&owner, format!("{api}/api/auth/tokens"), json!({"name": "script"})).await;
    let open = |token: String| {
        let url = format!("{}/ws/audio/{project}?access_token={token}", api.replace("http", "ws"));
        async move {
            let (mut socket, _) = tokio_tungstenite::connect_async(url).await.expect("the socket opens");
            socket.send(Message::text(r#"{"type":"ping"}"#)).await.unwrap();
            next_of(&mut socket, "pong").await;
            socket
        }
    };
    let mut keyed = open(key["token"].as_str().unwrap().to_owned()).await;
    let mut guest = open(guest_token).await;

    let revoked = owner.delete(format!("{api}/api/auth/tokens/{}", key["id"].as_str().unwrap())).send().await.unwrap();
    assert_eq!(revoked.status(), 204);
    let frame = common::closed(&mut keyed).await;
    assert_eq!((u16::from(frame.code), frame.reason.contains("API key")), (1008, true), "{frame:?}");

    let (_, members) = {
        let response = owner.get(format!("{api}/api/projects/{project}/members")).send().await.unwrap();
        (response.status(), response.json::<Value>().await.unwrap())
    };
    let guest_id = members.as_array().unwrap().iter().find(|m| m["username"] == "guest").unwrap()["user_id"].clone();
    let removed = owner.delete(format!("{api}/api/projects/{project}/members/{}", guest_id.as_str().unwrap())).send();
    assert_eq!(removed.await.unwrap().status(), 204);
    let frame = common::closed(&mut guest).await;
    assert_eq!((u16::from(frame.code), frame.reason.contains("no longer a member")), (1008, true), "{frame:?}");
}

/// A ready 4 s clip holding 0.25 at the start of `track`, its audio in the bucket, the way a
/// finished import leaves it.
async fn line_clip(store: &audiolab_store::Store, bucket_dir: &std::path::Path, project: &str, track: &str) {
    let mut clip = audiolab_domain::clip::Clip::create(
        audiolab_domain::clip::NewClip {
            project_id: project.parse::<uuid::Uuid>().unwrap().into(),
            track_id: track.parse::<uuid::Uuid>().unwrap().into(),
            take_id: None,
            name: "Line".into(),
            start: audiolab_domain::Frames(0),
            length: audiolab_domain::Frames(192_000),
            source_sample_rate: 48_000,
            channels: 1,
        },
        audiolab_domain::now(),
    )
    .unwrap();
    let key = format!("projects/{project}/clips/{}.wav", clip.id);
    std::fs::create_dir_all(bucket_dir.join(&key).parent().unwrap()).unwrap();
    let format = audiolab_media::wav::SampleFormat::Float32;
    audiolab_media::wav::write(&bucket_dir.join(&key), 1, 48_000, format, &vec![0.25; 192_000]).unwrap();
    clip.audio_key = Some(key);
    clip.status = audiolab_domain::clip::ClipStatus::Ready;
    store.insert_clip(&clip).await.unwrap();
}

/// A Redis server of the test's own, on a free port, that the test can stop and start again.
/// §13 across a Redis restart (split mode, two nodes): a volume change made while Redis is
/// away is what the engine plays once it is back (a loopback take proves it), the first take
/// after the restart is finalised, and the first mixdown after it is accepted and renders.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_loses_no_change_no_take_and_no_mixdown() {
    let database = audiolab_testkit::TestDatabase::postgres().await.expect("PostgreSQL must be running");
    let objects = ObjectStore::start();
    let (storage, bucket_dir) = objects.env("r");
    let mut redis = OwnRedis::start();
    let data_dirs = [(); 4].map(|()| tempfile::tempdir().unwrap());
    let env = [storage, cluster_env(&database.url, &redis.url(), "restart", INTERNAL_SECRET)].concat();
    let with_dir = |i: usize| [&env[..], &[("AUDIOLAB_DATA_DIR", data_dirs[i].path().display().to_string())]].concat();
    let (_node_a, _) = start("node", &with_dir(0));
    let (_node_b, _) = start("node", &with_dir(1));
    let _worker = start_worker(&with_dir(2));
    let (_api, api) = start("api", &with_dir(3));
    let (client, _) = signed_up(&api).await;

    // A project whose line track holds 0.25 for 4 s, and a track recording the mix.
    let (_, project) = post(&client, format!("{api}/api/projects"), json!({"name": "Restart"})).await;
    let project = project["id"].as_str().unwrap().to_owned();
    let tracks = format!("{api}/api/tracks");
    let (_, line) =
        post(&client, tracks.clone(), json!({"project_id": project, "name": "Line", "track_index": 0})).await;
    let line = line["id"].as_str().unwrap().to_owned();
    let (_, mix) = post(&client, tracks, json!({"project_id": project, "name": "Mix", "track_index": 1})).await;
    let mix = mix["id"].as_str().unwrap().to_owned();
    let store = audiolab_store::Store::connect(&database.url).await.unwrap();
    line_clip(&store, &bucket_dir, &project, &line).await;
    let arm = json!({"device_id": "loopback", "enabled": true});
    assert_eq!(post(&client, format!("{api}/api/audio/tracks/{mix}/record/enable"), arm).await.0, 200);
    let playback = format!("{api}/api/audio/projects/{project}/playback");
    assert_eq!(post(&client, format!("{playback}/load"), Value::Null).await.0, 200);

    // Redis goes away; the musician turns the line down meanwhile.
    redis.stop();
    let volume = format!("{api}/api/tracks/{line}");
    let response = client.patch(&volume).json(&json!({"volume": 0.5})).send().await.unwrap();
    assert_eq!(response.status(), 200, "the change is taken while Redis is away");
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.restart();
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    // The first take after the restart records what the engine plays: the line at 0.5.
    let started = post(&client, format!("{api}/api/audio/tracks/{mix}/record/start"), json!({"start_time": 0.0})).await;
    assert_eq!(started.0, 200, "{}", started.1);
    let session = started.1["session_id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let (status, stopped) =
        post(&client, format!("{api}/api/audio/tracks/{mix}/record/stop/{session}"), Value::Null).await;
    assert_eq!(status, 200, "{stopped}");
    let finalize = stopped["finalize_job_id"].as_str().unwrap().to_owned();
    assert_eq!(finished_job(&client, &api, &finalize).await["status"], "succeeded", "the first take is finalised");
    let take = stopped["clip_id"].as_str().unwrap().to_owned();
    let audio = client.get(format!("{api}/api/clips/{take}/audio")).send().await.unwrap().bytes().await.unwrap();
    let wav = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(wav.path(), &audio).unwrap();
    let mut reader = audiolab_media::wav::WavReader::open(wav.path()).unwrap();
    let channels = usize::from(reader.info().channels);
    let clip: Value = client.get(format!("{api}/api/clips/{take}")).send().await.unwrap().json().await.unwrap();
    let frames = clip["length_frames"].as_u64().unwrap() as usize;
    assert!(frames > 24_000, "{clip}");
    let mut samples = vec![0.0f32; frames * channels];
    reader.read_frames(clip["offset_frames"].as_u64().unwrap(), &mut samples).unwrap();
    let heard = 0.25 * 0.5 * std::f32::consts::FRAC_1_SQRT_2;
    let middle = &samples[(frames / 4) * channels..(frames * 3 / 4) * channels];
    let wrong = middle.iter().position(|s| (s - heard).abs() > 1e-4);
    assert_eq!(wrong, None, "the engine plays the stored volume: {:?}", &middle[..8]);

    // The first mixdown after the restart is accepted and renders the stored volume too.
    let (status, submitted) =
        post(&client, format!("{api}/api/projects/{project}/mixdown"), json!({"format": "wav_f32"})).await;
    assert_eq!(status, 202, "{submitted}");
    let job = submitted["job"]["id"].as_str().unwrap().to_owned();
    assert_eq!(finished_job(&client, &api, &job).await["status"], "succeeded");
}

/// A node bound to every interface announces its own address on its route to Redis (on a
/// platform running several instances, each instance's private address rather than the
/// service's balanced name), and the API reaches it there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_on_every_interface_announces_its_own_address_on_its_route_to_redis() {
    let database = audiolab_testkit::TestDatabase::postgres().await.expect("PostgreSQL must be running");
    let data_dirs = [(); 2].map(|()| tempfile::tempdir().unwrap());
    let shared = cluster_env(&database.url, "redis://127.0.0.1:6379", "route", INTERNAL_SECRET);
    let env = |i: usize| [&shared[..], &[("AUDIOLAB_DATA_DIR", data_dirs[i].path().display().to_string())]].concat();
    let (_node, bound) = start("node", &[env(0), vec![("AUDIOLAB_HOST", "0.0.0.0".to_owned())]].concat());
    let port = bound.rsplit(':').next().unwrap().trim_end_matches('/').to_owned();
    assert!(bound.starts_with("http://0.0.0.0:"), "{bound}");
    let store = audiolab_store::Store::connect(&database.url).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let announced = loop {
        if let Some(node) = store.live_nodes(Duration::from_secs(10)).await.unwrap().pop() {
            break node.url;
        }
        assert!(std::time::Instant::now() < deadline, "the node never announced itself");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(announced, format!("http://127.0.0.1:{port}"), "the address on the route to Redis");

    let (_api, api) = start("api", &env(1));
    let (client, _) = signed_up(&api).await;
    let (_, project) = post(&client, format!("{api}/api/projects"), json!({"name": "Routed"})).await;
    let project = project["id"].as_str().unwrap();
    let (status, loaded) =
        post(&client, format!("{api}/api/audio/projects/{project}/playback/load"), Value::Null).await;
    assert_eq!(status, 200, "the API reached the node at the announced address: {loaded}");
}
