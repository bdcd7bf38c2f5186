//! Comping (§14): a track's takes are its lanes; what the track plays is its *comp* — ordered,
//! non-overlapping segments, each a stretch of the timeline played from one take — and its
//! other clips where no segment covers. Pure: the edits of a comp, and what plays where, as
//! pieces of clips both renderers (the engine and the mixdown) turn into the same samples.
//!
//! Boundaries between adjacent segments are crossfaded with equal power, centred on the
//! boundary, as far as both takes have audio there.

use crate::clip::Clip;
use crate::error::{ValidationError, ValidationResult};
use crate::history::{Row, RowChange};
use crate::track::Track;
use crate::{ClipId, Frames, SampleRate, TakeId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The crossfade a new comp gets, in milliseconds.
pub const DEFAULT_CROSSFADE_MS: u32 = 10;
/// The longest crossfade, in milliseconds.
pub const MAX_CROSSFADE_MS: u32 = 500;

/// `[start, end)` of the timeline played from `take_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub start: Frames,
    pub end: Frames,
    pub take_id: TakeId,
}

/// What a track plays of its takes. An empty comp leaves the track's clips as they are (a
/// track that was never recorded on, or whose takes predate comping).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comp {
    pub segments: Vec<Segment>,
    pub crossfade_ms: u32,
}

impl Default for Comp {
    fn default() -> Self {
        Self { segments: Vec::new(), crossfade_ms: DEFAULT_CROSSFADE_MS }
    }
}

impl Comp {
    /// Whether the comp decides what the track's takes play.
    pub fn is_active(&self) -> bool {
        !self.segments.is_empty()
    }

    /// Checks a comp given whole (`PUT`): segments non-empty, in order, not overlapping, each
    /// of one of `takes`; the crossfade within 0–500 ms.
    pub fn validate(&self, takes: &[TakeId]) -> ValidationResult<()> {
        if self.crossfade_ms > MAX_CROSSFADE_MS {
            return Err(ValidationError::new("crossfade_ms", format!("must be 0–{MAX_CROSSFADE_MS}")));
        }
        for (i, segment) in self.segments.iter().enumerate() {
            if segment.start.get() < 0 || segment.end <= segment.start {
                return Err(ValidationError::new("segments", format!("segment {i} must have 0 ≤ start < end")));
            }
            if !takes.contains(&segment.take_id) {
                return Err(ValidationError::new(
                    "segments",
                    format!("segment {i}: take_id is not a take of this track"),
                ));
            }
            if i > 0 && self.segments[i - 1].end > segment.start {
                return Err(ValidationError::new(
                    "segments",
                    format!(
                        "segment {i} starts before the one before it ends: segments must be in order and must not overlap"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `take_id` plays `[start, end)` (a swipe, a new recording, a take made active): whatever
    /// the comp played there gives way, segments reaching into the range are cut at its edges,
    /// and neighbours of the same take join. An empty range changes nothing.
    pub fn select(&mut self, take_id: TakeId, start: Frames, end: Frames) {
        if end <= start {
            return;
        }
        let mut segments = Vec::with_capacity(self.segments.len() + 2);
        for segment in &self.segments {
            if segment.start < start {
                segments.push(Segment { end: segment.end.min(start), ..*segment });
            }
            if segment.end > end {
                segments.push(Segment { start: segment.start.max(end), ..*segment });
            }
        }
        segments.push(Segment { start, end, take_id });
        segments.sort_by_key(|s| s.start);
        segments.dedup_by(|next, previous| {
            let joins = previous.take_id == next.take_id && previous.end == next.start;
            if joins {
                previous.end = next.end;
            }
            joins
        });
        self.segments = segments;
    }

    /// The comp no longer plays `take_id` anywhere (the take was deleted): where it played,
    /// the newest other take recorded there plays instead (from `lanes`, the track's take
    /// clips), else nothing.
    pub fn remove_take(&mut self, take_id: TakeId, lanes: &[Clip]) {
        let removed: Vec<Segment> = self.segments.iter().filter(|s| s.take_id == take_id).copied().collect();
        self.segments.retain(|s| s.take_id != take_id);
        let mut others: Vec<&Clip> = lanes.iter().filter(|c| c.take_id.is_some_and(|t| t != take_id)).collect();
        others.sort_by_key(|c| c.created_at);
        for segment in removed {
            for clip in &others {
                let (start, end) = (segment.start.max(clip.start), segment.end.min(clip.end()));
                if let Some(take) = clip.take_id {
                    self.select(take, start, end);
                }
            }
        }
    }

    /// Whether the comp plays `take_id` somewhere.
    pub fn plays(&self, take_id: TakeId) -> bool {
        self.segments.iter().any(|s| s.take_id == take_id)
    }

    /// The crossfade in frames at `rate`.
    pub fn crossfade_frames(&self, rate: SampleRate) -> i64 {
        i64::from(self.crossfade_ms) * i64::from(rate.hz()) / 1000
    }
}

/// The comp a track had before comping existed, from its takes oldest first (each with its
/// clip's range and whether it played): every take that played, over its range, in order.
pub fn seeded(takes: impl IntoIterator<Item = (TakeId, Frames, Frames, bool)>) -> Comp {
    let mut comp = Comp::default();
    for (take_id, start, end, active) in takes {
        if active {
            comp.select(take_id, start, end);
        }
    }
    comp
}

/// The comp a track plays: its own, or for a track whose takes predate comping (its comp
/// empty), what its take clips (`lanes`, in any order) played, oldest first.
pub fn current(track: &Track, lanes: &[Clip]) -> Comp {
    if track.comp.is_active() {
        return track.comp.clone();
    }
    let mut oldest_first: Vec<&Clip> = lanes.iter().filter(|c| c.take_id.is_some()).collect();
    oldest_first.sort_by_key(|c| c.created_at);
    let played = oldest_first.into_iter().filter_map(|c| Some((c.take_id?, c.start, c.end(), c.active)));
    Comp { crossfade_ms: track.comp.crossfade_ms, ..seeded(played) }
}

/// The rows of giving `track` the comp `comp` (one revisioned change, §13): the track, and each
/// of its take clips (`lanes`) whose `active` — whether the comp plays it somewhere — changes.
pub fn rows(track: &Track, comp: Comp, lanes: &[Clip], at: DateTime<Utc>) -> Vec<RowChange> {
    let mut rows: Vec<RowChange> = lanes
        .iter()
        .filter_map(|lane| {
            let plays = comp.plays(lane.take_id?);
            (lane.active != plays).then(|| {
                let after = Clip { active: plays, updated_at: at, ..lane.clone() };
                RowChange::updated(Row::Clip(lane.clone()), Row::Clip(after))
            })
        })
        .collect();
    if comp != track.comp {
        let after = Track { comp, updated_at: at, ..track.clone() };
        rows.push(RowChange::updated(Row::Track(track.clone()), Row::Track(after)));
    }
    rows
}

/// A clip as it sounds in a track: the stretch `[start, end)` of the timeline played from the
/// clip's audio (where the clip already is), faded in and out over the given frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    pub clip_id: ClipId,
    pub start: i64,
    pub end: i64,
    pub fade_in: i64,
    pub fade_out: i64,
    /// Whether the fades are the comp's equal-power crossfades (else the clip's own, linear).
    pub crossfaded: bool,
}

/// What a track plays, given its comp, its crossfade in frames and its playable `clips`: each
/// segment from its take's clip, crossfaded into the segment next to it; the clips of no take
/// where no segment is (cut there). Without a comp, every clip whole, with its own fades.
pub fn pieces(comp: &Comp, crossfade: i64, clips: &[Clip]) -> Vec<Piece> {
    let whole = |clip: &Clip| Piece {
        clip_id: clip.id,
        start: clip.start.get(),
        end: clip.end().get(),
        fade_in: clip.fade_in.get(),
        fade_out: clip.fade_out.get(),
        crossfaded: false,
    };
    if !comp.is_active() {
        return clips.iter().map(whole).collect();
    }
    // Each segment as the parts of its take's clips inside it (one, unless the take's clip
    // was split).
    let mut pieces: Vec<Piece> = Vec::new();
    let mut first_of_segment = Vec::with_capacity(comp.segments.len());
    for segment in &comp.segments {
        first_of_segment.push(pieces.len());
        for clip in clips.iter().filter(|c| c.take_id == Some(segment.take_id)) {
            let (start, end) = (segment.start.get().max(clip.start.get()), segment.end.get().min(clip.end().get()));
            if start < end {
                pieces.push(Piece { clip_id: clip.id, start, end, fade_in: 0, fade_out: 0, crossfaded: true });
            }
        }
    }
    first_of_segment.push(pieces.len());
    // Where one segment ends and the next begins, both fade over `2h` centred on the boundary,
    // `h` as far as both takes' audio reaches across it (up to half the crossfade).
    let half = crossfade / 2;
    for (i, pair) in comp.segments.windows(2).enumerate() {
        let boundary = pair[0].end.get();
        if pair[1].start.get() != boundary || half == 0 {
            continue;
        }
        let left = (first_of_segment[i]..first_of_segment[i + 1]).find(|&p| pieces[p].end == boundary);
        let right = (first_of_segment[i + 1]..first_of_segment[i + 2]).find(|&p| pieces[p].start == boundary);
        let (Some(left), Some(right)) = (left, right) else { continue };
        let reach = |piece: &Piece, towards_end: bool| {
            let clip = clips.iter().find(|c| c.id == piece.clip_id).expect("a piece of one of the clips");
            if towards_end { clip.end().get() - boundary } else { boundary - clip.start.get() }
        };
        // Never more than half of either piece, so the fades at a segment's two ends cannot
        // overlap and a fade never runs past its piece.
        let room = ((boundary - pieces[left].start) / 2).min((pieces[right].end - boundary) / 2);
        let h = half.min(reach(&pieces[left], true)).min(reach(&pieces[right], false)).min(room).max(0);
        (pieces[left].end, pieces[left].fade_out) = (boundary + h, 2 * h);
        (pieces[right].start, pieces[right].fade_in) = (boundary - h, 2 * h);
    }
    // The clips of no take, where no segment is.
    for clip in clips.iter().filter(|c| c.take_id.is_none()) {
        let mut from = clip.start.get();
        for segment in comp.segments.iter().filter(|s| s.end > clip.start && s.start < clip.end()) {
            if segment.start.get() > from {
                pieces.push(part(clip, from, segment.start.get()));
            }
            from = from.max(segment.end.get());
        }
        if from < clip.end().get() {
            pieces.push(part(clip, from, clip.end().get()));
        }
    }
    pieces
}

/// `[start, end)` of a clip of no take, keeping its own fades where its own edges are.
fn part(clip: &Clip, start: i64, end: i64) -> Piece {
    Piece {
        clip_id: clip.id,
        start,
        end,
        fade_in: if start == clip.start.get() { clip.fade_in.get() } else { 0 },
        fade_out: if end == clip.end().get() { clip.fade_out.get() } else { 0 },
        crossfaded: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clip::NewClip;
    use crate::{ProjectId, TrackId};

    fn take_clip(take: TakeId, start: i64, length: i64) -> Clip {
        let new = NewClip {
            project_id: ProjectId::new(),
            track_id: TrackId::new(),
            take_id: Some(take),
            name: "Take".into(),
            start: Frames(start),
            length: Frames(length),
            source_sample_rate: 48_000,
            channels: 1,
        };
        Clip::create(new, crate::now()).unwrap()
    }

    fn spans(comp: &Comp) -> Vec<(i64, i64, TakeId)> {
        comp.segments.iter().map(|s| (s.start.get(), s.end.get(), s.take_id)).collect()
    }

    #[test]
    fn a_swipe_cuts_what_was_there_and_joins_the_same_take() {
        let (a, b) = (TakeId::new(), TakeId::new());
        let mut comp = Comp::default();
        comp.select(a, Frames(0), Frames(1_000));
        comp.select(b, Frames(200), Frames(400));
        assert_eq!(spans(&comp), [(0, 200, a), (200, 400, b), (400, 1_000, a)]);
        // Swiping `a` back over `b` leaves one segment of `a` again.
        comp.select(a, Frames(150), Frames(450));
        assert_eq!(spans(&comp), [(0, 1_000, a)]);
        // A new take past the end, and one over everything.
        comp.select(b, Frames(1_000), Frames(1_500));
        assert_eq!(spans(&comp), [(0, 1_000, a), (1_000, 1_500, b)]);
        comp.select(b, Frames(0), Frames(2_000));
        assert_eq!(spans(&comp), [(0, 2_000, b)]);
        comp.select(a, Frames(5), Frames(5));
        assert_eq!(spans(&comp), [(0, 2_000, b)], "an empty range changes nothing");
        comp.remove_take(b, &[]);
        assert!(!comp.is_active());
    }

    #[test]
    fn the_newest_loop_pass_wins_and_older_takes_seed_a_comp_in_order() {
        let (a, b, c) = (TakeId::new(), TakeId::new(), TakeId::new());
        let comp = seeded([
            (a, Frames(0), Frames(100), true),
            (b, Frames(50), Frames(150), true),
            (c, Frames(0), Frames(150), false),
        ]);
        assert_eq!(spans(&comp), [(0, 50, a), (50, 150, b)]);
    }

    #[test]
    fn a_deleted_take_gives_way_to_the_newest_take_recorded_there() {
        let (a, b, c) = (TakeId::new(), TakeId::new(), TakeId::new());
        let mut lanes = vec![take_clip(a, 0, 1_000), take_clip(b, 300, 200), take_clip(c, 400, 400)];
        lanes[1].created_at = lanes[0].created_at + chrono::Duration::seconds(1);
        lanes[2].created_at = lanes[0].created_at + chrono::Duration::seconds(2);
        let mut comp = Comp::default();
        comp.select(a, Frames(0), Frames(1_000));
        comp.select(c, Frames(200), Frames(600));
        comp.remove_take(c, &lanes);
        // Where c played, b (newer than a) where it was recorded, and a around it.
        assert_eq!(spans(&comp), [(0, 300, a), (300, 500, b), (500, 1_000, a)]);
    }

    #[test]
    fn a_comp_given_whole_is_checked() {
        let (a, b) = (TakeId::new(), TakeId::new());
        let segment = |start, end, take_id| Segment { start: Frames(start), end: Frames(end), take_id };
        let ok = Comp { segments: vec![segment(0, 10, a), segment(10, 20, b)], crossfade_ms: 10 };
        assert!(ok.validate(&[a, b]).is_ok());
        assert!(ok.validate(&[a]).is_err(), "b is not a take of the track");
        let overlapping = Comp { segments: vec![segment(0, 11, a), segment(10, 20, b)], crossfade_ms: 10 };
        assert!(overlapping.validate(&[a, b]).is_err());
        let empty = Comp { segments: vec![segment(5, 5, a)], crossfade_ms: 10 };
        assert!(empty.validate(&[a]).is_err());
        let long = Comp { segments: vec![], crossfade_ms: 501 };
        assert!(long.validate(&[]).is_err());
    }

    #[test]
    fn adjacent_segments_crossfade_centred_as_far_as_both_takes_reach() {
        let (a, b) = (TakeId::new(), TakeId::new());
        let (first, second) = (take_clip(a, 0, 10_000), take_clip(b, 4_900, 10_000));
        let mut comp = Comp::default();
        comp.select(a, Frames(0), Frames(10_000));
        comp.select(b, Frames(5_000), Frames(8_000));
        let played = pieces(&comp, 480, &[first.clone(), second.clone()]);
        // `a` to 5,000 (+240 into the crossfade), `b` 5,000–8,000 (but b's audio starts at
        // 4,900: that side of the crossfade is only 100 wide), then `a` again.
        assert_eq!(
            played.iter().map(|p| (p.clip_id, p.start, p.end, p.fade_in, p.fade_out)).collect::<Vec<_>>(),
            [(first.id, 0, 5_100, 0, 200), (second.id, 4_900, 8_240, 200, 480), (first.id, 7_760, 10_000, 480, 0),]
        );
        assert!(played.iter().all(|p| p.crossfaded));
    }

    #[test]
    fn other_clips_play_where_no_segment_is_and_takes_only_in_the_comp() {
        let a = TakeId::new();
        let take = take_clip(a, 1_000, 1_000);
        let mut import = take_clip(a, 0, 5_000);
        import.take_id = None;
        import.fade_in = Frames(10);
        import.fade_out = Frames(20);
        let older = take_clip(TakeId::new(), 0, 5_000);
        let mut comp = Comp::default();
        comp.select(a, Frames(1_000), Frames(2_000));
        let played = pieces(&comp, 480, &[take.clone(), import.clone(), older]);
        assert_eq!(
            played.iter().map(|p| (p.clip_id, p.start, p.end, p.fade_in, p.fade_out)).collect::<Vec<_>>(),
            [(take.id, 1_000, 2_000, 0, 0), (import.id, 0, 1_000, 10, 0), (import.id, 2_000, 5_000, 0, 20)]
        );
        assert_eq!(pieces(&Comp::default(), 480, std::slice::from_ref(&import)).len(), 1, "no comp: clips whole");
    }
}
