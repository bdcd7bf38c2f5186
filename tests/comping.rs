//! Comping (§14) through the API against `serve`: a new take over an older one is all that
//! plays there (takes never stack); a swipe brings the older take back over a range with
//! equal-power crossfades; the mixdown equals a reference computed here from the takes' own
//! audio; every comp edit is undoable; bad comps are refused and change nothing.

mod common;

use audiolab_media::wav::WavReader;
use common::TestApp;
use serde_json::{Value, json};
use std::f64::consts::FRAC_PI_2;
use std::time::Duration;

const RATE: i64 = 48_000;
const CENTRE: f64 = std::f64::consts::FRAC_1_SQRT_2;

/// A take recorded on `track` from `device`, from `start` seconds for about `millis`: its
/// take id, and its clip's audio as (first timeline frame, samples).
async fn record(app: &TestApp, project: &str, track: &str, device: &str, start: f64, millis: u64) -> (String, Take) {
    let enable = json!({"device_id": device, "enabled": true});
    let (status, armed) = app.post(&format!("/api/audio/tracks/{track}/record/enable"), enable).await;
    assert_eq!(status, 200, "{armed}");
    let (status, started) =
        app.post(&format!("/api/audio/tracks/{track}/record/start"), json!({"start_time": start})).await;
    assert_eq!(status, 200, "{started}");
    tokio::time::sleep(Duration::from_millis(millis)).await;
    let session = started["session_id"].as_str().unwrap();
    let (status, stopped) = app.post_empty(&format!("/api/audio/tracks/{track}/record/stop/{session}")).await;
    assert_eq!(status, 200, "{stopped}");
    let (status, _) = app.post_empty(&format!("/api/audio/projects/{project}/playback/stop")).await;
    assert_eq!(status, 200);
    let clip = app.ready_clip(stopped["clip_id"].as_str().unwrap()).await;
    let id: uuid::Uuid = clip["id"].as_str().unwrap().parse().unwrap();
    let stored = app.store().await.get_clip(id.into()).await.unwrap().unwrap();
    let mut reader = WavReader::open(&app.audio_path(stored.audio_key.as_deref().unwrap())).unwrap();
    let channels = usize::from(reader.info().channels);
    let mut samples = vec![0.0f32; stored.length.get() as usize * channels];
    reader.read_frames(stored.source_offset.get() as u64, &mut samples).unwrap();
    (clip["take_id"].as_str().unwrap().to_owned(), Take { start: stored.start.get(), channels, samples })
}

struct Take {
    start: i64,
    channels: usize,
    samples: Vec<f32>,
}

impl Take {
    fn end(&self) -> i64 {
        self.start + (self.samples.len() / self.channels) as i64
    }

    /// The take's (left, right) at a timeline frame: a mono take feeds both sides.
    fn at(&self, frame: i64) -> (f64, f64) {
        let i = (frame - self.start) as usize * self.channels;
        let left = f64::from(self.samples[i]);
        (left, if self.channels == 1 { left } else { f64::from(self.samples[i + 1]) })
    }
}

/// A stretch of the comp as the reference hears it: `take` over `[start, end)`, faded in over
/// its first `fade_in` frames and out over its last `fade_out`, with equal power.
struct Heard<'a> {
    take: &'a Take,
    start: i64,
    end: i64,
    fade_in: i64,
    fade_out: i64,
}

/// The mix the reference expects at each frame of `0..frames` (left, right; before the
/// centre pan).
fn reference(pieces: &[Heard], frames: i64) -> Vec<(f64, f64)> {
    let mut mix = vec![(0.0, 0.0); frames as usize];
    for piece in pieces {
        for frame in piece.start..piece.end {
            let (from_start, from_end) = (frame - piece.start, piece.end - frame);
            let mut gain = 1.0;
            if from_start < piece.fade_in {
                gain *= (FRAC_PI_2 * from_start as f64 / piece.fade_in as f64).sin();
            }
            if from_end <= piece.fade_out {
                gain *= (FRAC_PI_2 * from_end as f64 / piece.fade_out as f64).sin();
            }
            let (left, right) = piece.take.at(frame);
            mix[frame as usize].0 += left * gain;
            mix[frame as usize].1 += right * gain;
        }
    }
    mix
}

/// A float mixdown of the project, stereo interleaved.
async fn mixdown(app: &TestApp, project: &str) -> Vec<f32> {
    let (status, submitted) = app.post(&format!("/api/projects/{project}/mixdown"), json!({"format": "wav_f32"})).await;
    assert!(status == 202 || status == 200, "{submitted}");
    let job = app.finished_job(submitted["job"]["id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let url = job["result"]["files"][0]["url"].as_str().unwrap().to_owned();
    let response = app.client.get(app.url(&url)).send().await.unwrap();
    let (rate, channels, samples) = common::decode(&response.bytes().await.unwrap());
    assert_eq!((rate, channels), (RATE as u32, 2));
    samples
}

/// Renders a float mixdown and checks every frame against `expected` (before the pan law).
async fn assert_mixdown(app: &TestApp, project: &str, expected: &[(f64, f64)]) {
    let samples = mixdown(app, project).await;
    assert_eq!(samples.len() / 2, expected.len(), "the mixdown ends where the last take does");
    for (frame, pair) in samples.chunks_exact(2).enumerate() {
        let want = (expected[frame].0 * CENTRE, expected[frame].1 * CENTRE);
        assert!(
            (f64::from(pair[0]) - want.0).abs() < 1e-6 && (f64::from(pair[1]) - want.1).abs() < 1e-6,
            "frame {frame} ({:.4} s): {pair:?}, expected {want:?}",
            frame as f64 / RATE as f64
        );
    }
}

fn segments(comp: &Value) -> Vec<(i64, i64, String)> {
    comp["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["start_frame"].as_i64().unwrap(),
                s["end_frame"].as_i64().unwrap(),
                s["take_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_take_replaces_the_old_one_where_it_was_played_and_a_swipe_brings_the_old_one_back_crossfaded() {
    let app = TestApp::sqlite().await;
    let project = app.project(json!({"name": "Comp"})).await;
    let track = app.track(&project, "Vox", 0).await["id"].as_str().unwrap().to_owned();
    let (a, first) = record(&app, &project, &track, "mock_0", 1.0, 1_500).await;
    let (b, second) = record(&app, &project, &track, "mock_1", 1.5, 500).await;
    assert_eq!((first.start, second.start), (RATE, RATE * 3 / 2));
    assert!(second.end() < first.end(), "the second take lies inside the first");

    // The new take is the comp where it was played; the first plays around it, never under it.
    let (status, comp) = app.get(&format!("/api/tracks/{track}/comp")).await;
    assert_eq!(status, 200, "{comp}");
    assert_eq!(comp["crossfade_ms"], 10);
    let (b_end, a_end) = (second.end(), first.end());
    assert_eq!(
        segments(&comp),
        [(RATE, RATE * 3 / 2, a.clone()), (RATE * 3 / 2, b_end, b.clone()), (b_end, a_end, a.clone())]
    );
    let (_, takes) = app.get(&format!("/api/tracks/{track}/takes")).await;
    assert!(takes.as_array().unwrap().iter().all(|t| t["active"] == true), "both takes play somewhere: {takes}");
    // Where the second take starts there is no audio of it before: a cut, not a crossfade.
    let stacked = reference(
        &[
            Heard { take: &first, start: RATE, end: RATE * 3 / 2, fade_in: 0, fade_out: 0 },
            Heard { take: &second, start: RATE * 3 / 2, end: b_end, fade_in: 0, fade_out: 0 },
            Heard { take: &first, start: b_end, end: a_end, fade_in: 0, fade_out: 0 },
        ],
        a_end,
    );
    assert_mixdown(&app, &project, &stacked).await;

    // A swipe: the first take over 1.7–1.8 s, inside the second; 10 ms crossfades centred on
    // each boundary (240 frames either side).
    let swipe = json!({"take_id": a, "start": 1.7, "end": 1.8});
    let (status, swiped) = app.post(&format!("/api/tracks/{track}/comp/select"), swipe).await;
    assert_eq!(status, 200, "{swiped}");
    assert!(swiped["revision"].as_i64().is_some(), "{swiped}");
    let (at, to) = (RATE * 17 / 10, RATE * 18 / 10);
    assert_eq!(
        segments(&swiped),
        [
            (RATE, RATE * 3 / 2, a.clone()),
            (RATE * 3 / 2, at, b.clone()),
            (at, to, a.clone()),
            (to, b_end, b.clone()),
            (b_end, a_end, a.clone())
        ]
    );
    let half = 240;
    let swiped_mix = reference(
        &[
            Heard { take: &first, start: RATE, end: RATE * 3 / 2, fade_in: 0, fade_out: 0 },
            Heard { take: &second, start: RATE * 3 / 2, end: at + half, fade_in: 0, fade_out: 2 * half },
            Heard { take: &first, start: at - half, end: to + half, fade_in: 2 * half, fade_out: 2 * half },
            Heard { take: &second, start: to - half, end: b_end, fade_in: 2 * half, fade_out: 0 },
            Heard { take: &first, start: b_end, end: a_end, fade_in: 0, fade_out: 0 },
        ],
        a_end,
    );
    assert_mixdown(&app, &project, &swiped_mix).await;

    // Undo gives the comp before the swipe back, and the mix with it.
    let (status, undone) = app.post_empty(&format!("/api/projects/{project}/undo")).await;
    assert_eq!(status, 200, "{undone}");
    let (_, comp) = app.get(&format!("/api/tracks/{track}/comp")).await;
    assert_eq!(segments(&comp).len(), 3, "{comp}");
    assert_mixdown(&app, &project, &stacked).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_comp_given_whole_is_checked_and_a_refused_one_changes_nothing() {
    let app = TestApp::sqlite().await;
    let project = app.project(json!({"name": "Comp"})).await;
    let track = app.track(&project, "Vox", 0).await["id"].as_str().unwrap().to_owned();
    let other = app.track(&project, "Gtr", 1).await["id"].as_str().unwrap().to_owned();
    let (a, _) = record(&app, &project, &track, "mock_0", 1.0, 800).await;
    let (elsewhere, _) = record(&app, &project, &other, "mock_1", 1.0, 500).await;
    let (_, before) = app.get(&format!("/api/tracks/{track}/comp")).await;

    let put = |segments: Value, crossfade: Value| json!({"segments": segments, "crossfade_ms": crossfade});
    let path = format!("/api/tracks/{track}/comp");
    let overlapping = json!([{"take_id": a, "start": 1.0, "end": 1.4}, {"take_id": a, "start": 1.3, "end": 1.5}]);
    let refusals = [
        (put(overlapping, json!(10)), 422),
        (put(json!([{"take_id": elsewhere, "start": 1.0, "end": 1.2}]), json!(10)), 422),
        (put(json!([{"take_id": a, "start": 1.2, "end": 1.2}]), json!(10)), 422),
        (put(json!([{"take_id": a, "start": -1.0, "end": 1.2}]), json!(10)), 422),
        (put(json!([]), json!(501)), 422),
        (json!({"segments": "all of it"}), 422),
    ];
    for (body, status) in refusals {
        let (got, answer) = app.put(&path, body.clone()).await;
        assert_eq!(got, status, "{body} → {answer}");
        assert!(answer["detail"].is_string(), "a clear error: {answer}");
    }
    let swipe = json!({"take_id": elsewhere, "start": 1.0, "end": 1.2});
    assert_eq!(app.post(&format!("/api/tracks/{track}/comp/select"), swipe).await.0, 404, "another track's take");
    let (_, after) = app.get(&format!("/api/tracks/{track}/comp")).await;
    assert_eq!(after, before, "nothing refused changed the comp");

    // A good one: a shorter stretch of the take, and a longer crossfade.
    let (status, set) = app.put(&path, put(json!([{"take_id": a, "start": 1.1, "end": 1.3}]), json!(40))).await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(segments(&set), [(RATE * 11 / 10, RATE * 13 / 10, a.clone())]);
    assert_eq!(set["crossfade_ms"], 40);
    let (_, takes) = app.get(&format!("/api/tracks/{track}/takes")).await;
    assert_eq!(takes[0]["active"], true);
    // Nothing at all: the take no longer plays anywhere.
    let (status, empty) = app.put(&path, put(json!([]), json!(40))).await;
    assert_eq!((status, segments(&empty).len()), (200, 0), "{empty}");
    let (_, takes) = app.get(&format!("/api/tracks/{track}/takes")).await;
    assert_eq!(takes[0]["active"], false);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_duplicate_and_delete_a_take_each_play_as_they_should_and_undo() {
    let app = TestApp::sqlite().await;
    let project = app.project(json!({"name": "Edit"})).await;
    let track = app.track(&project, "Vox", 0).await["id"].as_str().unwrap().to_owned();
    let (a, first) = record(&app, &project, &track, "mock_0", 1.0, 1_000).await;
    let (b, second) = record(&app, &project, &track, "mock_1", 1.2, 300).await;
    let before = mixdown(&app, &project).await;
    let clip_of = async |take: &str| -> Value {
        let (_, clips) = app.get(&format!("/api/tracks/{track}/clips")).await;
        clips["items"].as_array().unwrap().iter().find(|c| c["take_id"] == take).unwrap().clone()
    };

    // A split inside the first take changes nothing that is heard: the same samples.
    let a_clip = clip_of(&a).await;
    let (status, split) =
        app.post(&format!("/api/clips/{}/split", a_clip["id"].as_str().unwrap()), json!({"at": 1.1})).await;
    assert_eq!(status, 200, "{split}");
    assert_eq!(
        (split["first"]["length_frames"].as_i64(), split["second"]["start_frame"].as_i64()),
        (Some(RATE / 10), Some(RATE * 11 / 10))
    );
    assert_eq!(split["second"]["take_id"], a.as_str(), "both parts are of the take");
    assert_eq!(split["second"]["offset_frames"].as_i64(), Some(a_clip["offset_frames"].as_i64().unwrap() + RATE / 10));
    assert_eq!(mixdown(&app, &project).await, before, "a split is silent");
    let (status, refused) =
        app.post(&format!("/api/clips/{}/split", a_clip["id"].as_str().unwrap()), json!({"at": 3.9})).await;
    assert_eq!(status, 422, "outside the clip: {refused}");

    // A copy of the second take at 3 s plays there (it belongs to no take).
    let b_clip = clip_of(&b).await;
    let (status, copy) =
        app.post(&format!("/api/clips/{}/duplicate", b_clip["id"].as_str().unwrap()), json!({"start": 3.0})).await;
    assert_eq!(status, 201, "{copy}");
    assert_eq!((copy["take_id"].clone(), copy["start_frame"].as_i64()), (Value::Null, Some(RATE * 3)));
    let copied = mixdown(&app, &project).await;
    assert_eq!(copied.len() / 2, (RATE * 3) as usize + second.samples.len() / second.channels);
    for (k, pair) in copied[(RATE * 3 * 2) as usize..].chunks_exact(2).enumerate() {
        let (left, right) = second.at(second.start + k as i64);
        assert!(
            (f64::from(pair[0]) - left * CENTRE).abs() < 1e-6 && (f64::from(pair[1]) - right * CENTRE).abs() < 1e-6,
            "copy frame {k}"
        );
    }

    // Deleting the second take: the first plays where it was.
    let take_b = {
        let (_, takes) = app.get(&format!("/api/tracks/{track}/takes")).await;
        takes.as_array().unwrap().iter().find(|t| t["clip_id"] == b_clip["id"]).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (status, _) = app.delete(&format!("/api/takes/{take_b}")).await;
    assert_eq!(status, 204);
    let (_, comp) = app.get(&format!("/api/tracks/{track}/comp")).await;
    assert!(segments(&comp).iter().all(|(_, _, take)| take == &a), "{comp}");
    let (_, takes) = app.get(&format!("/api/tracks/{track}/takes")).await;
    assert_eq!(takes.as_array().unwrap().len(), 1, "the lane is gone: {takes}");
    let without = mixdown(&app, &project).await;
    for frame in [RATE * 12 / 10, RATE * 13 / 10, RATE * 3 / 2 - 1] {
        let (left, right) = first.at(frame);
        let got = &without[frame as usize * 2..frame as usize * 2 + 2];
        assert!(
            (f64::from(got[0]) - left * CENTRE).abs() < 1e-6 && (f64::from(got[1]) - right * CENTRE).abs() < 1e-6,
            "frame {frame}"
        );
    }
    assert_eq!(app.delete(&format!("/api/takes/{take_b}")).await.0, 404, "deleted once");
    assert_eq!(
        app.post(&format!("/api/tracks/{track}/comp/select"), json!({"take_id": b, "start": 1.2, "end": 1.3})).await.0,
        404
    );

    // Undo brings the take back, its lane and the comp with it.
    let (status, _) = app.post_empty(&format!("/api/projects/{project}/undo")).await;
    assert_eq!(status, 200);
    assert_eq!(mixdown(&app, &project).await, copied, "as before the delete");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flattened_comp_is_one_clip_that_sounds_the_same_and_undo_brings_the_comp_back() {
    let app = TestApp::sqlite().await;
    let project = app.project(json!({"name": "Flat"})).await;
    let track = app.track(&project, "Vox", 0).await["id"].as_str().unwrap().to_owned();
    let (status, refused) = app.post_empty(&format!("/api/tracks/{track}/comp/flatten")).await;
    assert_eq!(status, 409, "nothing to flatten yet: {refused}");
    let (a, _) = record(&app, &project, &track, "mock_0", 1.0, 1_000).await;
    record(&app, &project, &track, "mock_1", 1.3, 300).await;
    let swipe = json!({"take_id": a, "start": 1.4, "end": 1.45});
    assert_eq!(app.post(&format!("/api/tracks/{track}/comp/select"), swipe).await.0, 200);
    let comped = mixdown(&app, &project).await;

    let (status, job) = app.post_empty(&format!("/api/tracks/{track}/comp/flatten")).await;
    assert_eq!((status, job["kind"].as_str()), (202, Some("flatten")), "{job}");
    let done = app.finished_job(job["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let clip_id = done["result"]["clip_id"].as_str().unwrap().to_owned();
    let clip = app.ready_clip(&clip_id).await;
    assert_eq!((clip["take_id"].clone(), clip["active"].as_bool()), (Value::Null, Some(true)), "{clip}");
    assert_eq!(clip["start_frame"].as_i64(), Some(RATE));
    let (_, comp) = app.get(&format!("/api/tracks/{track}/comp")).await;
    assert_eq!(segments(&comp).len(), 0, "{comp}");
    let (_, takes) = app.get(&format!("/api/tracks/{track}/takes")).await;
    assert!(takes.as_array().unwrap().iter().all(|t| t["active"] == false), "the takes stay, silent: {takes}");
    assert_eq!(mixdown(&app, &project).await, comped, "the flattened clip plays exactly what the comp played");

    // One change, the asker's to undo: the comp is back and the clip silent.
    let (_, history) = app.get(&format!("/api/projects/{project}/history?limit=1")).await;
    assert_eq!(history["entries"][0]["kind"], "comp_flattened", "{history}");
    let (status, _) = app.post_empty(&format!("/api/projects/{project}/undo")).await;
    assert_eq!(status, 200);
    let (_, comp) = app.get(&format!("/api/tracks/{track}/comp")).await;
    assert_eq!(segments(&comp).len(), 5, "{comp}");
    assert_eq!(mixdown(&app, &project).await, comped);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swipe_over_the_socket_answers_the_comp_and_every_page_hears_of_it() {
    let app = TestApp::sqlite().await;
    let project = app.project(json!({"name": "Socket"})).await;
    let track = app.track(&project, "Vox", 0).await["id"].as_str().unwrap().to_owned();
    let (a, _) = record(&app, &project, &track, "mock_0", 1.0, 800).await;
    let (b, _) = record(&app, &project, &track, "mock_1", 1.2, 300).await;
    let mut swiper = common::joined(&app, &project).await;
    let mut watcher = common::joined(&app, &project).await;

    let swipe = json!({"track_id": track, "take_id": a, "start": 1.25, "end": 1.3});
    let answer = common::control(&mut swiper, "comp_select", swipe).await;
    assert_eq!(answer["success"], true, "{answer}");
    let comp = &answer["result"];
    assert_eq!(comp["track_id"], track.as_str());
    let taken: Vec<&str> =
        comp["segments"].as_array().unwrap().iter().map(|s| s["take_id"].as_str().unwrap()).collect();
    assert_eq!(taken, [a.as_str(), b.as_str(), a.as_str(), b.as_str(), a.as_str()], "{comp}");
    assert_eq!(comp["segments"][2]["start_frame"].as_i64(), Some(RATE * 125 / 100));
    let revision = comp["revision"].as_i64().unwrap();
    // Another page hears the track changed at that revision.
    let changed =
        common::next_where(&mut watcher, |m| m["type"] == "model_changed" && m["data"]["revision"] == revision).await;
    assert!(changed["data"]["fields"].to_string().contains("comp"), "{changed}");
    let (_, rest) = app.get(&format!("/api/tracks/{track}/comp")).await;
    assert_eq!(rest["segments"], comp["segments"], "the socket and REST agree");

    // Mistakes get errors and change nothing.
    let other = app.track(&project, "Gtr", 1).await["id"].as_str().unwrap().to_owned();
    for (data, code) in [
        (json!({"track_id": other, "take_id": a, "start": 1.0, "end": 1.1}), "not_found"),
        (json!({"track_id": track, "take_id": a, "start": 1.2, "end": 1.1}), "invalid"),
        (json!({"track_id": track, "take_id": a}), "invalid"),
    ] {
        let refused = common::control(&mut swiper, "comp_select", data.clone()).await;
        assert_eq!(
            (refused["success"].as_bool(), refused["code"].as_str()),
            (Some(false), Some(code)),
            "{data}: {refused}"
        );
    }
    let (_, after) = app.get(&format!("/api/tracks/{track}/comp")).await;
    assert_eq!(after["segments"], comp["segments"]);
    app.stop().await;
}
