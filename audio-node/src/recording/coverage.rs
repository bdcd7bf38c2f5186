//! Which frames of a take have arrived: a set of half-open ranges, merged as they come, so a
//! client device's take can be written at its offsets in any order (resends are idempotent) and
//! finalised only when whole — or with its holes listed. Pure.

use std::collections::BTreeMap;
use std::ops::Range;

/// A set of frame ranges. Memory grows with the number of holes, not with the frames.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    /// start → end of disjoint, non-adjacent ranges.
    ranges: BTreeMap<u64, u64>,
}

impl Coverage {
    /// Adds `range`; returns how many of its frames were new (0 for a pure duplicate).
    pub fn insert(&mut self, range: Range<u64>) -> u64 {
        if range.is_empty() {
            return 0;
        }
        let (mut start, mut end) = (range.start, range.end);
        let mut already = 0;
        // Every stored range touching [start, end] merges into it.
        let touching: Vec<(u64, u64)> =
            self.ranges.range(..=end).rev().take_while(|(_, e)| **e >= start).map(|(s, e)| (*s, *e)).collect();
        for (s, e) in touching {
            already += e.min(range.end).saturating_sub(s.max(range.start));
            start = start.min(s);
            end = end.max(e);
            self.ranges.remove(&s);
        }
        self.ranges.insert(start, end);
        (range.end - range.start) - already
    }

    /// Whether every frame of `range` has arrived.
    pub fn covers(&self, range: Range<u64>) -> bool {
        range.is_empty() || self.ranges.range(..=range.start).next_back().is_some_and(|(_, e)| *e >= range.end)
    }

    /// The missing stretches of `range`, in order.
    pub fn holes(&self, range: Range<u64>) -> Vec<Range<u64>> {
        let mut holes = Vec::new();
        let mut at = range.start;
        let first = self.ranges.range(..=range.start).next_back().map_or(range.start, |(s, _)| *s);
        for (s, e) in self.ranges.range(first..range.end) {
            if *s > at {
                holes.push(at..(*s).min(range.end));
            }
            at = at.max(*e);
            if at >= range.end {
                break;
            }
        }
        if at < range.end {
            holes.push(at..range.end);
        }
        holes
    }

    /// Frames covered in all.
    pub fn len(&self) -> u64 {
        self.ranges.iter().map(|(s, e)| e - s).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_in_any_order_and_duplicates_add_nothing() {
        let mut c = Coverage::default();
        assert_eq!(c.insert(0..100), 100);
        assert_eq!(c.insert(200..300), 100);
        assert_eq!(c.holes(0..400), vec![100..200, 300..400]);
        assert!(!c.covers(0..300));
        assert_eq!(c.insert(50..150), 50, "half of it was there");
        assert_eq!(c.insert(0..100), 0, "a resend");
        assert_eq!(c.insert(150..200), 50);
        assert!(c.covers(0..300));
        assert_eq!(c.holes(0..300), Vec::<Range<u64>>::new());
        assert_eq!(c.ranges.len(), 1, "merged into one range");
        assert_eq!(c.len(), 300);
    }

    #[test]
    fn holes_are_reported_within_the_asked_range() {
        let mut c = Coverage::default();
        c.insert(10..20);
        c.insert(30..40);
        assert_eq!(c.holes(15..35), vec![20..30]);
        assert_eq!(c.holes(0..5), vec![0..5]);
        assert_eq!(c.holes(12..18), Vec::<Range<u64>>::new());
        assert!(c.covers(31..40) && !c.covers(31..41));
    }

    #[test]
    fn a_shuffled_stream_of_blocks_ends_whole() {
        let mut c = Coverage::default();
        let mut order: Vec<u64> = (0..500).collect();
        // A fixed shuffle: stride through the blocks.
        order.sort_by_key(|n| (n * 7919) % 500);
        for n in order {
            c.insert(n * 128..(n + 1) * 128);
        }
        assert!(c.covers(0..64_000));
        assert_eq!(c.ranges.len(), 1);
    }
}
