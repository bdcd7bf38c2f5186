//! `position_update` cadence with many WebSocket clients on one project.
//!
//! `cargo bench --bench ws_fanout [-- --clients 1000 --seconds 5]`
//!
//! Starts `serve` in this process, plays a looping project, connects the clients over real
//! sockets and records when each `position_update` arrives. Prints the interval between
//! consecutive updates per client (p50 / p99 / max; the contract is 50 ms) and the delay from
//! the server's timestamp to arrival.

use audiolab::{Application, Role};
use audiolab_config::Settings;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str, default: &str| {
        args.iter().position(|a| a == flag).map_or(default.to_owned(), |i| args[i + 1].clone())
    };
    let clients: usize = value("--clients", "1000").parse().unwrap();
    let seconds: f64 = value("--seconds", "5").parse().unwrap();
    if let Some(url) = args.iter().position(|a| a == "--listen").map(|i| args[i + 1].clone()) {
        // One thread reads every socket in the order the kernel reports them, as cheaply as a
        // client process can, so its own scheduling adds as little as possible to the timings.
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        runtime.block_on(listen(url, clients, seconds));
    } else {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        runtime.block_on(run(clients, seconds));
    }
}

async fn run(clients: usize, seconds: f64) {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings { port: 0, data_dir: dir.path().to_path_buf(), ..Settings::default() };
    let app = Application::start(settings, Role::Serve).await.unwrap();
    let base = format!("http://{}", app.address());
    let http = reqwest::Client::new();
    let post = |path: String, body: Value| {
        let http = http.clone();
        let url = format!("{base}{path}");
        async move { http.post(url).json(&body).send().await.unwrap().json::<Value>().await.unwrap() }
    };

    let project = post("/api/projects".into(), json!({"name": "Fan-out"})).await["id"].as_str().unwrap().to_owned();
    let track = post("/api/tracks".into(), json!({"project_id": project, "name": "Pad", "track_index": 0})).await;
    let store = audiolab_store::Store::connect(&format!("sqlite://{}", dir.path().join("audiolab.db").display()))
        .await
        .unwrap();
    let mut clip = audiolab_domain::clip::Clip::create(
        audiolab_domain::clip::NewClip {
            project_id: project.parse::<uuid::Uuid>().unwrap().into(),
            track_id: track["id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap().into(),
            take_id: None,
            name: "Pad".into(),
            start: audiolab_domain::Frames(0),
            length: audiolab_domain::Frames(96_000),
            source_sample_rate: 48_000,
            channels: 1,
        },
        audiolab_domain::now(),
    )
    .unwrap();
    let key = format!("projects/{project}/pad.wav");
    let path = dir.path().join("audio").join(&key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    audiolab_media::wav::write(&path, 1, 48_000, audiolab_media::wav::SampleFormat::Float32, &vec![0.1; 96_000])
        .unwrap();
    clip.audio_key = Some(key);
    clip.status = audiolab_domain::clip::ClipStatus::Ready;
    store.insert_clip(&clip).await.unwrap();
    let region = post(format!("/api/projects/{project}/loops"), json!({"start": 0.0, "end": 2.0})).await;
    post(format!("/api/audio/projects/{project}/playback/loop/enable"), json!({"loop_region_id": region["id"]})).await;

    let ws_url = format!("{}/ws/audio/{project}", base.replace("http://", "ws://"));
    // The clients run in a second process, as remote clients would: their work does not
    // share this process's runtime with the server's fan-out.
    // At the lowest CPU priority: on a real deployment the clients' work is on other machines.
    let mut listener = tokio::process::Command::new("nice")
        .args(["-n", "19"])
        .arg(std::env::current_exe().unwrap())
        .args(["--listen", &ws_url, "--clients", &clients.to_string(), "--seconds", &seconds.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(listener.stdout.take().unwrap()));
    while let Some(line) = lines.next_line().await.unwrap() {
        if line == "ready" {
            post(format!("/api/audio/projects/{project}/playback/play"), json!({})).await;
        } else {
            println!("{line}");
        }
    }
    listener.wait().await.unwrap();
    app.stop().await;
}

/// The client side: connects, says hello, reports ready, then records `position_update`s.
///
/// After the handshake and the pong each socket is read raw, with the kernel stamping every
/// read with the time its data arrived (`SO_TIMESTAMPNS`): the figures are when updates reached
/// the client's host, not when this process — sharing two cores with the server — got round to
/// looking at them.
async fn listen(ws_url: String, clients: usize, seconds: f64) {
    let connect_started = Instant::now();
    let mut sockets = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (mut socket, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
        socket.send(Message::text(r#"{"type":"ping"}"#)).await.unwrap();
        let pong = socket.next().await.unwrap().unwrap();
        assert!(pong.to_text().unwrap().contains("pong"), "the first frame is the pong: {pong:?}");
        // From here the socket is read below the WebSocket layer, which is never polled again.
        let tokio_tungstenite::MaybeTlsStream::Plain(stream) = socket.get_ref() else { unreachable!() };
        enable_receive_timestamps(stream);
        sockets.push(socket);
    }
    println!("{clients} clients connected in {:.2} s", connect_started.elapsed().as_secs_f64());

    println!("ready");
    let window = Duration::from_secs_f64(seconds);
    let tasks: Vec<_> = sockets
        .into_iter()
        .map(|socket| {
            tokio::spawn(async move {
                let tokio_tungstenite::MaybeTlsStream::Plain(stream) = socket.get_ref() else { unreachable!() };
                let mut arrivals = Vec::new();
                let mut delays = Vec::new();
                let mut pending = Vec::new();
                let deadline = tokio::time::Instant::now() + window + Duration::from_millis(500);
                while let Ok(Ok(())) = tokio::time::timeout_at(deadline, stream.readable()).await {
                    let Ok((bytes, arrived)) = stream.try_io(tokio::io::Interest::READABLE, || receive(&stream)) else {
                        continue;
                    };
                    if bytes.is_empty() {
                        break;
                    }
                    pending.extend_from_slice(&bytes);
                    while let Some(text) = next_text_frame(&mut pending) {
                        if !text.contains("position_update") {
                            continue;
                        }
                        arrivals.push(arrived);
                        if let Some(sent) = server_time(&text) {
                            delays.push((arrived - sent) * 1000.0);
                        }
                    }
                }
                (arrivals, delays)
            })
        })
        .collect();
    // Skip the first half second of each client (playback starting, sockets warming up).
    let mut intervals = Vec::new();
    let mut delays = Vec::new();
    let mut counts = Vec::new();
    for task in tasks {
        let (arrivals, client_delays) = task.await.unwrap();
        counts.push(arrivals.len());
        let skip = arrivals.len().min(10);
        intervals.extend(arrivals[skip..].windows(2).map(|w| (w[1] - w[0]) * 1000.0));
        delays.extend(client_delays.into_iter().skip(skip));
    }
    intervals.sort_by(f64::total_cmp);
    delays.sort_by(f64::total_cmp);
    let pick = |v: &[f64], p: f64| v.get(((v.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(f64::NAN);
    counts.sort();
    println!(
        "updates per client over {seconds} s: min {} median {} max {}",
        counts[0],
        counts[counts.len() / 2],
        counts[counts.len() - 1]
    );
    println!(
        "position_update interval: p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms  ({} intervals; contract 50 ± 5 ms at p99)",
        pick(&intervals, 0.5),
        pick(&intervals, 0.99),
        pick(&intervals, 1.0),
        intervals.len()
    );
    println!("server_time → arrival: p50 {:.1} ms  p99 {:.1} ms", pick(&delays, 0.5), pick(&delays, 0.99));
}

/// The `server_time` field of a `position_update`, found without parsing the whole message.
fn server_time(text: &str) -> Option<f64> {
    let start = text.find("\"server_time\":")? + "\"server_time\":".len();
    let rest = &text[start..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

fn enable_receive_timestamps(stream: &tokio::net::TcpStream) {
    nix::sys::socket::setsockopt(stream, nix::sys::socket::sockopt::ReceiveTimestampns, &true).expect("SO_TIMESTAMPNS");
}

/// One non-blocking read: the bytes and the kernel's arrival time (seconds since the epoch).
fn receive(stream: &tokio::net::TcpStream) -> std::io::Result<(Vec<u8>, f64)> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    use std::os::fd::AsRawFd;
    let mut data = vec![0u8; 64 * 1024];
    let mut control = nix::cmsg_space!(nix::sys::time::TimeSpec);
    let mut iov = [std::io::IoSliceMut::new(&mut data)];
    let message = recvmsg::<()>(stream.as_raw_fd(), &mut iov, Some(&mut control), MsgFlags::MSG_DONTWAIT)
        .map_err(std::io::Error::from)?;
    let read = message.bytes;
    let mut arrived = chrono::Utc::now().timestamp_micros() as f64 / 1e6;
    for cmsg in message.cmsgs().map_err(std::io::Error::from)? {
        if let ControlMessageOwned::ScmTimestampns(stamp) = cmsg {
            arrived = stamp.tv_sec() as f64 + stamp.tv_nsec() as f64 / 1e9;
        }
    }
    data.truncate(read);
    Ok((data, arrived))
}

/// Takes the next complete server frame off `pending`; `Some` text for text frames, skipping
/// others; `None` when no whole frame is buffered. Server frames are never masked.
fn next_text_frame(pending: &mut Vec<u8>) -> Option<String> {
    loop {
        if pending.len() < 2 {
            return None;
        }
        let (length, header) = match pending[1] & 0x7f {
            126 if pending.len() >= 4 => (u16::from_be_bytes([pending[2], pending[3]]) as usize, 4),
            127 if pending.len() >= 10 => (u64::from_be_bytes(pending[2..10].try_into().unwrap()) as usize, 10),
            126 | 127 => return None,
            short => (short as usize, 2),
        };
        if pending.len() < header + length {
            return None;
        }
        let opcode = pending[0] & 0x0f;
        let payload: Vec<u8> = pending.drain(..header + length).skip(header).collect();
        if opcode == 1 {
            return Some(String::from_utf8_lossy(&payload).into_owned());
        }
    }
}
