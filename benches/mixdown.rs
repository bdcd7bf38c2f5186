//! Mixdown speed against sox and ffmpeg, and a whole mixdown job end to end.
//!
//! `cargo bench --bench mixdown [-- --tracks 32 --seconds 60 --dir PATH]`
//!
//! 1. Writes 32 stereo 24-bit 48 kHz WAV tracks of 60 s (deterministic noise and tones).
//! 2. Mixes them to one 24-bit WAV, each tool in a child process of its own so wall time, CPU
//!    time (user + system) and peak RSS are that run's alone: `sox -m` (every input at `-v 1`),
//!    `ffmpeg … amix=inputs=32:normalize=0`, and AudioLab's render core (every track at volume
//!    √2 and centre pan: a gain of 1.0 per channel after the −3 dB pan law, the same gains as
//!    the others). Prints the table and the ratios, and how far AudioLab's output is from sox's.
//! 3. Starts `serve` in this process and times a mixdown job of the same project from the API
//!    call to the downloaded file.

use audiolab::{Application, Role};
use audiolab_config::Settings;
use audiolab_domain::mixdown::{AudioFormat, MixdownOptions};
use audiolab_dsp::mix::TrackMix;
use audiolab_dsp::render::ClipPlacement;
use audiolab_media::mix::{MixSource, MixTrack};
use audiolab_media::timeline::{ClipSource, TrackClips};
use audiolab_media::wav::{self, SampleFormat, WavReader};
use audiolab_worker::mixdown::{RenderPlan, render_files};
use nix::sys::resource::{UsageWho, getrusage};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const RATE: u32 = 48_000;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).map_or(default, |i| args[i + 1].parse().expect("a number"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--run") {
        return run_one(&args[i + 1], Path::new(&args[i + 2]), &args[i + 3]);
    }
    let (tracks, seconds) = (arg("--tracks", 32), arg("--seconds", 60));
    // `--dir PATH` keeps the tracks (to profile a tool on them: `--run audiolab PATH out.wav`).
    let kept = args.iter().position(|a| a == "--dir").map(|i| PathBuf::from(&args[i + 1]));
    let temporary = tempfile::tempdir().unwrap();
    let dir = kept.as_deref().unwrap_or(temporary.path());
    std::fs::create_dir_all(dir).unwrap();
    let inputs = write_tracks(dir, tracks, seconds);
    println!("mixdown: {tracks} stereo 24-bit {RATE} Hz tracks of {seconds} s ({} MB of WAV)", total_mb(&inputs));

    let mut rows = Vec::new();
    for tool in ["sox", "ffmpeg", "audiolab"] {
        let output = dir.join(format!("out-{tool}.wav"));
        match measure(tool, dir, &output) {
            Some(row) => rows.push((tool, row, output)),
            None => println!("  {tool}: not installed, skipped"),
        }
    }
    println!("\n  {:<10} {:>9} {:>9} {:>11}", "tool", "wall s", "cpu s", "peak RSS MB");
    for (tool, m, _) in &rows {
        println!("  {:<10} {:>9.3} {:>9.3} {:>11.1}", tool, m.wall, m.cpu, m.rss_mb);
    }
    let ours = rows.iter().find(|(t, ..)| *t == "audiolab").map(|(_, m, _)| m.clone()).unwrap();
    let fastest = rows.iter().filter(|(t, ..)| *t != "audiolab").min_by(|a, b| a.1.wall.total_cmp(&b.1.wall));
    if let Some((tool, them, _)) = fastest {
        println!(
            "\n  AudioLab vs {tool} (the faster reference): {:.1}x faster wall, {:.1}x less CPU, {:.2}x its peak RSS",
            them.wall / ours.wall,
            them.cpu / ours.cpu,
            ours.rss_mb / them.rss_mb
        );
        println!(
            "  target: >= 5x faster wall: {}; peak RSS < 100 MB: {}",
            if them.wall / ours.wall >= 5.0 { "met" } else { "NOT met" },
            if ours.rss_mb < 100.0 { "met" } else { "NOT met" }
        );
    }
    let sox = rows.iter().find(|(t, ..)| *t == "sox").map(|(.., p)| p.clone());
    let audiolab = rows.iter().find(|(t, ..)| *t == "audiolab").map(|(.., p)| p.clone()).unwrap();
    if let Some(sox) = sox {
        println!("  largest difference from sox's mix: {} LSB of 24 bits", largest_difference(&sox, &audiolab));
    }

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(job_end_to_end(&inputs, seconds));
}

#[derive(Debug, Clone)]
struct Measured {
    wall: f64,
    cpu: f64,
    rss_mb: f64,
}

/// Runs one tool in a child process of this bench and reads back what it measured.
fn measure(tool: &str, dir: &Path, output: &Path) -> Option<Measured> {
    if tool != "audiolab" && Command::new(tool).arg("-version").output().is_err() {
        return None;
    }
    let exe = std::env::current_exe().unwrap();
    let out =
        Command::new(exe).args(["--run", tool, dir.to_str().unwrap(), output.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{tool}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let numbers: Vec<f64> = text.split_whitespace().map(|n| n.parse().unwrap()).collect();
    Some(Measured { wall: numbers[0], cpu: numbers[1], rss_mb: numbers[2] })
}

/// In the child: runs `tool`, then prints wall seconds, CPU seconds and peak RSS (MB).
fn run_one(tool: &str, dir: &Path, output: &str) {
    let mut inputs: Vec<PathBuf> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| is_track(p)).collect();
    inputs.sort();
    let clock = Instant::now();
    let who = match tool {
        "sox" => {
            let mut command = Command::new("sox");
            command.arg("-m");
            for input in &inputs {
                command.arg("-v").arg("1").arg(input);
            }
            let status = command.args(["-b", "24", output]).status().unwrap();
            assert!(status.success());
            UsageWho::RUSAGE_CHILDREN
        }
        "ffmpeg" => {
            let mut command = Command::new("ffmpeg");
            command.args(["-loglevel", "error", "-y"]);
            for input in &inputs {
                command.arg("-i").arg(input);
            }
            let filter = format!("amix=inputs={}:normalize=0", inputs.len());
            let status = command.args(["-filter_complex", &filter, "-c:a", "pcm_s24le", output]).status().unwrap();
            assert!(status.success());
            UsageWho::RUSAGE_CHILDREN
        }
        _ => {
            render_core(&inputs, Path::new(output));
            UsageWho::RUSAGE_SELF
        }
    };
    let wall = clock.elapsed().as_secs_f64();
    let usage = getrusage(who).unwrap();
    let seconds = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    let cpu = seconds(usage.user_time()) + seconds(usage.system_time());
    println!("{wall} {cpu} {}", usage.max_rss() as f64 / 1024.0);
}

/// AudioLab's render core on the tracks: the same code a mixdown job runs, without the
/// job's loudness metering.
fn render_core(inputs: &[PathBuf], output: &Path) {
    let tracks = inputs
        .iter()
        .enumerate()
        .map(|(slot, path)| {
            let reader = WavReader::open(path).unwrap();
            let frames = reader.info().frames as i64;
            let placement = ClipPlacement {
                start: 0,
                length: frames,
                source_offset: 0,
                gain: 1.0,
                fade_in: 0,
                fade_out: 0,
                channels: 2,
                crossfaded: false,
            };
            let clips = TrackClips { slot, clips: vec![ClipSource { placement, reader }] };
            let mix = TrackMix { volume: std::f32::consts::SQRT_2, ..TrackMix::default() };
            MixTrack::new(audiolab_domain::TrackId::new(), clips, mix)
        })
        .collect();
    let mut source = MixSource::new(tracks, false);
    let options = MixdownOptions {
        start: audiolab_domain::Frames(0),
        end: None,
        stems: false,
        format: AudioFormat::Wav24,
        sample_rate: RATE,
        normalize: None,
        dither: false,
    };
    let plan = RenderPlan {
        options,
        project_rate: RATE,
        start: 0,
        end: source.duration,
        mix_path: output.to_owned(),
        stem_paths: Vec::new(),
        measure: false,
    };
    render_files(&mut source, &plan, |_| true).unwrap();
}

fn is_track(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("track-"))
}

/// Deterministic test material: each track a tone plus noise, about −30 dBFS, so 32 of them sum
/// without clipping.
fn write_tracks(dir: &Path, tracks: usize, seconds: usize) -> Vec<PathBuf> {
    (0..tracks)
        .map(|t| {
            let path = dir.join(format!("track-{t:02}.wav"));
            let frames = seconds * RATE as usize;
            let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ t as u64;
            let hz = 110.0 * (1.0 + t as f32 * 0.37);
            let mut writer = wav::Writer::create(&path, 2, RATE, SampleFormat::Int24).unwrap();
            let mut block = Vec::with_capacity(2 * RATE as usize);
            for start in (0..frames).step_by(RATE as usize) {
                block.clear();
                for i in start..(start + RATE as usize).min(frames) {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let noise = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                    let tone = (std::f32::consts::TAU * hz * i as f32 / RATE as f32).sin();
                    block.push(0.02 * tone + 0.01 * noise);
                    block.push(0.02 * tone - 0.01 * noise);
                }
                writer.write(&block).unwrap();
            }
            writer.finish().unwrap();
            path
        })
        .collect()
}

fn total_mb(paths: &[PathBuf]) -> u64 {
    paths.iter().map(|p| std::fs::metadata(p).unwrap().len()).sum::<u64>() / 1_000_000
}

/// The largest sample difference between two 24-bit WAVs of the same length, in LSB.
fn largest_difference(a: &Path, b: &Path) -> i64 {
    let (mut a, mut b) = (WavReader::open(a).unwrap(), WavReader::open(b).unwrap());
    assert_eq!(a.info().frames, b.info().frames, "both mixes have the same length");
    let (mut x, mut y) = (vec![0.0f32; 2 * 65_536], vec![0.0f32; 2 * 65_536]);
    let mut largest = 0i64;
    let mut at = 0;
    loop {
        let (n, m) = (a.read_frames(at, &mut x).unwrap(), b.read_frames(at, &mut y).unwrap());
        assert_eq!(n, m);
        if n == 0 {
            return largest;
        }
        for (p, q) in x[..n * 2].iter().zip(&y[..n * 2]) {
            largest = largest.max(((p - q) * 8_388_608.0).round().abs() as i64);
        }
        at += n as u64;
    }
}

/// A mixdown job of the same project through `serve`: API call to downloaded file.
async fn job_end_to_end(inputs: &[PathBuf], seconds: usize) {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings { port: 0, data_dir: dir.path().to_path_buf(), ..Settings::default() };
    let app = Application::start(settings, Role::Serve).await.unwrap();
    let base = format!("http://{}", app.address());
    let http = reqwest::Client::new();
    let post = |path: String, body: Value| {
        let (http, url) = (http.clone(), format!("{base}{path}"));
        async move { http.post(url).json(&body).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let project = post("/api/projects".into(), json!({"name": "Bench", "sample_rate": RATE})).await;
    let project_id: audiolab_domain::ProjectId = project["id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap().into();
    let database = format!("sqlite:{}", dir.path().join("audiolab.db").display());
    let store = audiolab_store::Store::connect(&database).await.unwrap();
    for (index, input) in inputs.iter().enumerate() {
        let track = post("/api/tracks".into(), json!({"project_id": project_id, "name": format!("T{index}"), "track_index": index, "volume": std::f64::consts::SQRT_2})).await;
        let new = audiolab_domain::clip::NewClip {
            project_id,
            track_id: track["id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap().into(),
            take_id: None,
            name: "Bench".into(),
            start: audiolab_domain::Frames(0),
            length: audiolab_domain::Frames((seconds * RATE as usize) as i64),
            source_sample_rate: RATE,
            channels: 2,
        };
        let mut clip = audiolab_domain::clip::Clip::create(new, audiolab_domain::now()).unwrap();
        let key = format!("projects/{project_id}/clips/{}.wav", clip.id);
        let path = dir.path().join("audio").join(&key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::copy(input, &path).unwrap();
        clip.audio_key = Some(key);
        clip.status = audiolab_domain::clip::ClipStatus::Ready;
        store.insert_clip(&clip).await.unwrap();
    }
    let clock = Instant::now();
    let submitted = post(format!("/api/projects/{project_id}/mixdown"), json!({"format": "wav24"})).await;
    let job = submitted["job"]["id"].as_str().unwrap_or_else(|| panic!("{submitted}")).to_owned();
    let row = loop {
        let row: Value = http.get(format!("{base}/api/jobs/{job}")).send().await.unwrap().json().await.unwrap();
        if row["status"] != "queued" && row["status"] != "running" {
            break row;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(row["status"], "succeeded", "{row}");
    let rendered = clock.elapsed().as_secs_f64();
    let bytes = http.get(format!("{base}/api/mixdowns/{job}/file")).send().await.unwrap().bytes().await.unwrap();
    let total = clock.elapsed().as_secs_f64();
    println!(
        "\n  mixdown job end to end (serve, {} tracks, 24-bit WAV, with loudness metering): {:.3} s to succeeded, \
         {:.3} s to the downloaded file ({} MB); measured {:.1} LUFS, {:.1} dBTP",
        inputs.len(),
        rendered,
        total,
        bytes.len() / 1_000_000,
        row["result"]["loudness_lufs"].as_f64().unwrap_or(f64::NAN),
        row["result"]["true_peak_dbtp"].as_f64().unwrap_or(f64::NAN),
    );
    app.stop().await;
}
