//! WAV files: positioned reads of any frame range as `f32`, and writing.
//!
//! Clip audio is stored as WAV at the project rate. Reads go through `pread`, so one open file
//! serves any position with no shared cursor, and no more than the requested frames are read.

use audiolab_dsp::dither::quantize;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum WavError {
    #[error("cannot read audio file: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a WAV file: {0}")]
    Format(&'static str),
    #[error("unsupported WAV sample format: {0}")]
    Unsupported(String),
}

/// How samples are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleFormat {
    Int16,
    Int24,
    Int32,
    Float32,
}

impl SampleFormat {
    pub fn bytes(self) -> usize {
        match self {
            Self::Int16 => 2,
            Self::Int24 => 3,
            Self::Int32 | Self::Float32 => 4,
        }
    }
}

/// The layout of a WAV file's audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavInfo {
    pub channels: u16,
    pub sample_rate: u32,
    pub format: SampleFormat,
    /// Frames in the file.
    pub frames: u64,
    data_offset: u64,
}

/// An open WAV file that reads frames at any position.
#[derive(Debug)]
pub struct WavReader {
    file: File,
    info: WavInfo,
    bytes: Vec<u8>,
}

impl WavReader {
    /// Opens `path` and reads its header.
    ///
    /// Errors: [`WavError::Format`] / [`WavError::Unsupported`] for anything but PCM 16/24/32-bit
    /// or 32-bit float WAV; I/O errors as [`WavError::Io`].
    pub fn open(path: &Path) -> Result<Self, WavError> {
        let mut file = File::open(path)?;
        let info = read_header(&mut file)?;
        Ok(Self { file, info, bytes: Vec::new() })
    }

    pub fn info(&self) -> WavInfo {
        self.info
    }

    /// Reads up to `out.len() / channels` frames starting at frame `start` into `out`
    /// (interleaved). Returns the frames read: fewer at the end of the file, 0 past it.
    /// Reuses an internal buffer, so after the first call of a given size it does not allocate.
    pub fn read_frames(&mut self, start: u64, out: &mut [f32]) -> Result<usize, WavError> {
        let channels = usize::from(self.info.channels);
        let wanted = (out.len() / channels) as u64;
        let frames = wanted.min(self.info.frames.saturating_sub(start)) as usize;
        if frames == 0 {
            return Ok(0);
        }
        let sample_bytes = self.info.format.bytes();
        let frame_bytes = sample_bytes * channels;
        self.bytes.resize(frames * frame_bytes, 0);
        self.file.read_exact_at(&mut self.bytes, self.info.data_offset + start * frame_bytes as u64)?;
        let samples = &mut out[..frames * channels];
        let bytes = self.bytes.chunks_exact(sample_bytes);
        match self.info.format {
            SampleFormat::Float32 => {
                samples.iter_mut().zip(bytes).for_each(|(s, b)| *s = f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            SampleFormat::Int16 => samples
                .iter_mut()
                .zip(bytes)
                .for_each(|(s, b)| *s = f32::from(i16::from_le_bytes([b[0], b[1]])) / 32_768.0),
            SampleFormat::Int24 => {
                // Four samples (twelve bytes) per step, read as three words: far fewer bounds
                // checks and byte shuffles than one sample at a time.
                let mut quads = samples.chunks_exact_mut(4);
                let mut words = self.bytes.chunks_exact(12);
                for (s, w) in (&mut quads).zip(&mut words) {
                    let a = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
                    let b = u32::from_le_bytes([w[4], w[5], w[6], w[7]]);
                    let c = u32::from_le_bytes([w[8], w[9], w[10], w[11]]);
                    let ints = [
                        (a << 8) as i32,
                        ((a >> 24) << 8 | b << 16) as i32,
                        ((b >> 16) << 8 | c << 24) as i32,
                        c as i32,
                    ];
                    for (out, int) in s.iter_mut().zip(ints) {
                        *out = (int >> 8) as f32 * (1.0 / 8_388_608.0);
                    }
                }
                for (s, b) in quads.into_remainder().iter_mut().zip(words.remainder().chunks_exact(3)) {
                    *s = (i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8) as f32 * (1.0 / 8_388_608.0);
                }
            }
            SampleFormat::Int32 => samples
                .iter_mut()
                .zip(bytes)
                .for_each(|(s, b)| *s = i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32 / 2_147_483_648.0),
        }
        Ok(frames)
    }
}

fn read_header(file: &mut File) -> Result<WavInfo, WavError> {
    let mut riff = [0u8; 12];
    file.read_exact(&mut riff).map_err(|_| WavError::Format("too short"))?;
    let rf64 = matches!(&riff[0..4], b"RF64" | b"BW64");
    if !(rf64 || &riff[0..4] == b"RIFF") || &riff[8..12] != b"WAVE" {
        return Err(WavError::Format("missing RIFF/WAVE header"));
    }
    let length = file.metadata()?.len();
    let mut offset = 12u64;
    let mut format: Option<(u16, u16, u32, u16)> = None;
    // RF64: the data chunk's real size, from the `ds64` chunk.
    let mut data_size64: Option<u64> = None;
    // Walk the chunks; a hostile size can only move us past the end of the file.
    while offset + 8 <= length {
        let mut header = [0u8; 8];
        file.read_exact_at(&mut header, offset)?;
        let size = u64::from(u32::from_le_bytes([header[4], header[5], header[6], header[7]]));
        let body = offset + 8;
        match &header[0..4] {
            b"ds64" if rf64 && size >= 16 => {
                let mut sizes = [0u8; 16];
                file.read_exact_at(&mut sizes, body)?;
                data_size64 = Some(u64::from_le_bytes(sizes[8..16].try_into().expect("8 bytes")));
            }
            b"fmt " => {
                if size < 16 {
                    return Err(WavError::Format("fmt chunk too short"));
                }
                let mut fmt = [0u8; 40];
                let read = size.min(40) as usize;
                file.read_exact_at(&mut fmt[..read], body)?;
                let mut tag = u16::from_le_bytes([fmt[0], fmt[1]]);
                if tag == 0xFFFE && read >= 26 {
                    tag = u16::from_le_bytes([fmt[24], fmt[25]]); // WAVE_FORMAT_EXTENSIBLE: the sub-format's tag
                }
                let channels = u16::from_le_bytes([fmt[2], fmt[3]]);
                let rate = u32::from_le_bytes([fmt[4], fmt[5], fmt[6], fmt[7]]);
                let bits = u16::from_le_bytes([fmt[14], fmt[15]]);
                format = Some((tag, channels, rate, bits));
            }
            b"data" => {
                let (tag, channels, sample_rate, bits) = format.ok_or(WavError::Format("data before fmt"))?;
                let format = match (tag, bits) {
                    (1, 16) => SampleFormat::Int16,
                    (1, 24) => SampleFormat::Int24,
                    (1, 32) => SampleFormat::Int32,
                    (3, 32) => SampleFormat::Float32,
                    _ => {
                        return Err(WavError::Unsupported(format!("format tag {tag}, {bits} bits")));
                    }
                };
                if channels == 0 || sample_rate == 0 {
                    return Err(WavError::Format("zero channels or sample rate"));
                }
                let size = match data_size64 {
                    Some(size64) if size == u64::from(u32::MAX) => size64,
                    _ => size,
                };
                // Trust the file's real length over a declared size (streams write 0 or 0xFFFFFFFF).
                let available = length.saturating_sub(body).min(size);
                let frame_bytes = format.bytes() as u64 * u64::from(channels);
                return Ok(WavInfo {
                    channels,
                    sample_rate,
                    format,
                    frames: available / frame_bytes,
                    data_offset: body,
                });
            }
            _ => {}
        }
        offset = body + size + (size & 1);
    }
    Err(WavError::Format("no data chunk"))
}

/// Writes interleaved `samples` as a WAV file. Integer formats clip to full scale (the only
/// place AudioLab clips); float keeps values as they are.
pub fn write(
    path: &Path,
    channels: u16,
    sample_rate: u32,
    format: SampleFormat,
    samples: &[f32],
) -> Result<(), WavError> {
    let mut writer = Writer::create(path, channels, sample_rate, format)?;
    writer.write(samples)?;
    writer.finish()
}

/// A WAV file written as the audio arrives, so memory stays bounded whatever its length.
/// Each block is converted to bytes in one pass and written at once; the header's sizes are
/// filled in by [`Writer::finish`].
///
/// Layout: `RIFF`, a 28-byte `JUNK` chunk, `fmt `, `fact` (float only), `data`. A file whose
/// sizes do not fit 32 bits (over 4 GiB) becomes RF64 at the end (EBU Tech 3306): `RF64`, and
/// the `JUNK` chunk turns into the `ds64` chunk holding the 64-bit sizes. Float, 24- and 32-bit
/// files carry a `WAVE_FORMAT_EXTENSIBLE` format (what players expect above 16 bits).
pub struct Writer {
    file: BufWriter<File>,
    format: SampleFormat,
    bytes: Vec<u8>,
    channels: u16,
    sample_rate: u32,
    data_bytes: u64,
    always_rf64: bool,
}

/// Size of the `ds64` chunk's body (riff size, data size, sample count, an empty table).
const DS64_BODY: u32 = 28;

/// Whether `format` is written with `WAVE_FORMAT_EXTENSIBLE`.
fn extensible(format: SampleFormat) -> bool {
    format != SampleFormat::Int16
}

/// Header bytes before the audio.
fn header_len(format: SampleFormat) -> u64 {
    let fmt = if extensible(format) { 8 + 40 } else { 8 + 16 };
    let fact = if format == SampleFormat::Float32 { 12 } else { 0 };
    12 + 8 + u64::from(DS64_BODY) + fmt + fact + 8
}

/// Whether a file with `data_bytes` of audio needs RF64: its RIFF size would not fit 32 bits.
pub fn needs_rf64(format: SampleFormat, data_bytes: u64) -> bool {
    header_len(format) - 8 + data_bytes + (data_bytes & 1) > u64::from(u32::MAX)
}

impl Writer {
    pub fn create(path: &Path, channels: u16, sample_rate: u32, format: SampleFormat) -> Result<Self, WavError> {
        let mut writer = Self {
            file: BufWriter::with_capacity(1 << 20, File::create(path)?),
            format,
            bytes: Vec::new(),
            channels,
            sample_rate,
            data_bytes: 0,
            always_rf64: false,
        };
        writer.write_header()?;
        Ok(writer)
    }

    /// Writes RF64 whatever the size (for tools that want it, and to test small RF64 files).
    pub fn always_rf64(mut self) -> Result<Self, WavError> {
        self.always_rf64 = true;
        self.file.seek(SeekFrom::Start(0))?;
        self.write_header()?;
        Ok(self)
    }

    fn write_header(&mut self) -> Result<(), WavError> {
        let (channels, sample_rate, format) = (self.channels, self.sample_rate, self.format);
        let (tag, bits) = match format {
            SampleFormat::Float32 => (3u16, 32u16),
            other => (1, other.bytes() as u16 * 8),
        };
        let block_align = format.bytes() as u16 * channels;
        let frames = self.data_bytes / u64::from(block_align.max(1));
        let padded = self.data_bytes + (self.data_bytes & 1);
        let riff = header_len(format) - 8 + padded;
        let rf64 = self.always_rf64 || needs_rf64(format, self.data_bytes);
        let size32 = |size: u64| if rf64 { u32::MAX } else { size as u32 };
        let mut header = Vec::with_capacity(header_len(format) as usize);
        header.extend_from_slice(if rf64 { b"RF64" } else { b"RIFF" });
        header.extend_from_slice(&size32(riff).to_le_bytes());
        header.extend_from_slice(b"WAVE");
        // Reserved room for the 64-bit sizes: `ds64` in an RF64 file, skipped `JUNK` otherwise.
        header.extend_from_slice(if rf64 { b"ds64" } else { b"JUNK" });
        header.extend_from_slice(&DS64_BODY.to_le_bytes());
        if rf64 {
            header.extend_from_slice(&riff.to_le_bytes());
            header.extend_from_slice(&self.data_bytes.to_le_bytes());
            header.extend_from_slice(&frames.to_le_bytes());
            header.extend_from_slice(&0u32.to_le_bytes());
        } else {
            header.extend_from_slice(&[0u8; DS64_BODY as usize]);
        }
        header.extend_from_slice(b"fmt ");
        header.extend_from_slice(&(if extensible(format) { 40u32 } else { 16 }).to_le_bytes());
        header.extend_from_slice(&(if extensible(format) { 0xFFFEu16 } else { tag }).to_le_bytes());
        header.extend_from_slice(&channels.to_le_bytes());
        header.extend_from_slice(&sample_rate.to_le_bytes());
        header.extend_from_slice(&(sample_rate * u32::from(block_align)).to_le_bytes());
        header.extend_from_slice(&block_align.to_le_bytes());
        header.extend_from_slice(&bits.to_le_bytes());
        if extensible(format) {
            header.extend_from_slice(&22u16.to_le_bytes());
            header.extend_from_slice(&bits.to_le_bytes()); // valid bits per sample
            let mask: u32 = if channels == 1 { 0x4 } else { 0x3 }; // front centre / front left + right
            header.extend_from_slice(&mask.to_le_bytes());
            // The sub-format GUID: the format tag, then the fixed KSDATAFORMAT tail.
            header.extend_from_slice(&u32::from(tag).to_le_bytes());
            header.extend_from_slice(&[0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71]);
        }
        if format == SampleFormat::Float32 {
            // Non-PCM data carries its frame count in a `fact` chunk.
            header.extend_from_slice(b"fact");
            header.extend_from_slice(&4u32.to_le_bytes());
            header.extend_from_slice(&size32(frames).to_le_bytes());
        }
        header.extend_from_slice(b"data");
        header.extend_from_slice(&size32(self.data_bytes).to_le_bytes());
        debug_assert_eq!(header.len() as u64, header_len(format));
        self.file.write_all(&header)?;
        Ok(())
    }

    /// Appends interleaved samples. Integer formats clip to full scale.
    pub fn write(&mut self, samples: &[f32]) -> Result<(), WavError> {
        let bytes = &mut self.bytes;
        bytes.clear();
        match self.format {
            SampleFormat::Float32 => bytes.extend(samples.iter().flat_map(|s| s.to_le_bytes())),
            SampleFormat::Int16 => bytes.extend(samples.iter().flat_map(|&s| (quantize(s, 16) as i16).to_le_bytes())),
            SampleFormat::Int24 => {
                bytes.resize(samples.len() * 3, 0);
                for (out, &s) in bytes.chunks_exact_mut(3).zip(samples) {
                    out.copy_from_slice(&quantize(s, 24).to_le_bytes()[..3]);
                }
            }
            SampleFormat::Int32 => bytes.extend(samples.iter().flat_map(|&s| quantize(s, 32).to_le_bytes())),
        }
        self.file.write_all(bytes)?;
        self.data_bytes += bytes.len() as u64;
        Ok(())
    }

    /// Pads the data to an even length, fills in the header's sizes and closes the file.
    pub fn finish(mut self) -> Result<(), WavError> {
        if self.data_bytes & 1 == 1 {
            self.file.write_all(&[0])?;
        }
        // Only the sizes change: the header is written again with them.
        self.file.seek(SeekFrom::Start(0))?;
        self.write_header()?;
        self.file.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_files_read_back_exactly_from_any_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        let samples: Vec<f32> = (0..200).map(|i| i as f32 / 256.0 - 0.3).collect();
        write(&path, 2, 48_000, SampleFormat::Float32, &samples).unwrap();
        let mut reader = WavReader::open(&path).unwrap();
        assert_eq!(reader.info().frames, 100);
        assert_eq!((reader.info().channels, reader.info().sample_rate), (2, 48_000));
        let mut out = [0.0f32; 10];
        assert_eq!(reader.read_frames(37, &mut out).unwrap(), 5);
        assert_eq!(&out[..], &samples[74..84]);
        assert_eq!(reader.read_frames(98, &mut out).unwrap(), 2, "short read at the end");
        assert_eq!(reader.read_frames(100, &mut out).unwrap(), 0);
    }

    #[test]
    fn integer_files_scale_to_plus_minus_one() {
        let dir = tempfile::tempdir().unwrap();
        for (format, tolerance) in [
            (SampleFormat::Int16, 1.0 / 32_768.0),
            (SampleFormat::Int24, 1.0 / 8_388_608.0),
            (SampleFormat::Int32, 1e-7),
        ] {
            let path = dir.path().join(format!("{format:?}.wav"));
            write(&path, 1, 44_100, format, &[0.5, -0.25, 1.5, -1.0]).unwrap();
            let mut out = [0.0f32; 4];
            WavReader::open(&path).unwrap().read_frames(0, &mut out).unwrap();
            for (got, want) in out.iter().zip([0.5, -0.25, 1.0, -1.0]) {
                assert!((got - want).abs() <= tolerance * 2.0, "{format:?}: {out:?}");
            }
        }
    }

    #[test]
    fn every_24_bit_value_reads_back_from_any_frame() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("24.wav");
        // A spread of values including both extremes, an odd count so the tail path runs too.
        let values: Vec<i32> = (0..1_001)
            .map(|i: i32| (i.wrapping_mul(2_654_435_761u32 as i32) >> 8).clamp(-8_388_608, 8_388_607))
            .collect();
        let samples: Vec<f32> = values.iter().map(|&v| v as f32 / 8_388_608.0).collect();
        write(&path, 1, 48_000, SampleFormat::Int24, &samples).unwrap();
        let mut reader = WavReader::open(&path).unwrap();
        for start in [0u64, 1, 2, 3, 997] {
            let mut out = vec![0.0f32; 1_001];
            let read = reader.read_frames(start, &mut out).unwrap();
            for (i, got) in out[..read].iter().enumerate() {
                assert_eq!((got * 8_388_608.0) as i32, values[start as usize + i], "frame {}", start as usize + i);
            }
        }
    }

    /// `sox --i` of `path`, or `None` (with a note) where sox is not installed.
    fn sox_info(path: &Path) -> Option<String> {
        match std::process::Command::new("sox").arg("--i").arg(path).output() {
            Ok(out) => {
                assert!(out.status.success(), "sox --i failed: {}", String::from_utf8_lossy(&out.stderr));
                // sox asks every non-PCM sub-format for a second extension size, so it says
                // this of every WAVE_FORMAT_EXTENSIBLE float file (ffmpeg's as well) and reads it
                // all the same; any other warning is a fault of ours.
                let quirk = "wave header missing extended part of fmt chunk";
                let warnings = String::from_utf8_lossy(&out.stderr).replace(&format!("sox WARN wav: {quirk}"), "");
                assert!(warnings.trim().is_empty(), "sox warns about the file: {warnings}");
                Some(String::from_utf8_lossy(&out.stdout).into_owned())
            }
            Err(_) => {
                eprintln!("sox is not installed; the file was checked by AudioLab's reader only");
                None
            }
        }
    }

    #[test]
    fn float_24_and_32_bit_files_are_extensible_and_sox_reads_them_without_warning() {
        let dir = tempfile::tempdir().unwrap();
        let samples: Vec<f32> = (0..9_600).map(|i| ((i as f32) * 0.01).sin() * 0.5).collect();
        for (format, tag, sox_encoding) in [
            (SampleFormat::Float32, 0xFFFE_u16, "Floating Point"),
            (SampleFormat::Int24, 0xFFFE, "Signed Integer"),
            (SampleFormat::Int32, 0xFFFE, "Signed Integer"),
            (SampleFormat::Int16, 1, "Signed Integer"),
        ] {
            let path = dir.path().join(format!("{format:?}.wav"));
            write(&path, 2, 48_000, format, &samples).unwrap();
            let bytes = std::fs::read(&path).unwrap();
            let fmt = bytes.windows(4).position(|w| w == b"fmt ").unwrap();
            assert_eq!(u16::from_le_bytes([bytes[fmt + 8], bytes[fmt + 9]]), tag, "{format:?}");
            let info = WavReader::open(&path).unwrap().info();
            assert_eq!((info.frames, info.format), (4_800, format));
            if let Some(text) = sox_info(&path) {
                assert!(text.contains(sox_encoding), "{format:?}: {text}");
                assert!(text.contains("4800 samples"), "{format:?}: {text}");
            }
        }
    }

    #[test]
    fn rf64_files_carry_64_bit_sizes_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.wav");
        let samples: Vec<f32> = (0..48_000).map(|i| (i % 97) as f32 / 97.0 - 0.5).collect();
        let mut writer = Writer::create(&path, 2, 48_000, SampleFormat::Float32).unwrap().always_rf64().unwrap();
        writer.write(&samples).unwrap();
        writer.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[0..4], b"RF64");
        assert_eq!(&bytes[4..8], &u32::MAX.to_le_bytes(), "the 32-bit RIFF size defers to ds64");
        assert_eq!(&bytes[12..16], b"ds64");
        let data_size = u64::from_le_bytes(bytes[28..36].try_into().unwrap());
        assert_eq!(data_size, 48_000 * 4);
        let mut reader = WavReader::open(&path).unwrap();
        assert_eq!(reader.info().frames, 24_000);
        let mut out = vec![0.0f32; 48_000];
        assert_eq!(reader.read_frames(0, &mut out).unwrap(), 24_000);
        assert_eq!(out, samples);
        if let Some(text) = sox_info(&path) {
            assert!(text.contains("24000 samples"), "{text}");
        }
    }

    #[test]
    fn files_past_4_gib_switch_to_rf64() {
        let header = header_len(SampleFormat::Int24);
        let largest_riff_data = u64::from(u32::MAX) - (header - 8);
        assert!(!needs_rf64(SampleFormat::Int24, largest_riff_data - 1), "odd sizes are padded by one byte");
        assert!(needs_rf64(SampleFormat::Int24, largest_riff_data + 1));
        // A 6.7-hour stereo 24-bit mix at 48 kHz (the size that overflowed RIFF before).
        assert!(needs_rf64(SampleFormat::Int24, (6.7 * 3600.0 * 48_000.0) as u64 * 6));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in [
            ("empty", &b""[..]),
            ("text", &b"hello world, definitely not audio"[..]),
            ("riff-no-data", &b"RIFF\x04\x00\x00\x00WAVE"[..]),
            ("huge-chunk", &b"RIFF\xff\xff\xff\xffWAVEfmt \xff\xff\xff\xff"[..]),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            assert!(WavReader::open(&path).is_err(), "{name}");
        }
    }
}
