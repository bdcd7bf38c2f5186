//! What one node's render pool costs and carries on the mock clock, three ways:
//!
//! - **idle**: N loaded projects of 8 tracks that neither play nor record — CPU, threads, RSS;
//! - **play**: N rolling projects of 32 stereo tracks of real 24-bit WAV files looping
//!   endlessly — late blocks (rendered after they were due), read-ahead underruns, render time
//!   per block as a fraction of the block, CPU, peak RSS; the largest N with no late block and
//!   no underrun is the capacity;
//! - **record**: N projects each recording its own virtual microphone while 8 tracks play —
//!   frames the captures dropped.
//!
//! `cargo bench -p audiolab-node --bench engine_load [-- --seconds S --idle 1000
//!  --projects 64,128,192 --record 64]`
//!
//! Each run is a fresh child process, so its threads and peak RSS are its own.

use audiolab_dsp::input::VirtualSignal;
use audiolab_dsp::render::ClipPlacement;
use audiolab_dsp::transport::ActiveLoop;
use audiolab_media::wav::{self, SampleFormat, WavReader};
use audiolab_node::engine::backend::ClockStats;
use audiolab_node::engine::pool::{PoolEntry, RenderPool};
use audiolab_node::engine::{self, BLOCK_FRAMES, Capture, CaptureMeter, ClipSource, Command, InputSource, TrackClips};
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
        let mode = args[i + 1].clone();
        let projects: usize = args[i + 2].parse().unwrap();
        let dir = PathBuf::from(&args[i + 3]);
        let seconds: f64 = args[i + 4].parse().unwrap();
        child(&mode, projects, &dir, seconds);
        return;
    }
    let value = |flag: &str| args.iter().position(|a| a == flag).map(|i| args[i + 1].clone());
    let seconds = value("--seconds").unwrap_or_else(|| "5".into());
    let list = |flag: &str, default: &str| -> Vec<usize> {
        value(flag)
            .unwrap_or_else(|| default.into())
            .split(',')
            .filter(|n| !n.is_empty())
            .map(|n| n.parse().unwrap())
            .collect()
    };
    let idle = list("--idle", "1000");
    let playing = list("--projects", "64,128,192,224,256");
    let recording = list("--record", "64");

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
    let run = |mode: &str, n: usize| -> Option<Vec<f64>> {
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--child", mode, &n.to_string(), &dir.path().display().to_string(), &seconds])
            .output()
            .unwrap();
        let line = String::from_utf8_lossy(&output.stdout);
        let fields: Vec<f64> = line.split_whitespace().map(|f| f.parse().unwrap_or(f64::NAN)).collect();
        if fields.len() < 9 {
            println!("{mode} {n} failed: {}", String::from_utf8_lossy(&output.stderr));
            return None;
        }
        Some(fields)
    };

    println!();
    println!("idle: loaded projects of 8 tracks that neither play nor record");
    println!("{:>8} {:>9} {:>8} {:>12}", "projects", "cpu", "threads", "peak RSS MB");
    for n in idle {
        let Some(f) = run("idle", n) else { break };
        println!("{n:>8} {:>8.2}% {:>8} {:>12.1}", f[5] * 100.0, f[7], f[6] / 1024.0);
    }

    println!();
    println!("play: rolling projects of {TRACKS} stereo tracks");
    println!(
        "{:>8} {:>7} {:>9} {:>11} {:>10} {:>15} {:>15} {:>9} {:>8} {:>12}",
        "projects",
        "tracks",
        "blocks",
        "late",
        "underruns",
        "render max/blk",
        "render mean/blk",
        "cpu",
        "threads",
        "peak RSS MB"
    );
    let mut capacity = 0;
    for n in playing {
        let Some(f) = run("play", n) else { break };
        let [blocks, late, underruns, max_ratio, mean_ratio, cpu, rss_kb, threads, _] = f[..9] else { unreachable!() };
        println!(
            "{n:>8} {:>7} {blocks:>9} {late:>11} {underruns:>10} {:>14.1}% {:>14.2}% {:>8.2}c {threads:>8} {:>12.1}",
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
    println!("largest project count with no late block and no underrun: {capacity} ({} tracks)", capacity * TRACKS);

    println!();
    println!("record: projects each recording its own virtual microphone while 8 tracks play");
    println!(
        "{:>8} {:>11} {:>10} {:>15} {:>9} {:>9}",
        "projects", "late", "underruns", "dropped frames", "cpu", "threads"
    );
    for n in recording {
        let Some(f) = run("record", n) else { break };
        println!("{n:>8} {:>11} {:>10} {:>15} {:>8.2}c {:>9}", f[1], f[2], f[8], f[5], f[7]);
    }
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

/// One project's tracks: `tracks` of the fixtures, each a clip over the whole loop.
fn project_tracks(dir: &Path, tracks: usize, duration: i64) -> Vec<TrackClips> {
    (0..tracks)
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
                crossfaded: false,
            };
            TrackClips { slot, clips: vec![ClipSource { placement, reader }] }
        })
        .collect()
}

/// Runs `projects` engines in `mode` for `seconds` and prints one line of figures: blocks,
/// late blocks, underruns, max and mean render per block (fraction of a block), CPU (cores),
/// peak RSS (kB), threads, frames dropped by captures.
fn child(mode: &str, projects: usize, dir: &Path, seconds: f64) {
    let duration = (RATE as usize * CLIP_SECONDS) as i64;
    let stats = Arc::new(ClockStats::default());
    let pool = RenderPool::per_core().unwrap();
    let mut entries: Vec<PoolEntry> = Vec::new();
    let mut handles = Vec::new();
    let mut meters: Vec<Arc<CaptureMeter>> = Vec::new();
    let mut rings = Vec::new();
    for id in 0..projects {
        let tracks = match mode {
            "play" => TRACKS,
            _ => 8,
        };
        let (core, handle, prefetcher) = engine::create(RATE, duration, project_tracks(dir, tracks, duration));
        let entry = pool.add(prefetcher).unwrap();
        if mode != "idle" {
            handle.send(Command::SetLoop(Some(ActiveLoop::new(0, duration, None)))).unwrap();
            handle.send(Command::Play { from: None }).unwrap();
        }
        if mode == "record" {
            let (capture, ring, meter) =
                Capture::new(id as u64, InputSource::Virtual(VirtualSignal::Sine), RATE, None, None);
            handle.send(Command::StartCapture(capture)).unwrap();
            meters.push(meter);
            rings.push(ring);
        }
        entry.render(core, RATE, stats.clone()).unwrap();
        entries.push(entry);
        handles.push(handle);
    }
    // The captures' writers, as one thread draining every ring every 20 ms.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let drained = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut total = 0u64;
            while !stop.load(Relaxed) {
                for ring in &mut rings {
                    let n = ring.slots();
                    if let Ok(chunk) = ring.read_chunk(n) {
                        total += chunk.len() as u64;
                        chunk.commit_all();
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            total
        })
    };
    // Let every session locate and start, then measure from a clean slate.
    std::thread::sleep(Duration::from_millis(500));
    let underruns_before: u64 = handles.iter().map(|h| h.shared.underruns()).sum();
    let dropped_before: u64 = meters.iter().map(|m| m.dropped()).sum();
    stats.late_blocks.store(0, Relaxed);
    stats.blocks.store(0, Relaxed);
    stats.max_render_ns.store(0, Relaxed);
    stats.total_render_ns.store(0, Relaxed);
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let wall = started.elapsed().as_secs_f64();
    let cpu = (cpu_seconds() - cpu_before) / wall;
    let threads = proc_status("Threads:");
    let blocks = stats.blocks.load(Relaxed);
    let late = stats.late_blocks.load(Relaxed);
    let underruns = handles.iter().map(|h| h.shared.underruns()).sum::<u64>() - underruns_before;
    let dropped = meters.iter().map(|m| m.dropped()).sum::<u64>() - dropped_before;
    let period_ns = BLOCK_FRAMES as f64 * 1e9 / f64::from(RATE);
    let max_ratio = stats.max_render_ns.load(Relaxed) as f64 / period_ns;
    let mean_ratio = stats.total_render_ns.load(Relaxed) as f64 / blocks.max(1) as f64 / period_ns;
    let rss = proc_status("VmHWM:");
    stop.store(true, Relaxed);
    let _ = drained.join();
    drop(entries);
    println!("{blocks} {late} {underruns} {max_ratio} {mean_ratio} {cpu} {rss} {threads} {dropped}");
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

/// A number from /proc/self/status (`VmHWM:` in kB, `Threads:`).
fn proc_status(key: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}
