//! The read-ahead half of the engine: reads clip audio from files and renders each track's
//! pre-fader blocks ahead of the playhead, following the same transport plan (loops included)
//! the audio thread will play.

use super::{BLOCK_FRAMES, Bundle, MAX_TRACKS, Reposition};
use audiolab_dsp::render::{ClipPlacement, Overlap, add_clip};
use audiolab_dsp::transport::{ActiveLoop, advance};
use audiolab_media::wav::WavReader;

/// A clip and the open file its audio comes from.
#[derive(Debug)]
pub struct ClipSource {
    pub placement: ClipPlacement,
    pub reader: WavReader,
}

/// The clips of each track slot.
#[derive(Debug, Default)]
pub struct TrackSources {
    pub tracks: Vec<(usize, Vec<ClipSource>)>,
}

pub struct Prefetcher {
    sources: TrackSources,
    filled: rtrb::Producer<Box<Bundle>>,
    free: rtrb::Consumer<Box<Bundle>>,
    repositions: rtrb::Consumer<Reposition>,
    generation: u64,
    position: i64,
    active_loop: Option<ActiveLoop>,
    started: bool,
    scratch: Vec<f32>,
    read_errors: u64,
}

impl Prefetcher {
    pub(super) fn new(
        sources: TrackSources,
        filled: rtrb::Producer<Box<Bundle>>,
        free: rtrb::Consumer<Box<Bundle>>,
        repositions: rtrb::Consumer<Reposition>,
    ) -> Self {
        let sources =
            TrackSources { tracks: sources.tracks.into_iter().filter(|(slot, _)| *slot < MAX_TRACKS).collect() };
        Self {
            sources,
            filled,
            free,
            repositions,
            generation: 0,
            position: 0,
            active_loop: None,
            started: false,
            scratch: vec![0.0; BLOCK_FRAMES * 2],
            read_errors: 0,
        }
    }

    /// Renders blocks until the read-ahead is full. Returns how many it rendered.
    pub fn fill(&mut self) -> usize {
        let mut rendered = 0;
        loop {
            while let Ok(reposition) = self.repositions.pop() {
                self.generation = reposition.generation;
                self.position = reposition.position;
                self.active_loop = reposition.active_loop;
                self.started = true;
            }
            if !self.started || self.filled.slots() == 0 || !self.repositions.is_empty() {
                if self.repositions.is_empty() {
                    return rendered;
                }
                continue;
            }
            let Ok(mut bundle) = self.free.pop() else {
                return rendered;
            };
            self.render(&mut bundle);
            if self.filled.push(bundle).is_err() {
                unreachable!("checked for a free slot above, and only this thread pushes");
            }
            rendered += 1;
        }
    }

    /// Reads that failed (the block played silence there), for diagnostics.
    pub fn read_errors(&self) -> u64 {
        self.read_errors
    }

    fn render(&mut self, bundle: &mut Bundle) {
        for slot in 0..MAX_TRACKS {
            if bundle.active & (1 << slot) != 0 {
                bundle.track_mut(slot).fill(0.0);
            }
        }
        bundle.active = 0;
        bundle.generation = self.generation;
        bundle.start = self.position;
        let step = advance(self.position, BLOCK_FRAMES, &mut self.active_loop);
        let mut offset = 0;
        for &(segment_start, segment_frames) in step.segments() {
            for (slot, clips) in &mut self.sources.tracks {
                for clip in clips.iter_mut() {
                    let Some(overlap) = clip.placement.overlap(segment_start, segment_frames) else {
                        continue;
                    };
                    let channels = usize::from(clip.placement.channels.max(1));
                    let samples = overlap.frames * channels;
                    if self.scratch.len() < samples {
                        self.scratch.resize(samples, 0.0);
                    }
                    let source = &mut self.scratch[..samples];
                    let from = (clip.placement.source_offset + overlap.clip_frame) as u64;
                    let read = match clip.reader.read_frames(from, source) {
                        Ok(frames) => frames,
                        Err(err) => {
                            self.read_errors += 1;
                            if self.read_errors == 1 {
                                tracing::warn!(error = %err, "clip audio could not be read; playing silence");
                            }
                            0
                        }
                    };
                    source[read * channels..].fill(0.0);
                    let overlap = Overlap { span_offset: offset + overlap.span_offset, ..overlap };
                    add_clip(bundle.track_mut(*slot), &clip.placement, overlap, source);
                    bundle.active |= 1 << *slot;
                }
            }
            offset += segment_frames;
        }
        self.position = step.position;
    }
}
