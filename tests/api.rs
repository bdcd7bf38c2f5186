//! The §3 HTTP contract over real HTTP, against `serve` on SQLite and `api` on PostgreSQL.

mod common;

use common::{TestApp, assert_error};
use serde_json::{Value, json};

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let app = super::TestApp::sqlite().await;
                super::$name(&app).await;
                app.stop().await;
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let app = super::TestApp::postgres().await;
                super::$name(&app).await;
                app.stop().await;
            })*
        }
    };
}

on_both_backends!(
    health_reports_environment_and_a_live_database,
    info_names_the_backend_and_limits,
    devices_include_the_three_virtual_devices,
    projects_crud,
    bad_project_input_is_a_4xx_with_a_message,
    tracks_crud_and_index_rules,
    mixer_calls_are_persisted,
    loop_regions_are_validated,
    clips_can_be_read_edited_and_deleted,
    lists_are_paginated,
    oversized_bodies_are_refused,
);

async fn health_reports_environment_and_a_live_database(app: &TestApp) {
    let (status, health) = app.get("/health").await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "healthy");
    assert_eq!(health["services"]["database"], "healthy");
    // `serve` has its own engine; an API process with no live node has none to offer.
    let (kind, engine) = (&health["services"]["audio_engine_kind"], &health["services"]["audio_engine"]);
    assert!(kind == "mock" && engine == "healthy" || kind == "remote" && engine == "unhealthy", "{health}");
    assert!(health["services"]["database_latency_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(health["services"]["recording_system"], "mock", "no sound card on test machines");
    assert_eq!(health["environment"]["has_audio_hardware"], false);
    let kind = health["environment"]["type"].as_str().unwrap();
    assert!(["desktop", "cloud", "container", "ci_cd"].contains(&kind), "{kind}");
    let capability = health["environment"]["audio_capability"].as_str().unwrap();
    assert!(["mock", "processing_only"].contains(&capability), "{capability}");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
}

async fn info_names_the_backend_and_limits(app: &TestApp) {
    let (status, info) = app.get("/api/info").await;
    assert_eq!(status, 200);
    let backend = info["database_backend"].as_str().unwrap();
    assert!(backend == "sqlite" || backend == "postgres");
    assert_eq!(info["max_tracks"], 32);
    assert_eq!(info["sample_rates"], json!([44100, 48000, 88200, 96000, 192000]));
    // A client asks before it has a token: `serve` on a loopback address runs without accounts,
    // the cloud's api with them.
    let (_, me) = app.get("/api/me").await;
    assert_eq!(info["auth_enabled"], me["auth_enabled"], "{info}");
}

async fn devices_include_the_three_virtual_devices(app: &TestApp) {
    let (status, devices) = app.get("/api/audio/devices").await;
    assert_eq!(status, 200);
    let devices = devices.as_array().unwrap();
    let find =
        |id: &str| devices.iter().find(|d| d["device_id"] == id).unwrap_or_else(|| panic!("{id} missing")).clone();
    let mic = find("mock_0");
    assert_eq!(mic["name"], "AudioLab Virtual Microphone 1");
    assert_eq!((mic["channels"].as_u64(), mic["is_default"].as_bool()), (Some(1), Some(true)));
    assert_eq!(find("mock_1")["name"], "AudioLab Virtual Microphone 2");
    assert_eq!(find("mock_1")["channels"], 2);
    assert_eq!(find("mock_2")["name"], "AudioLab Virtual Line In");
    for device in devices {
        for field in [
            "device_id",
            "name",
            "channels",
            "sample_rate",
            "max_input_channels",
            "default_sample_rate",
            "is_default",
            "host_api",
        ] {
            assert!(!device[field].is_null(), "{field} missing in {device}");
        }
    }
}

async fn projects_crud(app: &TestApp) {
    let (status, created) =
        app.post("/api/projects", json!({"name": "Song", "tempo": 96, "time_signature": "6/8"})).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    assert_eq!((created["sample_rate"].as_u64(), created["bit_depth"].as_u64()), (Some(48_000), Some(24)));
    assert_eq!((created["tempo"].as_f64(), created["time_signature"].as_str()), (Some(96.0), Some("6/8")));

    let (status, fetched) = app.get(&format!("/api/projects/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(fetched, created);

    let (status, patched) = app.patch(&format!("/api/projects/{id}"), json!({"name": "Song v2", "tempo": 100.5})).await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        (patched["name"].as_str(), patched["tempo"].as_f64(), patched["time_signature"].as_str()),
        (Some("Song v2"), Some(100.5), Some("6/8"))
    );
    assert_eq!(app.get(&format!("/api/projects/{id}")).await.1["name"], "Song v2");

    let (status, body) = app.patch(&format!("/api/projects/{id}"), json!({"sample_rate": 44100})).await;
    assert_eq!(status, 422);
    assert!(assert_error(&body).contains("sample_rate"));

    let (_, list) = app.get("/api/projects").await;
    assert!(list["items"].as_array().unwrap().iter().any(|p| p["id"] == id));

    assert_eq!(app.delete(&format!("/api/projects/{id}")).await.0, 204);
    assert_eq!(app.get(&format!("/api/projects/{id}")).await.0, 404);
    assert_eq!(app.delete(&format!("/api/projects/{id}")).await.0, 404);
}

async fn bad_project_input_is_a_4xx_with_a_message(app: &TestApp) {
    let cases: [(Value, u16, &str); 6] = [
        (json!({}), 422, "schema"),
        (json!({"name": "   "}), 422, "name"),
        (json!({"name": "x", "sample_rate": 22050}), 422, "sample_rate"),
        (json!({"name": "x", "tempo": 5}), 422, "tempo"),
        (json!({"name": "x", "bit_depth": 8}), 422, "bit_depth"),
        (json!({"name": "x", "time_signature": "4/3"}), 422, "time_signature"),
    ];
    for (body, expected, mention) in cases {
        let (status, error) = app.post("/api/projects", body.clone()).await;
        assert_eq!(status, expected, "{body} → {error}");
        let detail = assert_error(&error);
        assert!(format!("{detail} {}", error["errors"]).contains(mention), "{body} → {error}");
    }
    let (status, error) = app.post_raw("/api/projects", "{\"name\": ").await;
    assert_eq!(status, 400);
    assert!(assert_error(&error).contains("JSON"));

    let (status, error) = app.get("/api/projects/not-a-uuid").await;
    assert_eq!(status, 422);
    assert_error(&error);
    let (status, error) = app.get("/api/projects/5f0c43f8-7d2c-4c55-9b7e-2f3f9f1b2c3d").await;
    assert_eq!(status, 404);
    assert_eq!(assert_error(&error), "project not found");
    let (status, error) = app.get("/api/no-such-route").await;
    assert_eq!(status, 404);
    assert_error(&error);
}

async fn tracks_crud_and_index_rules(app: &TestApp) {
    let project = app.project(json!({"name": "Band"})).await;
    let drums = app.track(&project, "Drums", 0).await;
    let bass = app.track(&project, "Bass", 1).await;
    app.track(&project, "Keys", 2).await;
    assert_eq!(
        (drums["volume"].as_f64(), drums["pan"].as_f64(), drums["muted"].as_bool()),
        (Some(1.0), Some(0.0), Some(false))
    );

    let (status, error) =
        app.post("/api/tracks", json!({"project_id": project, "name": "Dup", "track_index": 1})).await;
    assert_eq!(status, 409, "{error}");
    assert!(assert_error(&error).contains("track_index 1"));
    let (status, error) =
        app.post("/api/tracks", json!({"project_id": project, "name": "Far", "track_index": 32})).await;
    assert_eq!(status, 422, "{error}");
    assert!(error["errors"][0].as_str().unwrap().contains("track_index"));
    let (status, _) = app
        .post(
            "/api/tracks",
            json!({"project_id": "5f0c43f8-7d2c-4c55-9b7e-2f3f9f1b2c3d", "name": "Lost", "track_index": 0}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = app.post("/api/tracks", json!({"project_id": project, "track_index": 3})).await;
    assert_eq!(status, 422, "name is required");

    // Fill the project: 29 more tracks take the free slots, the 33rd is refused.
    for i in 3..32 {
        let (status, _) = app.post("/api/tracks", json!({"project_id": project, "name": format!("T{i}")})).await;
        assert_eq!(status, 201);
    }
    let (status, error) = app.post("/api/tracks", json!({"project_id": project, "name": "One too many"})).await;
    assert_eq!(status, 409);
    assert!(assert_error(&error).contains("32"));

    let (status, list) = app.get(&format!("/api/projects/{project}/tracks?limit=100")).await;
    assert_eq!(status, 200);
    assert_eq!(list["total"], 32);
    let indexes: Vec<u64> =
        list["items"].as_array().unwrap().iter().map(|t| t["track_index"].as_u64().unwrap()).collect();
    assert_eq!(indexes, (0..32).collect::<Vec<_>>());

    let bass_id = bass["id"].as_str().unwrap();
    let (status, patched) =
        app.patch(&format!("/api/tracks/{bass_id}"), json!({"name": "Fretless", "color": "#AABBCC"})).await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!((patched["name"].as_str(), patched["color"].as_str()), (Some("Fretless"), Some("#aabbcc")));
    let (status, _) = app.patch(&format!("/api/tracks/{bass_id}"), json!({"track_index": 0})).await;
    assert_eq!(status, 409, "slot 0 is taken by Drums");
    assert_eq!(app.get(&format!("/api/tracks/{bass_id}")).await.1["track_index"], 1);

    assert_eq!(app.delete(&format!("/api/tracks/{bass_id}")).await.0, 204);
    assert_eq!(app.get(&format!("/api/tracks/{bass_id}")).await.0, 404);
    // The freed slot can be used again.
    app.track(&project, "Bass again", 1).await;
}

async fn mixer_calls_are_persisted(app: &TestApp) {
    let project = app.project(json!({"name": "Mix"})).await;
    let track = app.track(&project, "Vocals", 0).await;
    let id = track["id"].as_str().unwrap();

    let (status, body) = app.post_empty(&format!("/api/audio/tracks/{id}/volume?volume=0.8")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"success": true, "track_id": id, "volume": 0.8}));
    let (_, body) = app.post_empty(&format!("/api/audio/tracks/{id}/pan?pan=-0.5")).await;
    assert_eq!(body, json!({"success": true, "track_id": id, "pan": -0.5}));
    let (_, body) = app.post_empty(&format!("/api/audio/tracks/{id}/mute?muted=true")).await;
    assert_eq!(body, json!({"success": true, "track_id": id, "muted": true}));
    let (_, body) = app.post_empty(&format!("/api/audio/tracks/{id}/solo?soloed=true")).await;
    assert_eq!(body, json!({"success": true, "track_id": id, "soloed": true}));

    let (_, stored) = app.get(&format!("/api/tracks/{id}")).await;
    assert_eq!((stored["volume"].as_f64(), stored["pan"].as_f64()), (Some(0.8), Some(-0.5)));
    assert_eq!((stored["muted"].as_bool(), stored["soloed"].as_bool()), (Some(true), Some(true)));

    for (path, expected) in [
        ("volume?volume=2.5", 422),
        ("volume?volume=-1", 422),
        ("pan?pan=1.01", 422),
        ("volume", 422),
        ("volume?volume=loud", 422),
        ("mute?muted=perhaps", 422),
    ] {
        let (status, error) = app.post_empty(&format!("/api/audio/tracks/{id}/{path}")).await;
        assert_eq!(status, expected, "{path} → {error}");
        assert_error(&error);
    }
    let (_, unchanged) = app.get(&format!("/api/tracks/{id}")).await;
    assert_eq!(unchanged["volume"].as_f64(), Some(0.8), "rejected calls change nothing");
    assert_eq!(app.post_empty("/api/audio/tracks/5f0c43f8-7d2c-4c55-9b7e-2f3f9f1b2c3d/volume?volume=1").await.0, 404);
    assert_eq!(app.post_empty("/api/audio/tracks/xyz/volume?volume=1").await.0, 422);
}

async fn loop_regions_are_validated(app: &TestApp) {
    let project = app.project(json!({"name": "Loops", "sample_rate": 44100})).await;
    let path = format!("/api/projects/{project}/loops");
    let (status, region) =
        app.post(&path, json!({"name": "Chorus", "start": 1.0, "end": 3.0, "repeat_count": 2})).await;
    assert_eq!(status, 201, "{region}");
    assert_eq!((region["start_frame"].as_i64(), region["end_frame"].as_i64()), (Some(44_100), Some(132_300)));
    assert_eq!((region["repeat_count"].as_u64(), region["enabled"].as_bool()), (Some(2), Some(false)));

    for (body, field) in [
        (json!({"start": 3.0, "end": 1.0}), "end"),
        (json!({"start": 1.0, "end": 1.05}), "end"),
        (json!({"start": -1.0, "end": 1.0}), "start"),
        (json!({"start": 0.0, "end": 1.0, "repeat_count": -1}), "repeat_count"),
    ] {
        let (status, error) = app.post(&path, body.clone()).await;
        assert_eq!(status, 422, "{body} → {error}");
        assert!(error["errors"][0].as_str().unwrap().starts_with(field), "{body} → {error}");
    }
    let id = region["id"].as_str().unwrap();
    let (status, patched) =
        app.patch(&format!("/api/loops/{id}"), json!({"repeat_count": null, "enabled": true})).await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!((patched["repeat_count"].clone(), patched["enabled"].clone()), (Value::Null, Value::Bool(true)));
    let (status, _) = app.patch(&format!("/api/loops/{id}"), json!({"start": 2.95})).await;
    assert_eq!(status, 422, "a patch that makes the loop too short is refused");
    let (_, list) = app.get(&path).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["start"].as_f64(), Some(1.0));
    assert_eq!(app.delete(&format!("/api/loops/{id}")).await.0, 204);
    assert_eq!(app.get(&format!("/api/loops/{id}")).await.0, 404);
    assert_eq!(
        app.post("/api/projects/5f0c43f8-7d2c-4c55-9b7e-2f3f9f1b2c3d/loops", json!({"start": 0, "end": 1})).await.0,
        404
    );
}

async fn clips_can_be_read_edited_and_deleted(app: &TestApp) {
    use audiolab_domain::clip::{Clip, NewClip};
    let project = app.project(json!({"name": "Clips"})).await;
    let track = app.track(&project, "Gtr", 0).await;
    let other = app.track(&project, "Gtr 2", 1).await;
    // Clips come from recordings and imports; arrange one directly in the database.
    let new = NewClip {
        project_id: project.parse::<uuid::Uuid>().unwrap().into(),
        track_id: track["id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap().into(),
        take_id: None,
        name: "Riff".into(),
        start: audiolab_domain::Frames(96_000),
        length: audiolab_domain::Frames(48_000),
        source_sample_rate: 44_100,
        channels: 2,
    };
    let clip = Clip::create(new, audiolab_domain::now()).unwrap();
    app.store().await.insert_clip(&clip).await.unwrap();

    let (status, fetched) = app.get(&format!("/api/clips/{}", clip.id)).await;
    assert_eq!(status, 200, "{fetched}");
    assert_eq!(
        (fetched["start"].as_f64(), fetched["start_frame"].as_i64(), fetched["length"].as_f64()),
        (Some(2.0), Some(96_000), Some(1.0))
    );
    assert_eq!(fetched["status"], "processing");
    let (_, list) = app.get(&format!("/api/tracks/{}/clips", track["id"].as_str().unwrap())).await;
    assert_eq!(list["total"], 1);

    let edit = json!({"start": 0.5, "gain_db": -3.0, "fade_in": 0.25, "track_id": other["id"]});
    let (status, edited) = app.patch(&format!("/api/clips/{}", clip.id), edit).await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(
        (edited["start_frame"].as_i64(), edited["gain_db"].as_f64(), edited["fade_in"].as_f64()),
        (Some(24_000), Some(-3.0), Some(0.25))
    );
    assert_eq!(edited["track_id"], other["id"]);
    for bad in
        [json!({"gain_db": 30}), json!({"length": 2.0}), json!({"fade_in": 0.6, "fade_out": 0.6}), json!({"start": -1})]
    {
        let (status, error) = app.patch(&format!("/api/clips/{}", clip.id), bad.clone()).await;
        assert_eq!(status, 422, "{bad} → {error}");
    }
    assert_eq!(app.delete(&format!("/api/clips/{}", clip.id)).await.0, 204);
    assert_eq!(app.get(&format!("/api/clips/{}", clip.id)).await.0, 404);
}

async fn lists_are_paginated(app: &TestApp) {
    for i in 0..3 {
        app.project(json!({"name": format!("Page {i}")})).await;
    }
    let (status, page) = app.get("/api/projects?limit=2&offset=1").await;
    assert_eq!(status, 200);
    assert_eq!((page["total"].as_i64(), page["limit"].as_i64(), page["offset"].as_i64()), (Some(3), Some(2), Some(1)));
    let names: Vec<&str> = page["items"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Page 1", "Page 2"]);
    for query in ["limit=0", "limit=501", "offset=-1", "limit=ten"] {
        let (status, error) = app.get(&format!("/api/projects?{query}")).await;
        assert_eq!(status, 422, "{query} → {error}");
    }
}

async fn oversized_bodies_are_refused(app: &TestApp) {
    // A declared length above the limit is refused before the body is sent.
    let headers =
        "POST /api/projects HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 2097152\r\n\r\n";
    let response = raw_exchange(app, headers, &[]).await;
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(response.contains("\"success\":false"), "{response}");
    // A chunked body is read up to the limit and no further.
    let headers = "POST /api/projects HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
    let chunk = format!("10000\r\n{}\r\n", "x".repeat(0x10000));
    let response = raw_exchange(app, headers, &vec![chunk.as_bytes(); 17]).await;
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    // The process keeps serving.
    assert_eq!(app.get("/health").await.0, 200);
}

/// Writes a raw HTTP request (ignoring write errors once the server has answered) and returns
/// what the server sent back.
async fn raw_exchange(app: &TestApp, headers: &str, body: &[&[u8]]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = app.base.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    socket.write_all(headers.as_bytes()).await.unwrap();
    for part in body {
        if socket.write_all(part).await.is_err() {
            break;
        }
    }
    let mut response = vec![0u8; 4096];
    let read =
        tokio::time::timeout(std::time::Duration::from_secs(5), socket.read(&mut response)).await.unwrap().unwrap_or(0);
    String::from_utf8_lossy(&response[..read]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cloud_deployment_without_hardware_reports_processing_only() {
    let app =
        TestApp::sqlite_with(|settings| settings.environment = Some(audiolab_config::EnvironmentKind::Cloud)).await;
    let (status, health) = app.get("/health").await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["environment"]["type"], "cloud");
    assert_eq!(health["environment"]["is_cloud_deployment"], true);
    assert_eq!(health["environment"]["audio_capability"], "processing_only");
    assert_eq!(
        (health["status"].as_str(), health["services"]["database"].as_str()),
        (Some("healthy"), Some("healthy"))
    );
    app.stop().await;
}
