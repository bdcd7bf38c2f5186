//! The monitor tap: the engine's stereo output while it rolls, each stretch labelled with the
//! timeline frame of its first sample (a loop wrap starts a new stretch), for a client device's
//! `MON` stream. Two lock-free rings, written by the audio thread without allocating; a full
//! ring drops the stretch and counts it (the client then hears a gap, never a shifted timeline).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A stretch of output: `frames` stereo frames playing timeline frames `timeline..`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stretch {
    pub timeline: i64,
    pub frames: u32,
}

/// The audio thread's end.
#[derive(Debug)]
pub struct MonitorTap {
    samples: rtrb::Producer<f32>,
    stretches: rtrb::Producer<Stretch>,
    dropped: Arc<AtomicU64>,
}

/// The control side's end: what the tap wrote, stretch by stretch.
#[derive(Debug)]
pub struct MonitorFeed {
    samples: rtrb::Consumer<f32>,
    stretches: rtrb::Consumer<Stretch>,
    dropped: Arc<AtomicU64>,
}

/// A tap holding up to `frames` stereo frames not yet taken.
pub fn monitor(frames: usize) -> (MonitorTap, MonitorFeed) {
    let (sample_in, sample_out) = rtrb::RingBuffer::new(frames * 2);
    let (stretch_in, stretch_out) = rtrb::RingBuffer::new(frames / 64 + 16);
    let dropped = Arc::new(AtomicU64::new(0));
    (
        MonitorTap { samples: sample_in, stretches: stretch_in, dropped: dropped.clone() },
        MonitorFeed { samples: sample_out, stretches: stretch_out, dropped },
    )
}

impl MonitorTap {
    /// Offers the stereo `span` that plays from timeline frame `timeline`.
    pub fn push(&mut self, timeline: i64, span: &[f32]) {
        let frames = span.len() / 2;
        if frames == 0 {
            return;
        }
        if self.samples.slots() < span.len() || self.stretches.slots() == 0 {
            self.dropped.fetch_add(frames as u64, Relaxed);
            return;
        }
        if let Ok(chunk) = self.samples.write_chunk_uninit(span.len()) {
            chunk.fill_from_iter(span.iter().copied());
        }
        let _ = self.stretches.push(Stretch { timeline, frames: frames as u32 });
    }
}

impl MonitorFeed {
    /// The next stretch and its samples (stereo, interleaved), if one is complete.
    pub fn pop(&mut self) -> Option<(Stretch, Vec<f32>)> {
        let stretch = self.stretches.pop().ok()?;
        let wanted = stretch.frames as usize * 2;
        let chunk = self.samples.read_chunk(wanted.min(self.samples.slots())).ok()?;
        let (first, second) = chunk.as_slices();
        let mut samples = Vec::with_capacity(wanted);
        samples.extend_from_slice(first);
        samples.extend_from_slice(second);
        chunk.commit_all();
        Some((stretch, samples))
    }

    /// Frames the tap has written and the feed not yet taken.
    pub fn queued_frames(&self) -> u64 {
        (self.samples.slots() / 2) as u64
    }

    /// Frames the tap had to drop because the feed was not read in time.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }
}
