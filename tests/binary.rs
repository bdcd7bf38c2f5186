//! The real `audiolab` binary, as a user runs it: start, answer, stop on a signal, refuse bad
//! configuration, and the one-shot subcommands.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_audiolab");

/// Starts the binary with `args` in `dir` and returns it with the URL it printed.
fn start(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (Child, String) {
    let mut child = Command::new(BINARY)
        .args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env_remove("PORT")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start audiolab");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url =
        line.split_whitespace().find(|w| w.starts_with("http://")).unwrap_or_else(|| panic!("no URL in {line:?}"));
    (child, url.trim().to_owned())
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "audiolab did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn serve_with_no_configuration_creates_its_data_dir_answers_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    // `--port 0` instead of the default 8080, so tests never collide with a running service.
    let (mut child, url) = start(dir.path(), &["--port", "0"], &[]);
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let health: serde_json::Value = reqwest::get(format!("{url}/health")).await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "healthy");
    assert!(dir.path().join("audiolab-data/audiolab.db").exists(), "embedded SQLite database in ./audiolab-data");

    let created = reqwest::Client::new()
        .post(format!("{url}/api/projects"))
        .json(&serde_json::json!({"name": "Survives restarts"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert!(terminate(&mut child).success(), "clean exit on SIGTERM");

    // Data saved before the stop is there after a restart.
    let (mut child, url) = start(dir.path(), &["--port", "0"], &[]);
    let list: serde_json::Value = reqwest::get(format!("{url}/api/projects")).await.unwrap().json().await.unwrap();
    assert_eq!(list["items"][0]["name"], "Survives restarts");
    assert!(terminate(&mut child).success());
}

#[test]
fn a_bad_setting_fails_at_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    for (variable, value, mention) in [
        ("AUDIOLAB_PORT", "eighty", "PORT"),
        ("DATABASE_URL", "mysql://db", "database_url"),
        ("AUDIOLAB_LOG_FORMAT", "xml", "LOG_FORMAT"),
    ] {
        let output = Command::new(BINARY).arg("serve").current_dir(dir.path()).env(variable, value).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{variable}={value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(mention), "{variable}={value}: {stderr}");
    }
}

#[test]
fn openapi_subcommand_writes_the_spec() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BINARY)
        .args(["openapi", "--output", "spec/openapi.json"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success());
    let written = std::fs::read_to_string(dir.path().join("spec/openapi.json")).unwrap();
    assert_eq!(written, audiolab_api::openapi_json());
}

#[tokio::test]
async fn migrate_and_api_run_against_postgresql() {
    let database = audiolab_testkit::TestDatabase::postgres().await.expect("PostgreSQL must be running");
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BINARY)
        .arg("migrate")
        .current_dir(dir.path())
        .env("DATABASE_URL", &database.url)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(!dir.path().join("audiolab-data").exists(), "no embedded data dir in PostgreSQL mode");

    let refused = Command::new(BINARY)
        .args(["api", "--port", "0"])
        .current_dir(dir.path())
        .env("DATABASE_URL", &database.url)
        .env_remove("AUDIOLAB_INTERNAL_SECRET")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && stderr.contains("internal_secret"), "{stderr}");

    let secret = ("AUDIOLAB_INTERNAL_SECRET", "binary-test-internal-secret");
    let (mut child, url) = start(dir.path(), &["api", "--port", "0"], &[("DATABASE_URL", &database.url), secret]);
    let info: serde_json::Value = reqwest::get(format!("{url}/api/info")).await.unwrap().json().await.unwrap();
    assert_eq!(info["database_backend"], "postgres");
    assert!(terminate(&mut child).success());
}

#[test]
fn worker_and_node_start_connect_and_stop_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (mut node, url) =
        start(dir.path(), &["node", "--port", "0"], &[("AUDIOLAB_INTERNAL_SECRET", "binary-test-internal-secret")]);
    let health = Command::new("curl").args(["-s", &format!("{url}/health")]).output().unwrap();
    assert!(String::from_utf8_lossy(&health.stdout).contains("\"role\":\"node\""));
    assert!(terminate(&mut node).success());

    let mut worker = Command::new(BINARY)
        .arg("worker")
        .current_dir(dir.path())
        .env("REDIS_URL", "redis://127.0.0.1:6379")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(worker.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("worker ready") {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "worker exited before becoming ready");
    }
    assert!(line.contains("Redis"), "{line}");
    assert!(terminate(&mut worker).success());

    // A Redis that is not there is a clear start-up error, not a hang.
    let output = Command::new(BINARY)
        .arg("worker")
        .current_dir(dir.path())
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("Redis"));
}

#[tokio::test]
async fn a_hostile_upload_logs_one_summary_line_not_one_per_packet() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("serve.log");
    let mut child = Command::new(BINARY)
        .args(["--port", "0"])
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env("RUST_LOG", "info,symphonia=trace,symphonia_core=trace,symphonia_bundle_mp3=trace")
        .env("AUDIOLAB_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(&log_path).unwrap()))
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.split_whitespace().find(|w| w.starts_with("http://")).unwrap().trim().to_owned();
    let http = reqwest::Client::new();
    let post = |path: String, body: serde_json::Value| http.post(format!("{url}{path}")).json(&body).send();
    let project: serde_json::Value =
        post("/api/projects".into(), serde_json::json!({"name": "Junk"})).await.unwrap().json().await.unwrap();
    let track: serde_json::Value =
        post("/api/tracks".into(), serde_json::json!({"project_id": project["id"], "name": "T", "track_index": 0}))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    // Noise with an MP3 frame sync every 417 bytes: the decoder meets a bad frame at each.
    let mut seed = 0x2545_f491_u32;
    let mut junk: Vec<u8> = (0..2_000_000)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed as u8
        })
        .collect();
    for i in (0..junk.len() - 1).step_by(417) {
        junk[i] = 0xFF;
        junk[i + 1] = 0xFB;
    }
    let accepted: serde_json::Value = http
        .post(format!("{url}/api/tracks/{}/clips?filename=junk.mp3", track["id"].as_str().unwrap()))
        .header("content-type", "application/octet-stream")
        .body(junk)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let job = accepted["job"]["id"].as_str().expect("an import job").to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state: serde_json::Value =
            http.get(format!("{url}/api/jobs/{job}")).send().await.unwrap().json().await.unwrap();
        if state["status"] == "succeeded" || state["status"] == "failed" {
            break;
        }
        assert!(Instant::now() < deadline, "the import never finished: {state}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(terminate(&mut child).success());
    let log = std::fs::read_to_string(&log_path).unwrap();
    let library_lines = log.lines().filter(|l| l.contains("symphonia") && !l.contains("one line for all")).count();
    assert_eq!(library_lines, 0, "the decoder's own warnings are not logged one by one:\n{log}");
    let summaries: Vec<&str> = log.lines().filter(|l| l.contains("one line for all of them")).collect();
    assert_eq!(summaries.len(), 1, "{log}");
    let summary: serde_json::Value = serde_json::from_str(summaries[0]).unwrap();
    let counted = summary["fields"]["warnings"].as_u64().unwrap_or(0);
    assert!(counted > 100, "the summary counts the decoder's warnings: {summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_and_tokens_never_reach_the_log_even_at_trace_level() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("serve.log");
    let mut child = Command::new(BINARY)
        .args(["serve", "--port", "0"])
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env_remove("PORT")
        .env("AUDIOLAB_AUTH", "enabled")
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.split_whitespace().find(|w| w.starts_with("http://")).unwrap().trim().to_owned();

    let client = reqwest::Client::new();
    let password = "Zebra-Piano-7731";
    let credentials = serde_json::json!({"username": "ada", "password": password});
    let session: serde_json::Value =
        client.post(format!("{url}/api/auth/register")).json(&credentials).send().await.unwrap().json().await.unwrap();
    let token = session["token"].as_str().unwrap().to_owned();
    let wrong = serde_json::json!({"username": "ada", "password": "Wrong-Guess-4412"});
    assert_eq!(client.post(format!("{url}/api/auth/login")).json(&wrong).send().await.unwrap().status(), 401);
    assert_eq!(client.post(format!("{url}/api/auth/login")).json(&credentials).send().await.unwrap().status(), 200);
    let me = client.get(format!("{url}/api/me")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(me.status(), 200);
    let socket = format!("{}/ws/audio/{}?access_token={token}", url.replace("http", "ws"), uuid::Uuid::new_v4());
    assert!(tokio_tungstenite::connect_async(socket).await.is_err(), "no such project");
    // A token wrongly put in a REST query string is refused, and neither it nor an API key
    // used the same way is written down; nor is a socket's token, nor a new password.
    let in_query = client.get(format!("{url}/api/me?access_token={token}&limit=1")).send().await.unwrap();
    assert_eq!(in_query.status(), 401);
    let key: serde_json::Value = client
        .post(format!("{url}/api/auth/tokens"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "script"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = key["token"].as_str().unwrap().to_owned();
    client.get(format!("{url}/api/projects?api_key={key}")).send().await.unwrap();
    let project: serde_json::Value = client
        .post(format!("{url}/api/projects"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"name": "Logged"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let socket =
        format!("{}/ws/audio/{}?access_token={key}", url.replace("http", "ws"), project["id"].as_str().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(socket).await.expect("a member's socket opens");
    futures_util::SinkExt::send(&mut socket, tokio_tungstenite::tungstenite::Message::text(r#"{"type":"ping"}"#))
        .await
        .unwrap();
    let new_password = "Violin-Quartz-5519";
    let change = serde_json::json!({"current": password, "new": new_password});
    let changed = client.post(format!("{url}/api/auth/password")).bearer_auth(&token).json(&change).send().await;
    assert_eq!(changed.unwrap().status(), 204);
    assert!(terminate(&mut child).success());

    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.lines().count() > 20, "trace logging is on: {log}");
    assert!(log.contains("account created"), "the registration is logged");
    assert!(log.contains("access_token=***"), "the query's secret is shown redacted");
    for secret in [password, "Wrong-Guess-4412", new_password, &token, &token[3..], &key, &key[3..]] {
        assert!(!log.contains(secret), "a secret reached the log");
    }
}
