//! HTTP hardening against `serve`, over raw TCP where the client misbehaves: slow headers are
//! cut off, oversized headers and bodies and wrong content types get the JSON error shape.

mod common;

use common::{TEST_PASSWORD, TestApp, assert_error};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes the connection (or 10 s pass). Returns what came and when.
async fn read_to_close(stream: &mut TcpStream) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (received, started.elapsed()),
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
            Err(_) => panic!("the connection was still open after 10 s"),
        }
    }
}

/// The JSON body of a raw HTTP/1.1 response.
fn json_body(response: &[u8]) -> Value {
    let text = String::from_utf8_lossy(response);
    let (_, body) = text.split_once("\r\n\r\n").expect("a header and a body");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_sends_half_a_header_or_trickles_it_is_cut_off() {
    let app = TestApp::sqlite_with(|settings| settings.header_timeout_secs = 1).await;
    let address = app.base.trim_start_matches("http://").to_owned();

    let mut half = TcpStream::connect(&address).await.unwrap();
    half.write_all(b"GET /health HTTP/1.1\r\nHost: audiolab\r\n").await.unwrap();
    let (received, after) = read_to_close(&mut half).await;
    assert!(received.is_empty(), "nothing is answered to half a header");
    assert!(after >= Duration::from_millis(900) && after < Duration::from_secs(5), "closed after {after:?}");

    let mut trickle = TcpStream::connect(&address).await.unwrap();
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        for byte in b"GET /health HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
            if trickle.write_all(&[*byte]).await.is_err() {
                return Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the trickled header was never cut off");
    });
    let cut = writer.await.unwrap() - started;
    assert!(cut < Duration::from_secs(4), "a header trickled a byte every 50 ms was cut off after {cut:?}");

    // A prompt client on a fresh connection is served as usual.
    let (status, health) = app.get("/health").await;
    assert_eq!(status, 200, "{health}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_header_gets_431_in_the_error_shape() {
    let app = TestApp::sqlite().await;
    let address = app.base.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&address).await.unwrap();
    let huge = "a".repeat(70_000);
    let request = format!("GET /health HTTP/1.1\r\nHost: audiolab\r\nX-Huge: {huge}\r\n\r\n");
    // The server may stop reading once it has answered; what matters is the answer.
    let _ = stream.write_all(request.as_bytes()).await;
    let (response, _) = read_to_close(&mut stream).await;
    assert!(
        response.starts_with(b"HTTP/1.1 431 "),
        "{}",
        String::from_utf8_lossy(&response[..response.len().min(200)])
    );
    assert!(assert_error(&json_body(&response)).contains("header"));

    let mut stream = TcpStream::connect(&address).await.unwrap();
    let many: String = (0..120).map(|i| format!("X-H{i}: v\r\n")).collect();
    let _ = stream.write_all(format!("GET /health HTTP/1.1\r\nHost: a\r\n{many}\r\n").as_bytes()).await;
    let (response, _) = read_to_close(&mut stream).await;
    assert!(response.starts_with(b"HTTP/1.1 431 "), "{}", String::from_utf8_lossy(&response));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_and_wrong_content_types_get_the_error_shape() {
    let app = TestApp::sqlite_with(|settings| settings.max_request_bytes = 1_000).await;
    let big = json!({"name": "x".repeat(5_000)}).to_string();
    let declared =
        app.client.post(app.url("/api/projects")).header("content-type", "application/json").body(big.clone());
    let response = declared.send().await.unwrap();
    assert_eq!(response.status(), 413);
    assert!(assert_error(&response.json::<Value>().await.unwrap()).contains("1000 bytes"));

    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big.as_bytes().chunks(512).map(|c| Ok(c.to_vec())).collect();
    let response = app
        .client
        .post(app.url("/api/projects"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_error(&response.json::<Value>().await.unwrap());

    let response = app
        .client
        .post(app.url("/api/projects"))
        .header("content-type", "text/plain")
        .body(r#"{"name": "x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    assert!(assert_error(&response.json::<Value>().await.unwrap()).contains("content type"));

    // A method the resource does not have: 405 saying which it has.
    let response = app.client.put(app.url("/api/projects")).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers().get("allow").and_then(|v| v.to_str().ok()), Some("GET, POST"));
    assert_error(&response.json::<Value>().await.unwrap());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_with_control_characters_are_refused_and_nothing_changes() {
    let app = TestApp::sqlite().await;
    let (status, body) = app.post("/api/projects", json!({"name": "\u{0}"})).await;
    assert_eq!(status, 422, "{body}");
    assert!(assert_error(&body).contains("name"));
    let project = app.project(json!({"name": "Clean", "description": "verse\n\tchorus"})).await;
    let track = app.track(&project, "Drums", 0).await;
    let track_id = track["id"].as_str().unwrap();
    let (status, body) = app.patch(&format!("/api/tracks/{track_id}"), json!({"name": "Dr\u{1b}[31mums"})).await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = app.patch(&format!("/api/projects/{project}"), json!({"description": "bell\u{7}"})).await;
    assert_eq!(status, 422, "{body}");
    let (_, track) = app.get(&format!("/api/tracks/{track_id}")).await;
    assert_eq!(track["name"], "Drums");
    let (_, kept) = app.get(&format!("/api/projects/{project}")).await;
    assert_eq!(kept["description"], "verse\n\tchorus");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_are_paged_loops_by_limit_and_projects_by_cursor() {
    let app = TestApp::sqlite().await;
    let project = app.project(json!({"name": "Loops"})).await;
    for start in [0.0, 2.0, 4.0] {
        let (status, body) =
            app.post(&format!("/api/projects/{project}/loops"), json!({"start": start, "end": start + 1.0})).await;
        assert_eq!(status, 201, "{body}");
    }
    let (_, first) = app.get(&format!("/api/projects/{project}/loops?limit=2")).await;
    let starts: Vec<f64> = first.as_array().unwrap().iter().map(|l| l["start"].as_f64().unwrap()).collect();
    assert_eq!(starts, [0.0, 2.0]);
    let (_, rest) = app.get(&format!("/api/projects/{project}/loops?limit=2&offset=2")).await;
    assert_eq!(rest.as_array().unwrap().len(), 1);
    assert_eq!(rest[0]["start"], 4.0);
    let (status, body) = app.get(&format!("/api/projects/{project}/loops?limit=0")).await;
    assert_eq!(status, 422, "{body}");

    app.project(json!({"name": "Second"})).await;
    app.project(json!({"name": "Third"})).await;
    let (_, page) = app.get("/api/projects?limit=2").await;
    assert_eq!(page["total"], 3);
    let names: Vec<&str> = page["items"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Loops", "Second"]);
    let after = page["next_after"].as_str().expect("a cursor on a full page").to_owned();
    let (_, last) = app.get(&format!("/api/projects?limit=2&after={after}")).await;
    assert_eq!(last["items"].as_array().unwrap().len(), 1);
    assert_eq!(last["items"][0]["name"], "Third");
    assert!(last.get("next_after").is_none(), "the last page has no cursor: {last}");
    app.stop().await;
}

// In its own test binary: the password-hashing pool is the process's, and the burst fills it
// (other tests' sign-ups would be told to retry).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_registrations_is_hashed_a_few_at_a_time_and_the_rest_told_to_retry() {
    let app = TestApp::sqlite_with(|s| {
        s.auth = audiolab_config::AuthMode::Enabled;
        s.registrations_per_hour = 1_000;
    })
    .await;
    let burst = (0..48).map(|n| {
        let url = app.url("/api/auth/register");
        let body = json!({"username": format!("burst{n}"), "password": TEST_PASSWORD});
        async move { reqwest::Client::new().post(url).json(&body).send().await.unwrap() }
    });
    let answers = futures_util::future::join_all(burst).await;
    let mut created = 0;
    for answer in answers {
        match answer.status().as_u16() {
            201 => created += 1,
            503 => assert!(answer.headers().contains_key("retry-after"), "503 says when to retry"),
            other => panic!("a registration answered {other}"),
        }
    }
    assert!(created >= 1, "the pool keeps hashing");
    let login = json!({"username": "tester", "password": TEST_PASSWORD});
    let answer = reqwest::Client::new().post(app.url("/api/auth/login")).json(&login).send().await.unwrap();
    assert_eq!(answer.status(), 200, "a login right after the burst");
    app.stop().await;
}
