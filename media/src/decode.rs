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
    #[error("the file is truncated: {0}")]
    Truncated(String),
    #[error("the audio is longer than the {MAX_SECONDS} s an import accepts")]
    TooLong,
    #[error("the file contains no audio samples")]
    Silent,
}

impl From<SymphoniaError> for DecodeError {
    fn from(error: SymphoniaError) -> Self {
        match error {
            SymphoniaError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                DecodeError::Truncated("it ends in the middle of the audio".into())
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
        Self::from_source(Box::new(file), extension)
    }

    /// Decodes bytes in memory (tests and the fuzz target).
    pub fn from_bytes(bytes: Vec<u8>, extension: Option<&str>) -> Result<Self, DecodeError> {
        if bytes.is_empty() {
            return Err(DecodeError::Empty);
        }
        Self::from_source(Box::new(std::io::Cursor::new(bytes)), extension)
    }

    fn from_source(
        source: Box<dyn symphonia::core::io::MediaSource>,
        extension: Option<&str>,
    ) -> Result<Self, DecodeError> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Self::probe(source, extension)))
            .unwrap_or_else(|_| Err(DecodeError::Corrupt("the file's header is malformed".into())))
    }

    fn probe(source: Box<dyn symphonia::core::io::MediaSource>, extension: Option<&str>) -> Result<Self, DecodeError> {
        let source = MediaSourceStream::new(source, Default::default());
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

    /// How far decoding got, 0–1, when the file declares its length (else 0).
    pub fn progress(&self) -> f64 {
        match self.declared_frames {
            Some(declared) if declared > 0 => (self.decoded_frames as f64 / declared as f64).min(1.0),
            _ => 0.0,
        }
    }

    /// The next decoded samples (interleaved, [`Decoder::channels`] wide), or `None` at the end.
    pub fn next_block(&mut self) -> Result<Option<&[f32]>, DecodeError> {
        // A decoder that panics on hostile input is a corrupt file, not a dead worker.
        let more = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.decode_packet()))
            .unwrap_or_else(|_| Err(DecodeError::Corrupt("the decoder rejected the data".into())))?;
        Ok(more.then_some(&self.block[..]))
    }

    /// Decodes the next packet of the track into `block`; `false` at the end.
    fn decode_packet(&mut self) -> Result<bool, DecodeError> {
        loop {
            let Some(packet) = self.format.next_packet()? else {
                return self.end().map(|()| false);
            };
            if packet.track_id != self.track_id {
                continue;
            }
            let decoded = self.decoder.decode(&packet)?;
            let channels = decoded.spec().channels().count();
            if channels != self.source_channels {
                let declared = self.source_channels;
                return Err(DecodeError::Corrupt(format!(
                    "a packet of {channels} channels in a {declared}-channel stream"
                )));
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
            return Ok(true);
        }
    }

    fn end(&self) -> Result<(), DecodeError> {
        if self.decoded_frames == 0 {
            return Err(DecodeError::Silent);
        }
        match self.declared_frames {
            // A container that promised more than it holds was cut short.
            Some(declared) if declared > self.decoded_frames => {
                Err(DecodeError::Truncated(format!("{} of {declared} frames are present", self.decoded_frames)))
            }
            _ => Ok(()),
        }
    }
}

/// Decodes a whole input, returning the frames decoded: what the fuzz target and the
/// robustness tests drive.
pub fn decode_all(bytes: Vec<u8>, extension: Option<&str>) -> Result<u64, DecodeError> {
    let mut decoder = Decoder::from_bytes(bytes, extension)?;
    let channels = decoder.channels() as u64;
    let mut frames = 0;
    while let Some(block) = decoder.next_block()? {
        frames += block.len() as u64 / channels;
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A float WAV of `frames` stereo frames.
    fn wav(frames: usize) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        let samples: Vec<f32> = (0..frames * 2).map(|i| (i as f32 * 0.01).sin() * 0.5).collect();
        crate::wav::write(&path, 2, 48_000, crate::wav::SampleFormat::Float32, &samples).unwrap();
        std::fs::read(path).unwrap()
    }

    #[test]
    fn a_good_file_decodes_whole() {
        assert_eq!(decode_all(wav(5_000), Some("wav")).unwrap(), 5_000);
    }

    #[test]
    fn broken_inputs_are_errors_with_reasons() {
        let good = wav(5_000);
        let truncated = good[..good.len() / 2].to_vec();
        let outcome = decode_all(truncated, None);
        assert!(matches!(outcome, Err(DecodeError::Truncated(_))), "{outcome:?}");
        assert!(matches!(decode_all(Vec::new(), None), Err(DecodeError::Empty)));
        assert!(matches!(
            decode_all(b"definitely not audio at all".repeat(50), Some("wav")),
            Err(DecodeError::UnknownFormat(_))
        ));
        let mut huge_rate = good.clone();
        let rate_at = good.windows(4).position(|w| w == b"fmt ").unwrap() + 12;
        huge_rate[rate_at..rate_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let error = decode_all(huge_rate, None).unwrap_err();
        assert!(error.to_string().contains("sample rate") || matches!(error, DecodeError::Corrupt(_)), "{error}");
    }

    /// Every truncation point and a spread of byte corruptions of a valid file: each decodes
    /// or fails with an error, none panics.
    #[test]
    fn no_mutation_of_a_valid_file_panics() {
        let good = wav(3_000);
        for cut in (0..good.len()).step_by(7) {
            let _ = decode_all(good[..cut].to_vec(), Some("wav"));
        }
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..2_000 {
            let mut bytes = good.clone();
            for _ in 0..4 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let at = (state % 120) as usize; // the header, where the damage is interesting
                bytes[at] = (state >> 32) as u8;
            }
            let _ = decode_all(bytes, None);
        }
    }
}

thread_local! {
    /// Warnings the decoding library logged on this thread while a [`tally_warnings`] ran.
    static TALLY: std::cell::RefCell<Option<WarningTally>> = const { std::cell::RefCell::new(None) };
}

/// What the decoding library complained about during one decode: a hostile file can make it
/// warn once per packet, thousands of times, so the log gets one summary line instead.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WarningTally {
    pub count: u64,
    /// The library module that warned first.
    pub first_source: Option<String>,
}

/// Runs `work` (a decode, on this thread), counting instead of logging the warnings the
/// decoding library emits meanwhile (see [`absorb_library_warning`]).
pub fn tally_warnings<T>(work: impl FnOnce() -> T) -> (T, WarningTally) {
    TALLY.with(|tally| *tally.borrow_mut() = Some(WarningTally::default()));
    let result = work();
    let tally = TALLY.with(|tally| tally.borrow_mut().take()).unwrap_or_default();
    (result, tally)
}

/// For the log's filter: whether an event from `target` is the decoding library's, logged
/// during a [`tally_warnings`] on this thread. Then it is counted there and should not be
/// written.
pub fn absorb_library_warning(target: &str) -> bool {
    if !target.starts_with("symphonia") {
        return false;
    }
    TALLY.with(|tally| match tally.borrow_mut().as_mut() {
        Some(tally) => {
            tally.count += 1;
            tally.first_source.get_or_insert_with(|| target.to_owned());
            true
        }
        None => false,
    })
}
