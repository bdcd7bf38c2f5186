//! Many client devices on one node (§10): N projects of 8 playing tracks, each with a client
//! attached as its device that plays the monitor stream in real time (480 frames every 10 ms),
//! reports it, and streams a mono f32 microphone.
//!
//! `cargo bench --bench client_devices [-- --clients 8,16,32,64,96 --seconds 5]`
//!
//! Starts `serve` in this process; the clients run in a second process (this binary again), as
//! remote clients would. For each N prints: late frames (a 10 ms tick whose 480 frames had not
//! arrived: the musician would hear a gap), the node's CPU per client, and its added monitor
//! latency — from the `played` report that made room for a MON frame to that frame's arrival —
//! p50 / p99.

use audiolab::{Application, Role};
use audiolab_config::Settings;
use audiolab_transport::wire::{self, Header, Kind, SampleFormat};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const RATE: u64 = 48_000;
const TICK_FRAMES: u64 = 480;
const LOOKAHEAD: u64 = 4_800;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str, default: &str| {
        args.iter().position(|a| a == flag).map_or(default.to_owned(), |i| args[i + 1].clone())
    };
    let seconds: f64 = value("--seconds", "5").parse().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    if let Some(urls) = args.iter().position(|a| a == "--devices").map(|i| args[i + 1].clone()) {
        runtime.block_on(devices(urls.split(',').map(str::to_owned).collect(), seconds));
    } else {
        let counts: Vec<usize> = value("--clients", "8,16,32,64,96").split(',').map(|n| n.parse().unwrap()).collect();
        runtime.block_on(run(counts, seconds));
    }
}

fn cpu_seconds() -> f64 {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).unwrap();
    let seconds = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    seconds(usage.user_time()) + seconds(usage.system_time())
}

async fn run(counts: Vec<usize>, seconds: f64) {
    let dir = tempfile::tempdir().unwrap();
    let settings =
        Settings { port: 0, data_dir: dir.path().to_path_buf(), max_engines: Some(1_000), ..Settings::default() };
    let app = Application::start(settings, Role::Serve).await.unwrap();
    let base = format!("http://{}", app.address());
    let http = reqwest::Client::new();
    let store = audiolab_store::Store::connect(&format!("sqlite://{}", dir.path().join("audiolab.db").display()))
        .await
        .unwrap();
    // One 10-second file every clip plays.
    let key = "shared/pad.wav".to_owned();
    let path = dir.path().join("audio").join(&key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let pad: Vec<f32> = (0..RATE * 10).map(|n| ((n as f32) * 0.01).sin() * 0.1).collect();
    audiolab_media::wav::write(&path, 1, RATE as u32, audiolab_media::wav::SampleFormat::Float32, &pad).unwrap();

    println!("clients  late ticks  node CPU/client  monitor latency p50 / p99 / max");
    for &clients in &counts {
        let mut urls = Vec::new();
        for n in 0..clients {
            let post = |path: &str, body: Value| {
                let request = http.post(format!("{base}{path}")).json(&body);
                async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
            };
            let project = post("/api/projects", json!({"name": format!("Band {clients}-{n}")})).await;
            let project = project["id"].as_str().unwrap().to_owned();
            for index in 0..8 {
                let body = json!({"project_id": project, "name": format!("T{index}"), "track_index": index});
                let track = post("/api/tracks", body).await;
                let mut clip = audiolab_domain::clip::Clip::create(
                    audiolab_domain::clip::NewClip {
                        project_id: project.parse::<uuid::Uuid>().unwrap().into(),
                        track_id: track["id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap().into(),
                        take_id: None,
                        name: "Pad".into(),
                        start: audiolab_domain::Frames(0),
                        length: audiolab_domain::Frames(RATE as i64 * 10),
                        source_sample_rate: RATE as u32,
                        channels: 1,
                    },
                    audiolab_domain::now(),
                )
                .unwrap();
                clip.audio_key = Some(key.clone());
                clip.status = audiolab_domain::clip::ClipStatus::Ready;
                store.insert_clip(&clip).await.unwrap();
            }
            let region = post(&format!("/api/projects/{project}/loops"), json!({"start": 0.0, "end": 9.0})).await;
            let enable = json!({"loop_region_id": region["id"]});
            post(&format!("/api/audio/projects/{project}/playback/loop/enable"), enable).await;
            urls.push(format!("{}/ws/audio/{project}", base.replace("http://", "ws://")));
        }
        let cpu = cpu_seconds();
        let wall = Instant::now();
        // The clients at the lowest priority: on a real deployment they are other machines.
        let output = tokio::process::Command::new("nice")
            .args(["-n", "19"])
            .arg(std::env::current_exe().unwrap())
            .args(["--devices", &urls.join(","), "--seconds", &seconds.to_string()])
            .stdout(std::process::Stdio::piped())
            .output()
            .await
            .unwrap();
        let cpu = (cpu_seconds() - cpu) / wall.elapsed().as_secs_f64();
        let report: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
        println!(
            "{clients:>7}  {:>10}  {:>13.2} %  {:>6.1} / {:.1} / {:.1} ms",
            report["late"],
            cpu * 100.0 / clients as f64,
            report["p50_ms"].as_f64().unwrap_or(f64::NAN),
            report["p99_ms"].as_f64().unwrap_or(f64::NAN),
            report["max_ms"].as_f64().unwrap_or(f64::NAN),
        );
        for url in &urls {
            let project = url.rsplit('/').next().unwrap();
            let _ = http.post(format!("{base}/api/audio/projects/{project}/playback/stop")).send().await;
        }
    }
    app.stop().await;
}

/// What one client measured.
#[derive(Default)]
struct Measured {
    late: u64,
    latencies_ms: Vec<f64>,
}

async fn devices(urls: Vec<String>, seconds: f64) {
    let tasks: Vec<_> = urls.into_iter().map(|url| tokio::spawn(device(url, seconds))).collect();
    let mut all = Measured::default();
    for task in tasks {
        let measured = task.await.unwrap();
        all.late += measured.late;
        all.latencies_ms.extend(measured.latencies_ms);
    }
    all.latencies_ms.sort_by(f64::total_cmp);
    let pick = |q: f64| all.latencies_ms.get(((all.latencies_ms.len() as f64 - 1.0) * q) as usize).copied();
    let report = json!({"late": all.late, "p50_ms": pick(0.5), "p99_ms": pick(0.99), "max_ms": pick(1.0)});
    println!("{report}");
}

/// One musician in real time: attaches, plays from 0, and every 10 ms plays 480 frames of what
/// arrived, reports them and sends 480 microphone frames.
async fn device(url: String, seconds: f64) -> Measured {
    let (socket, _) = tokio_tungstenite::connect_async(&url).await.expect("connects");
    let (mut sink, mut stream) = socket.split();
    let attach = json!({"type": "attach", "data": {"role": "device", "name": "bench", "lookahead_frames": LOOKAHEAD}});
    sink.send(Message::text(attach.to_string())).await.unwrap();
    let play = json!({"type": "control", "id": 1, "command": "play", "data": {"position": 0.0}});
    sink.send(Message::text(play.to_string())).await.unwrap();
    let mut measured = Measured::default();
    let mut buffered: u64 = 0; // frames arrived and not yet played
    let mut received: u64 = 0; // frames arrived, in all
    let mut consumed: u64 = 0;
    let mut reports: VecDeque<(u64, Instant)> = VecDeque::from([(0, Instant::now())]);
    let mut clock: u64 = 0;
    let mut seq = 0u32;
    let mut started = false;
    let begun = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mic: Vec<f32> = (0..TICK_FRAMES).map(|n| (n as f32 * 0.05).sin() * 0.2).collect();
    let mut bytes = Vec::new();
    while begun.elapsed().as_secs_f64() < seconds {
        tokio::select! {
            incoming = stream.next() => {
                let Some(Ok(Message::Binary(frame))) = incoming else { continue };
                let frame = wire::decode(&frame).expect("a MON frame");
                let now = Instant::now();
                received += u64::from(frame.header.frames);
                buffered += u64::from(frame.header.frames);
                // The report that made room for this frame's last sample.
                let needed = received.saturating_sub(LOOKAHEAD);
                while reports.len() > 1 && reports[1].0 <= needed {
                    reports.pop_front();
                }
                if begun.elapsed() > Duration::from_secs(1) {
                    measured.latencies_ms.push((now - reports[0].1).as_secs_f64() * 1e3);
                }
            }
            _ = tick.tick() => {
                if !started {
                    // Start playing once half the lookahead has arrived, as a real client would.
                    started = buffered >= LOOKAHEAD / 2;
                    continue;
                }
                let frames = buffered.min(TICK_FRAMES);
                if frames < TICK_FRAMES && begun.elapsed() > Duration::from_secs(1) {
                    measured.late += 1;
                }
                buffered -= frames;
                consumed += frames;
                let played = json!({"type": "played", "data": {"consumed": consumed}});
                if sink.send(Message::text(played.to_string())).await.is_err() {
                    break;
                }
                reports.push_back((consumed, Instant::now()));
                let header = Header {
                    kind: Kind::Mic,
                    format: SampleFormat::F32,
                    channels: 1,
                    frames: TICK_FRAMES as u16,
                    stream: 1,
                    seq,
                    frame: clock,
                };
                bytes.clear();
                wire::encode(&header, &mic, &mut bytes);
                if sink.send(Message::binary(bytes.clone())).await.is_err() {
                    break;
                }
                seq += 1;
                clock += TICK_FRAMES;
            }
        }
    }
    let _ = sink.send(Message::text(json!({"type": "detach"}).to_string())).await;
    measured
}
