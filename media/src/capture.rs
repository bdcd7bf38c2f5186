//! A recording's capture on storage: raw chunks written while the musician plays, so that a
//! crash loses at most the chunk being written, and assembled into a WAV file afterwards.
//!
//! Layout of a capture directory: `manifest` (`channels=N` and `sample_rate=R` lines, written
//! and synced before the first sample) and `chunk-000000.f32`, `chunk-000001.f32`, … (raw
//! interleaved little-endian f32, one second of audio each, each synced when complete).

use crate::wav::{self, SampleFormat, WavError};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("capture I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("capture manifest is unreadable: {0}")]
    Manifest(String),
    #[error(transparent)]
    Wav(#[from] WavError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Manifest {
    pub channels: u16,
    pub sample_rate: u32,
}

fn chunk_path(dir: &Path, index: usize) -> PathBuf {
    dir.join(format!("chunk-{index:06}.f32"))
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes a capture's chunks.
pub struct ChunkWriter {
    dir: PathBuf,
    manifest: Manifest,
    chunk: Option<File>,
    chunk_index: usize,
    chunk_samples: usize,
    bytes: Vec<u8>,
}

impl ChunkWriter {
    /// Creates the directory and its manifest, synced, before any audio arrives.
    pub fn create(dir: &Path, manifest: Manifest) -> Result<Self, CaptureError> {
        std::fs::create_dir_all(dir)?;
        let mut file = File::create(dir.join("manifest"))?;
        write!(file, "channels={}\nsample_rate={}\n", manifest.channels, manifest.sample_rate)?;
        file.sync_all()?;
        sync_dir(dir)?;
        Ok(Self { dir: dir.to_owned(), manifest, chunk: None, chunk_index: 0, chunk_samples: 0, bytes: Vec::new() })
    }

    fn samples_per_chunk(&self) -> usize {
        self.manifest.sample_rate as usize * usize::from(self.manifest.channels)
    }

    /// Appends interleaved samples; they reach the operating system before this returns, and
    /// each completed one-second chunk reaches the disk.
    pub fn write(&mut self, mut samples: &[f32]) -> Result<(), CaptureError> {
        while !samples.is_empty() {
            if self.chunk.is_none() {
                self.chunk = Some(File::create(chunk_path(&self.dir, self.chunk_index))?);
                if self.chunk_index == 0 {
                    sync_dir(&self.dir)?;
                }
            }
            let room = self.samples_per_chunk() - self.chunk_samples;
            let (now, rest) = samples.split_at(samples.len().min(room));
            self.bytes.clear();
            self.bytes.extend(now.iter().flat_map(|s| s.to_le_bytes()));
            let file = self.chunk.as_mut().expect("opened above");
            file.write_all(&self.bytes)?;
            self.chunk_samples += now.len();
            if self.chunk_samples == self.samples_per_chunk() {
                self.close_chunk()?;
            }
            samples = rest;
        }
        Ok(())
    }

    fn close_chunk(&mut self) -> Result<(), CaptureError> {
        if let Some(file) = self.chunk.take() {
            file.sync_data()?;
            self.chunk_index += 1;
            self.chunk_samples = 0;
        }
        Ok(())
    }

    /// Syncs what is written.
    pub fn finish(mut self) -> Result<(), CaptureError> {
        if let Some(file) = &self.chunk {
            file.sync_data()?;
        }
        self.chunk = None;
        sync_dir(&self.dir)?;
        Ok(())
    }
}

/// Writes a capture's chunks at any frame offset, in any order: for audio that arrives over a
/// network (a client device's microphone), where a resend may fill a hole after later audio
/// came. Every chunk before the furthest one written is kept at its full one-second length
/// (zeros where nothing came yet), so the capture reads as [`ChunkWriter`]'s does; rewriting a
/// frame is harmless (a resend carries the same samples).
pub struct SparseChunkWriter {
    dir: PathBuf,
    manifest: Manifest,
    /// Chunks opened so far (index → file); all but the last at full length.
    chunks: Vec<File>,
    bytes: Vec<u8>,
}

impl SparseChunkWriter {
    /// Creates the directory and its manifest, synced, before any audio arrives; opening an
    /// existing capture again keeps what it holds.
    pub fn create(dir: &Path, manifest: Manifest) -> Result<Self, CaptureError> {
        drop(ChunkWriter::create(dir, manifest)?);
        Ok(Self { dir: dir.to_owned(), manifest, chunks: Vec::new(), bytes: Vec::new() })
    }

    fn frames_per_chunk(&self) -> u64 {
        u64::from(self.manifest.sample_rate)
    }

    fn frame_bytes(&self) -> u64 {
        4 * u64::from(self.manifest.channels)
    }

    /// Opens chunks up to `index`, giving every earlier one its full length.
    fn reach(&mut self, index: usize) -> Result<(), CaptureError> {
        let full = self.frames_per_chunk() * self.frame_bytes();
        while self.chunks.len() <= index {
            if let Some(last) = self.chunks.last()
                && last.metadata()?.len() < full
            {
                last.set_len(full)?;
            }
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(chunk_path(&self.dir, self.chunks.len()))?;
            self.chunks.push(file);
        }
        Ok(())
    }

    /// Writes interleaved `samples` starting at frame `offset` of the capture.
    pub fn write_at(&mut self, offset: u64, mut samples: &[f32]) -> Result<(), CaptureError> {
        use std::os::unix::fs::FileExt;
        let channels = usize::from(self.manifest.channels);
        let mut frame = offset;
        while !samples.is_empty() {
            let index = usize::try_from(frame / self.frames_per_chunk())
                .map_err(|_| CaptureError::Manifest("offset too large".into()))?;
            let within = frame % self.frames_per_chunk();
            let room = ((self.frames_per_chunk() - within) as usize) * channels;
            let (now, rest) = samples.split_at(samples.len().min(room));
            self.reach(index)?;
            self.bytes.clear();
            self.bytes.extend(now.iter().flat_map(|s| s.to_le_bytes()));
            self.chunks[index].write_all_at(&self.bytes, within * self.frame_bytes())?;
            frame += (now.len() / channels) as u64;
            samples = rest;
        }
        Ok(())
    }

    /// Syncs every chunk and the directory.
    pub fn finish(self) -> Result<(), CaptureError> {
        for chunk in &self.chunks {
            chunk.sync_data()?;
        }
        sync_dir(&self.dir)?;
        Ok(())
    }
}

pub fn read_manifest(dir: &Path) -> Result<Manifest, CaptureError> {
    let text = std::fs::read_to_string(dir.join("manifest"))?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.trim().parse::<u32>().ok())
            .ok_or_else(|| CaptureError::Manifest(format!("{name} missing")))
    };
    let channels = field("channels")?;
    let sample_rate = field("sample_rate")?;
    if !(1..=32).contains(&channels) || !(8_000..=384_000).contains(&sample_rate) {
        return Err(CaptureError::Manifest(format!("channels={channels} sample_rate={sample_rate}")));
    }
    Ok(Manifest { channels: channels as u16, sample_rate })
}

/// Reads a capture's audio in order, one chunk at a time, calling `each` with whole frames.
/// A chunk cut short by a crash contributes its complete frames; later chunks are not read.
/// Returns the frames read.
pub fn read_frames(dir: &Path, mut each: impl FnMut(&[f32]) -> Result<(), CaptureError>) -> Result<u64, CaptureError> {
    let manifest = read_manifest(dir)?;
    let frame_bytes = 4 * usize::from(manifest.channels);
    let full_chunk = manifest.sample_rate as usize * frame_bytes;
    let mut bytes = Vec::new();
    let mut samples = Vec::new();
    let mut frames = 0u64;
    for index in 0.. {
        let Ok(mut file) = File::open(chunk_path(dir, index)) else { break };
        bytes.clear();
        file.read_to_end(&mut bytes)?;
        let whole = bytes.len() / frame_bytes * frame_bytes;
        samples.clear();
        samples.extend(bytes[..whole].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])));
        each(&samples)?;
        frames += (whole / frame_bytes) as u64;
        if bytes.len() < full_chunk {
            break;
        }
    }
    Ok(frames)
}

/// Frames a capture holds, from its chunks' sizes (the same rules as [`read_frames`]).
pub fn frames(dir: &Path) -> Result<u64, CaptureError> {
    let manifest = read_manifest(dir)?;
    let frame_bytes = 4 * u64::from(manifest.channels);
    let full_chunk = u64::from(manifest.sample_rate) * frame_bytes;
    let mut frames = 0;
    for index in 0.. {
        let Ok(meta) = std::fs::metadata(chunk_path(dir, index)) else { break };
        frames += meta.len() / frame_bytes;
        if meta.len() < full_chunk {
            break;
        }
    }
    Ok(frames)
}

/// Writes a capture as a WAV file, streaming chunk by chunk. Returns the frames written.
pub fn assemble_wav(dir: &Path, path: &Path, format: SampleFormat) -> Result<(Manifest, u64), CaptureError> {
    let manifest = read_manifest(dir)?;
    let mut writer = wav::Writer::create(path, manifest.channels, manifest.sample_rate, format)?;
    let frames = read_frames(dir, |samples| Ok(writer.write(samples)?))?;
    writer.finish()?;
    Ok((manifest, frames))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_writes_in_any_order_read_back_as_one_capture_with_zeros_in_its_holes() {
        let dir = tempfile::tempdir().unwrap();
        let capture = dir.path().join("capture");
        let manifest = Manifest { channels: 2, sample_rate: 8_000 };
        let samples: Vec<f32> = (0..2 * 20_500).map(|i| (i + 1) as f32 / 1e5).collect();
        let mut writer = SparseChunkWriter::create(&capture, manifest).unwrap();
        // Blocks of 700 frames, written back to front, one left out, two written twice.
        let blocks: Vec<(u64, &[f32])> = samples.chunks(1_400).enumerate().map(|(i, b)| (i as u64 * 700, b)).collect();
        for (offset, block) in blocks.iter().rev().filter(|(offset, _)| *offset != 7_000) {
            writer.write_at(*offset, block).unwrap();
        }
        writer.write_at(blocks[3].0, blocks[3].1).unwrap();
        writer.write_at(blocks[29].0, blocks[29].1).unwrap();
        writer.finish().unwrap();
        let mut read = Vec::new();
        let frames = read_frames(&capture, |s| {
            read.extend_from_slice(s);
            Ok(())
        })
        .unwrap();
        assert_eq!(frames, 20_500);
        let hole = 2 * 7_000..2 * 7_700;
        assert!(read[hole.clone()].iter().all(|s| *s == 0.0), "the missing block reads as silence");
        let mut expected = samples.clone();
        expected[hole].fill(0.0);
        assert_eq!(read, expected);
        // The late block fills its hole.
        let mut writer = SparseChunkWriter::create(&capture, manifest).unwrap();
        writer.write_at(7_000, blocks[10].1).unwrap();
        drop(writer);
        let mut again = Vec::new();
        read_frames(&capture, |s| {
            again.extend_from_slice(s);
            Ok(())
        })
        .unwrap();
        assert_eq!(again, samples);
    }

    #[test]
    fn chunks_are_a_second_each_and_assemble_into_the_same_samples() {
        let dir = tempfile::tempdir().unwrap();
        let capture = dir.path().join("capture");
        let manifest = Manifest { channels: 2, sample_rate: 8_000 };
        let mut writer = ChunkWriter::create(&capture, manifest).unwrap();
        let samples: Vec<f32> = (0..2 * 20_500).map(|i| i as f32 / 1e5).collect();
        for part in samples.chunks(777) {
            writer.write(part).unwrap();
        }
        writer.finish().unwrap();
        // 20,500 frames at 8 kHz: two full chunks and a partial third.
        let sizes: Vec<u64> = (0..3).map(|i| std::fs::metadata(chunk_path(&capture, i)).unwrap().len()).collect();
        assert_eq!(sizes, [64_000, 64_000, 4 * 2 * 4_500]);
        assert!(!chunk_path(&capture, 3).exists());

        assert_eq!(frames(&capture).unwrap(), 20_500);
        let out = dir.path().join("take.wav");
        let (read_manifest, frames) = assemble_wav(&capture, &out, SampleFormat::Float32).unwrap();
        assert_eq!((read_manifest, frames), (manifest, 20_500));
        let mut reader = wav::WavReader::open(&out).unwrap();
        let mut back = vec![0.0; samples.len()];
        assert_eq!(reader.read_frames(0, &mut back).unwrap(), 20_500);
        assert_eq!(back, samples);
    }

    #[test]
    fn a_chunk_torn_mid_frame_keeps_its_whole_frames() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = Manifest { channels: 2, sample_rate: 8_000 };
        let mut writer = ChunkWriter::create(dir.path(), manifest).unwrap();
        writer.write(&vec![0.5; 2 * 100]).unwrap();
        drop(writer);
        // A crash mid-write: 100 frames and 6 bytes of the next.
        let path = chunk_path(dir.path(), 0);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend([0, 0, 0, 63, 0, 0]);
        std::fs::write(&path, bytes).unwrap();
        let mut seen = 0;
        let frames = read_frames(dir.path(), |s| {
            seen += s.len();
            Ok(())
        })
        .unwrap();
        assert_eq!((frames, seen), (100, 200));
    }

    #[test]
    fn a_missing_or_hostile_manifest_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(read_manifest(dir.path()), Err(CaptureError::Io(_))));
        std::fs::write(dir.path().join("manifest"), "channels=4000000000\nsample_rate=48000\n").unwrap();
        assert!(matches!(read_manifest(dir.path()), Err(CaptureError::Manifest(_))));
    }
}
