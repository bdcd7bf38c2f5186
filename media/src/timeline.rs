//! A project's clips as sources of audio: each track's pre-fader audio for any stretch of the
//! timeline. The engine's read-ahead and the offline mixdown both render through
//! [`TrackClips::render`], so what a mixdown writes is what the engine plays, sample for sample.

use crate::storage::Storage;
use crate::wav::WavReader;
use audiolab_domain::SampleRate;
use audiolab_domain::clip::{Clip, ClipStatus};
use audiolab_domain::comp;
use audiolab_domain::track::Track;
use audiolab_dsp::mix::TrackMix;
use audiolab_dsp::render::{ClipPlacement, add_clip};

/// A clip and the open file its audio comes from.
#[derive(Debug)]
pub struct ClipSource {
    pub placement: ClipPlacement,
    pub reader: WavReader,
}

/// The clips of one track, in the order they are summed.
#[derive(Debug)]
pub struct TrackClips {
    /// The track's mixer slot: its `track_index`.
    pub slot: usize,
    pub clips: Vec<ClipSource>,
}

/// What rendering one track's span did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Rendered {
    /// Whether any clip covered the span (else the output was left as it was).
    pub touched: bool,
    /// Clip reads that failed; those frames rendered as silence.
    pub read_errors: u32,
}

impl TrackClips {
    /// Adds the track's pre-fader audio (clip gain and fades, no fader) for the timeline frames
    /// `[start, start + out.len() / 2)` into `out`, stereo interleaved. `scratch` is grown to the
    /// largest read and then reused, so a caller that sizes it once never allocates here.
    pub fn render(&mut self, start: i64, out: &mut [f32], scratch: &mut Vec<f32>) -> Rendered {
        let mut rendered = Rendered::default();
        let frames = out.len() / 2;
        for clip in &mut self.clips {
            let Some(overlap) = clip.placement.overlap(start, frames) else {
                continue;
            };
            let channels = usize::from(clip.reader.info().channels);
            let samples = overlap.frames * channels;
            if scratch.len() < samples {
                scratch.resize(samples, 0.0);
            }
            let source = &mut scratch[..samples];
            let from = (clip.placement.source_offset + overlap.clip_frame) as u64;
            let read = clip.reader.read_frames(from, source).unwrap_or_else(|_| {
                rendered.read_errors += 1;
                0
            });
            source[read * channels..].fill(0.0);
            add_clip(out, &clip.placement, overlap, source);
            rendered.touched = true;
        }
        rendered
    }
}

/// A project's playable clips, opened, by track.
#[derive(Debug, Default)]
pub struct Timeline {
    /// Tracks with at least one playable clip, in the order of the project's track list.
    pub tracks: Vec<TrackClips>,
    /// How many clips were opened.
    pub clips: u32,
    /// The end of the last clip, in frames.
    pub duration: i64,
}

/// A track's mixer settings as the render core applies them.
pub fn track_mix(track: &Track) -> TrackMix {
    TrackMix {
        volume: track.volume.get() as f32,
        pan: track.pan.get() as f32,
        muted: track.muted,
        soloed: track.soloed,
    }
}

/// The clips that sound on a track without a comp: ready and active.
pub fn playable(clip: &Clip) -> bool {
    ready(clip) && clip.active
}

/// Brings the audio of every playable clip into the local working copy (a no-op outside cloud
/// mode). Returns the keys that could not be fetched.
pub async fn fetch_audio(storage: &Storage, clips: &[Clip]) -> Vec<String> {
    let mut missing = Vec::new();
    for key in clips.iter().filter(|c| playable(c)).filter_map(|c| c.audio_key.as_deref()) {
        if storage.fetch(key).await.is_err() {
            missing.push(key.to_owned());
        }
    }
    missing
}

/// Why a clip was left out of a timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    pub clip: audiolab_domain::ClipId,
    pub reason: String,
}

/// Opens the audio of what every track plays: its clips whole, or, on a track with a comp
/// (§14), the comp's pieces of its takes and its other clips where no segment is. A clip whose
/// file is missing, unreadable or not at the project rate is skipped and reported: the engine
/// plays on without it, a mixdown refuses.
pub fn open(rate: SampleRate, tracks: &[Track], clips: &[Clip], storage: &Storage) -> (Timeline, Vec<Skipped>) {
    let (mut timeline, mut skipped) = (Timeline::default(), Vec::new());
    for track in tracks {
        let own: Vec<Clip> = clips
            .iter()
            .filter(|c| c.track_id == track.id)
            // With a comp, the comp decides which takes play; other clips play while active.
            .filter(|c| if track.comp.is_active() && c.take_id.is_some() { ready(c) } else { playable(c) })
            .cloned()
            .collect();
        let mut sources = Vec::new();
        for piece in comp::pieces(&track.comp, track.comp.crossfade_frames(rate), &own) {
            let Some(clip) = own.iter().find(|c| c.id == piece.clip_id) else { continue };
            let reader = match open_reader(clip, rate, storage) {
                Ok(reader) => reader,
                Err(reason) => {
                    if !skipped.iter().any(|s: &Skipped| s.clip == clip.id) {
                        skipped.push(Skipped { clip: clip.id, reason });
                    }
                    continue;
                }
            };
            let placement = ClipPlacement {
                start: piece.start,
                length: piece.end - piece.start,
                source_offset: clip.source_offset.get() + (piece.start - clip.start.get()),
                gain: clip.gain.to_linear() as f32,
                fade_in: piece.fade_in,
                fade_out: piece.fade_out,
                channels: reader.info().channels,
                crossfaded: piece.crossfaded,
            };
            timeline.duration = timeline.duration.max(piece.end);
            timeline.clips += 1;
            sources.push(ClipSource { placement, reader });
        }
        if !sources.is_empty() {
            timeline.tracks.push(TrackClips { slot: usize::from(track.index.get()), clips: sources });
        }
    }
    (timeline, skipped)
}

/// A clip whose audio is written: it can play.
fn ready(clip: &Clip) -> bool {
    clip.status == ClipStatus::Ready && clip.audio_key.is_some() && clip.length.get() > 0
}

/// The clip's audio, opened, if it is at the project's rate.
fn open_reader(clip: &Clip, rate: SampleRate, storage: &Storage) -> Result<WavReader, String> {
    let key = clip.audio_key.as_deref().unwrap_or_default();
    let reader =
        storage.path(key).map_err(|e| e.to_string()).and_then(|p| WavReader::open(&p).map_err(|e| e.to_string()))?;
    if reader.info().sample_rate != rate.hz() {
        return Err(format!("audio at {} Hz, not the project's {} Hz", reader.info().sample_rate, rate.hz()));
    }
    Ok(reader)
}
