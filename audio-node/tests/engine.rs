//! The engine driven by a manually stepped clock: positions, transport, loops and mixer changes
//! checked in frames and sample values.

use audiolab_dsp::mix::TrackMix;
use audiolab_dsp::render::ClipPlacement;
use audiolab_dsp::transport::ActiveLoop;
use audiolab_media::wav::{self, SampleFormat, WavReader};
use audiolab_node::engine::{
    self, BLOCK_FRAMES, ClipSource, Command, EngineCore, EngineEvent, EngineHandle, Prefetcher, TrackClips,
    TransportState,
};

const RATE: u32 = 48_000;
const CENTRE: f32 = std::f32::consts::FRAC_1_SQRT_2;

struct Rig {
    core: EngineCore,
    handle: EngineHandle,
    prefetcher: Prefetcher,
    _dir: tempfile::TempDir,
}

/// A mono source whose sample at frame `i` is `value(i)`.
fn mono_source(
    dir: &std::path::Path,
    name: &str,
    frames: usize,
    value: impl Fn(usize) -> f32,
    placement: ClipPlacement,
) -> ClipSource {
    let path = dir.join(name);
    let samples: Vec<f32> = (0..frames).map(value).collect();
    wav::write(&path, 1, RATE, SampleFormat::Float32, &samples).unwrap();
    ClipSource { placement, reader: WavReader::open(&path).unwrap() }
}

fn placement(start: i64, length: i64) -> ClipPlacement {
    ClipPlacement {
        start,
        length,
        source_offset: 0,
        gain: 1.0,
        fade_in: 0,
        fade_out: 0,
        channels: 1,
        crossfaded: false,
    }
}

/// Ramp value of source frame `i`: distinct for every frame, so any misplaced sample shows.
fn ramp(i: usize) -> f32 {
    (i % 100_000) as f32 / 100_000.0
}

impl Rig {
    fn new(tracks: impl FnOnce(&std::path::Path) -> Vec<(usize, Vec<ClipSource>)>, duration: i64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let tracks = tracks(dir.path()).into_iter().map(|(slot, clips)| TrackClips { slot, clips }).collect();
        let (core, handle, prefetcher) = engine::create(RATE, duration, tracks);
        Self { core, handle, prefetcher, _dir: dir }
    }

    /// One block of the manual clock: commands, read-ahead, render.
    fn step(&mut self) -> Vec<f32> {
        let mut out = vec![0.0; BLOCK_FRAMES * 2];
        self.core.prepare();
        self.prefetcher.fill();
        self.core.render(&mut out);
        out
    }

    fn steps(&mut self, blocks: usize) -> Vec<f32> {
        (0..blocks).flat_map(|_| self.step()).collect()
    }

    fn send(&self, command: Command) {
        self.handle.send(command).unwrap();
    }

    fn position(&self) -> i64 {
        self.handle.shared.position()
    }

    fn state(&self) -> TransportState {
        self.handle.shared.state()
    }
}

fn left(out: &[f32]) -> Vec<f32> {
    out.iter().step_by(2).copied().collect()
}

#[test]
fn playing_advances_one_block_per_step_and_plays_the_clip_samples() {
    let mut rig =
        Rig::new(|dir| vec![(0, vec![mono_source(dir, "a.wav", 48_000, ramp, placement(1000, 48_000))])], 49_000);
    assert_eq!(rig.steps(2).iter().filter(|s| **s != 0.0).count(), 0, "stopped: silence");
    assert_eq!(rig.position(), 0);
    rig.send(Command::Play { from: None });
    let out = rig.steps(4);
    assert_eq!(rig.position(), 4 * BLOCK_FRAMES as i64);
    assert_eq!(rig.state(), TransportState::Playing);
    let l = left(&out);
    assert!(l[..1000].iter().all(|s| *s == 0.0), "silence before the clip starts");
    for frame in [1000usize, 1001, 1500, 2047] {
        assert_eq!(l[frame], ramp(frame - 1000) * CENTRE, "frame {frame}");
    }
    assert_eq!(out[1500 * 2], out[1500 * 2 + 1], "centred: equal in both channels");
    assert_eq!(rig.handle.shared.underruns(), 0);
}

#[test]
fn pause_keeps_the_position_stop_rewinds_and_seek_clamps() {
    let mut rig =
        Rig::new(|dir| vec![(0, vec![mono_source(dir, "a.wav", 96_000, ramp, placement(0, 96_000))])], 96_000);
    rig.send(Command::Play { from: Some(10_000) });
    rig.steps(3);
    assert_eq!(rig.position(), 10_000 + 3 * 512);
    rig.send(Command::Pause);
    rig.steps(5);
    assert_eq!((rig.state(), rig.position()), (TransportState::Paused, 10_000 + 3 * 512));
    rig.send(Command::Resume);
    let out = rig.step();
    assert_eq!(left(&out)[0], ramp(10_000 + 3 * 512) * CENTRE, "resume continues with the next sample");
    rig.send(Command::Seek(1_000_000));
    rig.step();
    assert_eq!(rig.state(), TransportState::Stopped, "seek clamps to the end, and the end stops");
    rig.send(Command::Seek(-50));
    rig.step();
    assert_eq!(rig.position(), 0);
    rig.send(Command::Play { from: Some(20_000) });
    rig.steps(2);
    rig.send(Command::Stop);
    rig.step();
    assert_eq!((rig.state(), rig.position()), (TransportState::Stopped, 0));
}

#[test]
fn the_end_of_the_last_clip_stops_the_transport() {
    let mut rig = Rig::new(|dir| vec![(0, vec![mono_source(dir, "a.wav", 1200, |_| 0.5, placement(0, 1200))])], 1200);
    rig.send(Command::Play { from: None });
    rig.steps(3);
    assert_eq!((rig.state(), rig.position()), (TransportState::Stopped, 0));
    assert!(rig.handle.drain_events().contains(&EngineEvent::ReachedEnd));
}

#[test]
fn a_loop_wraps_sample_exactly_and_counts_its_passes() {
    // Loop [1000, 5800): 4800 frames, not a multiple of the block, repeat_count 2 → 3 passes.
    let mut rig =
        Rig::new(|dir| vec![(3, vec![mono_source(dir, "a.wav", 20_000, ramp, placement(0, 20_000))])], 20_000);
    rig.send(Command::SetLoop(Some(ActiveLoop::new(1000, 5800, Some(2)))));
    rig.send(Command::Play { from: None });
    let blocks = 30; // 15_360 frames: 1000 + 3 × 4800 = 15_400 would be the end of pass 3
    let out = left(&rig.steps(blocks));
    // Expected playback order: 0..5800, then 1000..5800 twice, then on past the loop.
    let expected: Vec<i64> = (0..5800).chain(1000..5800).chain(1000..5800).chain(5800..).take(blocks * 512).collect();
    for (n, (sample, frame)) in out.iter().zip(&expected).enumerate() {
        assert_eq!(*sample, ramp(*frame as usize) * CENTRE, "output frame {n} should be timeline frame {frame}");
    }
    let events = rig.handle.drain_events();
    let wraps: Vec<_> = events
        .iter()
        .filter_map(|e| if let EngineEvent::LoopWrapped { pass } = e { Some(*pass) } else { None })
        .collect();
    assert_eq!(wraps, [2, 3]);
    assert!(!events.contains(&EngineEvent::LoopFinished), "pass 3 is still playing");
    rig.steps(1);
    assert!(rig.handle.drain_events().contains(&EngineEvent::LoopFinished));
    assert_eq!(rig.handle.shared.loop_pass(), None);
    assert_eq!(rig.handle.shared.underruns(), 0, "a wrap never starves the read-ahead");
}

#[test]
fn an_endless_loop_keeps_playing_past_the_end_of_the_clips() {
    let mut rig = Rig::new(|dir| vec![(0, vec![mono_source(dir, "a.wav", 6000, ramp, placement(0, 6000))])], 6000);
    rig.send(Command::SetLoop(Some(ActiveLoop::new(0, 6000, None))));
    rig.send(Command::Play { from: None });
    rig.steps(100);
    assert_eq!(rig.state(), TransportState::Playing);
    assert_eq!(rig.position(), (100 * 512) % 6000);
    assert_eq!(rig.handle.shared.loop_pass(), Some(1 + (100 * 512 / 6000) as u32));
}

#[test]
fn mixer_changes_are_heard_in_the_next_block() {
    let mut rig = Rig::new(
        |dir| {
            vec![
                (0, vec![mono_source(dir, "a.wav", 48_000, |_| 0.5, placement(0, 48_000))]),
                (1, vec![mono_source(dir, "b.wav", 48_000, |_| 0.25, placement(0, 48_000))]),
            ]
        },
        48_000,
    );
    rig.send(Command::Play { from: None });
    let both = rig.step();
    assert!((both[0] - 0.75 * CENTRE).abs() < 1e-6, "{}", both[0]);
    let shared = rig.handle.shared.clone();
    shared.set_mix(0, TrackMix { volume: 2.0, pan: -1.0, ..TrackMix::default() });
    let out = rig.step();
    assert_eq!((out[0], out[1]), (1.0 + 0.25 * CENTRE, 0.25 * CENTRE));
    shared.set_mix(1, TrackMix { soloed: true, ..TrackMix::default() });
    let out = rig.step();
    assert_eq!((out[0], out[1]), (0.25 * CENTRE, 0.25 * CENTRE), "solo silences track 0");
    shared.set_mix(1, TrackMix { soloed: true, muted: true, ..TrackMix::default() });
    assert!(rig.step().iter().all(|s| *s == 0.0), "muted soloed track: only soloed tracks may sound, and it is muted");
}

#[test]
fn a_jump_holds_the_playhead_until_its_audio_is_read() {
    let mut rig =
        Rig::new(|dir| vec![(0, vec![mono_source(dir, "a.wav", 48_000, ramp, placement(0, 48_000))])], 48_000);
    rig.prefetcher.fill();
    rig.send(Command::Play { from: Some(24_000) });
    let mut out = vec![0.0; BLOCK_FRAMES * 2];
    rig.core.process(&mut out);
    assert!(out.iter().all(|s| *s == 0.0), "locating: silence");
    assert_eq!((rig.position(), rig.handle.shared.underruns()), (24_000, 0), "the playhead waits; no underrun");
    let out = rig.step();
    assert_eq!(left(&out)[0], ramp(24_000) * CENTRE, "then rolls from exactly the sought frame");
}

#[test]
fn a_standing_engine_reads_ahead_a_little_and_a_rolling_one_all_the_way() {
    let mut rig =
        Rig::new(|dir| vec![(0, vec![mono_source(dir, "a.wav", 48_000, ramp, placement(0, 48_000))])], 48_000);
    assert_eq!(rig.prefetcher.fill(), engine::STANDING_BLOCKS, "standing: a gapless start's worth");
    assert_eq!(rig.prefetcher.fill(), 0);
    rig.send(Command::Play { from: None });
    let out = rig.step();
    assert_eq!(left(&out)[1], ramp(1) * CENTRE, "the first block plays at once");
    assert_eq!(
        rig.prefetcher.fill(),
        engine::PREFETCH_BLOCKS - engine::STANDING_BLOCKS + 1,
        "rolling: full read-ahead"
    );
}

#[test]
fn a_late_read_ahead_plays_silence_keeps_time_and_recovers() {
    let mut rig =
        Rig::new(|dir| vec![(0, vec![mono_source(dir, "a.wav", 48_000, ramp, placement(0, 48_000))])], 48_000);
    rig.send(Command::Play { from: None });
    rig.steps(1);
    // Rolling now, the read-ahead fills up to PREFETCH_BLOCKS blocks.
    rig.prefetcher.fill();
    // The audio thread renders one block more than that while the prefetcher is stalled, so
    // the last block finds nothing.
    let mut out = vec![0.0; BLOCK_FRAMES * 2];
    for _ in 0..=engine::PREFETCH_BLOCKS {
        rig.core.process(&mut out);
    }
    assert!(out.iter().all(|s| *s == 0.0), "the last one had nothing to play");
    assert_eq!(rig.handle.shared.underruns(), 1);
    let expected = (engine::PREFETCH_BLOCKS as i64 + 2) * 512;
    assert_eq!(rig.position(), expected, "time goes on during an underrun");
    let out = rig.step();
    assert_eq!(left(&out)[0], ramp(expected as usize) * CENTRE, "the next block is back in place");
}

fn drain(ring: &mut rtrb::Consumer<f32>) -> Vec<f32> {
    std::iter::from_fn(|| ring.pop().ok()).collect()
}

#[test]
fn a_loopback_capture_holds_exactly_what_the_engine_played_and_where() {
    let mut rig =
        Rig::new(|dir| vec![(0, vec![mono_source(dir, "a.wav", 48_000, ramp, placement(0, 48_000))])], 48_000);
    rig.send(Command::Play { from: Some(1_000) });
    rig.steps(3);
    let (capture, mut ring, meter) = engine::Capture::new(7, engine::InputSource::Loopback, RATE, None, None);
    let started_at = rig.position();
    rig.send(Command::StartCapture(capture));
    let played = rig.steps(4);
    rig.send(Command::StopCapture(7));
    rig.steps(2);

    assert!(meter.finished());
    assert_eq!(meter.first_frame(), Some(started_at));
    assert_eq!(meter.frames(), 4 * BLOCK_FRAMES as u64);
    let captured = drain(&mut ring);
    assert_eq!(captured, played, "the capture is the engine's output, sample for sample");
    // And that output is the clip at the timeline frames the meter reports.
    let first = meter.first_frame().unwrap() as usize;
    assert_eq!(left(&captured)[..5], [0, 1, 2, 3, 4].map(|i| ramp(first + i) * CENTRE));
}

#[test]
fn a_virtual_microphone_capture_is_its_sine_from_the_first_played_frame() {
    let mut rig = Rig::new(|_| vec![], 96_000);
    let (capture, mut ring, meter) = engine::Capture::new(
        1,
        engine::InputSource::Virtual(audiolab_dsp::input::VirtualSignal::Sine),
        RATE,
        None,
        None,
    );
    // Started while stopped: nothing is captured until the transport rolls.
    rig.send(Command::StartCapture(capture));
    rig.send(Command::HoldAtEnd(true));
    rig.steps(2);
    assert_eq!(meter.frames(), 0);
    rig.send(Command::Play { from: Some(24_000) });
    rig.steps(10);
    rig.send(Command::StopCapture(1));
    rig.steps(1);

    let captured = drain(&mut ring);
    assert_eq!(meter.first_frame(), Some(24_000));
    assert_eq!(captured.len() as u64, meter.frames(), "mono: one sample per frame");
    let expected: Vec<f32> =
        (0..captured.len() as u64).map(|n| audiolab_dsp::input::VirtualSignal::Sine.sample(n, 0, RATE)).collect();
    assert_eq!(captured, expected);
    assert!(meter.take_peak() > 0.24);
}

#[test]
fn a_loop_recording_opens_a_pass_at_every_wrap_exactly() {
    // A 1 s clip looped over [4_800, 9_600): 0.1 s passes, 9.375 blocks each.
    let mut rig =
        Rig::new(|dir| vec![(0, vec![mono_source(dir, "a.wav", 48_000, ramp, placement(0, 48_000))])], 48_000);
    rig.send(Command::SetLoop(Some(ActiveLoop::new(4_800, 9_600, None))));
    rig.send(Command::Play { from: Some(6_000) });
    rig.steps(2);
    let started_at = rig.position();
    let (capture, mut ring, meter) = engine::Capture::new(3, engine::InputSource::Loopback, RATE, None, None);
    rig.send(Command::StartCapture(capture));
    let played = rig.steps(40);
    rig.send(Command::StopCapture(3));
    rig.steps(1);

    let passes = meter.passes();
    let first = engine::Pass { capture_offset: 0, timeline_start: started_at };
    assert_eq!(passes[0], first);
    // The first pass runs to the loop end; every later one is a whole loop from its start.
    let first_length = (9_600 - started_at) as u64;
    for (i, pass) in passes.iter().enumerate().skip(1) {
        assert_eq!(
            *pass,
            engine::Pass { capture_offset: first_length + (i as u64 - 1) * 4_800, timeline_start: 4_800 }
        );
    }
    assert_eq!(passes.len() as u64, 1 + (40 * BLOCK_FRAMES as u64 - first_length).div_ceil(4_800));
    // One continuous capture of what played, seamless across the wraps.
    assert_eq!(drain(&mut ring), played);
    let second_pass = &left(&played)[first_length as usize..first_length as usize + 3];
    assert_eq!(second_pass, [0, 1, 2].map(|i| ramp(4_800 + i) * CENTRE));
}

#[test]
fn a_punch_range_records_only_inside_it() {
    let mut rig =
        Rig::new(|dir| vec![(0, vec![mono_source(dir, "a.wav", 48_000, ramp, placement(0, 48_000))])], 48_000);
    let (capture, mut ring, meter) =
        engine::Capture::new(5, engine::InputSource::Loopback, RATE, Some((1_000, 3_000)), None);
    rig.send(Command::StartCapture(capture));
    rig.send(Command::Play { from: Some(0) });
    let played = rig.steps(10);
    rig.send(Command::StopCapture(5));
    rig.steps(1);

    assert_eq!((meter.first_frame(), meter.frames()), (Some(1_000), 2_000));
    assert_eq!(meter.passes(), [engine::Pass { capture_offset: 0, timeline_start: 1_000 }]);
    // The playhead locates first, so played frame i is timeline frame i here.
    assert_eq!(drain(&mut ring), played[1_000 * 2..3_000 * 2]);
}

#[test]
fn a_sound_card_input_is_captured_from_its_ring_newest_first_and_punched_in_its_own_time() {
    let mut rig = Rig::new(|_| vec![], 96_000);
    // The card's callback has run for a while before the take reaches the audio thread.
    let (mut card, device) = rtrb::RingBuffer::<f32>::new(RATE as usize * 2);
    let counter = |from: usize, to: usize| (from..to).map(|n| n as f32 / 1e6);
    for sample in counter(0, 3_000) {
        card.push(sample).unwrap();
    }
    let source = engine::InputSource::Device { channels: 1 };
    let (capture, mut ring, meter) = engine::Capture::new(9, source, RATE, Some((1_024, 2_048)), Some(device));
    rig.send(Command::StartCapture(capture));
    rig.send(Command::Play { from: Some(0) });
    // The card keeps pace with the engine, a block at a time.
    let mut delivered = 3_000;
    let mut first_rolling_block = None;
    for block in 0..7 {
        for sample in counter(delivered, delivered + 512) {
            card.push(sample).unwrap();
        }
        delivered += 512;
        rig.steps(1);
        if first_rolling_block.is_none() && rig.position() > 0 {
            first_rolling_block = Some(block);
        }
    }
    rig.send(Command::StopCapture(9));
    rig.steps(1);

    assert_eq!((meter.first_frame(), meter.frames()), (Some(1_024), 1_024));
    // At the first block played the card had delivered 3,512 + 512 k samples: all but the
    // newest block's worth went, so timeline frame t is the card's sample 3,000 + 512 k + t,
    // and the punch keeps frames 1,024..2,048 of that.
    let zero = 3_000 + 512 * first_rolling_block.unwrap();
    assert_eq!(drain(&mut ring), counter(zero + 1_024, zero + 2_048).collect::<Vec<_>>());
}

/// The clips of the equality test: overlapping clips with gain and fades, mono and stereo.
fn equality_tracks(dir: &std::path::Path) -> Vec<(usize, Vec<ClipSource>)> {
    let stereo = |name: &str, frames: usize, placement: ClipPlacement| {
        let path = dir.join(name);
        let samples: Vec<f32> = (0..frames * 2).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
        if !path.exists() {
            wav::write(&path, 2, RATE, SampleFormat::Float32, &samples).unwrap();
        }
        ClipSource { placement: ClipPlacement { channels: 2, ..placement }, reader: WavReader::open(&path).unwrap() }
    };
    vec![
        (
            0,
            vec![
                mono_source(
                    dir,
                    "a.wav",
                    30_000,
                    ramp,
                    ClipPlacement { gain: 0.7, fade_in: 1_000, fade_out: 2_500, ..placement(100, 30_000) },
                ),
                mono_source(
                    dir,
                    "b.wav",
                    20_000,
                    |i| (i as f32 * 0.01).sin(),
                    ClipPlacement { source_offset: 333, ..placement(25_000, 19_000) },
                ),
            ],
        ),
        (3, vec![stereo("c.wav", 40_000, ClipPlacement { gain: 1.3, fade_out: 9_999, ..placement(5_000, 40_000) })]),
        (
            7,
            vec![mono_source(dir, "d.wav", 50_000, |i| if i % 480 < 240 { 0.4 } else { -0.4 }, placement(777, 45_123))],
        ),
    ]
}

#[test]
fn the_engine_and_the_offline_mixdown_render_the_same_samples() {
    use audiolab_media::mix::{MixSource, MixTrack};
    let dir = tempfile::tempdir().unwrap();
    let end = 45_900i64; // the end of the last clip; not a whole number of blocks
    let settings = [
        vec![
            (0, TrackMix { volume: 0.8, pan: -0.3, ..TrackMix::default() }),
            (3, TrackMix { volume: 1.7, pan: 0.9, ..TrackMix::default() }),
            (7, TrackMix { volume: 0.5, pan: -1.0, ..TrackMix::default() }),
        ],
        vec![
            (0, TrackMix { muted: true, ..TrackMix::default() }),
            (3, TrackMix { soloed: true, pan: 0.25, ..TrackMix::default() }),
            (7, TrackMix { soloed: true, volume: 2.0, ..TrackMix::default() }),
        ],
    ];
    for mixes in settings {
        let mut rig = Rig::new(|_| equality_tracks(dir.path()), end);
        for (slot, mix) in &mixes {
            rig.handle.shared.set_mix(*slot, *mix);
        }
        rig.send(Command::Play { from: None });
        let blocks = (end as usize).div_ceil(BLOCK_FRAMES) + 1;
        let engine: Vec<f32> = rig.steps(blocks)[..end as usize * 2].to_vec();

        let tracks = equality_tracks(dir.path())
            .into_iter()
            .map(|(slot, clips)| {
                let mix = mixes.iter().find(|(s, _)| *s == slot).unwrap().1;
                MixTrack::new(audiolab_domain::TrackId::new(), TrackClips { slot, clips }, mix)
            })
            .collect();
        let mut source = MixSource::new(tracks, mixes.iter().any(|(_, m)| m.soloed));
        assert_eq!(source.duration, end);
        let mut offline = Vec::new();
        let collect = |mix: &[f32], _: &[Vec<f32>]| {
            offline.extend_from_slice(mix);
            Ok::<_, ()>(())
        };
        source.render(0, end, false, collect, |_| true).unwrap();

        assert_eq!(offline.len(), engine.len());
        let first_difference = offline.iter().zip(&engine).position(|(a, b)| a.to_bits() != b.to_bits());
        assert_eq!(first_difference, None, "{mixes:?}");
        assert!(engine.iter().any(|s| s.abs() > 0.1), "the render is not silence");
    }
}

/// The clip `a.wav` of the rig's folder placed afresh, as the node opens it after an edit.
fn reopened(rig: &Rig, name: &str, placement: ClipPlacement, duration: i64) -> Command {
    let reader = WavReader::open(&rig._dir.path().join(name)).unwrap();
    let tracks = vec![TrackClips { slot: 0, clips: vec![ClipSource { placement, reader }] }];
    Command::Arrange(Box::new(engine::Arrangement { tracks, duration }))
}

#[test]
fn a_clip_edit_is_heard_from_the_next_block_boundary_without_a_gap() {
    let mut rig =
        Rig::new(|dir| vec![(0, vec![mono_source(dir, "a.wav", 96_000, ramp, placement(0, 96_000))])], 96_000);
    rig.send(Command::Play { from: Some(0) });
    rig.steps(4);

    // Half the gain, and moved 1,000 frames later.
    let mut edited = placement(1_000, 96_000);
    edited.gain = 0.5;
    rig.send(reopened(&rig, "a.wav", edited, 97_000));
    let in_flight = left(&rig.step());
    let after = left(&rig.steps(3));

    // The block already on its way plays out as it was, so nothing is cut short...
    let expected_in_flight: Vec<f32> = (0..BLOCK_FRAMES).map(|i| ramp(4 * BLOCK_FRAMES + i) * CENTRE).collect();
    assert_eq!(in_flight, expected_in_flight);
    // ...and the very next frame is the edited clip, at its new place and gain: no gap.
    let from = 5 * BLOCK_FRAMES;
    let expected_after: Vec<f32> = (0..3 * BLOCK_FRAMES).map(|i| ramp(from + i - 1_000) * 0.5 * CENTRE).collect();
    assert_eq!(after, expected_after);
    assert_eq!(rig.position(), 8 * BLOCK_FRAMES as i64);
    assert_eq!(rig.handle.shared.underruns(), 0);
}

#[test]
fn a_deleted_clip_falls_silent_at_the_next_block_and_the_transport_plays_on() {
    let mut rig = Rig::new(
        |dir| {
            vec![
                (0, vec![mono_source(dir, "a.wav", 96_000, |_| 0.5, placement(0, 96_000))]),
                (1, vec![mono_source(dir, "b.wav", 96_000, |_| 0.25, placement(0, 96_000))]),
            ]
        },
        96_000,
    );
    rig.send(Command::Play { from: Some(0) });
    rig.steps(2);
    // Track 0's clip deleted: only track 1 remains.
    let reader = WavReader::open(&rig._dir.path().join("b.wav")).unwrap();
    let tracks = vec![TrackClips { slot: 1, clips: vec![ClipSource { placement: placement(0, 96_000), reader }] }];
    rig.send(Command::Arrange(Box::new(engine::Arrangement { tracks, duration: 96_000 })));
    let in_flight = left(&rig.step());
    let after = left(&rig.steps(2));
    assert!(in_flight.iter().all(|&s| s == 0.75 * CENTRE));
    assert!(after.iter().all(|&s| s == 0.25 * CENTRE), "no gap and no trace of the deleted clip");
    assert_eq!(rig.state(), TransportState::Playing);
}

#[test]
fn a_loop_widened_while_playing_is_followed_without_a_gap() {
    let mut rig =
        Rig::new(|dir| vec![(0, vec![mono_source(dir, "a.wav", 96_000, ramp, placement(0, 96_000))])], 96_000);
    rig.send(Command::SetLoop(Some(ActiveLoop::new(0, 4_800, None))));
    rig.send(Command::Play { from: Some(0) });
    rig.steps(2);
    rig.send(Command::SetLoop(Some(ActiveLoop::new(0, 24_000, None))));
    rig.step();
    let after = left(&rig.steps(20));
    // Past the old end (4,800) without wrapping: frame by frame the ramp goes on.
    let from = 3 * BLOCK_FRAMES;
    let expected: Vec<f32> = (0..20 * BLOCK_FRAMES).map(|i| ramp(from + i) * CENTRE).collect();
    assert_eq!(after, expected);
    assert_eq!(rig.position(), 23 * BLOCK_FRAMES as i64);
}

#[test]
fn a_seek_while_recording_starts_a_new_piece_where_the_playhead_landed() {
    let mut rig =
        Rig::new(|dir| vec![(0, vec![mono_source(dir, "a.wav", 96_000, ramp, placement(0, 96_000))])], 96_000);
    rig.send(Command::Play { from: Some(0) });
    rig.step();
    let (capture, mut ring, meter) = engine::Capture::new(9, engine::InputSource::Loopback, RATE, None, None);
    rig.send(Command::StartCapture(capture));
    let before = rig.steps(4);
    rig.send(Command::Seek(60_000));
    let after = rig.steps(3);
    rig.send(Command::StopCapture(9));
    rig.step();

    let passes = meter.passes();
    assert_eq!(
        passes,
        [
            engine::Pass { capture_offset: 0, timeline_start: BLOCK_FRAMES as i64 },
            engine::Pass { capture_offset: 4 * BLOCK_FRAMES as u64, timeline_start: 60_000 },
        ]
    );
    let captured = drain(&mut ring);
    assert_eq!(captured, [before, after.clone()].concat());
    assert_eq!(left(&after)[..3], [0, 1, 2].map(|i| ramp(60_000 + i) * CENTRE));
}
