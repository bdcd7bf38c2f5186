//! The read-ahead half of the engine: reads clip audio from files and renders each track's
//! pre-fader blocks ahead of the playhead, following the same transport plan (loops included)
//! the audio thread will play.

use super::{BLOCK_FRAMES, Bundle, MAX_TRACKS, PREFETCH_BLOCKS, Reposition, STANDING_BLOCKS, Shared, TransportState};
use audiolab_dsp::transport::{ActiveLoop, advance};
use audiolab_media::timeline::TrackClips;

pub struct Prefetcher {
    tracks: Vec<TrackClips>,
    filled: rtrb::Producer<Box<Bundle>>,
    free: rtrb::Consumer<Box<Bundle>>,
    repositions: rtrb::Consumer<Reposition>,
    generation: u64,
    position: i64,
    active_loop: Option<ActiveLoop>,
    started: bool,
    scratch: Vec<f32>,
    read_errors: u64,
    /// The transport's state, to read ahead less while it stands.
    shared: std::sync::Arc<Shared>,
}

impl Prefetcher {
    pub(super) fn new(
        mut tracks: Vec<TrackClips>,
        filled: rtrb::Producer<Box<Bundle>>,
        free: rtrb::Consumer<Box<Bundle>>,
        repositions: rtrb::Consumer<Reposition>,
        shared: std::sync::Arc<Shared>,
    ) -> Self {
        tracks.retain(|track| track.slot < MAX_TRACKS);
        Self {
            tracks,
            filled,
            free,
            repositions,
            generation: 0,
            position: 0,
            active_loop: None,
            started: false,
            scratch: vec![0.0; BLOCK_FRAMES * 2],
            read_errors: 0,
            shared,
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
                if let Some(arrangement) = reposition.arrangement {
                    // The old clips (open files) are closed here, off the audio thread.
                    self.tracks = arrangement.tracks;
                    self.tracks.retain(|track| track.slot < MAX_TRACKS);
                }
            }
            let queued = PREFETCH_BLOCKS - self.filled.slots();
            let standing = self.shared.state() != TransportState::Playing;
            if !self.started
                || queued >= if standing { STANDING_BLOCKS } else { PREFETCH_BLOCKS }
                || !self.repositions.is_empty()
            {
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
        bundle.reserve(self.tracks.iter().map(|t| t.slot + 1).max().unwrap_or(0));
        for slot in 0..bundle.slots() {
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
            for track in &mut self.tracks {
                let out = &mut bundle.track_mut(track.slot)[offset * 2..(offset + segment_frames) * 2];
                let rendered = track.render(segment_start, out, &mut self.scratch);
                if rendered.touched {
                    bundle.active |= 1 << track.slot;
                }
                if rendered.read_errors > 0 {
                    if self.read_errors == 0 {
                        tracing::warn!("clip audio could not be read; playing silence");
                    }
                    self.read_errors += u64::from(rendered.read_errors);
                }
            }
            offset += segment_frames;
        }
        self.position = step.position;
    }
}
