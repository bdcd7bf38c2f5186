//! Writing rendered audio as it is produced, in any [`AudioFormat`]: WAV (16/24-bit integer,
//! 32-bit float) or FLAC (16/24-bit). Memory stays bounded whatever the length: WAV samples go
//! straight to a buffered file, FLAC is encoded one 4,096-frame block at a time and its header
//! (lengths, MD5) is rewritten in place at the end.

use crate::wav::{self, SampleFormat};
use audiolab_domain::mixdown::AudioFormat;
use audiolab_dsp::dither::quantize;
use flacenc::bitsink::MemSink;
use flacenc::component::{BitRepr, Stream, StreamInfo};
use flacenc::error::Verify;
use flacenc::source::{Context, Fill, FrameBuf};
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

/// Frames per FLAC block (the reference encoder's default).
const FLAC_BLOCK_FRAMES: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error(transparent)]
    Wav(#[from] wav::WavError),
    #[error("cannot write audio file: {0}")]
    Io(#[from] std::io::Error),
    #[error("FLAC encoder: {0}")]
    Flac(String),
}

/// An audio file being written.
pub enum AudioWriter {
    Wav(wav::Writer),
    Flac(Box<FlacWriter>),
}

impl std::fmt::Debug for AudioWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Wav(_) => "AudioWriter::Wav",
            Self::Flac(_) => "AudioWriter::Flac",
        })
    }
}

impl AudioWriter {
    pub fn create(path: &Path, channels: u16, sample_rate: u32, format: AudioFormat) -> Result<Self, EncodeError> {
        Ok(match format {
            AudioFormat::Wav16 => Self::Wav(wav::Writer::create(path, channels, sample_rate, SampleFormat::Int16)?),
            AudioFormat::Wav24 => Self::Wav(wav::Writer::create(path, channels, sample_rate, SampleFormat::Int24)?),
            AudioFormat::WavF32 => Self::Wav(wav::Writer::create(path, channels, sample_rate, SampleFormat::Float32)?),
            AudioFormat::Flac16 => Self::Flac(Box::new(FlacWriter::create(path, channels, sample_rate, 16)?)),
            AudioFormat::Flac24 => Self::Flac(Box::new(FlacWriter::create(path, channels, sample_rate, 24)?)),
        })
    }

    /// Appends interleaved samples (whole frames).
    pub fn write(&mut self, samples: &[f32]) -> Result<(), EncodeError> {
        match self {
            Self::Wav(writer) => Ok(writer.write(samples)?),
            Self::Flac(writer) => writer.write(samples),
        }
    }

    /// Completes the file's header and closes it.
    pub fn finish(self) -> Result<(), EncodeError> {
        match self {
            Self::Wav(writer) => Ok(writer.finish()?),
            Self::Flac(writer) => writer.finish(),
        }
    }
}

/// A FLAC file encoded block by block.
pub struct FlacWriter {
    file: BufWriter<File>,
    info: StreamInfo,
    config: flacenc::error::Verified<flacenc::config::Encoder>,
    bits: u32,
    channels: usize,
    /// Interleaved integer samples of the block being filled.
    block: Vec<i32>,
    frame_buf: FrameBuf,
    context: Context,
    sink: MemSink<u8>,
    frames_written: usize,
}

fn flac_error(error: impl std::fmt::Debug) -> EncodeError {
    EncodeError::Flac(format!("{error:?}"))
}

impl FlacWriter {
    pub fn create(path: &Path, channels: u16, sample_rate: u32, bits: u32) -> Result<Self, EncodeError> {
        let channels = usize::from(channels);
        let info = StreamInfo::new(sample_rate as usize, channels, bits as usize).map_err(flac_error)?;
        let mut encoder = flacenc::config::Encoder::default();
        encoder.multithread = false;
        let config = encoder.into_verified().map_err(|(_, e)| flac_error(e))?;
        let mut writer = Self {
            file: BufWriter::new(File::create(path)?),
            info,
            config,
            bits,
            channels,
            block: Vec::with_capacity(FLAC_BLOCK_FRAMES * channels),
            frame_buf: FrameBuf::with_size(channels, FLAC_BLOCK_FRAMES).map_err(flac_error)?,
            context: Context::new(bits as usize, channels),
            sink: MemSink::new(),
            frames_written: 0,
        };
        // A placeholder header of the final size; `finish` rewrites it with the real values.
        writer.write_header()?;
        Ok(writer)
    }

    fn write_header(&mut self) -> Result<(), EncodeError> {
        let mut sink = MemSink::<u8>::new();
        Stream::with_stream_info(self.info.clone()).write(&mut sink).map_err(flac_error)?;
        self.file.write_all(sink.as_slice())?;
        Ok(())
    }

    pub fn write(&mut self, mut samples: &[f32]) -> Result<(), EncodeError> {
        let block_len = FLAC_BLOCK_FRAMES * self.channels;
        while !samples.is_empty() {
            let take = (block_len - self.block.len()).min(samples.len());
            self.block.extend(samples[..take].iter().map(|&s| quantize(s, self.bits)));
            samples = &samples[take..];
            if self.block.len() == block_len {
                self.encode_block()?;
            }
        }
        Ok(())
    }

    fn encode_block(&mut self) -> Result<(), EncodeError> {
        if self.block.is_empty() {
            return Ok(());
        }
        self.frame_buf.fill_interleaved(&self.block).map_err(flac_error)?;
        self.context.fill_interleaved(&self.block).map_err(flac_error)?;
        let number = self.context.current_frame_number().unwrap_or(0);
        let frame =
            flacenc::encode_fixed_size_frame(&self.config, &self.frame_buf, number, &self.info).map_err(flac_error)?;
        self.info.update_frame_info(&frame);
        self.sink.clear();
        frame.write(&mut self.sink).map_err(flac_error)?;
        self.file.write_all(self.sink.as_slice())?;
        self.frames_written += self.block.len() / self.channels;
        self.block.clear();
        Ok(())
    }

    pub fn finish(mut self) -> Result<(), EncodeError> {
        self.encode_block()?;
        self.info.set_md5_digest(&self.context.md5_digest());
        self.info.set_total_samples(self.frames_written);
        self.info.set_block_sizes(FLAC_BLOCK_FRAMES, FLAC_BLOCK_FRAMES).map_err(flac_error)?;
        self.info.verify().map_err(flac_error)?;
        self.file.seek(SeekFrom::Start(0))?;
        self.write_header()?;
        self.file.flush()?;
        self.file.get_ref().sync_all()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use symphonia::core::codecs::audio::AudioDecoderOptions;
    use symphonia::core::formats::probe::Hint;
    use symphonia::core::formats::{FormatOptions, TrackType};
    use symphonia::core::io::MediaSourceStream;
    use symphonia::core::meta::MetadataOptions;

    /// Decodes a file with symphonia into interleaved f32 and its rate.
    fn decode(path: &Path) -> (u32, usize, Vec<f32>) {
        let source = MediaSourceStream::new(Box::new(File::open(path).unwrap()), Default::default());
        let mut format = symphonia::default::get_probe()
            .probe(&Hint::new(), source, FormatOptions::default(), MetadataOptions::default())
            .unwrap();
        let track = format.default_track(TrackType::Audio).unwrap();
        let params = track.codec_params.as_ref().unwrap().audio().unwrap().clone();
        let id = track.id;
        let mut decoder =
            symphonia::default::get_codecs().make_audio_decoder(&params, &AudioDecoderOptions::default()).unwrap();
        let mut samples = Vec::new();
        let mut channels = 0;
        while let Some(packet) = format.next_packet().unwrap() {
            if packet.track_id != id {
                continue;
            }
            let decoded = decoder.decode(&packet).unwrap();
            channels = decoded.spec().channels().count();
            let mut buf = vec![0.0f32; decoded.samples_interleaved()];
            decoded.copy_to_slice_interleaved(&mut buf);
            samples.extend(buf);
        }
        (params.sample_rate.unwrap(), channels, samples)
    }

    #[test]
    fn flac_round_trips_exactly_at_its_bit_depth() {
        let dir = tempfile::tempdir().unwrap();
        let frames = 10_000; // two full blocks and a short one
        let samples: Vec<f32> =
            (0..frames * 2).map(|i| ((i as f32) * 0.001).sin() * 0.7 * if i % 2 == 0 { 1.0 } else { -0.5 }).collect();
        for (format, bits) in [(AudioFormat::Flac16, 16), (AudioFormat::Flac24, 24)] {
            let path = dir.path().join(format!("{bits}.flac"));
            let mut writer = AudioWriter::create(&path, 2, 44_100, format).unwrap();
            for piece in samples.chunks(3_000) {
                writer.write(piece).unwrap();
            }
            writer.finish().unwrap();
            let (rate, channels, decoded) = decode(&path);
            assert_eq!((rate, channels, decoded.len()), (44_100, 2, samples.len()), "{format:?}");
            let scale = ((1i64 << (bits - 1)) - 1) as f32;
            let full = (1i64 << (bits - 1)) as f32;
            for (i, (&got, &want)) in decoded.iter().zip(&samples).enumerate() {
                assert_eq!((got * full).round() as i32, quantize(want, bits), "{format:?} sample {i}");
                assert!((got - want).abs() <= 1.5 / scale, "{format:?} sample {i}");
            }
        }
    }

    #[test]
    fn wav_formats_parse_back() {
        let dir = tempfile::tempdir().unwrap();
        let samples = [0.5f32, -0.5, 0.25, -0.25];
        for format in [AudioFormat::Wav16, AudioFormat::Wav24, AudioFormat::WavF32] {
            let path = dir.path().join(format!("{}.wav", format.as_str()));
            let mut writer = AudioWriter::create(&path, 2, 48_000, format).unwrap();
            writer.write(&samples).unwrap();
            writer.finish().unwrap();
            let (rate, channels, decoded) = decode(&path);
            assert_eq!((rate, channels), (48_000, 2));
            for (got, want) in decoded.iter().zip(samples) {
                assert!((got - want).abs() < 1e-4, "{format:?}: {decoded:?}");
            }
        }
    }
}
