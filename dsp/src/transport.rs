//! Transport arithmetic: which timeline frames the next frames of playback come from, with
//! sample-exact loop wraps. The audio thread and the read-ahead thread both run it, so they
//! agree on every frame.

/// A loop the transport is playing: the span `[start, end)` and the wraps still to come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveLoop {
    pub start: i64,
    pub end: i64,
    /// Wraps still to come; `None` loops until stopped. `repeat_count` N starts at N, so the
    /// region plays N + 1 times.
    pub wraps_left: Option<u32>,
    /// The pass being played, 1 for the first.
    pub pass: u32,
}

impl ActiveLoop {
    pub fn new(start: i64, end: i64, repeat_count: Option<u32>) -> Self {
        Self { start, end, wraps_left: repeat_count, pass: 1 }
    }

    fn may_wrap(&self) -> bool {
        self.wraps_left != Some(0)
    }
}

/// What happened to the loop while advancing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopEvent {
    /// The playhead jumped from the loop end back to its start; `pass` is the pass now playing.
    Wrapped { pass: u32 },
    /// The last pass ended; playback continues past the loop.
    Finished,
}

/// The next stretch of playback: up to two contiguous timeline segments (a block can hold at
/// most one wrap because a loop is longer than any block).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advance {
    segments: [(i64, usize); 2],
    count: usize,
    /// The playhead after these frames.
    pub position: i64,
    pub event: Option<LoopEvent>,
}

impl Advance {
    /// `(timeline start, frames)` of each segment, in playback order.
    pub fn segments(&self) -> &[(i64, usize)] {
        &self.segments[..self.count]
    }
}

/// Advances the playhead by `frames` from `position`, wrapping at the end of `active` while it
/// has wraps left. When the last pass ends, `active` becomes `None`.
pub fn advance(position: i64, frames: usize, active: &mut Option<ActiveLoop>) -> Advance {
    let mut result =
        Advance { segments: [(position, frames), (0, 0)], count: 1, position: position + frames as i64, event: None };
    let Some(l) = active.as_mut() else {
        return result;
    };
    if position >= l.end || position + (frames as i64) < l.end {
        return result;
    }
    // The block reaches the loop end: the frame after `end - 1` is the wrap point.
    let before = (l.end - position) as usize;
    if !l.may_wrap() {
        result.event = Some(LoopEvent::Finished);
        *active = None;
        return result;
    }
    l.wraps_left = l.wraps_left.map(|n| n - 1);
    l.pass += 1;
    let after = frames - before;
    result.segments = [(position, before), (l.start, after)];
    result.count = if after > 0 { 2 } else { 1 };
    result.position = l.start + after as i64;
    result.event = Some(LoopEvent::Wrapped { pass: l.pass });
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_loop_the_playhead_just_moves_on() {
        let a = advance(1000, 512, &mut None);
        assert_eq!((a.segments(), a.position, a.event), (&[(1000, 512)][..], 1512, None));
    }

    #[test]
    fn a_wrap_splits_the_block_at_the_loop_end_exactly() {
        let mut active = Some(ActiveLoop::new(1000, 5000, None));
        let a = advance(4800, 512, &mut active);
        assert_eq!(a.segments(), &[(4800, 200), (1000, 312)]);
        assert_eq!((a.position, a.event), (1312, Some(LoopEvent::Wrapped { pass: 2 })));
    }

    #[test]
    fn reaching_the_end_on_a_block_boundary_wraps_at_once() {
        let mut active = Some(ActiveLoop::new(0, 1024, None));
        let a = advance(512, 512, &mut active);
        assert_eq!((a.segments(), a.position), (&[(512, 512)][..], 0));
        assert_eq!(a.event, Some(LoopEvent::Wrapped { pass: 2 }));
    }

    #[test]
    fn repeat_count_n_plays_n_plus_one_passes_then_continues() {
        let mut active = Some(ActiveLoop::new(0, 4800, Some(2)));
        let (mut position, mut wraps, mut finished_at) = (0i64, 0, None);
        let mut played = 0i64;
        while played < 4800 * 5 {
            let a = advance(position, 480, &mut active);
            match a.event {
                Some(LoopEvent::Wrapped { .. }) => wraps += 1,
                Some(LoopEvent::Finished) => finished_at = Some(played),
                None => {}
            }
            position = a.position;
            played += 480;
        }
        assert_eq!(wraps, 2, "N = 2 → two wraps, three passes");
        assert_eq!(finished_at, Some(3 * 4800 - 480), "the third pass ends, then playback goes on");
        assert_eq!((position, active), (4800 * 5 - 2 * 4800, None));
    }

    #[test]
    fn a_playhead_after_the_loop_is_not_pulled_back() {
        let mut active = Some(ActiveLoop::new(0, 4800, None));
        let a = advance(6000, 512, &mut active);
        assert_eq!((a.position, a.event), (6512, None));
        assert!(active.is_some());
    }
}
