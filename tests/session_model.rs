//! A randomised session (§14, §13, §5), checked against a simple model after every step: a
//! seeded generator drives a project through play, stop, pause, seek, loop on and off, takes
//! recorded from the loopback (what the engine plays, so every take must equal a float mixdown
//! of the project as it was, to the sample), swipes, take choices, splits, moves, deleted takes,
//! undo and redo. The model of the comp is a frame map — which take plays each frame — changed
//! by the rules of §14 in the plainest way; the comp the server reports must expand to it.
//!
//! A failure prints the seed and the steps that led to it; `AUDIOLAB_SEED` and
//! `AUDIOLAB_STEPS` replay one (`cargo test --test session_model -- --nocapture`).

mod common;

use common::TestApp;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;

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

struct Session<'a> {
    app: &'a TestApp,
    project: String,
    track: String,
    region: String,
    model: Model,
    /// Model states before and after each of our changes, for undo and redo.
    undo: Vec<Model>,
    redo: Vec<Model>,
    recorded: usize,
    log: Vec<String>,
    checks: usize,
}

impl Session<'_> {
    /// Every answer is a success or a 4xx: never a 5xx.
    fn ok(&self, what: &str, status: u16, body: &Value) {
        assert!(status < 500, "{what}: {status} {body}\nsteps:\n{}", self.log.join("\n"));
    }

    fn fail(&self, message: String) -> ! {
        panic!("{message}\nsteps:\n{}", self.log.join("\n"));
    }

    fn changed(&mut self, before: Model) {
        self.undo.push(before);
        self.redo.clear();
    }

    /// The comp and the takes the server has, against the model.
    async fn check(&mut self) {
        let (status, comp) = self.app.get(&format!("/api/tracks/{}/comp", self.track)).await;
        self.ok("comp", status, &comp);
        let reported = self.model.expand(&comp);
        if reported != self.model.comp {
            let differs = reported.iter().zip(&self.model.comp).position(|(a, b)| a != b);
            self.fail(format!("the comp differs from the model from frame {differs:?}: {comp}"));
        }
        let (_, active) = self.app.get("/api/audio/recording/active").await;
        if active != json!([]) {
            self.fail(format!("a session stuck recording: {active}"));
        }
        self.checks += 2;
    }

    async fn step(&mut self, random: &mut Random) {
        let app = self.app;
        let project = self.project.clone();
        match random.below(100) {
            0..=9 => {
                let position = random.cell_in(0, 6 * RATE) as f64 / RATE as f64;
                self.log.push(format!("play from {position}"));
                let (status, body) = app
                    .post(&format!("/api/audio/projects/{project}/playback/play"), json!({"position": position}))
                    .await;
                self.ok("play", status, &body);
                tokio::time::sleep(Duration::from_millis(random.below(200))).await;
            }
            10..=14 => {
                self.log.push("stop".into());
                let (status, body) = app.post_empty(&format!("/api/audio/projects/{project}/playback/stop")).await;
                self.ok("stop", status, &body);
            }
            15..=17 => {
                self.log.push("pause".into());
                let (status, body) = app.post_empty(&format!("/api/audio/projects/{project}/playback/pause")).await;
                self.ok("pause", status, &body);
            }
            18..=21 => {
                let position = random.cell_in(0, 6 * RATE) as f64 / RATE as f64;
                self.log.push(format!("seek {position}"));
                let (status, body) = app
                    .post(&format!("/api/audio/projects/{project}/playback/seek"), json!({"position": position}))
                    .await;
                self.ok("seek", status, &body);
            }
            22..=25 => {
                // A loop toggle is a change of the project too (undoable).
                let before = self.model.clone();
                self.model.looping = !self.model.looping;
                self.log.push(format!("loop {}", if self.model.looping { "on" } else { "off" }));
                let path = if self.model.looping { "enable" } else { "disable" };
                let body = json!({"loop_region_id": self.region});
                let (status, answer) =
                    app.post(&format!("/api/audio/projects/{project}/playback/loop/{path}"), body).await;
                self.ok("loop", status, &answer);
                assert_eq!(status, 200, "{answer}");
                self.changed(before);
            }
            26..=45 => self.record(random).await,
            46..=49 => {
                // Move a take's clip (one not split): its audio lies elsewhere; the comp's
                // ranges stay where they are.
                let Some(take) = self.some_take(random) else { return };
                let (_, clips) = app.get(&format!("/api/tracks/{}/clips", self.track)).await;
                let parts: Vec<&Value> =
                    clips["items"].as_array().unwrap().iter().filter(|c| c["take_id"] == take.as_str()).collect();
                let [clip] = parts.as_slice() else { return };
                let length = clip["length_frames"].as_i64().unwrap();
                let start = random.cell_in(0, SPAN - length - CELL);
                self.log.push(format!("move {take} to {start}"));
                let body = json!({"start": start as f64 / RATE as f64});
                let (status, answer) = app.patch(&format!("/api/clips/{}", clip["id"].as_str().unwrap()), body).await;
                self.ok("move", status, &answer);
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
                let Some(take) = self.some_take(random) else { return };
                let (start, end) = (random.cell_in(0, 7 * RATE), 0);
                let end = (start + CELL * (1 + random.below(100) as i64)).min(SPAN).max(end);
                self.log.push(format!("swipe {take} over {start}..{end}"));
                let body =
                    json!({"take_id": take, "start": start as f64 / RATE as f64, "end": end as f64 / RATE as f64});
                let (status, answer) = app.post(&format!("/api/tracks/{}/comp/select", self.track), body).await;
                self.ok("swipe", status, &answer);
                if status == 200 {
                    let before = self.model.clone();
                    self.model.select(&take, start, end);
                    if before != self.model {
                        self.changed(before);
                    }
                }
            }
            65..=71 => {
                let Some(take) = self.some_take(random) else { return };
                self.log.push(format!("activate {take}"));
                let (status, answer) =
                    app.post_empty(&format!("/api/takes/{}/activate", self.take_row(&take).await)).await;
                self.ok("activate", status, &answer);
                let (_, start, end) = self.model.takes[&take];
                let before = self.model.clone();
                self.model.select(&take, start, end);
                if before != self.model {
                    self.changed(before);
                }
            }
            72..=77 => {
                let Some(take) = self.some_take(random) else { return };
                self.log.push(format!("delete take {take}"));
                let (status, answer) = app.delete(&format!("/api/takes/{}", self.take_row(&take).await)).await;
                self.ok("delete take", status, &answer);
                if status == 204 {
                    let before = self.model.clone();
                    self.model.delete(&take);
                    self.changed(before);
                }
            }
            78..=83 => {
                // Split a take's clip on the grid: nothing heard or comped changes.
                let Some(take) = self.some_take(random) else { return };
                let (_, start, end) = self.model.takes[&take];
                if end - start < 2 * CELL {
                    return;
                }
                let at = random.cell_in(start + CELL, end - CELL + 1);
                let (_, clips) = app.get(&format!("/api/tracks/{}/clips", self.track)).await;
                let clip = clips["items"].as_array().unwrap().iter().find(|c| {
                    c["take_id"] == take.as_str()
                        && c["start_frame"].as_i64().unwrap() < at
                        && at < c["start_frame"].as_i64().unwrap() + c["length_frames"].as_i64().unwrap()
                });
                let Some(clip) = clip else { return };
                self.log.push(format!("split {take} at {at}"));
                let body = json!({"at": at as f64 / RATE as f64});
                let (status, answer) =
                    app.post(&format!("/api/clips/{}/split", clip["id"].as_str().unwrap()), body).await;
                self.ok("split", status, &answer);
                if status == 200 {
                    let before = self.model.clone();
                    self.changed(before);
                }
            }
            84..=91 => {
                // Only our own changes: the set-up's are the server's to keep.
                if self.undo.is_empty() {
                    return;
                }
                self.log.push("undo".into());
                let (status, answer) = app.post_empty(&format!("/api/projects/{project}/undo")).await;
                self.ok("undo", status, &answer);
                match (status, self.undo.pop()) {
                    (200, Some(before)) => self.redo.push(std::mem::replace(&mut self.model, before)),
                    (status, _) => {
                        self.fail(format!("undo answered {status} {answer}; the model had a change to undo"))
                    }
                }
            }
            _ => {
                if self.redo.is_empty() {
                    return;
                }
                self.log.push("redo".into());
                let (status, answer) = app.post_empty(&format!("/api/projects/{project}/redo")).await;
                self.ok("redo", status, &answer);
                match (status, self.redo.pop()) {
                    (200, Some(after)) => self.undo.push(std::mem::replace(&mut self.model, after)),
                    (status, _) => self.fail(format!("redo answered {status} {answer}; the model had an undo to redo")),
                }
            }
        }
    }

    /// A take of the model, if there is one.
    fn some_take(&self, random: &mut Random) -> Option<String> {
        let mut takes: Vec<&String> = self.model.takes.keys().collect();
        takes.sort();
        (!takes.is_empty()).then(|| takes[random.below(takes.len() as u64) as usize].clone())
    }

    /// The take row id of a take (the model knows takes by id already).
    async fn take_row(&self, take: &str) -> String {
        take.to_owned()
    }

    /// A take from the loopback: the engine's output, so each of its passes must equal a float
    /// mixdown of the project as it was, at the frames it was recorded.
    async fn record(&mut self, random: &mut Random) {
        let app = self.app;
        let start = random.cell_in(RATE / 2, 5 * RATE);
        let millis = 200 + random.below(500);
        self.log.push(format!(
            "record from {start} for {millis} ms (loop {})",
            if self.model.looping { "on" } else { "off" }
        ));
        let before = mixdown(app, &self.project).await;
        let mut body = json!({"start_time": start as f64 / RATE as f64});
        if random.below(3) == 0 {
            // A punch: only `[punch_in, punch_out)` is kept.
            let punch_in = random.cell_in(start, start + RATE / 2);
            let punch_out = punch_in + CELL * (1 + random.below(40) as i64);
            (body["punch_in"], body["punch_out"]) =
                (json!(punch_in as f64 / RATE as f64), json!(punch_out as f64 / RATE as f64));
            self.log.push(format!("  punch {punch_in}..{punch_out}"));
        }
        let (status, started) = app.post(&format!("/api/audio/tracks/{}/record/start", self.track), body).await;
        self.ok("record start", status, &started);
        if status != 200 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(millis)).await;
        let session = started["session_id"].as_str().unwrap();
        let (status, stopped) =
            app.post_empty(&format!("/api/audio/tracks/{}/record/stop/{session}", self.track)).await;
        self.ok("record stop", status, &stopped);
        let (status, answer) = app.post_empty(&format!("/api/audio/projects/{}/playback/stop", self.project)).await;
        self.ok("stop", status, &answer);
        if status != 200 || stopped["clip_ids"].as_array().is_none_or(Vec::is_empty) {
            return;
        }
        if stopped["missing_frames"].as_u64().unwrap_or(0) != 0 || stopped["dropped_frames"].as_u64().unwrap_or(0) != 0
        {
            self.fail(format!("frames went missing from the loopback: {stopped}"));
        }
        let model_before = self.model.clone();
        for clip_id in stopped["clip_ids"].as_array().unwrap() {
            let clip = app.ready_clip(clip_id.as_str().unwrap()).await;
            let (first, length) = (clip["start_frame"].as_i64().unwrap(), clip["length_frames"].as_i64().unwrap());
            let take = clip["take_id"].as_str().unwrap().to_owned();
            // What the take holds is what the engine played there: the mix as it was.
            let audio = take_audio(app, clip_id.as_str().unwrap()).await;
            for k in 0..length {
                let frame = (first + k) as usize;
                let expected = before.get(frame * 2..frame * 2 + 2).unwrap_or(&[0.0, 0.0]);
                let got = &audio[k as usize * 2..k as usize * 2 + 2];
                if (got[0] - expected[0]).abs() > 1e-6 || (got[1] - expected[1]).abs() > 1e-6 {
                    self.fail(format!("take {take} frame {k} (timeline {frame}): {got:?}, the mix was {expected:?}"));
                }
            }
            self.checks += 1;
            self.model.takes.insert(take.clone(), (self.recorded, first, first + length));
            self.recorded += 1;
            self.model.select(&take, first, first + length);
        }
        self.changed(model_before);
    }
}

/// A float mixdown of the project, stereo interleaved.
async fn mixdown(app: &TestApp, project: &str) -> Vec<f32> {
    let (status, submitted) = app.post(&format!("/api/projects/{project}/mixdown"), json!({"format": "wav_f32"})).await;
    assert!(status == 202 || status == 200, "{submitted}");
    let job = app.finished_job(submitted["job"]["id"].as_str().unwrap()).await;
    if job["status"] != "succeeded" {
        // An empty project has nothing to render.
        return Vec::new();
    }
    let url = job["result"]["files"][0]["url"].as_str().unwrap().to_owned();
    let response = app.client.get(app.url(&url)).send().await.unwrap();
    common::decode(&response.bytes().await.unwrap()).2
}

/// A take's audio (stereo: the loopback records the mix).
async fn take_audio(app: &TestApp, clip_id: &str) -> Vec<f32> {
    let id: uuid::Uuid = clip_id.parse().unwrap();
    let stored = app.store().await.get_clip(id.into()).await.unwrap().unwrap();
    let mut reader =
        audiolab_media::wav::WavReader::open(&app.audio_path(stored.audio_key.as_deref().unwrap())).unwrap();
    let mut samples = vec![0.0f32; stored.length.get() as usize * 2];
    reader.read_frames(stored.source_offset.get() as u64, &mut samples).unwrap();
    samples
}

async fn run(seed: u64, steps: usize) -> usize {
    let app = TestApp::sqlite().await;
    let project = app.project(json!({"name": format!("Session {seed}")})).await;
    let backing = app.track(&project, "Backing", 0).await["id"].as_str().unwrap().to_owned();
    // A ramp that never repeats over the span: every frame tells where it is.
    let ramp: Vec<f32> = (0..SPAN).map(|n| (n % 96_000) as f32 / 96_000.0 - 0.5 + (n / 96_000) as f32 * 0.01).collect();
    app.audio_clip(&project, &backing, 0.0, 1, &ramp).await;
    let track = app.track(&project, "Loop", 1).await["id"].as_str().unwrap().to_owned();
    let arm = json!({"device_id": "loopback", "enabled": true});
    assert_eq!(app.post(&format!("/api/audio/tracks/{track}/record/enable"), arm).await.0, 200);
    let (status, region) = app.post(&format!("/api/projects/{project}/loops"), json!({"start": 2.0, "end": 2.5})).await;
    assert_eq!(status, 201, "{region}");
    let mut session = Session {
        app: &app,
        project,
        track,
        region: region["id"].as_str().unwrap().to_owned(),
        model: Model::new(),
        undo: Vec::new(),
        redo: Vec::new(),
        recorded: 0,
        log: vec![format!("seed {seed}")],
        checks: 0,
    };
    let mut random = Random(seed);
    for _ in 0..steps {
        session.step(&mut random).await;
        session.check().await;
    }
    let checks = session.checks;
    app.stop().await;
    checks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_sessions_keep_every_take_and_the_comp_as_the_model_says() {
    let seeds: Vec<u64> = match std::env::var("AUDIOLAB_SEED") {
        Ok(seed) => vec![seed.parse().expect("AUDIOLAB_SEED is a number")],
        Err(_) => vec![1, 2, 3],
    };
    let steps = std::env::var("AUDIOLAB_STEPS").ok().and_then(|s| s.parse().ok()).unwrap_or(40);
    let mut checks = 0;
    for seed in &seeds {
        checks += run(*seed, steps).await;
    }
    eprintln!("{} seeds × {steps} steps: {checks} invariants checked", seeds.len());
}
