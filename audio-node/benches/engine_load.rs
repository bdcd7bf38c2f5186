//! How many projects of 32 stereo tracks one node plays in real time on the mock clock.
//!
//! `cargo bench -p audiolab-node --bench engine_load [-- --seconds S --projects 16,32,64]`
//!
//! For each project count N, a fresh child process (so peak RSS is its own) starts N engine
//! sessions, each with 32 tracks of real 24-bit stereo WAV files looping endlessly, and runs
//! them for S seconds at real-time pace. It reports late blocks (a block rendered after it was
//! due), read-ahead underruns, render time per block as a fraction of the block's duration,
//! CPU use and peak RSS. The largest N with no late block and no underrun is the capacity.

use audiolab_dsp::render::ClipPlacement;
use audiolab_dsp::transport::ActiveLoop;
use audiolab_media::wav::{self, SampleFormat, WavReader};
use audiolab_node::backend::{ClockStats, spawn_mock_clock, spawn_reader};
use audiolab_node::engine::{self, BLOCK_FRAMES, ClipSource, Command, TrackClips};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

const RATE: u32 = 48_000;
const TRACKS: usize = 32;
const CLIP_SECONDS: usize = 10;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let projects: usize = args[i + 1].parse().unwrap();
        let dir = PathBuf::from(&args[i + 2]);
        let seconds: f64 = args[i + 3].parse().unwrap();
        child(projects, &dir, seconds);
        return;
    }
    let value = |flag: &str| args.iter().position(|a| a == flag).map(|i| args[i + 1].clone());
    let seconds = value("--seconds").unwrap_or_else(|| "5".into());
    let counts: Vec<usize> = value("--projects")
        .unwrap_or_else(|| "8,16,32,48,64,80,96,128".into())
        .split(',')
        .map(|n| n.parse().unwrap())
        .collect();

    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    write_fixtures(dir.path());
    println!(
        "fixtures: {TRACKS} stereo 24-bit {RATE} Hz WAV files of {CLIP_SECONDS} s ({:.1} s to write)",
        started.elapsed().as_secs_f64()
    );
    println!(
        "block: {BLOCK_FRAMES} frames = {:.2} ms; {seconds} s per run; {} cores",
        BLOCK_FRAMES as f64 * 1000.0 / f64::from(RATE),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!();
    println!(
        "{:>8} {:>7} {:>9} {:>11} {:>10} {:>15} {:>15} {:>9} {:>12}",
        "projects", "tracks", "blocks", "late", "underruns", "render max/blk", "render mean/blk", "cpu", "peak RSS MB"
    );
    let mut capacity = 0;
    for n in counts {
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--child", &n.to_string(), &dir.path().display().to_string(), &seconds])
            .output()
            .unwrap();
        let line = String::from_utf8_lossy(&output.stdout);
        let fields: Vec<f64> = line.split_whitespace().map(|f| f.parse().unwrap_or(f64::NAN)).collect();
        if fields.len() < 7 {
            println!("{n:>8} failed: {}", String::from_utf8_lossy(&output.stderr));
            break;
        }
        let [blocks, late, underruns, max_ratio, mean_ratio, cpu, rss_kb] = fields[..7] else { unreachable!() };
        println!(
            "{n:>8} {:>7} {blocks:>9} {late:>11} {underruns:>10} {:>14.1}% {:>14.2}% {:>8.2}c {:>12.1}",
            n * TRACKS,
            max_ratio * 100.0,
            mean_ratio * 100.0,
            cpu,
            rss_kb / 1024.0
        );
        if late == 0.0 && underruns == 0.0 {
            capacity = capacity.max(n);
        }
    }
    println!();
    println!("largest project count with no late block and no underrun: {capacity} ({} tracks)", capacity * TRACKS);
}

fn fixture(dir: &Path, track: usize) -> PathBuf {
    dir.join(format!("track{track:02}.wav"))
}

fn write_fixtures(dir: &Path) {
    let frames = RATE as usize * CLIP_SECONDS;
    for track in 0..TRACKS {
        let hz = 55.0 * (1.0 + track as f32 * 0.25);
        let samples: Vec<f32> = (0..frames * 2)
            .map(|i| {
                let t = (i / 2) as f32 / RATE as f32;
                0.3 * (std::f32::consts::TAU * hz * t + (i % 2) as f32).sin()
            })
            .collect();
        wav::write(&fixture(dir, track), 2, RATE, SampleFormat::Int24, &samples).unwrap();
    }
}

fn child(projects: usize, dir: &Path, seconds: f64) {
    let duration = (RATE as usize * CLIP_SECONDS) as i64;
    let stats = Arc::new(ClockStats::default());
    let mut sessions = Vec::new();
    let mut handles = Vec::new();
    for _ in 0..projects {
        let tracks = (0..TRACKS)
            .map(|slot| {
                let reader = WavReader::open(&fixture(dir, slot)).unwrap();
                let placement = ClipPlacement {
                    start: 0,
                    length: duration,
                    source_offset: 0,
                    gain: 0.5,
                    fade_in: 480,
                    fade_out: 480,
                    channels: 2,
                };
                TrackClips { slot, clips: vec![ClipSource { placement, reader }] }
            })
            .collect();
        let (core, handle, prefetcher) = engine::create(RATE, duration, tracks);
        handle.send(Command::SetLoop(Some(ActiveLoop::new(0, duration, None)))).unwrap();
        handle.send(Command::Play { from: None }).unwrap();
        let reader = spawn_reader(prefetcher).unwrap();
        let clock = spawn_mock_clock(core, RATE, stats.clone(), |_| {}).unwrap();
        sessions.push((clock, reader));
        handles.push(handle);
    }
    // Let every session locate and start, then measure from a clean slate.
    std::thread::sleep(Duration::from_millis(500));
    let underruns_before: u64 = handles.iter().map(|h| h.shared.underruns()).sum();
    stats.late_blocks.store(0, Relaxed);
    stats.blocks.store(0, Relaxed);
    stats.max_render_ns.store(0, Relaxed);
    stats.total_render_ns.store(0, Relaxed);
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let wall = started.elapsed().as_secs_f64();
    let cpu = (cpu_seconds() - cpu_before) / wall;
    let blocks = stats.blocks.load(Relaxed);
    let late = stats.late_blocks.load(Relaxed);
    let underruns = handles.iter().map(|h| h.shared.underruns()).sum::<u64>() - underruns_before;
    let period_ns = BLOCK_FRAMES as f64 * 1e9 / f64::from(RATE);
    let max_ratio = stats.max_render_ns.load(Relaxed) as f64 / period_ns;
    let mean_ratio = stats.total_render_ns.load(Relaxed) as f64 / blocks.max(1) as f64 / period_ns;
    let rss = peak_rss_kb();
    drop(sessions);
    println!("{blocks} {late} {underruns} {max_ratio} {mean_ratio} {cpu} {rss}");
}

/// User + system CPU seconds of this process, from /proc.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name; 100 ticks/s.
    (ticks(11) + ticks(12)) / 100.0
}

fn peak_rss_kb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}
