//! Mixdown requests: what to render (range, stems), how to write it (format, rate, loudness,
//! dither), and the fingerprint that says whether an earlier render of the same project still
//! answers the same request.

use crate::clip::{Clip, ClipStatus};
use crate::error::{ValidationError, ValidationResult, validate_range};
use crate::project::Project;
use crate::track::Track;
use crate::{Frames, SampleRate};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

/// A file format for rendered or imported audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AudioFormat {
    Wav16,
    Wav24,
    WavF32,
    Flac16,
    Flac24,
}

impl AudioFormat {
    pub const ALL: [AudioFormat; 5] = [Self::Wav16, Self::Wav24, Self::WavF32, Self::Flac16, Self::Flac24];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Wav16 => "wav16",
            Self::Wav24 => "wav24",
            Self::WavF32 => "wav_f32",
            Self::Flac16 => "flac16",
            Self::Flac24 => "flac24",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == text)
    }

    /// Bits per integer sample; `None` for float.
    pub fn integer_bits(self) -> Option<u32> {
        match self {
            Self::Wav16 | Self::Flac16 => Some(16),
            Self::Wav24 | Self::Flac24 => Some(24),
            Self::WavF32 => None,
        }
    }

    pub fn is_flac(self) -> bool {
        matches!(self, Self::Flac16 | Self::Flac24)
    }

    pub fn extension(self) -> &'static str {
        if self.is_flac() { "flac" } else { "wav" }
    }

    pub fn content_type(self) -> &'static str {
        if self.is_flac() { "audio/flac" } else { "audio/wav" }
    }
}

/// Loudness normalisation: bring the integrated loudness (EBU R128) to a target, keeping the
/// true peak at or under a ceiling.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Normalize {
    pub target_lufs: f64,
    pub ceiling_dbtp: f64,
}

/// A mixdown request as the API receives it (positions in seconds).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MixdownRequest {
    pub start: Option<f64>,
    pub end: Option<f64>,
    pub stems: Option<bool>,
    pub format: Option<String>,
    pub sample_rate: Option<u32>,
    pub normalize: Option<Normalize>,
    pub dither: Option<bool>,
}

/// A validated mixdown: what the worker renders. Stored as the job's payload.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MixdownOptions {
    /// First frame rendered, at the project rate.
    pub start: Frames,
    /// End frame (exclusive); `None` renders to the end of the last clip.
    pub end: Option<Frames>,
    /// Also write each track alone (fader and pan applied, mute and solo ignored).
    pub stems: bool,
    pub format: AudioFormat,
    /// The output rate; the project's rate unless asked otherwise.
    pub sample_rate: u32,
    pub normalize: Option<Normalize>,
    /// TPDF dither before quantising to integers (ignored for float output).
    pub dither: bool,
}

impl MixdownOptions {
    /// Validates `request` against a project rendered at `rate`. Defaults: whole project,
    /// no stems, 24-bit WAV at the project rate, no normalisation, dither on.
    pub fn from_request(request: &MixdownRequest, rate: SampleRate) -> ValidationResult<Self> {
        let start = match request.start {
            Some(seconds) => Frames::from_seconds("start", seconds, rate)?,
            None => Frames(0),
        };
        let end = request.end.map(|seconds| Frames::from_seconds("end", seconds, rate)).transpose()?;
        if end.is_some_and(|end| end <= start) {
            return Err(ValidationError::new("end", "must be after start"));
        }
        let format = match request.format.as_deref() {
            None => AudioFormat::Wav24,
            Some(text) => AudioFormat::parse(text).ok_or_else(|| {
                let known: Vec<_> = AudioFormat::ALL.iter().map(|f| f.as_str()).collect();
                ValidationError::new("format", format!("must be one of {}", known.join(", ")))
            })?,
        };
        let sample_rate = match request.sample_rate {
            Some(hz) => SampleRate::new(hz).map_err(|e| ValidationError::new("sample_rate", e.message))?.hz(),
            None => rate.hz(),
        };
        if let Some(normalize) = request.normalize {
            validate_range("normalize.target_lufs", normalize.target_lufs, -70.0, 0.0)?;
            validate_range("normalize.ceiling_dbtp", normalize.ceiling_dbtp, -20.0, 0.0)?;
        }
        Ok(Self {
            start,
            end,
            stems: request.stems.unwrap_or(false),
            format,
            sample_rate,
            normalize: request.normalize,
            dither: request.dither.unwrap_or(true),
        })
    }
}

impl MixdownOptions {
    /// Frames the mix will be: from `start` to `end`, or to `project_end` (where the last
    /// playable clip ends) when no end was asked for.
    pub fn rendered_frames(&self, project_end: Frames) -> i64 {
        let end = self.end.unwrap_or(project_end);
        (end.get() - self.start.get()).max(0)
    }

    /// Refuses a mix longer than `max_seconds` before anything renders: a clip placed days
    /// into the timeline would otherwise start a render of hundreds of gigabytes.
    pub fn check_length(&self, project_end: Frames, rate: SampleRate, max_seconds: u64) -> ValidationResult<()> {
        let seconds = self.rendered_frames(project_end) as f64 / f64::from(rate.hz());
        if seconds > max_seconds as f64 {
            return Err(ValidationError::new(
                "end",
                format!(
                    "the mixdown would be {:.1} hours long; the longest allowed is {:.1} hours (set start/end, or max_mixdown_secs)",
                    seconds / 3600.0,
                    max_seconds as f64 / 3600.0
                ),
            ));
        }
        Ok(())
    }
}

/// One written file of a mixdown.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RenderedFile {
    /// `mix` or `stem`.
    pub kind: String,
    pub track_id: Option<crate::TrackId>,
    pub key: String,
    /// Where the API serves it.
    pub url: String,
    pub bytes: u64,
    pub content_type: String,
}

/// A finished mixdown, as stored in the job's result.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MixdownResult {
    pub fingerprint: String,
    pub format: AudioFormat,
    pub sample_rate: u32,
    /// Frames in each file, at `sample_rate`.
    pub frames: u64,
    pub files: Vec<RenderedFile>,
    /// Integrated loudness of the mix as written (EBU R128), `None` for silence.
    pub loudness_lufs: Option<f64>,
    /// True peak of the mix as written (dBTP), `None` for silence.
    pub true_peak_dbtp: Option<f64>,
    /// Gain applied by loudness normalisation (0 without it).
    pub gain_db: f64,
    /// Whether the true-peak ceiling, not the target, set the gain.
    pub limited_by_ceiling: bool,
}

/// The job's payload: what to render, and the fingerprint of the project when it was asked.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MixdownPayload {
    pub options: MixdownOptions,
    pub fingerprint: String,
}

/// A digest of everything a mixdown's bytes depend on: the options, the project rate, every
/// track's mixer settings and comp, and every playable clip. Equal fingerprints mean an earlier result can
/// be handed back instead of rendering again.
pub fn fingerprint(options: &MixdownOptions, project: &Project, tracks: &[Track], clips: &[Clip]) -> String {
    let mut text = serde_json::to_string(options).expect("options serialise");
    let _ = write!(text, "|rate={}", project.sample_rate.hz());
    let mut tracks: Vec<_> = tracks.iter().collect();
    tracks.sort_by_key(|t| t.id.to_string());
    for t in tracks {
        let _ = write!(
            text,
            "|track={},{},{},{},{},{},{}",
            t.id,
            t.index.get(),
            t.volume.get(),
            t.pan.get(),
            t.muted,
            t.soloed,
            serde_json::to_string(&t.comp).expect("a comp serialises"),
        );
    }
    let mut clips: Vec<_> = clips.iter().filter(|c| c.active && c.status == ClipStatus::Ready).collect();
    clips.sort_by_key(|c| c.id.to_string());
    for c in clips {
        let _ = write!(
            text,
            "|clip={},{},{:?},{},{},{},{},{},{},{}",
            c.id,
            c.track_id,
            c.audio_key,
            c.start.get(),
            c.source_offset.get(),
            c.length.get(),
            c.gain.0,
            c.fade_in.get(),
            c.fade_out.get(),
            c.channels
        );
    }
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().fold(String::with_capacity(64), |mut hex, byte| {
        let _ = write!(hex, "{byte:02x}");
        hex
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate() -> SampleRate {
        SampleRate::new(48_000).unwrap()
    }

    #[test]
    fn defaults_render_the_whole_project_as_24_bit_wav() {
        let options = MixdownOptions::from_request(&MixdownRequest::default(), rate()).unwrap();
        assert_eq!(options.start, Frames(0));
        assert_eq!(options.end, None);
        assert_eq!(options.format, AudioFormat::Wav24);
        assert_eq!(options.sample_rate, 48_000);
        assert!(options.dither && !options.stems);
    }

    #[test]
    fn ranges_formats_and_loudness_are_checked() {
        let request = |f: fn(&mut MixdownRequest)| {
            let mut r = MixdownRequest::default();
            f(&mut r);
            MixdownOptions::from_request(&r, rate())
        };
        let ok = request(|r| {
            r.start = Some(1.0);
            r.end = Some(2.5);
            r.format = Some("flac16".into());
            r.sample_rate = Some(44_100);
        })
        .unwrap();
        assert_eq!(
            (ok.start, ok.end, ok.format, ok.sample_rate),
            (Frames(48_000), Some(Frames(120_000)), AudioFormat::Flac16, 44_100)
        );
        for (field, bad) in [
            ("end", request(|r| r.end = Some(0.0))),
            ("end", request(|r| (r.start, r.end) = (Some(2.0), Some(1.0)))),
            ("start", request(|r| r.start = Some(-1.0))),
            ("format", request(|r| r.format = Some("mp3".into()))),
            ("sample_rate", request(|r| r.sample_rate = Some(1_000))),
            (
                "normalize.target_lufs",
                request(|r| r.normalize = Some(Normalize { target_lufs: 5.0, ceiling_dbtp: -1.0 })),
            ),
            (
                "normalize.ceiling_dbtp",
                request(|r| r.normalize = Some(Normalize { target_lufs: -14.0, ceiling_dbtp: 3.0 })),
            ),
        ] {
            assert_eq!(bad.unwrap_err().field, field);
        }
    }

    #[test]
    fn formats_name_their_files() {
        for format in AudioFormat::ALL {
            assert_eq!(AudioFormat::parse(format.as_str()), Some(format));
        }
        assert_eq!((AudioFormat::Flac24.extension(), AudioFormat::Flac24.content_type()), ("flac", "audio/flac"));
        assert_eq!(AudioFormat::WavF32.integer_bits(), None);
    }
}
