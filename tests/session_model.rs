//! A randomised session (§14, §13, §5), checked against a simple model after every step: a
//! seeded generator drives a project through play, stop, pause, seek, loop on and off, takes
//! recorded from the loopback (what the engine plays, so every take must equal a float mixdown
//! of the project as it was, to the sample), swipes, take choices, splits, moves, deleted takes,
//! undo and redo. The model of the comp is a frame map — which take plays each frame — changed
//! by the rules of §14 in the plainest way; the comp the server reports must expand to it.
//!
//! The same session runs in `serve` and in split mode (node, worker and api processes), with
//! the loopback or a client device (the synthetic musician, round trip `LATENCY`) as the
//! input: a client device's takes must equal what it heard, which is the float mixdown too.
//!
//! Each step draws from a seed of its own, so a session is its list of step seeds (its plan):
//! a failing plan is shrunk by dropping steps while it still fails, and the shortest plan found
//! is printed with the steps it took. `AUDIOLAB_PLAN` (comma-separated step seeds) replays one;
//! `AUDIOLAB_SEED` and `AUDIOLAB_STEPS` choose sessions; `AUDIOLAB_SOAK_SECS` keeps drawing new
//! seeds for that long (`scripts/session-soak`), `AUDIOLAB_SHRINK_SECS` bounds the shrinking.

mod common;

use common::TestApp;
use common::musician::{Musician, attach_message};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const RATE: i64 = 48_000;
/// The model's timeline: what the steps touch (8 s).
const SPAN: i64 = 8 * RATE;
/// The comp map's resolution: frames per cell (the steps place everything on this grid).
const CELL: i64 = 480;

/// splitmix64: a small, seedable generator, so a seed replays the same session.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// A position on the grid, in frames, within `from..to`.
    fn cell_in(&mut self, from: i64, to: i64) -> i64 {
        let cells = ((to - from) / CELL).max(1) as u64;
        from + self.below(cells) as i64 * CELL
    }
}

/// What the model knows: which take plays each frame of the comp (by the take's index in
/// `names`, 0 for none), each take's audio range, and whether the transport loops.
#[derive(Clone, Default, PartialEq, Debug)]
struct Model {
    comp: Vec<u16>,
    /// Take id → (recorded order, timeline range of its audio).
    takes: HashMap<String, (usize, i64, i64)>,
    looping: bool,
}

impl Model {
    fn new() -> Self {
        Self { comp: vec![0; SPAN as usize], takes: HashMap::new(), looping: false }
    }

    /// `take` plays `[start, end)`.
    fn select(&mut self, take: &str, start: i64, end: i64) {
        let index = self.takes[take].0 as u16 + 1;
        self.comp[start.clamp(0, SPAN) as usize..end.clamp(0, SPAN) as usize].fill(index);
    }

    /// A deleted take: where it played, the newest other take with audio there, else nothing.
    fn delete(&mut self, take: &str) {
        self.vacate(take);
        self.takes.remove(take);
    }

    /// A take's clip moved: the newest other take plays where it was; it plays where it is.
    fn moved(&mut self, take: &str, start: i64, end: i64) {
        self.vacate(take);
        self.takes.get_mut(take).expect("a known take").1 = start;
        self.takes.get_mut(take).expect("a known take").2 = end;
        self.select(take, start, end);
    }

    /// Where `take` played, the newest other take with audio there plays, else nothing.
    fn vacate(&mut self, take: &str) {
        let index = self.takes[take].0 as u16 + 1;
        for frame in 0..SPAN {
            if self.comp[frame as usize] == index {
                self.comp[frame as usize] = self
                    .takes
                    .iter()
                    .filter(|(id, _)| id.as_str() != take)
                    .map(|(_, range)| range)
                    .filter(|(_, start, end)| *start <= frame && frame < *end)
                    .map(|(order, _, _)| *order as u16 + 1)
                    .max()
                    .unwrap_or(0);
            }
        }
    }

    /// The comp a server reports, in the model's terms.
    fn expand(&self, comp: &Value) -> Vec<u16> {
        let mut frames = vec![0; SPAN as usize];
        for segment in comp["segments"].as_array().unwrap() {
            let (start, end) = (segment["start_frame"].as_i64().unwrap(), segment["end_frame"].as_i64().unwrap());
            let take = segment["take_id"].as_str().unwrap();
            let index = self.takes.get(take).map_or(u16::MAX, |(order, _, _)| *order as u16 + 1);
            frames[start.clamp(0, SPAN) as usize..end.clamp(0, SPAN) as usize].fill(index);
        }
        frames
    }
}

/// Where the session runs, and what records.
#[derive(Clone, Copy, Debug)]
struct Setup {
    split: bool,
    input: Input,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Input {
    /// The engine's own output (the `loopback` device), stereo.
    Loopback,
    /// The synthetic musician's microphone (`client:laptop`), mono.
    Client,
}

/// What a run did so far, kept outside the run so that a panic in it still tells.
#[derive(Default)]
struct Trace {
    /// Steps begun.
    steps: usize,
    lines: Vec<String>,
}

type Shared = Arc<Mutex<Trace>>;

struct Session<'a> {
    app: &'a TestApp,
    musician: Option<Musician>,
    project: String,
    track: String,
    region: String,
    model: Model,
    /// Model states before and after each of our changes, for undo and redo.
    undo: Vec<Model>,
    redo: Vec<Model>,
    recorded: usize,
    trace: Shared,
    checks: usize,
}

/// A step's outcome: Err says what broke.
type Outcome = Result<(), String>;

impl Session<'_> {
    fn log(&self, line: String) {
        self.trace.lock().unwrap().lines.push(line);
    }

    /// Every answer is a success or a 4xx: never a 5xx.
    fn ok(&self, what: &str, status: u16, body: &Value) -> Outcome {
        if status >= 500 {
            return Err(format!("{what}: {status} {body}"));
        }
        Ok(())
    }

    fn changed(&mut self, before: Model) {
        self.undo.push(before);
        self.redo.clear();
    }

    /// Lets the rolling transport play for `millis`: in real time on the loopback, as fast as
    /// the musician plays on a client device (which paces the engine).
    async fn roll(&mut self, millis: u64) {
        match &mut self.musician {
            Some(musician) => musician.play_for(millis * RATE as u64 / 1_000).await,
            None => tokio::time::sleep(Duration::from_millis(millis)).await,
        }
    }

    /// The comp and the takes the server has, against the model.
    async fn check(&mut self) -> Outcome {
        let (status, comp) = self.app.get(&format!("/api/tracks/{}/comp", self.track)).await;
        self.ok("comp", status, &comp)?;
        let reported = self.model.expand(&comp);
        if reported != self.model.comp {
            let differs = reported.iter().zip(&self.model.comp).position(|(a, b)| a != b);
            return Err(format!("the comp differs from the model from frame {differs:?}: {comp}"));
        }
        let (_, active) = self.app.get("/api/audio/recording/active").await;
        if active != json!([]) {
            return Err(format!("a session stuck recording: {active}"));
        }
        self.checks += 2;
        Ok(())
    }

    async fn step(&mut self, random: &mut Random) -> Outcome {
        let app = self.app;
        let project = self.project.clone();
        match random.below(100) {
            0..=9 => {
                let position = random.cell_in(0, 6 * RATE) as f64 / RATE as f64;
                self.log(format!("play from {position}"));
                let (status, body) = app
                    .post(&format!("/api/audio/projects/{project}/playback/play"), json!({"position": position}))
                    .await;
                self.ok("play", status, &body)?;
                self.roll(random.below(200)).await;
            }
            10..=14 => {
                self.log("stop".into());
                let (status, body) = app.post_empty(&format!("/api/audio/projects/{project}/playback/stop")).await;
                self.ok("stop", status, &body)?;
            }
            15..=17 => {
                self.log("pause".into());
                let (status, body) = app.post_empty(&format!("/api/audio/projects/{project}/playback/pause")).await;
                self.ok("pause", status, &body)?;
            }
            18..=21 => {
                let position = random.cell_in(0, 6 * RATE) as f64 / RATE as f64;
                self.log(format!("seek {position}"));
                let (status, body) = app
                    .post(&format!("/api/audio/projects/{project}/playback/seek"), json!({"position": position}))
                    .await;
                self.ok("seek", status, &body)?;
            }
            22..=25 => {
                // A loop toggle is a change of the project too (undoable).
                let before = self.model.clone();
                self.model.looping = !self.model.looping;
                self.log(format!("loop {}", if self.model.looping { "on" } else { "off" }));
                let path = if self.model.looping { "enable" } else { "disable" };
                let body = json!({"loop_region_id": self.region});
                let (status, answer) =
                    app.post(&format!("/api/audio/projects/{project}/playback/loop/{path}"), body).await;
                self.ok("loop", status, &answer)?;
                if status != 200 {
                    return Err(format!("loop {path}: {status} {answer}"));
                }
                self.changed(before);
            }
            26..=45 => self.record(random).await?,
            46..=49 => {
                // Move a take's clip (one not split): its audio lies elsewhere; the comp's
                // ranges stay where they are.
                let Some(take) = self.some_take(random) else { return Ok(()) };
                let (_, clips) = app.get(&format!("/api/tracks/{}/clips", self.track)).await;
                let parts: Vec<&Value> =
                    clips["items"].as_array().unwrap().iter().filter(|c| c["take_id"] == take.as_str()).collect();
                let [clip] = parts.as_slice() else { return Ok(()) };
                let length = clip["length_frames"].as_i64().unwrap();
                let start = random.cell_in(0, SPAN - length - CELL);
                self.log(format!("move {take} to {start}"));
                let body = json!({"start": start as f64 / RATE as f64});
                let (status, answer) = app.patch(&format!("/api/clips/{}", clip["id"].as_str().unwrap()), body).await;
                self.ok("move", status, &answer)?;
                if status == 200 {
                    let before = self.model.clone();
                    self.model.moved(&take, start, start + length);
                    // A move to where it was changes nothing, and is no change to undo.
                    if answer["revision"].is_i64() {
                        self.changed(before);
                    }
                }
            }
            50..=64 => {
                let Some(take) = self.some_take(random) else { return Ok(()) };
                let start = random.cell_in(0, 7 * RATE);
                let end = (start + CELL * (1 + random.below(100) as i64)).min(SPAN);
                self.log(format!("swipe {take} over {start}..{end}"));
                let body =
                    json!({"take_id": take, "start": start as f64 / RATE as f64, "end": end as f64 / RATE as f64});
                let (status, answer) = app.post(&format!("/api/tracks/{}/comp/select", self.track), body).await;
                self.ok("swipe", status, &answer)?;
                if status == 200 {
                    let before = self.model.clone();
                    self.model.select(&take, start, end);
                    if before != self.model {
                        self.changed(before);
                    }
                }
            }
            65..=71 => {
                let Some(take) = self.some_take(random) else { return Ok(()) };
                self.log(format!("activate {take}"));
                let (status, answer) = app.post_empty(&format!("/api/takes/{take}/activate")).await;
                self.ok("activate", status, &answer)?;
                let (_, start, end) = self.model.takes[&take];
                let before = self.model.clone();
                self.model.select(&take, start, end);
                if before != self.model {
                    self.changed(before);
                }
            }
            72..=77 => {
                let Some(take) = self.some_take(random) else { return Ok(()) };
                self.log(format!("delete take {take}"));
                let (status, answer) = app.delete(&format!("/api/takes/{take}")).await;
                self.ok("delete take", status, &answer)?;
                if status == 204 {
                    let before = self.model.clone();
                    self.model.delete(&take);
                    self.changed(before);
                }
            }
            78..=83 => {
                // Split a take's clip on the grid: nothing heard or comped changes.
                let Some(take) = self.some_take(random) else { return Ok(()) };
                let (_, start, end) = self.model.takes[&take];
                if end - start < 2 * CELL {
                    return Ok(());
                }
                let at = random.cell_in(start + CELL, end - CELL + 1);
                let (_, clips) = app.get(&format!("/api/tracks/{}/clips", self.track)).await;
                let clip = clips["items"].as_array().unwrap().iter().find(|c| {
                    c["take_id"] == take.as_str()
                        && c["start_frame"].as_i64().unwrap() < at
                        && at < c["start_frame"].as_i64().unwrap() + c["length_frames"].as_i64().unwrap()
                });
                let Some(clip) = clip else { return Ok(()) };
                self.log(format!("split {take} at {at}"));
                let body = json!({"at": at as f64 / RATE as f64});
                let (status, answer) =
                    app.post(&format!("/api/clips/{}/split", clip["id"].as_str().unwrap()), body).await;
                self.ok("split", status, &answer)?;
                if status == 200 {
                    let before = self.model.clone();
                    self.changed(before);
                }
            }
            84..=91 => {
                // Only our own changes: the set-up's are the server's to keep.
                if self.undo.is_empty() {
                    return Ok(());
                }
                self.log("undo".into());
                let (status, answer) = app.post_empty(&format!("/api/projects/{project}/undo")).await;
                self.ok("undo", status, &answer)?;
                match (status, self.undo.pop()) {
                    (200, Some(before)) => self.redo.push(std::mem::replace(&mut self.model, before)),
                    (status, _) => {
                        return Err(format!("undo answered {status} {answer}; the model had a change to undo"));
                    }
                }
            }
            _ => {
                if self.redo.is_empty() {
                    return Ok(());
                }
                self.log("redo".into());
                let (status, answer) = app.post_empty(&format!("/api/projects/{project}/redo")).await;
                self.ok("redo", status, &answer)?;
                match (status, self.redo.pop()) {
                    (200, Some(after)) => self.undo.push(std::mem::replace(&mut self.model, after)),
                    (status, _) => {
                        return Err(format!("redo answered {status} {answer}; the model had an undo to redo"));
                    }
                }
            }
        }
        Ok(())
    }

    /// A take of the model, if there is one.
    fn some_take(&self, random: &mut Random) -> Option<String> {
        let mut takes: Vec<&String> = self.model.takes.keys().collect();
        takes.sort();
        (!takes.is_empty()).then(|| takes[random.below(takes.len() as u64) as usize].clone())
    }

    /// Sends a transport or recording command the way this session's client does: over REST
    /// with the loopback, over the device's own socket (playing on until the answer) with a
    /// client device. Answers (status, result).
    async fn command(&mut self, command: &str, path: String, data: Value) -> (u16, Value) {
        match &mut self.musician {
            Some(musician) => {
                let answer = musician.control(command, data).await;
                // The socket's error codes in HTTP's terms: only `internal` is the server's fault.
                let status = match (answer["success"].as_bool(), answer["code"].as_str()) {
                    (Some(true), _) => 200,
                    (_, Some("internal")) => 500,
                    (_, Some("unavailable")) => 503,
                    _ => 400,
                };
                (status, if status == 200 { answer["result"].clone() } else { answer })
            }
            None => self.app.post(&path, data).await,
        }
    }

    /// A take, stopped after `millis` of rolling. Each of its passes must equal a float mixdown
    /// of the project as it was, at the frames it was recorded: the loopback records what the
    /// engine plays; the musician what it heard (the left channel), a round trip later.
    async fn record(&mut self, random: &mut Random) -> Outcome {
        let app = self.app;
        let start = random.cell_in(RATE / 2, 5 * RATE);
        let millis = 200 + random.below(500);
        self.log(format!(
            "record from {start} for {millis} ms (loop {})",
            if self.model.looping { "on" } else { "off" }
        ));
        let before = mixdown(app, &self.project).await?;
        let mut body = json!({"track_id": self.track, "start_time": start as f64 / RATE as f64});
        if random.below(3) == 0 {
            // A punch: only `[punch_in, punch_out)` is kept.
            let punch_in = random.cell_in(start, start + RATE / 2);
            let punch_out = punch_in + CELL * (1 + random.below(40) as i64);
            (body["punch_in"], body["punch_out"]) =
                (json!(punch_in as f64 / RATE as f64), json!(punch_out as f64 / RATE as f64));
            self.log(format!("  punch {punch_in}..{punch_out}"));
        }
        // On a client device, the client's clock runs on in silence between takes, as a sound
        // card's does.
        let silence = 480 * random.below(100);
        if let Some(musician) = &mut self.musician {
            let (status, answer) = app.post_empty(&format!("/api/audio/projects/{}/playback/stop", self.project)).await;
            if status >= 500 {
                return Err(format!("stop: {status} {answer}"));
            }
            musician.idle(silence).await;
            self.log(format!("  after {silence} frames of silence"));
        }
        let path = format!("/api/audio/tracks/{}/record/start", self.track);
        let (status, started) = self.command("record_start", path, body).await;
        self.ok("record start", status, &started)?;
        if status != 200 {
            return Ok(());
        }
        self.roll(millis).await;
        let session = started["session_id"].as_str().unwrap().to_owned();
        let path = format!("/api/audio/tracks/{}/record/stop/{session}", self.track);
        let (status, stopped) = self.command("record_stop", path, json!({"session_id": session})).await;
        self.ok("record stop", status, &stopped)?;
        let path = format!("/api/audio/projects/{}/playback/stop", self.project);
        let (status, answer) = self.command("stop", path, json!({})).await;
        self.ok("stop", status, &answer)?;
        if status != 200 || stopped["clip_ids"].as_array().is_none_or(Vec::is_empty) {
            return Ok(());
        }
        if stopped["missing_frames"].as_u64().unwrap_or(0) != 0 || stopped["dropped_frames"].as_u64().unwrap_or(0) != 0
        {
            return Err(format!("frames went missing: {stopped}"));
        }
        let model_before = self.model.clone();
        for clip_id in stopped["clip_ids"].as_array().unwrap() {
            let clip = app.ready_clip(clip_id.as_str().unwrap()).await;
            let (first, length) = (clip["start_frame"].as_i64().unwrap(), clip["length_frames"].as_i64().unwrap());
            let take = clip["take_id"].as_str().unwrap().to_owned();
            let (channels, audio) = take_audio(app, &clip).await?;
            // Stored as 32-bit float: what was played and heard, exactly.
            for k in 0..length as usize {
                let frame = first as usize + k;
                let expected = before.get(frame * 2..frame * 2 + 2).unwrap_or(&[0.0, 0.0]);
                let got = &audio[k * channels..(k + 1) * channels];
                if got.iter().zip(expected).any(|(got, expected)| (got - expected).abs() > 1e-6) {
                    return Err(format!("take {take} frame {k} (timeline {frame}): {got:?}, the mix was {expected:?}"));
                }
            }
            self.checks += 1;
            self.model.takes.insert(take.clone(), (self.recorded, first, first + length));
            self.recorded += 1;
            self.model.select(&take, first, first + length);
        }
        self.changed(model_before);
        Ok(())
    }
}

/// A float mixdown of the project, stereo interleaved.
async fn mixdown(app: &TestApp, project: &str) -> Result<Vec<f32>, String> {
    let (status, submitted) = app.post(&format!("/api/projects/{project}/mixdown"), json!({"format": "wav_f32"})).await;
    if status != 202 && status != 200 {
        return Err(format!("mixdown: {status} {submitted}"));
    }
    let job = app.finished_job(submitted["job"]["id"].as_str().unwrap()).await;
    if job["status"] != "succeeded" {
        return Err(format!("mixdown failed: {job}"));
    }
    let url = job["result"]["files"][0]["url"].as_str().unwrap().to_owned();
    let response = app.client.get(app.url(&url)).send().await.unwrap();
    Ok(common::decode(&response.bytes().await.unwrap()).2)
}

/// A take clip's audio as it plays (its stretch of the take's file), through the API:
/// (channels, interleaved samples).
async fn take_audio(app: &TestApp, clip: &Value) -> Result<(usize, Vec<f32>), String> {
    let response = app.client.get(app.url(&format!("/api/clips/{}/audio", clip["id"].as_str().unwrap()))).send().await;
    let response = response.map_err(|e| e.to_string())?;
    if response.status() != 200 {
        return Err(format!("clip audio: {}", response.status()));
    }
    let (_, channels, samples) = common::decode(&response.bytes().await.unwrap());
    let (offset, length) =
        (clip["offset_frames"].as_i64().unwrap() as usize, clip["length_frames"].as_i64().unwrap() as usize);
    Ok((channels, samples[offset * channels..(offset + length) * channels].to_vec()))
}

/// A WAV file of `samples` (mono, 32-bit float, 48 kHz), as a musician would import it.
fn wav_bytes(samples: &[f32]) -> Vec<u8> {
    let file = tempfile::NamedTempFile::new().unwrap();
    audiolab_media::wav::write(file.path(), 1, RATE as u32, audiolab_media::wav::SampleFormat::Float32, samples)
        .unwrap();
    std::fs::read(file.path()).unwrap()
}

/// The project every session starts from: a backing ramp that never repeats (every frame
/// tells where it is), a track armed for the input, a loop region of 2.0–2.5 s.
async fn session<'a>(app: &'a TestApp, setup: Setup, trace: Shared) -> Session<'a> {
    let project = app.project(json!({"name": "Session"})).await;
    let backing = app.track(&project, "Backing", 0).await["id"].as_str().unwrap().to_owned();
    let ramp: Vec<f32> = (0..SPAN).map(|n| (n % 96_000) as f32 / 96_000.0 - 0.5 + (n / 96_000) as f32 * 0.01).collect();
    let upload = app
        .client
        .post(app.url(&format!("/api/tracks/{backing}/clips?filename=ramp.wav")))
        .header("content-type", "application/octet-stream")
        .body(wav_bytes(&ramp))
        .send()
        .await
        .unwrap();
    let (status, imported) = common::read(upload).await;
    assert_eq!(status, 202, "{imported}");
    app.ready_clip(imported["clip"]["id"].as_str().unwrap()).await;
    let track = app.track(&project, "Take", 1).await["id"].as_str().unwrap().to_owned();
    let device = match setup.input {
        Input::Loopback => "loopback",
        Input::Client => "client:laptop",
    };
    let arm = json!({"device_id": device, "enabled": true});
    assert_eq!(app.post(&format!("/api/audio/tracks/{track}/record/enable"), arm).await.0, 200);
    let (status, region) = app.post(&format!("/api/projects/{project}/loops"), json!({"start": 2.0, "end": 2.5})).await;
    assert_eq!(status, 201, "{region}");
    let musician = match setup.input {
        Input::Loopback => None,
        Input::Client => {
            let url = app.ws_url(&project);
            let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.expect("WebSocket connects");
            common::send(&mut socket, attach_message()).await;
            let attached = common::next_where(&mut socket, |v| v["type"] == "attached" || v["type"] == "error").await;
            assert_eq!(attached["type"], "attached", "{attached}");
            Some(Musician::new(url, socket))
        }
    };
    Session {
        app,
        musician,
        project,
        track,
        region: region["id"].as_str().unwrap().to_owned(),
        model: Model::new(),
        undo: Vec::new(),
        redo: Vec::new(),
        recorded: 0,
        trace,
        checks: 0,
    }
}

/// Runs a plan (one seed per step) on a fresh deployment: the invariants checked, or what
/// broke.
async fn run(setup: Setup, plan: Vec<u64>, trace: Shared) -> Result<usize, String> {
    let app = if setup.split { TestApp::split().await } else { TestApp::sqlite().await };
    let mut session = session(&app, setup, trace.clone()).await;
    for (n, step_seed) in plan.iter().enumerate() {
        trace.lock().unwrap().steps = n + 1;
        session.log(format!("step {n} ({step_seed}):"));
        let mut random = Random(*step_seed);
        session.step(&mut random).await?;
        session.check().await?;
    }
    let checks = session.checks;
    drop(session);
    app.stop().await;
    Ok(checks)
}

/// One attempt at a plan, a panic counted as a failure: Ok(invariants) or Err(steps begun,
/// what broke, the steps' lines).
async fn attempt(setup: Setup, plan: &[u64]) -> Result<usize, (usize, String, Vec<String>)> {
    let trace = Shared::default();
    let outcome = tokio::spawn(run(setup, plan.to_vec(), trace.clone())).await;
    let trace = std::mem::take(&mut *trace.lock().unwrap());
    match outcome {
        Ok(Ok(checks)) => Ok(checks),
        Ok(Err(message)) => Err((trace.steps, message, trace.lines)),
        Err(panic) => {
            let message = match panic.try_into_panic() {
                Ok(payload) => payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default(),
                Err(error) => error.to_string(),
            };
            Err((trace.steps, format!("panicked: {message}"), trace.lines))
        }
    }
}

/// The shortest plan found that still fails (any failure counts): steps after the failing
/// one go first, then ever smaller runs of steps are dropped while it still fails, within
/// `budget`.
async fn shrink(setup: Setup, mut plan: Vec<u64>, failed_at: usize, budget: Duration) -> Vec<u64> {
    plan.truncate(failed_at.max(1));
    let deadline = Instant::now() + budget;
    let mut chunk = plan.len().div_ceil(2);
    while chunk > 0 && Instant::now() < deadline {
        let mut start = 0;
        let mut dropped = false;
        while start < plan.len() && Instant::now() < deadline {
            let candidate: Vec<u64> = [&plan[..start], &plan[(start + chunk).min(plan.len())..]].concat();
            match attempt(setup, &candidate).await {
                Err((steps, ..)) if !candidate.is_empty() => {
                    plan = candidate;
                    plan.truncate(steps.max(1));
                    dropped = true;
                }
                _ => start += chunk,
            }
        }
        if !dropped {
            chunk /= 2;
        }
    }
    plan
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| v.parse().unwrap_or_else(|_| panic!("{name} is a number")))
}

/// Runs sessions of `setup`: the default seeds, or as the environment asks. Panics with the
/// shortest failing plan found.
async fn explore(setup: Setup, seeds: &[u64], default_steps: u64) {
    let plans: Box<dyn Iterator<Item = (u64, Vec<u64>)>> = if let Ok(plan) = std::env::var("AUDIOLAB_PLAN") {
        let plan = plan.split(',').map(|s| s.trim().parse().expect("AUDIOLAB_PLAN: step seeds")).collect();
        Box::new(std::iter::once((0, plan)))
    } else {
        let steps = env_number("AUDIOLAB_STEPS").unwrap_or(default_steps);
        let first = env_number("AUDIOLAB_SEED");
        let seeds: Vec<u64> = first.map_or_else(|| seeds.to_vec(), |seed| vec![seed]);
        let soak = env_number("AUDIOLAB_SOAK_SECS").map(Duration::from_secs);
        let started = Instant::now();
        let last = *seeds.last().unwrap();
        let more = (last + 1..).take_while(move |_| soak.is_some_and(|soak| started.elapsed() < soak));
        Box::new(seeds.into_iter().chain(more).map(move |seed| {
            let mut random = Random(seed);
            (seed, (0..steps).map(|_| random.next()).collect())
        }))
    };
    let started = Instant::now();
    let (mut sessions, mut steps, mut checks) = (0, 0, 0);
    for (seed, plan) in plans {
        match attempt(setup, &plan).await {
            Ok(checked) => (sessions, steps, checks) = (sessions + 1, steps + plan.len(), checks + checked),
            Err((failed_at, message, _)) => {
                let budget = Duration::from_secs(env_number("AUDIOLAB_SHRINK_SECS").unwrap_or(300));
                let shortest = shrink(setup, plan, failed_at, budget).await;
                let (_, again, lines) = attempt(setup, &shortest).await.err().unwrap_or_default();
                let replay = shortest.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
                panic!(
                    "{setup:?} seed {seed} failed at step {failed_at}: {message}\n\
                     shortest failing plan ({} steps): AUDIOLAB_PLAN={replay}\n{again}\nsteps:\n{}",
                    shortest.len(),
                    lines.join("\n")
                );
            }
        }
    }
    eprintln!(
        "{setup:?}: {sessions} sessions, {steps} steps, {checks} invariants checked in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_sessions_on_the_loopback_keep_every_take_and_the_comp_as_the_model_says() {
    explore(Setup { split: false, input: Input::Loopback }, &[1, 2, 3], 40).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_sessions_on_a_client_device_keep_every_take_and_the_comp_as_the_model_says() {
    explore(Setup { split: false, input: Input::Client }, &[11, 12], 40).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_sessions_in_split_mode_keep_every_take_and_the_comp_as_the_model_says() {
    explore(Setup { split: true, input: Input::Loopback }, &[21], 40).await;
    explore(Setup { split: true, input: Input::Client }, &[31], 40).await;
}
