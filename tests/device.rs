//! A client as the project's audio device (§10), played by a synthetic client faster than real
//! time: it attaches on the socket, receives the mix as `MON` frames labelled with timeline
//! frames, and paces the engine by reporting what it played.

mod common;

use audiolab_transport::wire::{self, Header, Kind, SampleFormat};
use common::musician::{CLOCK_START, CutProxy, LATENCY, Musician, attach_message};
use common::{Socket, TestApp, next_where, send};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const RATE: usize = 48_000;

/// The fixture clip's sample at frame `n`: a ramp that never repeats within the test.
fn clip_sample(n: usize) -> f32 {
    (n % 24_000) as f32 / 24_000.0 - 0.5
}

/// The next socket message: a decoded `MON` frame, or a JSON text frame.
enum Incoming {
    Audio(wire::AudioFrame),
    Json(#[allow(dead_code)] Value),
}

async fn next(socket: &mut Socket, wait: Duration) -> Option<Incoming> {
    loop {
        let frame = tokio::time::timeout(wait, socket.next()).await.ok()??.ok()?;
        match frame {
            Message::Binary(bytes) => return Some(Incoming::Audio(wire::decode(&bytes).expect("a valid MON frame"))),
            Message::Text(text) => return Some(Incoming::Json(serde_json::from_str(&text).unwrap())),
            _ => {}
        }
    }
}

/// Audio frames received until `wait` passes without one (text frames, such as the
/// `position_update`s that keep coming while the transport rolls, are skipped).
async fn drain_audio(socket: &mut Socket, wait: Duration) -> Vec<wire::AudioFrame> {
    let mut frames = Vec::new();
    let mut quiet_until = tokio::time::Instant::now() + wait;
    loop {
        let left = quiet_until.saturating_duration_since(tokio::time::Instant::now());
        match next(socket, left).await {
            Some(Incoming::Audio(frame)) => {
                frames.push(frame);
                quiet_until = tokio::time::Instant::now() + wait;
            }
            Some(Incoming::Json(_)) => {}
            None => return frames,
        }
    }
}

async fn listener_sends_audio(listener: &mut Socket) -> String {
    let header =
        Header { kind: Kind::Mic, format: SampleFormat::F32, channels: 1, frames: 4, stream: 1, seq: 0, frame: 0 };
    let mut bytes = Vec::new();
    wire::encode(&header, &[0.0; 4], &mut bytes);
    listener.send(Message::binary(bytes)).await.unwrap();
    next_where(listener, |v| v["type"] == "error").await["data"]["message"].as_str().unwrap().to_owned()
}

async fn attached_device(app: &TestApp, project: &str, lookahead: u32) -> Socket {
    let mut socket = common::joined(app, project).await;
    send(
        &mut socket,
        json!({"type": "attach", "data": {"role": "device", "name": "laptop", "lookahead_frames": lookahead}}),
    )
    .await;
    let attached = next_where(&mut socket, |v| v["type"] == "attached" || v["type"] == "error").await;
    assert_eq!(attached["type"], "attached", "{attached}");
    assert_eq!(attached["data"]["device_id"], "client:laptop");
    assert_eq!(attached["data"]["sample_rate"], RATE);
    socket
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_paces_the_engine_and_hears_the_mix_at_the_frames_it_is_told() {
    let app = TestApp::sqlite().await;
    let project = app.project(json!({"name": "Remote"})).await;
    let track = app.track(&project, "Backing", 0).await;
    let samples: Vec<f32> = (0..RATE * 4).map(clip_sample).collect();
    app.audio_clip(&project, track["id"].as_str().unwrap(), 0.0, 1, &samples).await;

    let lookahead = 4_800u32;
    let mut socket = attached_device(&app, &project, lookahead).await;
    // The project's devices list it while it is attached (not other projects').
    let (status, devices) = app.get(&format!("/api/audio/devices?project_id={project}")).await;
    assert_eq!(status, 200, "{devices}");
    let listed = devices.as_array().unwrap().iter().find(|d| d["device_id"] == "client:laptop").cloned();
    let listed = listed.unwrap_or_else(|| panic!("client:laptop is not listed: {devices}"));
    assert_eq!((listed["host_api"].as_str(), listed["channels"].as_u64()), (Some("client"), Some(1)));
    let (_, everywhere) = app.get("/api/audio/devices").await;
    assert!(everywhere.as_array().unwrap().iter().all(|d| d["host_api"] != "client"), "{everywhere}");
    let (_, status) = app.get(&format!("/api/audio/projects/{project}/playback/status")).await;
    assert_eq!(status["client_device"]["device_id"], "client:laptop", "{status}");
    assert_eq!(status["client_device"]["connected"], true);
    // A bandmate listens in: the monitor stream only.
    let mut listener = common::joined(&app, &project).await;
    send(&mut listener, json!({"type": "attach", "data": {"role": "listener"}})).await;
    let listening = next_where(&mut listener, |v| v["type"] == "attached" || v["type"] == "error").await;
    assert_eq!(listening["data"]["role"], "listener", "{listening}");
    assert_eq!(listening["data"]["device_id"], "client:laptop");
    let played = common::control(&mut socket, "play", json!({"position": 0.0})).await;
    assert_eq!(played["success"], true, "{played}");

    // Nothing reported played: the engine renders no further than the lookahead (plus the
    // block a command may add), where the node's clock would have rolled 0.4 s = 19,200 frames.
    let early = drain_audio(&mut socket, Duration::from_millis(400)).await;
    let sent: usize = early.iter().map(|f| usize::from(f.header.frames)).sum();
    assert!(sent <= lookahead as usize + 1_024, "{sent} frames sent ahead of the client");
    assert!(sent >= lookahead as usize - 512, "only {sent} frames sent");

    // The client plays as fast as it can: each report lets the engine render that much more.
    let mut frames = early;
    let mut consumed: usize = sent;
    let mut last_report = 0;
    let started = std::time::Instant::now();
    while consumed < RATE * 2 {
        assert!(started.elapsed() < Duration::from_secs(20), "stuck after {consumed} frames");
        last_report = consumed;
        send(&mut socket, json!({"type": "played", "data": {"consumed": consumed}})).await;
        let more = drain_audio(&mut socket, Duration::from_millis(50)).await;
        consumed += more.iter().map(|f| usize::from(f.header.frames)).sum::<usize>();
        frames.extend(more);
    }
    // The client's reports, not the node's clock, moved the engine: never more than the
    // lookahead (and a block) past what was reported.
    let rendered: usize = frames.iter().map(|f| usize::from(f.header.frames)).sum();
    assert!(
        rendered <= last_report + lookahead as usize + 1_024,
        "{rendered} frames rendered for {last_report} played"
    );

    // Every MON frame plays consecutive timeline frames, in sequence, and carries the mix:
    // the clip through a centred fader (−3 dB on each side).
    let centre = std::f32::consts::FRAC_1_SQRT_2;
    let mut expected_frame = 0u64;
    for (seq, frame) in frames.iter().enumerate() {
        let Header { kind, format, channels, stream, .. } = frame.header;
        assert_eq!((kind, format, channels, stream), (Kind::Mon, SampleFormat::F32, 2, 1));
        assert_eq!(frame.header.seq as usize, seq);
        assert_eq!(frame.header.frame, expected_frame, "frames follow on");
        for (i, pair) in frame.samples.chunks(2).enumerate() {
            let want = clip_sample(expected_frame as usize + i) * centre;
            assert!(
                (pair[0] - want).abs() < 1e-6 && (pair[1] - want).abs() < 1e-6,
                "frame {}",
                expected_frame as usize + i
            );
        }
        expected_frame += u64::from(frame.header.frames);
    }
    assert!(expected_frame >= (RATE * 2) as u64);

    // The listener heard the same stream, frame for frame.
    let heard = drain_audio(&mut listener, Duration::from_millis(300)).await;
    assert_eq!(heard.len(), frames.len());
    for (theirs, ours) in heard.iter().zip(&frames) {
        assert_eq!((theirs.header, &theirs.samples), (ours.header, &ours.samples));
    }
    // A listener's audio is refused: it has no microphone.
    let refused = listener_sends_audio(&mut listener).await;
    assert!(refused.contains("attach as the project's device"), "{refused}");

    // The transport's position is where the client's consumption let it go.
    let status = common::control(&mut socket, "status", json!({})).await;
    let position = status["result"]["position"].as_f64().unwrap();
    let rendered = expected_frame as f64 / RATE as f64;
    assert!((position - rendered).abs() < 0.05, "position {position} s, rendered {rendered} s");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_audio_frames_get_errors_and_the_connection_stays() {
    let app = TestApp::sqlite().await;
    let project = app.project(json!({"name": "Noise"})).await;
    let mut socket = common::joined(&app, &project).await;

    let mic = |seq: u32, samples: &[f32]| {
        let header = Header {
            kind: Kind::Mic,
            format: SampleFormat::F32,
            channels: 1,
            frames: samples.len() as u16,
            stream: 9,
            seq,
            frame: 1_000 + u64::from(seq) * samples.len() as u64,
        };
        let mut bytes = Vec::new();
        wire::encode(&header, samples, &mut bytes);
        bytes
    };
    let block = vec![0.25f32; 128];
    let mut errors = Vec::new();
    let expect_error = async |socket: &mut Socket, bytes: Vec<u8>| {
        socket.send(Message::binary(bytes)).await.unwrap();
        let error = next_where(socket, |v| v["type"] == "error").await;
        error["data"]["message"].as_str().unwrap().to_owned()
    };
    // Before attaching, audio is refused.
    errors.push(expect_error(&mut socket, mic(0, &block)).await);
    send(&mut socket, json!({"type": "attach", "data": {"role": "device", "name": "noisy"}})).await;
    next_where(&mut socket, |v| v["type"] == "attached").await;

    let mut wrong_magic = mic(0, &block);
    wrong_magic[0] = 0x42;
    errors.push(expect_error(&mut socket, wrong_magic).await);
    errors.push(expect_error(&mut socket, b"garbage".to_vec()).await);
    let mut short = mic(0, &block);
    short.truncate(100);
    errors.push(expect_error(&mut socket, short).await);
    // Frames in order are taken silently; a duplicate and a gap are each reported.
    socket.send(Message::binary(mic(0, &block))).await.unwrap();
    socket.send(Message::binary(mic(1, &block))).await.unwrap();
    errors.push(expect_error(&mut socket, mic(1, &block)).await);
    errors.push(expect_error(&mut socket, mic(5, &block)).await);
    for (error, mentions) in errors.iter().zip(["attach", "magic", "shorter", "announces", "again", "missing"]) {
        assert!(error.contains(mentions), "{error:?} should mention {mentions}");
    }

    // One device per project: a second connection cannot attach while this one is.
    let mut second = common::joined(&app, &project).await;
    send(&mut second, json!({"type": "attach", "data": {"role": "device", "name": "other"}})).await;
    let refused = next_where(&mut second, |v| v["type"] == "error" || v["type"] == "attached").await;
    assert!(refused["data"]["message"].as_str().unwrap_or_default().contains("client:noisy is attached"), "{refused}");
    drop(second);

    // A 1 MB frame closes the connection (it is over the 64 KiB message limit); until then the
    // connection answers as before.
    send(&mut socket, json!({"type": "ping"})).await;
    next_where(&mut socket, |v| v["type"] == "pong").await;
    let _ = socket.send(Message::binary(vec![0xA7; 1 << 20])).await;
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(closed, Some(1009));

    // The node goes on: a new connection attaches the device again.
    let mut again = attached_device(&app, &project, 4_800).await;
    send(&mut again, json!({"type": "detach"})).await;
    let detached = next_where(&mut again, |v| v["type"] == "detached").await;
    assert_eq!(detached["data"]["device_id"], "client:laptop");
    app.stop().await;
}

/// The take's audio and its clip row.
async fn take_audio(app: &TestApp, clip_id: &str) -> (Vec<f32>, Value) {
    let clip = app.ready_clip(clip_id).await;
    let store = app.store().await;
    let id: uuid::Uuid = clip_id.parse().unwrap();
    let stored = store.get_clip(id.into()).await.unwrap().unwrap();
    let mut reader =
        audiolab_media::wav::WavReader::open(&app.audio_path(stored.audio_key.as_deref().unwrap())).unwrap();
    assert_eq!(reader.info().channels, 1);
    let mut samples = vec![0.0; stored.length.get() as usize];
    let read = reader.read_frames(stored.source_offset.get() as u64, &mut samples).unwrap();
    assert_eq!(read as i64, stored.length.get());
    (samples, clip)
}

/// A project with a 6 s backing clip (the ramp) and a "Vox" track armed for the client device,
/// and a socket attached as that device with the musician's round trip. Returns (project,
/// track, socket).
async fn overdub(app: &TestApp) -> (String, String, Socket) {
    let (project, vox) = overdub_project(app).await;
    let socket = attached_musician(&app.ws_url(&project)).await;
    (project, vox, socket)
}

/// A socket at `url` attached as the musician's device.
async fn attached_musician(url: &str) -> Socket {
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.expect("WebSocket connects");
    send(&mut socket, attach_message()).await;
    let attached = next_where(&mut socket, |v| v["type"] == "attached" || v["type"] == "error").await;
    assert_eq!(attached["type"], "attached", "{attached}");
    socket
}

/// The project of [`overdub`], without the socket: (project, track).
async fn overdub_project(app: &TestApp) -> (String, String) {
    let project = app.project(json!({"name": "Overdub"})).await;
    let backing = app.track(&project, "Backing", 0).await;
    let samples: Vec<f32> = (0..RATE * 6).map(clip_sample).collect();
    app.audio_clip(&project, backing["id"].as_str().unwrap(), 0.0, 1, &samples).await;
    let vox = app.track(&project, "Vox", 1).await["id"].as_str().unwrap().to_owned();
    let (status, armed) = app
        .post(&format!("/api/audio/tracks/{vox}/record/enable"), json!({"device_id": "client:laptop", "enabled": true}))
        .await;
    assert_eq!(status, 200, "{armed}");
    (project, vox)
}

/// Plays the musician on `socket` until the timeline reaches `until_timeline`.
async fn play_along(app: &TestApp, project: &str, socket: Socket, until_timeline: i64) -> Socket {
    let mut musician = Musician::new(app.ws_url(project), socket);
    musician.play_until(until_timeline, 0).await;
    musician.socket.take().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_take_from_the_client_device_lines_up_with_what_it_heard_to_the_sample() {
    let app = TestApp::sqlite().await;
    let (project, vox, mut socket) = overdub(&app).await;

    let started = common::control(&mut socket, "record_start", json!({"track_id": vox, "start_time": 1.0})).await;
    assert_eq!(started["success"], true, "{started}");
    let session = started["result"]["session_id"].as_str().unwrap().to_owned();

    // Two seconds of timeline past the record point, played faster than real time.
    let mut socket = play_along(&app, &project, socket, (RATE * 3) as i64 + LATENCY as i64 + 4_800).await;
    let stopped = common::control(&mut socket, "record_stop", json!({"session_id": session})).await;
    assert_eq!(stopped["success"], true, "{stopped}");
    let clip_id = stopped["result"]["clip_id"].as_str().unwrap().to_owned();

    let (take, clip) = take_audio(&app, &clip_id).await;
    assert_eq!(clip["start_frame"], RATE, "the take starts at the record point: {clip}");
    assert!(take.len() >= RATE * 2, "{} frames", take.len());
    // Every sample is what the musician heard at that timeline frame (24-bit storage).
    let centre = std::f32::consts::FRAC_1_SQRT_2;
    let error = |lag: i64| {
        (0..RATE * 2)
            .map(|k| (take[k] - clip_sample((RATE as i64 + k as i64 + lag) as usize) * centre).abs())
            .fold(0.0f32, f32::max)
    };
    assert!(error(0) < 1e-5, "placement off: worst error {}", error(0));
    assert!(error(1) > 1e-5 && error(-1) > 1e-5, "a ramp tells one frame from the next");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_loop_passes_from_the_client_device_make_three_takes_each_to_the_sample() {
    let app = TestApp::sqlite().await;
    let (project, vox, mut socket) = overdub(&app).await;
    // Loop 1 s – 1.5 s: three passes (repeat_count 2), then play on.
    let (status, region) =
        app.post(&format!("/api/projects/{project}/loops"), json!({"start": 1.0, "end": 1.5, "repeat_count": 2})).await;
    assert_eq!(status, 201, "{region}");

    let looped = common::control(&mut socket, "loop_enable", json!({"loop_region_id": region["id"]})).await;
    assert_eq!(looped["success"], true, "{looped}");
    let started = common::control(&mut socket, "record_start", json!({"track_id": vox, "start_time": 1.0})).await;
    let session = started["result"]["session_id"].as_str().unwrap().to_owned();
    // Three passes of 24,000 frames, then past the loop's end by more than the round trip.
    let mut socket = play_along(&app, &project, socket, (RATE as i64 * 3) / 2 + 12_000).await;
    let stopped = common::control(&mut socket, "record_stop", json!({"session_id": session})).await;
    assert_eq!(stopped["success"], true, "{stopped}");
    let clips: Vec<String> =
        stopped["result"]["clip_ids"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    assert_eq!(clips.len(), 3, "{stopped}");
    let centre = std::f32::consts::FRAC_1_SQRT_2;
    for (pass, clip_id) in clips.iter().enumerate() {
        let (take, clip) = take_audio(&app, clip_id).await;
        assert_eq!(clip["start_frame"], RATE, "each pass starts at the loop start: {clip}");
        // The last pass plays on past the loop's end, as with every input.
        if pass < 2 {
            assert_eq!(take.len(), RATE / 2, "a pass is the loop's length");
        }
        let worst = (0..RATE / 2).map(|k| (take[k] - clip_sample(RATE + k) * centre).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "pass {clip_id}: worst error {worst}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_punch_from_the_client_device_keeps_exactly_the_punch_range() {
    let app = TestApp::sqlite().await;
    let (project, vox, mut socket) = overdub(&app).await;

    // Roll from 0.5 s; keep only 1.25 s – 1.75 s.
    let request = json!({"track_id": vox, "start_time": 0.5, "punch_in": 1.25, "punch_out": 1.75});
    let started = common::control(&mut socket, "record_start", request).await;
    assert_eq!(started["success"], true, "{started}");
    let session = started["result"]["session_id"].as_str().unwrap().to_owned();
    let mut socket = play_along(&app, &project, socket, (RATE * 2) as i64 + LATENCY as i64 + 4_800).await;
    let stopped = common::control(&mut socket, "record_stop", json!({"session_id": session})).await;
    let clip_id = stopped["result"]["clip_id"].as_str().unwrap().to_owned();
    let (take, clip) = take_audio(&app, &clip_id).await;
    let punch_in = RATE + RATE / 4;
    assert_eq!(clip["start_frame"], punch_in, "{clip}");
    assert_eq!(take.len(), RATE / 2, "exactly the punch range");
    let centre = std::f32::consts::FRAC_1_SQRT_2;
    let worst = (0..take.len()).map(|k| (take[k] - clip_sample(punch_in + k) * centre).abs()).fold(0.0f32, f32::max);
    assert!(worst < 1e-5, "worst error {worst}");
    app.stop().await;
}

/// Records a punch of 1 s – 3 s from the musician (rolling from 0.5 s), through `proxy` when
/// given, which cuts the network for 2 s at 1.5 s. Returns the take's samples.
async fn punched_take(app: &TestApp, proxy: Option<&CutProxy>) -> Vec<f32> {
    let (project, vox) = overdub_project(app).await;
    let url = proxy.map_or_else(|| app.ws_url(&project), |proxy| proxy.through(&app.ws_url(&project), &app.base));
    let socket = attached_musician(&url).await;
    let mut musician = Musician::new(url, socket);
    let request = json!({"track_id": vox, "start_time": 0.5, "punch_in": 1.0, "punch_out": 3.0});
    let started = common::control(musician.socket(), "record_start", request).await;
    assert_eq!(started["success"], true, "{started}");
    let session = started["result"]["session_id"].as_str().unwrap().to_owned();
    musician.play_until(RATE as i64 * 3 / 2, 0).await;
    if let Some(proxy) = proxy {
        proxy.cut();
        // While the device is away, time stands still: the engine renders no further than
        // the lookahead it had.
        let mut watcher = common::joined(app, &project).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = common::control(&mut watcher, "status", json!({})).await["result"]["position"].clone();
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let after = common::control(&mut watcher, "status", json!({})).await["result"]["position"].clone();
        assert_eq!(before, after, "the transport moved while its device was away");
        let position = before.as_f64().unwrap();
        assert!((1.5..1.7).contains(&position), "position {position} s");
        proxy.restore();
    }
    // Past the punch-out by more than the round trip; a drop is two seconds of silence heard.
    musician.play_until(RATE as i64 * 3 + LATENCY as i64 + 4_800, RATE as u64 * 2).await;
    if proxy.is_some() {
        assert!(musician.most_unacked > 100, "the drop left microphone frames to resend");
    } else {
        assert!(musician.most_unacked < 200, "acknowledgements let the client forget: {}", musician.most_unacked);
    }
    let stopped = common::control(musician.socket(), "record_stop", json!({"session_id": session})).await;
    assert_eq!(stopped["success"], true, "{stopped}");
    assert_eq!(stopped["result"]["missing_frames"], 0, "{stopped}");
    let clip_id = stopped["result"]["clip_id"].as_str().unwrap().to_owned();
    let (take, clip) = take_audio(app, &clip_id).await;
    assert_eq!(clip["start_frame"], RATE, "{clip}");
    assert_eq!(take.len(), RATE * 2, "exactly the punch range");
    take
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_take_cut_by_a_two_second_network_drop_is_bit_identical_after_the_reconnect() {
    let app = TestApp::sqlite().await;
    let uncut = punched_take(&app, None).await;
    let centre = std::f32::consts::FRAC_1_SQRT_2;
    let worst = (0..uncut.len()).map(|k| (uncut[k] - clip_sample(RATE + k) * centre).abs()).fold(0.0f32, f32::max);
    assert!(worst < 1e-5, "worst error {worst}");

    let proxy = CutProxy::start(&app.base).await;
    let cut = punched_take(&app, Some(&proxy)).await;
    let first_difference = uncut.iter().zip(&cut).position(|(a, b)| a.to_bits() != b.to_bits());
    assert_eq!(first_difference, None, "the takes differ from frame {first_difference:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_count_in_clicks_two_bars_before_the_record_point_and_the_take_starts_exactly_there() {
    let app = TestApp::sqlite().await;
    let (project, vox) = overdub_project(&app).await;
    let url = app.ws_url(&project);
    let socket = attached_musician(&url).await;
    let mut musician = Musician::new(url, socket);
    // 120 bpm in 4/4: two bars are 4 s, so the transport rolls from 1 s − 4 s = −3 s.
    let request = json!({"track_id": vox, "start_time": 1.0, "count_in_bars": 2});
    let started = common::control(musician.socket(), "record_start", request).await;
    assert_eq!(started["success"], true, "{started}");
    assert_eq!(started["result"]["start_time"], 1.0);
    let session = started["result"]["session_id"].as_str().unwrap().to_owned();
    musician.play_until(RATE as i64 * 3 + LATENCY as i64 + 4_800, 0).await;
    let stopped = musician.control("record_stop", json!({"session_id": session})).await;
    assert_eq!(stopped["success"], true, "{stopped}");

    // The musician heard the count-in from −3 s: a click starting on every beat (every
    // 24,000 frames) up to the record point, the downbeats louder, and silence between them
    // before the backing starts at 0.
    let first = musician.monitor.first().unwrap().0;
    assert_eq!(first, -3 * RATE as i64, "the transport rolled from the count-in's start");
    let heard_at = |frame: i64| -> f32 {
        let (start, samples) =
            musician.monitor.iter().find(|(s, m)| *s <= frame && frame < s + m.len() as i64).unwrap();
        samples[(frame - start) as usize]
    };
    let peak = |beat: i64| (1..200).map(|k| heard_at(beat * 24_000 + k).abs()).fold(0.0f32, f32::max);
    for beat in -6..0 {
        assert_eq!(heard_at(beat * 24_000), 0.0, "a click starts exactly on beat {beat}");
        assert!(peak(beat) > 0.05, "beat {beat} clicks: {}", peak(beat));
        assert_eq!(heard_at(beat * 24_000 + 12_000), 0.0, "silence between beats before 0");
    }
    assert!(peak(-8 / 2) > peak(-5) * 1.2, "the bar's first beat is accented");

    // The count-in ended with the take's start: played again from 0 with the metronome off,
    // the mix has no click.
    assert_eq!(musician.control("stop", json!({})).await["success"], true);
    assert_eq!(musician.control("play", json!({"position": 0.0})).await["success"], true);
    musician.monitor.clear();
    musician.reached = i64::MIN;
    musician.play_until(RATE as i64, 0).await;
    let centre = std::f32::consts::FRAC_1_SQRT_2;
    // Up to the record point only: from there the take sounds too, once it is saved (a race
    // with this replay that it may win).
    for (start, samples) in musician.monitor.iter().filter(|(start, _)| *start >= 0 && *start < RATE as i64) {
        for (k, sample) in samples.iter().enumerate() {
            let frame = *start as usize + k;
            if frame >= RATE {
                break;
            }
            let expected = clip_sample(frame) * centre;
            assert!(
                (sample - expected).abs() < 1e-6,
                "a click at frame {frame} after the count-in: {sample}, not {expected}"
            );
        }
    }

    // The take starts exactly at the record point, and holds what was heard there: no clicks
    // (the metronome is in what the musician hears, not in the take).
    let clip_id = stopped["result"]["clip_id"].as_str().unwrap().to_owned();
    let (take, clip) = take_audio(&app, &clip_id).await;
    assert_eq!(clip["start_frame"], RATE, "{clip}");
    let worst = (0..RATE * 2).map(|k| (take[k] - clip_sample(RATE + k) * centre).abs()).fold(0.0f32, f32::max);
    assert!(worst < 1e-5, "worst error {worst}");
    app.stop().await;
}

/// One take of [`ten_takes_in_a_row_from_one_client_device_are_each_exact_with_nothing_stray`].
struct Take {
    /// The record point (s); `None` records from where the rolling transport is.
    start: Option<f64>,
    punch: Option<(f64, f64)>,
    count_in_bars: u32,
    /// Loop 1 s – 1.5 s this many times (0: no loop).
    loop_passes: u32,
    /// How long the client's clock runs on in silence before it (frames).
    silence: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_takes_in_a_row_from_one_client_device_are_each_exact_with_nothing_stray() {
    let app = TestApp::sqlite().await;
    let (project, vox) = overdub_project(&app).await;
    let url = app.ws_url(&project);
    let socket = attached_musician(&url).await;
    let mut musician = Musician::new(url, socket);
    let (status, region) =
        app.post(&format!("/api/projects/{project}/loops"), json!({"start": 1.0, "end": 1.5, "repeat_count": 1})).await;
    assert_eq!(status, 201, "{region}");
    let take =
        |start, punch, count_in_bars, loop_passes, silence| Take { start, punch, count_in_bars, loop_passes, silence };
    let takes = [
        take(Some(1.0), None, 0, 0, 0),
        take(Some(1.0), None, 0, 0, 24_000),
        take(Some(2.0), None, 0, 0, 4_800),
        take(None, None, 0, 0, 480),
        take(Some(0.5), Some((1.25, 1.75)), 0, 0, 96_000),
        take(Some(1.0), None, 0, 2, 2_400),
        take(Some(3.0), None, 1, 0, 9_600),
        take(Some(1.0), None, 0, 0, 0),
        take(None, None, 0, 0, 48_000),
        take(Some(0.25), Some((0.5, 1.0)), 0, 0, 1_000),
    ];
    let mut recorded = 0;
    for (n, take) in takes.iter().enumerate() {
        musician.idle(take.silence).await;
        if take.loop_passes > 0 {
            let looped = musician.control("loop_enable", json!({"loop_region_id": region["id"]})).await;
            assert_eq!(looped["success"], true, "{looped}");
        }
        let mut request = json!({"track_id": vox});
        if take.count_in_bars > 0 {
            request["count_in_bars"] = json!(take.count_in_bars);
        }
        match take.start {
            Some(start) => request["start_time"] = json!(start),
            None => {
                // A rolling start: the transport plays from 0.75 s and the take starts where it is.
                assert_eq!(musician.control("play", json!({"position": 0.75})).await["success"], true);
                musician.play_until(RATE as i64, 0).await;
            }
        }
        if let Some((punch_in, punch_out)) = take.punch {
            (request["punch_in"], request["punch_out"]) = (json!(punch_in), json!(punch_out));
        }
        let started = musician.control("record_start", request).await;
        assert_eq!(started["success"], true, "take {n}: {started}");
        let session = started["result"]["session_id"].as_str().unwrap().to_owned();
        let record_point = (started["result"]["start_time"].as_f64().unwrap() * RATE as f64).round() as usize;
        let first = take.punch.map_or(record_point, |(punch_in, _)| (punch_in * RATE as f64) as usize);
        let length = match (take.punch, take.loop_passes) {
            (Some((punch_in, punch_out)), _) => ((punch_out - punch_in) * RATE as f64) as usize,
            (None, 0) => RATE,
            (None, _) => RATE / 2,
        };
        // Past the take's end (a loop's last pass) by more than the round trip; a loop's
        // passes wrap on the way.
        let end = (first + length) as i64;
        musician.play_until(end + LATENCY as i64 + 4_800, 0).await;
        let stopped = musician.control("record_stop", json!({"session_id": session})).await;
        assert_eq!(stopped["success"], true, "take {n}: {stopped}");
        let result = &stopped["result"];
        assert_eq!(result["missing_frames"], 0, "take {n}: nothing went missing: {result}");
        let clips: Vec<String> =
            result["clip_ids"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
        let passes = if take.loop_passes > 0 { 2 } else { 1 };
        assert_eq!(clips.len(), passes, "take {n}: one take per pass, no stray one: {result}");
        assert_eq!(result["start_frame"], first, "take {n}: {result}");
        for clip_id in &clips {
            let (samples, clip) = take_audio(&app, clip_id).await;
            assert_eq!(clip["start_frame"], first, "take {n}: {clip}");
            assert!(samples.len() >= length, "take {n}: {} frames", samples.len());
            if take.punch.is_some() {
                assert_eq!(samples.len(), length, "take {n}: exactly the punch range");
            }
            // The take holds what the musician heard there (the backing, and the takes before
            // it that sound on the track): the last time that frame played.
            let heard = |frame: usize| -> f32 {
                let frame = frame as i64;
                let (start, samples) = musician
                    .monitor
                    .iter()
                    .rev()
                    .find(|(s, m)| *s <= frame && frame < s + m.len() as i64)
                    .expect("the musician heard every frame of the take");
                samples[(frame - start) as usize]
            };
            let error = |k: usize| (samples[k] - heard(first + k)).abs();
            let wrong = (0..length).find(|&k| error(k) >= 1e-5);
            assert_eq!(wrong, None, "take {n} ({clip_id}) differs from what was heard at frame {wrong:?}");
        }
        recorded += passes;
        if take.loop_passes > 0 {
            assert_eq!(musician.control("loop_disable", json!({})).await["success"], true);
        }
        assert_eq!(musician.control("stop", json!({})).await["success"], true);
    }
    let (status, listed) = app.get(&format!("/api/tracks/{vox}/takes")).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed.as_array().map(Vec::len), Some(recorded), "no take the musician did not record");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_round_trip_stored_for_a_users_device_places_its_takes_when_attach_gives_none() {
    let app = TestApp::sqlite_with(|s| s.auth = audiolab_config::AuthMode::Enabled).await;
    let project = app.project(json!({"name": "Stored"})).await;
    let path = "/api/audio/devices/client:laptop/latency";
    let (status, missing) = app.get(path).await;
    assert_eq!(status, 404, "{missing}");
    let (status, refused) =
        app.put("/api/audio/devices/mock_0/latency", json!({"latency_ms": 5, "source": "manual"})).await;
    assert_eq!(status, 422, "{refused}");
    let (status, refused) = app.put(path, json!({"latency_ms": 1500, "source": "measured"})).await;
    assert_eq!(status, 422, "{refused}");
    // 2,085 frames at 48 kHz, as the loopback test measured it.
    let (status, stored) = app.put(path, json!({"latency_ms": 43.4375, "source": "measured"})).await;
    assert_eq!(status, 200, "{stored}");
    assert_eq!((stored["latency_ms"].as_f64(), stored["source"].as_str()), (Some(43.438), Some("measured")));
    let (_, read) = app.get(path).await;
    assert_eq!(read, stored);

    let mut socket = common::joined(&app, &project).await;
    send(&mut socket, json!({"type": "attach", "data": {"role": "device", "name": "laptop"}})).await;
    let attached = next_where(&mut socket, |v| v["type"] == "attached" || v["type"] == "error").await;
    assert_eq!(attached["data"]["latency_frames"], LATENCY, "{attached}");
    assert_eq!(attached["data"]["latency_source"], "measured");
    let (_, status) = app.get(&format!("/api/audio/projects/{project}/playback/status")).await;
    assert_eq!(status["client_device"]["latency_frames"], LATENCY, "{status}");

    // Another user's device of the same name has no round trip of theirs.
    let (_, other) = app.sign_up("bandmate").await;
    let response = other.get(app.url(path)).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 404, "a stored round trip is the user's own");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_project_while_its_client_device_records_ends_the_take_and_the_socket() {
    let app = TestApp::sqlite().await;
    let (project, vox, socket) = overdub(&app).await;
    let mut musician = Musician::new(app.ws_url(&project), socket);
    let started = common::control(musician.socket(), "record_start", json!({"track_id": vox, "start_time": 0.5})).await;
    assert_eq!(started["success"], true, "{started}");
    let session = started["result"]["session_id"].as_str().unwrap().to_owned();
    musician.play_until(RATE as i64 * 3 / 2, 0).await;
    let capture = app.audio_path(&format!("captures/{session}"));
    assert!(capture.exists(), "the take is being written");

    let (code, _) = app.delete(&format!("/api/projects/{project}")).await;
    assert_eq!(code, 204);
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(5), musician.socket().next()).await.expect("closed within 5 s") {
            Some(Ok(Message::Close(close))) => break close,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(close.map(|c| c.reason.to_string()).as_deref(), Some("the project was deleted"));
    assert!(!capture.exists(), "the deleted project's take is gone from disk");
    assert!(tokio_tungstenite::connect_async(app.ws_url(&project)).await.is_err(), "the project's socket is refused");

    // The node goes on: another project's device attaches and plays.
    let (other, _) = overdub_project(&app).await;
    let mut socket = attached_musician(&app.ws_url(&other)).await;
    let played = common::control(&mut socket, "play", json!({"position": 0.0})).await;
    assert_eq!(played["success"], true, "{played}");
    let socket = play_along(&app, &other, socket, RATE as i64 / 2).await;
    drop(socket);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_take_from_a_client_whose_clock_runs_100_ppm_fast_stays_placed_to_the_sample() {
    let app = TestApp::sqlite().await;
    const SECONDS: usize = 600;
    let project = app.project(json!({"name": "Long"})).await;
    let backing = app.track(&project, "Backing", 0).await;
    let samples: Vec<f32> = (0..RATE * (SECONDS + 4)).map(clip_sample).collect();
    app.audio_clip(&project, backing["id"].as_str().unwrap(), 0.0, 1, &samples).await;
    let vox = app.track(&project, "Vox", 1).await["id"].as_str().unwrap().to_owned();
    let arm = json!({"device_id": "client:laptop", "enabled": true});
    assert_eq!(app.post(&format!("/api/audio/tracks/{vox}/record/enable"), arm).await.0, 200);
    let url = app.ws_url(&project);
    let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let attach = json!({"type": "attach", "data": {"role": "device", "name": "laptop", "latency_frames": LATENCY, "lookahead_frames": 24_000}});
    send(&mut socket, attach).await;
    next_where(&mut socket, |v| v["type"] == "attached").await;
    let mut musician = Musician::new(url, socket);
    musician.fast_ppm = 100;
    let request = json!({"track_id": vox, "device_id": "client:laptop", "start_time": 1.0});
    let started = common::control(musician.socket(), "record_start", request).await;
    assert_eq!(started["success"], true, "{started}");
    let session = started["result"]["session_id"].as_str().unwrap().to_owned();
    musician.play_until((RATE * (SECONDS + 1)) as i64 + LATENCY as i64 + 4_800, 0).await;
    let stopped = common::control(musician.socket(), "record_stop", json!({"session_id": session})).await;
    assert_eq!(stopped["success"], true, "{stopped}");
    assert_eq!(stopped["result"]["missing_frames"], 0, "{stopped}");
    // The client's clock gained a frame every 10,000; the acknowledgements kept what it had
    // to hold small all along.
    let gained = musician.clock - CLOCK_START - musician.consumed;
    assert!(gained as usize >= SECONDS * RATE / 10_000, "the clock gained {gained} frames");
    println!("most microphone frames held: {}, sent: {}", musician.most_unacked, musician.mic_seq);
    assert!(musician.most_unacked < 1_000, "the client held {} microphone frames at most", musician.most_unacked);
    // One take (the gaps are not heard, so they split nothing), to the sample from the record
    // point to the end.
    let clips = stopped["result"]["clip_ids"].as_array().unwrap().len();
    assert_eq!(clips, 1, "{stopped}");
    let (take, clip) = take_audio(&app, stopped["result"]["clip_id"].as_str().unwrap()).await;
    assert_eq!(clip["start_frame"], RATE, "{clip}");
    assert!(take.len() >= RATE * SECONDS, "{} frames", take.len());
    let centre = std::f32::consts::FRAC_1_SQRT_2;
    let wrong = (0..RATE * SECONDS).find(|&k| (take[k] - clip_sample(RATE + k) * centre).abs() >= 1e-5);
    assert_eq!(wrong, None, "the first misplaced frame");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_transport_during_a_client_take_ends_it_with_what_was_heard() {
    let app = TestApp::sqlite().await;
    let (project, vox) = overdub_project(&app).await;
    let url = app.ws_url(&project);
    let socket = attached_musician(&url).await;
    let mut musician = Musician::new(url, socket);
    let started = musician.control("record_start", json!({"track_id": vox, "start_time": 1.0})).await;
    assert_eq!(started["success"], true, "{started}");
    let session = started["result"]["session_id"].as_str().unwrap().to_owned();
    musician.play_until(RATE as i64 * 2 + LATENCY as i64, 0).await;
    // ■ ends the take: its answer comes once the take is saved.
    let stopped = musician.control("stop", json!({})).await;
    assert_eq!((stopped["success"].as_bool(), stopped["result"]["status"].as_str()), (Some(true), Some("stopped")));
    let (_, journal) = app.get(&format!("/api/audio/recording/status/{session}")).await;
    assert_ne!(journal["status"], "recording", "{journal}");
    let clip_id = journal["clip_ids"][0].as_str().unwrap_or_else(|| panic!("a take was saved: {journal}")).to_owned();
    let (take, clip) = take_audio(&app, &clip_id).await;
    assert_eq!(clip["start_frame"], RATE, "{clip}");
    assert!(take.len() >= RATE, "the take holds the second heard: {} frames", take.len());
    let centre = std::f32::consts::FRAC_1_SQRT_2;
    let worst = (0..RATE).map(|k| (take[k] - clip_sample(RATE + k) * centre).abs()).fold(0.0f32, f32::max);
    assert!(worst < 1e-5, "worst error {worst}");
    let again = musician.control("record_stop", json!({"session_id": session})).await;
    assert_eq!(again["success"], false, "already ended: {again}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4_mib_frame_from_the_device_closes_its_socket_at_once_with_a_listener_attached() {
    let app = TestApp::sqlite().await;
    let (project, _) = overdub_project(&app).await;
    let mut device = attached_device(&app, &project, 4_800).await;
    let mut listener = common::joined(&app, &project).await;
    send(&mut listener, json!({"type": "attach", "data": {"role": "listener"}})).await;
    next_where(&mut listener, |v| v["type"] == "attached").await;
    assert_eq!(common::control(&mut device, "play", json!({})).await["success"], true);
    // The device plays a little (the engine renders ahead of it), then sends a frame 64 times
    // over the limit.
    let played = json!({"type": "played", "data": {"consumed": 0}});
    send(&mut device, played).await;
    let sent = std::time::Instant::now();
    let _ = device.send(Message::binary(vec![0xA7; 4 << 20])).await;
    let closed = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match device.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .expect("closed in time");
    let after = sent.elapsed();
    assert_eq!(closed, Some(1009));
    // Well inside a second on any machine; it took 20 s while a listener held the device's
    // monitor stream.
    assert!(after < Duration::from_secs(3), "closed {after:?} after the frame");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_is_told_when_the_device_changes_and_cannot_mistake_its_stream() {
    let app = TestApp::sqlite().await;
    let (project, _) = overdub_project(&app).await;
    let mut listener = common::joined(&app, &project).await;
    send(&mut listener, json!({"type": "attach", "data": {"role": "listener"}})).await;
    let attached = next_where(&mut listener, |v| v["type"] == "attached").await;
    assert_eq!(
        (attached["data"]["device_id"].clone(), attached["data"]["monitor_stream"].clone()),
        (Value::Null, json!(0))
    );

    // Each device in turn plays a second; the listener hears each on its own stream.
    let mut streams = Vec::new();
    for name in ["laptop", "studio"] {
        let mut device = common::joined(&app, &project).await;
        let attach = json!({"type": "attach", "data": {"role": "device", "name": name, "lookahead_frames": 4_800}});
        send(&mut device, attach).await;
        let answer = next_where(&mut device, |v| v["type"] == "attached" || v["type"] == "error").await;
        assert_eq!(answer["type"], "attached", "{answer}");
        let stream = answer["data"]["monitor_stream"].as_u64().unwrap();
        let changed = next_where(&mut listener, |v| v["type"] == "device_changed").await;
        assert_eq!(changed["data"], json!({"device_id": format!("client:{name}"), "monitor_stream": stream}));
        assert_eq!(common::control(&mut device, "play", json!({"position": 0.0})).await["success"], true);
        send(&mut device, json!({"type": "played", "data": {"consumed": 0}})).await;
        let heard = drain_audio(&mut listener, Duration::from_millis(500)).await;
        assert!(!heard.is_empty(), "the listener hears {name}");
        assert!(heard.iter().all(|f| u64::from(f.header.stream) == stream), "only {name}'s stream after the change");
        assert_eq!(heard[0].header.seq, 0, "{name}'s stream counts from its start");
        assert_eq!(common::control(&mut device, "stop", json!({})).await["success"], true);
        send(&mut device, json!({"type": "detach"})).await;
        next_where(&mut device, |v| v["type"] == "detached").await;
        let gone = next_where(&mut listener, |v| v["type"] == "device_changed").await;
        assert_eq!(gone["data"], json!({"device_id": null, "monitor_stream": null}));
        streams.push(stream);
    }
    assert_ne!(streams[0], streams[1], "each device its own stream");
    app.stop().await;
}
