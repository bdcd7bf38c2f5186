//! A client as the project's audio device (§10), played by a synthetic client faster than real
//! time: it attaches on the socket, receives the mix as `MON` frames labelled with timeline
//! frames, and paces the engine by reporting what it played.

mod common;

use audiolab_node::wire::{self, Header, Kind, SampleFormat};
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
    let started = std::time::Instant::now();
    while consumed < RATE * 2 {
        assert!(started.elapsed() < Duration::from_secs(20), "stuck after {consumed} frames");
        send(&mut socket, json!({"type": "played", "data": {"consumed": consumed}})).await;
        let more = drain_audio(&mut socket, Duration::from_millis(50)).await;
        consumed += more.iter().map(|f| usize::from(f.header.frames)).sum::<usize>();
        frames.extend(more);
    }
    assert!(started.elapsed() < Duration::from_millis(1_500), "2 s of audio took {:?}", started.elapsed());

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

/// The synthetic musician's round trip: its microphone hears what it played this many frames
/// earlier.
const LATENCY: u64 = 2_085;

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
    let project = app.project(json!({"name": "Overdub"})).await;
    let backing = app.track(&project, "Backing", 0).await;
    let samples: Vec<f32> = (0..RATE * 6).map(clip_sample).collect();
    app.audio_clip(&project, backing["id"].as_str().unwrap(), 0.0, 1, &samples).await;
    let vox = app.track(&project, "Vox", 1).await["id"].as_str().unwrap().to_owned();
    let (status, armed) = app
        .post(&format!("/api/audio/tracks/{vox}/record/enable"), json!({"device_id": "client:laptop", "enabled": true}))
        .await;
    assert_eq!(status, 200, "{armed}");
    let mut socket = common::joined(app, &project).await;
    let attach = json!({"type": "attach", "data": {"role": "device", "name": "laptop", "latency_frames": LATENCY}});
    send(&mut socket, attach).await;
    next_where(&mut socket, |v| v["type"] == "attached").await;
    (project, vox, socket)
}

/// Plays the musician for `timeline_frames` of timeline: plays every MON frame on its own clock
/// (starting at client frame 50,000), reports it, and sends as its microphone what it heard
/// `LATENCY` frames earlier (the left channel), in blocks of what it just played.
async fn play_along(socket: &mut Socket, until_timeline: u64) {
    let mut clock: u64 = 50_000;
    let mut consumed: u64 = 0;
    let mut heard: Vec<f32> = Vec::new(); // index: client frame − 50,000
    let mut mic_seq = 0u32;
    let started = std::time::Instant::now();
    let mut reached = 0u64;
    while reached < until_timeline {
        assert!(started.elapsed() < Duration::from_secs(30), "stuck at timeline frame {reached}");
        let Some(incoming) = next(socket, Duration::from_millis(200)).await else {
            // Nothing rendered: tell the node again how far we are (it renders as we play).
            send(socket, json!({"type": "played", "data": {"consumed": consumed}})).await;
            continue;
        };
        let Incoming::Audio(frame) = incoming else { continue };
        let frames = u64::from(frame.header.frames);
        let run = json!({"client": clock, "timeline": frame.header.frame, "frames": frames});
        heard.extend(frame.samples.chunks(2).map(|pair| pair[0]));
        consumed += frames;
        send(socket, json!({"type": "played", "data": {"consumed": consumed, "runs": [run]}})).await;
        // The microphone captured these same client frames: what was heard LATENCY earlier.
        let mic: Vec<f32> = (clock..clock + frames)
            .map(|c| c.checked_sub(50_000 + LATENCY).map_or(0.0, |i| heard[i as usize]))
            .collect();
        let header = Header {
            kind: Kind::Mic,
            format: SampleFormat::F32,
            channels: 1,
            frames: frames as u16,
            stream: 7,
            seq: mic_seq,
            frame: clock,
        };
        let mut bytes = Vec::new();
        wire::encode(&header, &mic, &mut bytes);
        socket.send(Message::binary(bytes)).await.unwrap();
        mic_seq += 1;
        clock += frames;
        reached = frame.header.frame + frames;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_take_from_the_client_device_lines_up_with_what_it_heard_to_the_sample() {
    let app = TestApp::sqlite().await;
    let (_, vox, mut socket) = overdub(&app).await;

    let started = common::control(&mut socket, "record_start", json!({"track_id": vox, "start_time": 1.0})).await;
    assert_eq!(started["success"], true, "{started}");
    let session = started["result"]["session_id"].as_str().unwrap().to_owned();

    // Two seconds of timeline past the record point, played faster than real time.
    play_along(&mut socket, (RATE * 3) as u64 + LATENCY + 4_800).await;
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
    play_along(&mut socket, (RATE as u64 * 3) / 2 + 12_000).await;
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
    let (_, vox, mut socket) = overdub(&app).await;

    // Roll from 0.5 s; keep only 1.25 s – 1.75 s.
    let request = json!({"track_id": vox, "start_time": 0.5, "punch_in": 1.25, "punch_out": 1.75});
    let started = common::control(&mut socket, "record_start", request).await;
    assert_eq!(started["success"], true, "{started}");
    let session = started["result"]["session_id"].as_str().unwrap().to_owned();
    play_along(&mut socket, (RATE * 2) as u64 + LATENCY + 4_800).await;
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
