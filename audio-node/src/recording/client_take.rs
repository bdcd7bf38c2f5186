//! A take recorded from a client device (§10): microphone blocks written where they belong in
//! the capture (in the order the client heard things), resends harmless, holes tracked; and the
//! takes cut from it by where each stretch was heard on the timeline — a loop wrap or a jump
//! starts a new take, the record point and a punch range trim them — to the sample.
//!
//! The capture is laid out by the device's played index (see `play_map`): capture frame 0 is
//! the frame the client played `origin`-th, fixed when the take starts. What the microphone
//! caught while nothing played (an underrun, a network drop) is not heard against anything
//! and takes no room, so a take interrupted and resumed is the same take as one that was not.

use crate::device::play_map::Placed;
use crate::recording::coverage::Coverage;
use audiolab_jobs::finalize::TakeSpan;
use audiolab_media::capture::{CaptureError, Manifest, SparseChunkWriter};
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

/// A stretch of the capture heard against consecutive timeline frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Piece {
    timeline: i64,
    frames: u64,
}

pub struct ClientTake {
    origin: u64,
    /// Timeline frames the take keeps: from the record point, or the punch range.
    keep: Range<i64>,
    channels: usize,
    writer: SparseChunkWriter,
    coverage: Coverage,
    /// Capture offset → where that stretch was heard.
    pieces: BTreeMap<u64, Piece>,
}

impl ClientTake {
    /// Starts a take in the capture directory `dir`, keeping what is heard at timeline frames
    /// `keep` (from the record point on, or a punch range).
    pub fn create(dir: &Path, manifest: Manifest, origin: u64, keep: Range<i64>) -> Result<Self, CaptureError> {
        Ok(Self {
            origin,
            keep,
            channels: usize::from(manifest.channels),
            writer: SparseChunkWriter::create(dir, manifest)?,
            coverage: Coverage::default(),
            pieces: BTreeMap::new(),
        })
    }

    /// Writes the stretches of a microphone block that were heard against the timeline
    /// (`placed`: offsets within the block, and where each was heard). Returns the frames new
    /// to the take; a resend writes the same samples at the same place.
    pub fn write(&mut self, samples: &[f32], placed: &[Placed]) -> Result<u64, CaptureError> {
        let mut new = 0;
        for stretch in placed {
            if stretch.played + stretch.frames <= self.origin {
                continue;
            }
            let skip = self.origin.saturating_sub(stretch.played);
            let (first, end) = (stretch.offset + skip, stretch.offset + stretch.frames);
            let offset = stretch.played + skip - self.origin;
            let ch = self.channels;
            self.writer.write_at(offset, &samples[first as usize * ch..end as usize * ch])?;
            new += self.coverage.insert(offset..offset + (end - first));
            let piece = Piece { timeline: stretch.timeline + skip as i64, frames: end - first };
            self.pieces.insert(offset, piece);
        }
        Ok(new)
    }

    /// The capture frames that have not arrived, up to the furthest that has.
    pub fn holes(&self) -> Vec<Range<u64>> {
        let end = self.pieces.iter().next_back().map_or(0, |(offset, piece)| offset + piece.frames);
        self.coverage.holes(0..end)
    }

    /// Frames heard before the played index `until` whose microphone audio has not arrived.
    pub fn missing_before(&self, until: u64) -> u64 {
        self.coverage.holes(0..until.saturating_sub(self.origin)).iter().map(|h| h.end - h.start).sum()
    }

    /// The takes: runs of the capture heard against consecutive timeline frames, trimmed to
    /// the frames kept. Each loop pass (the timeline going back) is a take of its own.
    pub fn spans(&self) -> Vec<TakeSpan> {
        let mut runs: Vec<TakeSpan> = Vec::new();
        for (&offset, piece) in &self.pieces {
            if let Some(last) = runs.last_mut()
                && last.capture_offset + last.frames == offset
                && last.timeline_start + last.frames as i64 == piece.timeline
            {
                last.frames += piece.frames;
                continue;
            }
            runs.push(TakeSpan { capture_offset: offset, timeline_start: piece.timeline, frames: piece.frames });
        }
        runs.into_iter().filter_map(|run| self.trim(run)).collect()
    }

    fn trim(&self, run: TakeSpan) -> Option<TakeSpan> {
        let start = run.timeline_start.max(self.keep.start);
        let end = (run.timeline_start + run.frames as i64).min(self.keep.end);
        (start < end).then(|| TakeSpan {
            capture_offset: run.capture_offset + (start - run.timeline_start) as u64,
            timeline_start: start,
            frames: (end - start) as u64,
        })
    }

    /// Syncs the capture.
    pub fn finish(self) -> Result<(), CaptureError> {
        self.writer.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::play_map::{PlayMap, Run};

    /// The round trip the synthetic musician's setup has, in frames.
    const LATENCY: u64 = 2_085;
    const RATE: u32 = 48_000;

    /// Reads the capture back.
    fn capture(dir: &Path) -> Vec<f32> {
        let mut samples = Vec::new();
        audiolab_media::capture::read_frames(dir, |s| {
            samples.extend_from_slice(s);
            Ok(())
        })
        .unwrap();
        samples
    }

    /// The musician plays back exactly what they hear: the microphone frame captured at client
    /// frame `c` carries the timeline frame heard at `c − LATENCY` (as a sample value), or
    /// silence where nothing was heard. Blocks of 480 frames, sent in `order`.
    fn record(map: &PlayMap, take: &mut ClientTake, from: u64, to: u64, order: impl Fn(&mut Vec<u64>)) {
        let mut starts: Vec<u64> = (from..to).step_by(480).collect();
        order(&mut starts);
        for client in starts {
            let placed = map.place(client, 480, LATENCY).expect("the client reported playing that far");
            let mut samples = vec![0.0f32; 480];
            for p in &placed {
                for i in 0..p.frames {
                    samples[(p.offset + i) as usize] = (p.timeline + i as i64) as f32;
                }
            }
            take.write(&samples, &placed).unwrap();
        }
    }

    #[test]
    fn a_take_starts_at_the_record_point_to_the_sample_whatever_the_arrival_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut map = PlayMap::new(10_000_000);
        // The client's clock stood at 100,000 when the timeline rolled from 0.
        map.record(Run { client: 100_000, timeline: 0, frames: 200_000 }).unwrap();
        let record_point = 48_000i64;
        let origin = record_point as u64 - 960;
        let manifest = Manifest { channels: 1, sample_rate: RATE };
        let mut take = ClientTake::create(dir.path(), manifest, origin, record_point..i64::MAX).unwrap();
        // Blocks arrive back to front, and a few twice (resends).
        record(&map, &mut take, 100_000 + origin + LATENCY, 100_000 + origin + LATENCY + 96_000, |s| {
            s.reverse();
            let again: Vec<u64> = s.iter().step_by(17).copied().collect();
            s.extend(again);
        });
        assert!(take.holes().is_empty(), "{:?}", take.holes());
        let spans = take.spans();
        assert_eq!(spans.len(), 1, "{spans:?}");
        let span = spans[0];
        assert_eq!(span.timeline_start, record_point, "the take starts exactly at the record point");
        let samples = capture(dir.path());
        // Every kept frame carries the timeline frame it was heard against: placement is exact.
        for i in [0u64, 1, 479, 480, 12_345, span.frames - 1] {
            assert_eq!(samples[(span.capture_offset + i) as usize], (span.timeline_start + i as i64) as f32);
        }
    }

    #[test]
    fn three_loop_passes_make_three_takes_and_a_lost_block_is_a_hole() {
        let dir = tempfile::tempdir().unwrap();
        let mut map = PlayMap::new(10_000_000);
        // Loop 48,000..72,000 played three times from client frame 0 (after 48,000 of run-up).
        map.record(Run { client: 0, timeline: 0, frames: 72_000 }).unwrap();
        map.record(Run { client: 72_000, timeline: 48_000, frames: 24_000 }).unwrap();
        map.record(Run { client: 96_000, timeline: 48_000, frames: 24_000 }).unwrap();
        map.record(Run { client: 120_000, timeline: 72_000, frames: 10_000 }).unwrap();
        let manifest = Manifest { channels: 1, sample_rate: RATE };
        let mut take = ClientTake::create(dir.path(), manifest, 48_000, 48_000..72_000).unwrap();
        // Block 60,000 + LATENCY.. is lost in the network.
        let lost = 48_000 + LATENCY + 480 * 25;
        record(&map, &mut take, 48_000 + LATENCY, 120_000 + LATENCY, |s| s.retain(|c| *c != lost));
        let spans = take.spans();
        let passes: Vec<(i64, u64)> = spans.iter().map(|s| (s.timeline_start, s.frames)).collect();
        assert_eq!(passes, [(48_000, 12_000), (60_480, 11_520), (48_000, 24_000), (48_000, 24_000)]);
        assert_eq!(take.holes(), vec![12_000..12_480]);
        let samples = capture(dir.path());
        for span in &spans {
            assert_eq!(samples[span.capture_offset as usize], span.timeline_start as f32);
            let last = span.capture_offset + span.frames - 1;
            assert_eq!(samples[last as usize], (span.timeline_start + span.frames as i64 - 1) as f32);
        }
        // The resend fills the hole: the first pass is whole again.
        record(&map, &mut take, lost, lost + 480, |_| {});
        assert!(take.holes().is_empty());
        let passes: Vec<(i64, u64)> = take.spans().iter().map(|s| (s.timeline_start, s.frames)).collect();
        assert_eq!(passes, [(48_000, 24_000), (48_000, 24_000), (48_000, 24_000)]);
    }
}
