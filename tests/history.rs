//! Project history (§13): every change is a revision with an entry; undo and redo per user,
//! with the conflict rule; a project walked back and forth through its history is, at every
//! step, the project it was at that revision — its rows and what it sounds like.

mod common;

use common::{TestApp, read};
use serde_json::{Value, json};

const RATE: u32 = 48_000;

/// Two members of one project (alice owns it, bob edits), with two tracks of audio.
struct Studio {
    app: TestApp,
    bob: reqwest::Client,
    project: String,
    tracks: Vec<String>,
}

impl Studio {
    async fn open(app: TestApp) -> Self {
        let (_, bob) = app.sign_up("bob").await;
        let project = app.project(json!({"name": "History", "sample_rate": RATE})).await;
        let (status, member) =
            app.post(&format!("/api/projects/{project}/members"), json!({"username": "bob", "role": "editor"})).await;
        assert_eq!(status, 201, "{member}");
        let mut tracks = Vec::new();
        for (index, (name, level)) in [("Bass", 0.25f32), ("Keys", -0.5)].into_iter().enumerate() {
            let track = app.track(&project, name, index as i64).await["id"].as_str().unwrap().to_owned();
            app.audio_clip(&project, &track, 0.25 * index as f64, 1, &vec![level; RATE as usize]).await;
            app.audio_clip(&project, &track, 1.5, 1, &vec![level * 0.5; RATE as usize / 2]).await;
            tracks.push(track);
        }
        Self { app, bob, project, tracks }
    }

    fn client(&self, who: usize) -> &reqwest::Client {
        if who == 0 { &self.app.client } else { &self.bob }
    }

    async fn send(&self, who: usize, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.client(who).request(method, self.app.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        read(request.send().await.unwrap()).await
    }

    async fn undo(&self, who: usize) -> (u16, Value) {
        self.send(who, reqwest::Method::POST, &format!("/api/projects/{}/undo", self.project), None).await
    }

    async fn redo(&self, who: usize) -> (u16, Value) {
        self.send(who, reqwest::Method::POST, &format!("/api/projects/{}/redo", self.project), None).await
    }

    async fn list(&self, path: &str) -> Vec<Value> {
        let (status, body) = self.app.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        match body {
            Value::Array(items) => items,
            other => other["items"].as_array().cloned().unwrap_or_default(),
        }
    }

    /// The project as a user sees it: its settings, tracks, clips and loops, without the
    /// timestamps a re-made row cannot keep.
    async fn snapshot(&self) -> Value {
        fn strip(mut row: Value) -> Value {
            if let Some(fields) = row.as_object_mut() {
                for noisy in ["created_at", "updated_at", "revision", "peaks_url", "audio_url"] {
                    fields.remove(noisy);
                }
            }
            row
        }
        let (_, project) = self.app.get(&format!("/api/projects/{}", self.project)).await;
        let mut tracks = self.list(&format!("/api/projects/{}/tracks", self.project)).await;
        tracks.sort_by_key(|t| t["id"].as_str().unwrap().to_owned());
        let mut clips = Vec::new();
        for track in &tracks {
            clips.extend(self.list(&format!("/api/tracks/{}/clips", track["id"].as_str().unwrap())).await);
        }
        clips.sort_by_key(|c| c["id"].as_str().unwrap().to_owned());
        let mut loops = self.list(&format!("/api/projects/{}/loops", self.project)).await;
        loops.sort_by_key(|l| l["id"].as_str().unwrap().to_owned());
        json!({
            "project": strip(project),
            "tracks": tracks.into_iter().map(strip).collect::<Vec<_>>(),
            "clips": clips.into_iter().map(strip).collect::<Vec<_>>(),
            "loops": loops.into_iter().map(strip).collect::<Vec<_>>(),
        })
    }

    /// A float mixdown of the whole project: the samples it sounds like.
    async fn mixdown(&self) -> Vec<u8> {
        let (status, submitted) =
            self.app.post(&format!("/api/projects/{}/mixdown", self.project), json!({"format": "wav_f32"})).await;
        assert!(status == 200 || status == 202, "{status} {submitted}");
        let job = self.app.finished_job(submitted["job"]["id"].as_str().unwrap()).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        let response =
            self.app.client.get(self.app.url(&format!("/api/mixdowns/{}/file", job["id"].as_str().unwrap())));
        let bytes = response.send().await.unwrap().bytes().await.unwrap().to_vec();
        // The samples: everything after the `data` chunk's header.
        let data = bytes.windows(4).position(|w| w == b"data").expect("a data chunk");
        bytes[data + 8..].to_vec()
    }

    async fn revision(&self) -> i64 {
        let (status, page) = self.app.get(&format!("/api/projects/{}/history?limit=1", self.project)).await;
        assert_eq!(status, 200, "{page}");
        page["revision"].as_i64().unwrap()
    }
}

/// A small deterministic generator, so a failing sequence can be replayed.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % sides as u64) as usize
    }
}

/// One random change by `who`; returns whether it changed the project (a refused change
/// does not count).
async fn random_change(studio: &Studio, dice: &mut Dice, who: usize, step: usize, transport: bool) -> bool {
    use reqwest::Method;
    let project = &studio.project;
    let tracks = studio.list(&format!("/api/projects/{project}/tracks")).await;
    let track = tracks[dice.roll(tracks.len())]["id"].as_str().unwrap().to_owned();
    let clips = studio.list(&format!("/api/tracks/{track}/clips")).await;
    let loops = studio.list(&format!("/api/projects/{project}/loops")).await;
    let value = (dice.roll(19) as f64 + 1.0) / 10.0;
    let (status, body) = match dice.roll(12) {
        0 => studio.send(who, Method::PATCH, &format!("/api/tracks/{track}"), Some(json!({"volume": value}))).await,
        1 => studio.send(who, Method::PATCH, &format!("/api/tracks/{track}"), Some(json!({"pan": value - 1.0}))).await,
        2 => {
            let muted = dice.roll(2) == 0;
            studio.send(who, Method::PATCH, &format!("/api/tracks/{track}"), Some(json!({"muted": muted}))).await
        }
        3 => {
            let name = format!("Track {step}");
            studio.send(who, Method::PATCH, &format!("/api/tracks/{track}"), Some(json!({"name": name}))).await
        }
        4 | 5 if !clips.is_empty() => {
            let clip = clips[dice.roll(clips.len())]["id"].as_str().unwrap().to_owned();
            let patch = if dice.roll(2) == 0 { json!({"start": value}) } else { json!({"gain_db": -value * 3.0}) };
            studio.send(who, Method::PATCH, &format!("/api/clips/{clip}"), Some(patch)).await
        }
        6 if clips.len() > 1 => {
            let clip = clips[dice.roll(clips.len())]["id"].as_str().unwrap().to_owned();
            studio.send(who, Method::DELETE, &format!("/api/clips/{clip}"), None).await
        }
        7 => {
            let body = json!({"project_id": project, "name": format!("New {step}")});
            studio.send(who, Method::POST, "/api/tracks", Some(body)).await
        }
        8 if loops.len() < 3 => {
            let body = json!({"start": value, "end": value + 0.5, "enabled": dice.roll(2) == 0});
            studio.send(who, Method::POST, &format!("/api/projects/{project}/loops"), Some(body)).await
        }
        9 if !loops.is_empty() => {
            let region = loops[dice.roll(loops.len())]["id"].as_str().unwrap().to_owned();
            if transport {
                let path = format!("/api/audio/projects/{project}/playback/loop/enable");
                studio.send(who, Method::POST, &path, Some(json!({"loop_region_id": region}))).await
            } else {
                studio.send(who, Method::PATCH, &format!("/api/loops/{region}"), Some(json!({"enabled": true}))).await
            }
        }
        10 => {
            let body = json!({"tempo": 60.0 + value * 100.0, "name": format!("History {step}")});
            studio.send(who, Method::PATCH, &format!("/api/projects/{project}"), Some(body)).await
        }
        _ if tracks.len() > 2 => studio.send(who, Method::DELETE, &format!("/api/tracks/{track}"), None).await,
        _ => studio.send(who, Method::PATCH, &format!("/api/tracks/{track}"), Some(json!({"soloed": true}))).await,
    };
    assert!((200..300).contains(&status), "step {step}: {status} {body}");
    true
}

/// 30 mixed changes by two users, then each undone by its author in reverse order and redone
/// in order: after every step the project (its rows, and a float mixdown at some of them) is
/// the project at that revision.
async fn walk_back_and_forth(app: TestApp, with_sound: bool) {
    let studio = Studio::open(app).await;
    let mut dice = Dice(0x9e37_79b9_7f4a_7c15);
    let listen = async |at: usize| if with_sound && at % 5 == 0 { studio.mixdown().await } else { Vec::new() };
    let mut states = vec![studio.snapshot().await];
    let mut sounds = vec![listen(0).await];
    let mut authors = Vec::new();
    let start = studio.revision().await;
    for step in 0..30 {
        let who = dice.roll(2);
        let before = studio.revision().await;
        random_change(&studio, &mut dice, who, step, with_sound).await;
        if studio.revision().await == before {
            continue; // a change to the same value: nothing to undo
        }
        authors.push(who);
        states.push(studio.snapshot().await);
        sounds.push(listen(authors.len()).await);
    }
    assert!(authors.len() >= 20, "most changes changed something: {}", authors.len());
    assert_eq!(studio.revision().await, start + authors.len() as i64, "one revision per change");

    for (index, &who) in authors.iter().enumerate().rev() {
        let (status, entry) = studio.undo(who).await;
        assert_eq!(status, 200, "undo of change {index}: {entry}");
        assert_eq!(entry["kind"], "undo");
        assert_eq!(studio.snapshot().await, states[index], "after undoing change {index}");
        assert_eq!(listen(index).await, sounds[index], "the mix after undoing change {index}");
    }
    let (status, refused) = studio.undo(1).await;
    assert_eq!(status, 409, "bob has nothing left to undo: {refused}");
    assert!(refused["detail"].as_str().unwrap().contains("nothing to undo"), "{refused}");
    for (index, &who) in authors.iter().enumerate() {
        let (status, entry) = studio.redo(who).await;
        assert_eq!(status, 200, "redo of change {index}: {entry}");
        assert_eq!(entry["kind"], "redo");
        assert_eq!(studio.snapshot().await, states[index + 1], "after redoing change {index}");
        assert_eq!(listen(index + 1).await, sounds[index + 1], "the mix after redoing change {index}");
    }
    for who in 0..2 {
        let (status, refused) = studio.redo(who).await;
        assert_eq!(status, 409, "nothing left to redo: {refused}");
    }
    studio.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_walked_back_and_forth_through_its_history_is_the_project_at_each_revision() {
    walk_back_and_forth(TestApp::sqlite_with(|s| s.auth = audiolab_config::AuthMode::Enabled).await, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_walk_on_postgres() {
    // The `api` role alone: no worker renders, so the rows are compared.
    walk_back_and_forth(TestApp::postgres().await, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_refuses_what_someone_else_changed_since_and_keeps_what_they_did_elsewhere() {
    let app = TestApp::sqlite_with(|s| s.auth = audiolab_config::AuthMode::Enabled).await;
    let studio = Studio::open(app).await;
    let track = &studio.tracks[0];
    let path = format!("/api/tracks/{track}");
    use reqwest::Method;

    let (_, changed) = studio.send(0, Method::PATCH, &path, Some(json!({"volume": 0.5}))).await;
    let revision = changed["revision"].as_i64().expect("a change answers with its revision");
    let (_, bob) = studio.send(1, Method::PATCH, &path, Some(json!({"volume": 0.8}))).await;
    assert_eq!(bob["revision"].as_i64(), Some(revision + 1));
    let (status, refused) = studio.undo(0).await;
    assert_eq!(status, 409, "bob set the same field since: {refused}");
    assert!(refused["detail"].as_str().unwrap().contains("bob"), "{refused}");
    assert_eq!(studio.app.get(&path).await.1["volume"].as_f64(), Some(0.8), "nothing changed");

    // Another field of the same track: alice's pan comes back, bob's volume stays.
    studio.send(0, Method::PATCH, &path, Some(json!({"pan": -0.5}))).await;
    studio.send(1, Method::PATCH, &path, Some(json!({"volume": 0.3}))).await;
    let (status, entry) = studio.undo(0).await;
    assert_eq!(status, 200, "{entry}");
    assert!(entry["summary"].as_str().unwrap().starts_with("Undid"), "{entry}");
    let (_, track_now) = studio.app.get(&path).await;
    assert_eq!((track_now["pan"].as_f64(), track_now["volume"].as_f64()), (Some(0.0), Some(0.3)));

    // A new change clears the redo.
    studio.send(0, Method::PATCH, &path, Some(json!({"muted": true}))).await;
    let (status, _) = studio.redo(0).await;
    assert_eq!(status, 409, "a new change cleared the redo");

    // The history names who did what, newest first, and pages.
    let (status, page) = studio.app.get(&format!("/api/projects/{}/history?limit=3", studio.project)).await;
    assert_eq!(status, 200, "{page}");
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0]["kind"], "track_updated");
    assert_eq!(entries[0]["actor"]["username"], "tester");
    assert_eq!(entries[0]["changes"][0]["fields"], json!(["muted"]));
    assert_eq!(entries[1]["kind"], "undo");
    assert!(entries[1]["undoes"].as_i64().unwrap() < entries[1]["revision"].as_i64().unwrap());
    let before = page["next_before"].as_i64().unwrap();
    let (_, older) = studio.app.get(&format!("/api/projects/{}/history?limit=3&before={before}", studio.project)).await;
    assert!(older["entries"][0]["revision"].as_i64().unwrap() < before);

    // A stranger does not even see the project.
    let (_, stranger) = studio.app.sign_up("stranger").await;
    let response =
        stranger.post(studio.app.url(&format!("/api/projects/{}/undo", studio.project))).send().await.unwrap();
    assert_eq!(response.status(), 404);
    studio.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undoing_a_clip_delete_brings_back_its_audio_and_the_same_mix() {
    let app = TestApp::sqlite_with(|s| s.auth = audiolab_config::AuthMode::Enabled).await;
    let studio = Studio::open(app).await;
    let before = studio.mixdown().await;
    let clips = studio.list(&format!("/api/tracks/{}/clips", studio.tracks[1])).await;
    let clip = clips[0]["id"].as_str().unwrap();
    let (status, _) = studio.app.delete(&format!("/api/clips/{clip}")).await;
    assert_eq!(status, 204);
    assert_ne!(studio.mixdown().await, before, "the clip is gone from the mix");
    let (status, entry) = studio.undo(0).await;
    assert_eq!(status, 200, "{entry}");
    assert_eq!(entry["changes"][0]["action"], "created");
    let (status, restored) = studio.app.get(&format!("/api/clips/{clip}")).await;
    assert_eq!((status, restored["status"].as_str()), (200, Some("ready")), "{restored}");
    let audio = studio.app.client.get(studio.app.url(&format!("/api/clips/{clip}/audio"))).send().await.unwrap();
    assert_eq!(audio.status(), 200, "its audio is still there");
    assert_eq!(studio.mixdown().await, before, "the same mix as before the delete");

    // And a whole track with its clips.
    let (status, _) = studio.app.delete(&format!("/api/tracks/{}", studio.tracks[0])).await;
    assert_eq!(status, 204);
    let (status, _) = studio.undo(0).await;
    assert_eq!(status, 200);
    assert_eq!(studio.list(&format!("/api/tracks/{}/clips", studio.tracks[0])).await.len(), 2);
    assert_eq!(studio.mixdown().await, before, "the track and its clips are back");
    studio.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undoing_a_recording_takes_its_take_out_of_the_mix_and_redo_brings_it_back() {
    let app = TestApp::sqlite_with(|s| s.auth = audiolab_config::AuthMode::Enabled).await;
    let studio = Studio::open(app).await;
    let app = &studio.app;
    let vocal = app.track(&studio.project, "Vocal", 2).await["id"].as_str().unwrap().to_owned();
    let arm = json!({"device_id": "mock_0", "enabled": true});
    assert_eq!(app.post(&format!("/api/audio/tracks/{vocal}/record/enable"), arm).await.0, 200);
    let before = studio.mixdown().await;

    let (status, started) =
        app.post(&format!("/api/audio/tracks/{vocal}/record/start"), json!({"start_time": 0.0})).await;
    assert_eq!(status, 200, "{started}");
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let session = started["session_id"].as_str().unwrap();
    let (status, stopped) = app.post_empty(&format!("/api/audio/tracks/{vocal}/record/stop/{session}")).await;
    assert_eq!(status, 200, "{stopped}");
    app.post_empty(&format!("/api/audio/projects/{}/playback/stop", studio.project)).await;
    let take = stopped["clip_id"].as_str().unwrap().to_owned();
    app.ready_clip(&take).await;
    let recorded = studio.mixdown().await;
    assert_ne!(recorded, before, "the take sounds in the mix");
    let (_, page) = app.get(&format!("/api/projects/{}/history?limit=5", studio.project)).await;
    let entry = page["entries"].as_array().unwrap().iter().find(|e| e["kind"] == "takes_recorded").cloned();
    let entry = entry.expect("the recording is an entry of the history");
    assert_eq!(entry["actor"]["username"], "tester", "{entry}");
    let ready = page["entries"].as_array().unwrap().iter().find(|e| e["kind"] == "clip_ready").cloned();
    let ready = ready.expect("the take's audio being written is a revision too");
    assert_eq!((ready["actor"].is_null(), ready["undoable"].as_bool()), (true, Some(false)), "{ready}");
    assert!(ready["revision"].as_i64() > entry["revision"].as_i64());

    let (status, undone) = studio.undo(0).await;
    assert_eq!(status, 200, "{undone}");
    assert_eq!(undone["undoes"], entry["revision"], "{undone}");
    assert_eq!(app.get(&format!("/api/clips/{take}")).await.0, 404, "the take left the arrangement");
    assert_eq!(studio.mixdown().await, before, "the mix before the recording");

    let (status, redone) = studio.redo(0).await;
    assert_eq!(status, 200, "{redone}");
    let (status, back) = app.get(&format!("/api/clips/{take}")).await;
    assert_eq!((status, back["status"].as_str()), (200, Some("ready")), "{back}");
    assert_eq!(studio.mixdown().await, recorded, "the take sounds again");
    studio.app.stop().await;
}
