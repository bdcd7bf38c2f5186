//! The render pool: engines that neither play nor record cost no render; a command wakes an
//! idle engine for exactly one block; a rolling engine is rendered at the block pace with its
//! read-ahead keeping up, and leaves the schedule when it stops.

use audiolab_dsp::render::ClipPlacement;
use audiolab_media::wav::{self, SampleFormat, WavReader};
use audiolab_node::engine::backend::ClockStats;
use audiolab_node::engine::pool::{PoolEntry, RenderPool};
use audiolab_node::engine::{self, ClipSource, Command, EngineHandle, TrackClips, TransportState};
use std::sync::Arc;
use std::time::{Duration, Instant};

const RATE: u32 = 48_000;

/// An engine of one track with a 10 s clip, placed in `pool`.
fn engine_in(pool: &RenderPool, dir: &std::path::Path) -> (PoolEntry, EngineHandle) {
    let path = dir.join("clip.wav");
    if !path.exists() {
        wav::write(&path, 1, RATE, SampleFormat::Float32, &vec![0.1f32; 480_000]).unwrap();
    }
    let placement = ClipPlacement {
        start: 0,
        length: 480_000,
        source_offset: 0,
        gain: 1.0,
        fade_in: 0,
        fade_out: 0,
        channels: 1,
        crossfaded: false,
    };
    let clip = ClipSource { placement, reader: WavReader::open(&path).unwrap() };
    let (core, handle, prefetcher) = engine::create(RATE, 480_000, vec![TrackClips { slot: 0, clips: vec![clip] }]);
    let entry = pool.add(prefetcher).unwrap();
    entry.render(core, RATE, Arc::new(ClockStats::default())).unwrap();
    (entry, handle)
}

/// Waits until the engine has applied command `number`.
fn applied(handle: &EngineHandle, number: u64) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while handle.shared.applied() < number {
        assert!(Instant::now() < deadline, "command {number} never applied");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn idle_engines_cost_no_render_and_a_command_wakes_one_for_one_block() {
    let dir = tempfile::tempdir().unwrap();
    let pool = RenderPool::new(2).unwrap();
    assert_eq!(pool.threads(), 4, "two lanes of a render and a read-ahead thread");
    let engines: Vec<_> = (0..20).map(|_| engine_in(&pool, dir.path())).collect();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(pool.renders(), 0, "20 loaded engines that do nothing render nothing");

    let (_, handle) = &engines[7];
    let number = handle.send(Command::Seek(24_000)).unwrap();
    applied(handle, number);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(pool.renders(), 1, "the seek took one block, and the engine slept again");
    assert_eq!(handle.shared.position(), 24_000);
    assert_eq!(handle.shared.state(), TransportState::Stopped);
}

#[test]
fn a_rolling_engine_renders_at_the_block_pace_until_it_pauses() {
    let dir = tempfile::tempdir().unwrap();
    let pool = RenderPool::new(1).unwrap();
    let (_entry, handle) = engine_in(&pool, dir.path());
    let _idle: Vec<_> = (0..10).map(|_| engine_in(&pool, dir.path())).collect();
    let number = handle.send(Command::Play { from: Some(0) }).unwrap();
    applied(&handle, number);
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(400));
    let position = handle.shared.position();
    let elapsed = started.elapsed().as_secs_f64();
    // Real-time pace, give or take a few blocks of scheduling.
    let expected = elapsed * f64::from(RATE);
    assert!((position as f64 - expected).abs() < 8.0 * 512.0, "position {position}, expected ≈ {expected}");
    assert_eq!(handle.shared.underruns(), 0, "the read-ahead, woken on demand, kept up");

    let number = handle.send(Command::Pause).unwrap();
    applied(&handle, number);
    let renders = pool.renders();
    let at = handle.shared.position();
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(pool.renders(), renders, "a paused engine is not rendered");
    assert_eq!(handle.shared.position(), at);
}

#[test]
fn an_engine_leaving_the_pool_is_no_longer_rendered() {
    let dir = tempfile::tempdir().unwrap();
    let pool = RenderPool::new(1).unwrap();
    let (entry, handle) = engine_in(&pool, dir.path());
    let number = handle.send(Command::Play { from: Some(0) }).unwrap();
    applied(&handle, number);
    drop(entry);
    std::thread::sleep(Duration::from_millis(50));
    let renders = pool.renders();
    let at = handle.shared.position();
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(pool.renders(), renders);
    assert_eq!(handle.shared.position(), at, "the engine left the pool and stands still");
}
