//! The reference renderer: a project's tracks summed block by block with the engine's mix law
//! (the same pre-fader render, the same `mix_track` in slot order, solo across all tracks), so
//! a float render at the project rate equals the engine's output sample for sample. Mixdowns
//! render through it, and the engine's tests compare against it.

use crate::timeline::{Timeline, TrackClips, track_mix};
use audiolab_domain::TrackId;
use audiolab_domain::track::Track;
use audiolab_dsp::mix::{TrackMix, mix_track};

/// Frames rendered per block: large enough to amortise the per-block work across tracks.
pub const BLOCK_FRAMES: usize = 16_384;

/// A track ready to render: its clips and its fader.
#[derive(Debug)]
pub struct MixTrack {
    pub track_id: TrackId,
    pub clips: TrackClips,
    pub mix: TrackMix,
    prefader: Vec<f32>,
    scratch: Vec<f32>,
}

/// A project opened for rendering: tracks in mixer-slot order.
#[derive(Debug)]
pub struct MixSource {
    pub tracks: Vec<MixTrack>,
    /// Whether any track of the project (with clips or not) is soloed.
    pub any_soloed: bool,
    /// The end of the last clip.
    pub duration: i64,
}

impl MixTrack {
    pub fn new(track_id: TrackId, clips: TrackClips, mix: TrackMix) -> Self {
        Self { track_id, clips, mix, prefader: vec![0.0; BLOCK_FRAMES * 2], scratch: Vec::new() }
    }
}

impl MixSource {
    /// `tracks` in any order (they are summed in slot order); `any_soloed` over every track of
    /// the project, with clips or not, as the engine sees it.
    pub fn new(mut tracks: Vec<MixTrack>, any_soloed: bool) -> Self {
        tracks.sort_by_key(|t| t.clips.slot);
        let duration = tracks.iter().flat_map(|t| &t.clips.clips).map(|c| c.placement.end()).max().unwrap_or(0);
        Self { tracks, any_soloed, duration }
    }

    /// A project's opened timeline with its tracks' mixer settings.
    pub fn open(timeline: Timeline, tracks: &[Track]) -> Self {
        let rendered = timeline
            .tracks
            .into_iter()
            .filter_map(|clips| {
                let track = tracks.iter().find(|t| usize::from(t.index.get()) == clips.slot)?;
                Some(MixTrack::new(track.id, clips, track_mix(track)))
            })
            .collect();
        Self::new(rendered, tracks.iter().any(|t| t.soloed))
    }

    /// Renders `[start, end)` block by block. For each block, `sink` gets the mix and, when
    /// `stems`, each track through its fader and pan alone (mute and solo ignored), both stereo
    /// interleaved. Stops early, returning `false`, when `keep_going` (asked with the fraction
    /// done after each block) says so.
    pub fn render<E>(
        &mut self,
        start: i64,
        end: i64,
        stems: bool,
        mut sink: impl FnMut(&[f32], &[Vec<f32>]) -> Result<(), E>,
        mut keep_going: impl FnMut(f64) -> bool,
    ) -> Result<bool, E> {
        let mut mix = vec![0.0f32; BLOCK_FRAMES * 2];
        let mut stem_buffers = if stems { vec![vec![0.0f32; BLOCK_FRAMES * 2]; self.tracks.len()] } else { Vec::new() };
        let mut position = start;
        while position < end {
            let frames = (end - position).min(BLOCK_FRAMES as i64) as usize;
            self.render_prefaders(position, frames);
            let out = &mut mix[..frames * 2];
            out.fill(0.0);
            for track in &self.tracks {
                mix_track(out, &track.prefader[..frames * 2], &track.mix, self.any_soloed);
            }
            for (stem, track) in stem_buffers.iter_mut().zip(&self.tracks) {
                stem.truncate(frames * 2);
                stem.fill(0.0);
                let alone = TrackMix { muted: false, soloed: false, ..track.mix };
                mix_track(stem, &track.prefader[..frames * 2], &alone, false);
            }
            sink(out, &stem_buffers)?;
            position += frames as i64;
            if !keep_going((position - start) as f64 / (end - start) as f64) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Every track's pre-fader audio for the block, the tracks split across two threads.
    fn render_prefaders(&mut self, start: i64, frames: usize) {
        fn render(tracks: &mut [MixTrack], start: i64, frames: usize) {
            for track in tracks {
                let buffer = &mut track.prefader[..frames * 2];
                buffer.fill(0.0);
                track.clips.render(start, buffer, &mut track.scratch);
            }
        }
        let half = self.tracks.len() / 2;
        let (first, second) = self.tracks.split_at_mut(half);
        if first.is_empty() {
            return render(second, start, frames);
        }
        std::thread::scope(|scope| {
            scope.spawn(|| render(second, start, frames));
            render(first, start, frames);
        });
    }
}
