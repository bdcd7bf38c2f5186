//! What a client device played, and when (§10): runs of its own audio-clock frames that played
//! consecutive timeline frames, as the client reports them. A microphone sample captured at the
//! client's frame `c` was heard against the timeline frame the client played at `c − L` (the
//! round-trip latency `L`): [`PlayMap::place`] turns a block of microphone frames into the
//! timeline ranges it belongs to, split wherever the timeline jumped (a loop pass, a seek) and
//! dropping what fell into an underrun (the musician heard nothing there). Pure.
//!
//! Every frame the client played also has a *played index*: how many frames it had played
//! before it, since the device attached. That clock stands still during underruns and while the
//! client is away, so a take laid out by it has no gaps where nothing was heard: a take cut by a
//! network drop is the same take as one that was not.

use std::collections::VecDeque;

/// Client frames `client..client + frames` played timeline frames `timeline..timeline + frames`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub client: u64,
    pub timeline: i64,
    pub frames: u64,
}

/// A run as kept: with the played index of its first frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Kept {
    run: Run,
    played: u64,
}

impl Run {
    fn client_end(&self) -> u64 {
        self.client + self.frames
    }
}

/// A stretch of a microphone block and the timeline frames it lands on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    /// Offset of the stretch in the block, in frames.
    pub offset: u64,
    pub frames: u64,
    pub timeline: i64,
    /// The played index of the stretch's first frame.
    pub played: u64,
}

/// Why a report was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportError {
    /// A run starts before the end of what was already reported: the client's clock went back.
    Overlap {
        client: u64,
        reported_until: u64,
    },
    Empty,
}

impl std::fmt::Display for ReportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReportError::Overlap { client, reported_until } => {
                write!(f, "played run at client frame {client} overlaps what was reported up to {reported_until}")
            }
            ReportError::Empty => f.write_str("a played run needs at least one frame"),
        }
    }
}

/// The runs a client reported, oldest first, kept for `keep` client frames behind the newest.
#[derive(Debug, Clone)]
pub struct PlayMap {
    runs: VecDeque<Kept>,
    keep: u64,
    /// Frames played in all.
    played: u64,
}

impl PlayMap {
    /// A map that remembers the last `keep` client frames (enough for the longest latency and
    /// the slowest microphone message).
    pub fn new(keep: u64) -> Self {
        Self { runs: VecDeque::new(), keep, played: 0 }
    }

    /// The client frame up to which playing has been reported.
    pub fn reported_until(&self) -> Option<u64> {
        self.runs.back().map(|k| k.run.client_end())
    }

    /// Frames played in all (the played index of the next frame to play).
    pub fn played(&self) -> u64 {
        self.played
    }

    /// The played index of the first frame played at or after client frame `client` (the
    /// total played so far when the client has not played that far).
    pub fn played_at(&self, client: u64) -> u64 {
        self.runs
            .iter()
            .find(|k| k.run.client_end() > client)
            .map_or(self.played, |k| k.played + client.saturating_sub(k.run.client))
    }

    /// Adds a played run; one that continues the previous run on both clocks extends it.
    pub fn record(&mut self, run: Run) -> Result<(), ReportError> {
        if run.frames == 0 {
            return Err(ReportError::Empty);
        }
        let played = self.played;
        self.played += run.frames;
        if let Some(Kept { run: last, .. }) = self.runs.back_mut() {
            if run.client < last.client_end() {
                self.played = played;
                return Err(ReportError::Overlap { client: run.client, reported_until: last.client_end() });
            }
            let contiguous = run.client == last.client_end() && run.timeline == last.timeline + last.frames as i64;
            if contiguous {
                last.frames += run.frames;
                self.forget();
                return Ok(());
            }
        }
        self.runs.push_back(Kept { run, played });
        self.forget();
        Ok(())
    }

    fn forget(&mut self) {
        let Some(newest) = self.reported_until() else { return };
        let horizon = newest.saturating_sub(self.keep);
        while self.runs.front().is_some_and(|k| k.run.client_end() <= horizon) {
            self.runs.pop_front();
        }
    }

    /// Where `frames` microphone frames captured from client frame `client` belong, heard
    /// `latency` frames earlier. `None` while the client has not yet reported playing that far
    /// (the caller keeps the block and asks again); otherwise the stretches that were heard
    /// against the timeline, in block order (stretches heard during an underrun are left out).
    pub fn place(&self, client: u64, frames: u64, latency: u64) -> Option<Vec<Placed>> {
        let heard_from = client.checked_sub(latency)?;
        let heard_to = heard_from + frames;
        if self.reported_until()? < heard_to {
            return None;
        }
        let placed = self
            .runs
            .iter()
            .filter_map(|&Kept { run, played }| {
                let start = run.client.max(heard_from);
                let end = run.client_end().min(heard_to);
                (start < end).then(|| Placed {
                    offset: start - heard_from,
                    frames: end - start,
                    timeline: run.timeline + (start - run.client) as i64,
                    played: played + (start - run.client),
                })
            })
            .collect();
        Some(placed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_run_places_every_frame_latency_earlier() {
        let mut map = PlayMap::new(1_000_000);
        // The client's clock started at 10,000 when the timeline was at 0.
        map.record(Run { client: 10_000, timeline: 0, frames: 4_800 }).unwrap();
        map.record(Run { client: 14_800, timeline: 4_800, frames: 4_800 }).unwrap();
        assert_eq!(map.runs.len(), 1, "contiguous reports merge");
        // Captured at client frame 13_000 with a 2,085-frame round trip: heard at 10_915 → 915.
        assert_eq!(
            map.place(13_000, 512, 2_085),
            Some(vec![Placed { offset: 0, frames: 512, timeline: 915, played: 915 }])
        );
        // Not reported far enough yet.
        assert_eq!(map.place(19_000, 1_000, 100), None);
        assert_eq!(map.place(100, 10, 2_085), None, "before the client's clock began");
    }

    #[test]
    fn a_loop_jump_splits_a_block_and_an_underrun_drops_what_was_not_heard() {
        let mut map = PlayMap::new(1_000_000);
        map.record(Run { client: 0, timeline: 48_000, frames: 1_000 }).unwrap();
        // The loop wrapped back to 48,000 at client frame 1,000.
        map.record(Run { client: 1_000, timeline: 48_000, frames: 1_000 }).unwrap();
        // Then 200 frames of underrun, then playing resumed where it stopped.
        map.record(Run { client: 2_200, timeline: 49_000, frames: 1_000 }).unwrap();
        let placed = map.place(900 + 100, 1_400, 100).unwrap();
        assert_eq!(
            placed,
            vec![
                Placed { offset: 0, frames: 100, timeline: 48_900, played: 900 },
                Placed { offset: 100, frames: 1_000, timeline: 48_000, played: 1_000 },
                Placed { offset: 1_300, frames: 100, timeline: 49_000, played: 2_000 },
            ]
        );
        // The played index stands still through the underrun.
        assert_eq!((map.played_at(2_100), map.played_at(2_300), map.played()), (2_000, 2_100, 3_000));
    }

    #[test]
    fn reports_going_back_are_refused_and_old_runs_forgotten() {
        let mut map = PlayMap::new(2_000);
        map.record(Run { client: 0, timeline: 0, frames: 1_000 }).unwrap();
        assert_eq!(
            map.record(Run { client: 500, timeline: 9, frames: 10 }),
            Err(ReportError::Overlap { client: 500, reported_until: 1_000 })
        );
        assert_eq!(map.record(Run { client: 2_000, timeline: 0, frames: 0 }), Err(ReportError::Empty));
        map.record(Run { client: 1_000, timeline: 5_000, frames: 1_000 }).unwrap();
        map.record(Run { client: 2_000, timeline: 0, frames: 2_000 }).unwrap();
        assert_eq!(map.runs.front().map(|k| k.run.client), Some(2_000), "only the last 2,000 frames are kept");
        assert_eq!(map.played(), 4_000, "a refused run is not counted");
    }
}
