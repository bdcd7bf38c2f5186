//! Decoding uploaded audio (WAV, FLAC, MP3, OGG/Vorbis, AIFF, AAC/M4A, via symphonia) one
//! packet at a time into interleaved `f32`, mono or stereo. Every way a file can be bad — not
//! audio, an unknown codec, corrupt or truncated data, absurd header values — is a
//! [`DecodeError`] with a reason a user can read, never a panic, and memory stays bounded by the
//! largest packet whatever the file declares.

use std::fs::File;
use std::path::Path;
use symphonia::core::codecs::audio::{AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

/// Rates outside this range are refused (no real audio lives there).
pub const SAMPLE_RATES: std::ops::RangeInclusive<u32> = 1_000..=768_000;
/// Longest audio an import accepts: six hours.
pub const MAX_SECONDS: u64 = 6 * 3600;
/// Largest channel count accepted in a file (only the first two are kept).
pub const MAX_CHANNELS: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
    #[error("the file is empty")]
    Empty,
    #[error("not a supported audio file (WAV, FLAC, MP3, OGG/Vorbis, AIFF, AAC/M4A): {0}")]
    UnknownFormat(String),
    #[error("the file has no audio track")]
    NoAudio,
    #[error("unsupported audio: {0}")]
    Unsupported(String),
    #[error("corrupt audio data: {0}")]
    Corrupt(String),
    #[error("the file is truncated: {decoded} of {declared} frames are present")]
    Truncated { decoded: u64, declared: u64 },
    #[error("the audio is longer than the {MAX_SECONDS} s an import accepts")]
    TooLong,
    #[error("the file contains no audio samples")]
    Silent,
}

impl From<SymphoniaError> for DecodeError {
    fn from(error: SymphoniaError) -> Self {
        match error {
            SymphoniaError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                DecodeError::Corrupt("the data ends in the middle of a packet".into())
            }
            SymphoniaError::IoError(e) => DecodeError::Io(e),
            SymphoniaError::Unsupported(what) => DecodeError::Unsupported(what.into()),
            other => DecodeError::Corrupt(other.to_string()),
        }
    }
}

/// An open file being decoded.
pub struct Decoder {
    format: Box<dyn FormatReader>,
    decoder: Box<dyn AudioDecoder>,
    track_id: u32,
    sample_rate: u32,
    source_channels: usize,
    declared_frames: Option<u64>,
    decoded_frames: u64,
    /// The latest packet, interleaved at the source's channel count.
    packet: Vec<f32>,
    /// The latest packet folded to at most two channels.
    block: Vec<f32>,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("sample_rate", &self.sample_rate)
            .field("source_channels", &self.source_channels)
            .finish_non_exhaustive()
    }
}

impl Decoder {
    /// Opens `path`; `extension` (from the uploaded file name) is only a hint to the prober,
    /// the content decides.
    pub fn open(path: &Path, extension: Option<&str>) -> Result<Self, DecodeError> {
        let file = File::open(path)?;
        if file.metadata()?.len() == 0 {
            return Err(DecodeError::Empty);
        }
        let source = MediaSourceStream::new(Box::new(file), Default::default());
        let mut hint = Hint::new();
        if let Some(extension) = extension {
            hint.with_extension(extension);
        }
        let format = symphonia::default::get_probe()
            .probe(&hint, source, FormatOptions::default(), MetadataOptions::default())
            .map_err(|e| match e {
                SymphoniaError::Unsupported(_) | SymphoniaError::IoError(_) => {
                    DecodeError::UnknownFormat("no known container or stream signature".into())
                }
                other => DecodeError::from(other),
            })?;
        let track = format.default_track(TrackType::Audio).ok_or(DecodeError::NoAudio)?;
        let params = track.codec_params.as_ref().and_then(|p| p.audio()).ok_or(DecodeError::NoAudio)?.clone();
        let sample_rate = params.sample_rate.ok_or_else(|| DecodeError::Unsupported("no sample rate".into()))?;
        if !SAMPLE_RATES.contains(&sample_rate) {
            return Err(DecodeError::Unsupported(format!("a sample rate of {sample_rate} Hz")));
        }
        let source_channels = params.channels.as_ref().map(|c| c.count()).unwrap_or(0);
        if source_channels == 0 || source_channels > MAX_CHANNELS {
            return Err(DecodeError::Unsupported(format!("{source_channels} channels")));
        }
        let (track_id, declared_frames) = (track.id, track.num_frames);
        let decoder = symphonia::default::get_codecs()
            .make_audio_decoder(&params, &AudioDecoderOptions::default())
            .map_err(|e| match e {
                SymphoniaError::Unsupported(what) => DecodeError::Unsupported(format!("codec: {what}")),
                other => DecodeError::from(other),
            })?;
        Ok(Self {
            format,
            decoder,
            track_id,
            sample_rate,
            source_channels,
            declared_frames,
            decoded_frames: 0,
            packet: Vec::new(),
            block: Vec::new(),
        })
    }

    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Channels of the decoded output: the file's, folded to at most two (the first two).
    pub fn channels(&self) -> usize {
        self.source_channels.min(2)
    }

    /// The next decoded samples (interleaved, [`Decoder::channels`] wide), or `None` at the end.
    pub fn next_block(&mut self) -> Result<Option<&[f32]>, DecodeError> {
        loop {
            let Some(packet) = self.format.next_packet()? else {
                return self.end().map(|()| None);
            };
            if packet.track_id != self.track_id {
                continue;
            }
            let decoded = self.decoder.decode(&packet)?;
            let channels = decoded.spec().channels().count();
            if channels != self.source_channels {
                let declared = self.source_channels;
                return Err(DecodeError::Corrupt(format!("a packet of {channels} channels in a {declared}-channel stream")));
            }
            let frames = decoded.frames();
            if frames == 0 {
                continue;
            }
            decoded.copy_to_vec_interleaved(&mut self.packet);
            self.decoded_frames += frames as u64;
            if self.decoded_frames > MAX_SECONDS * u64::from(self.sample_rate) {
                return Err(DecodeError::TooLong);
            }
            let kept = channels.min(2);
            self.block.clear();
            self.block.extend(self.packet.chunks_exact(channels).flat_map(|frame| frame[..kept].iter().copied()));
            return Ok(Some(&self.block));
        }
    }

    fn end(&self) -> Result<(), DecodeError> {
        if self.decoded_frames == 0 {
            return Err(DecodeError::Silent);
        }
        match self.declared_frames {
            // A container that promised more than it holds was cut short.
            Some(declared) if declared > self.decoded_frames => {
                Err(DecodeError::Truncated { decoded: self.decoded_frames, declared })
            }
            _ => Ok(()),
        }
    }
}
