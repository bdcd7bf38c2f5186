//! Writing a clip's audio in one pass: the float WAV the engine plays, its waveform overviews
//! (one audiowaveform `.dat` per zoom level, named `{frames_per_pixel}.dat`) and its integrated
//! loudness. Recordings and imports both end here, so their clips look the same.

use audiolab_dsp::peaks::{Peaks, ZOOM_LEVELS};
use audiolab_media::wav::{self, SampleFormat, WavError};
use std::path::{Path, PathBuf};

/// A clip's audio being written, block by block.
pub struct ClipAudioWriter {
    wav: wav::Writer,
    /// Where the WAV is written, and where it goes once complete.
    partial: PartialFile,
    audio_path: PathBuf,
    peaks: Vec<Peaks>,
    meter: Option<ebur128::EbuR128>,
    peaks_dir: PathBuf,
    sample_rate: u32,
    channels: usize,
    frames: u64,
}

impl ClipAudioWriter {
    pub fn create(audio_path: &Path, peaks_dir: &Path, channels: u16, sample_rate: u32) -> Result<Self, WavError> {
        for dir in [audio_path.parent(), Some(peaks_dir)].into_iter().flatten() {
            std::fs::create_dir_all(dir)?;
        }
        // Renamed into place when complete: a reader never sees half a file, and a second
        // delivery of the same job cannot interleave with this one.
        let name = audio_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let partial = audio_path.with_file_name(format!("{name}.{}.partial", uuid::Uuid::new_v4()));
        Ok(Self {
            wav: wav::Writer::create(&partial, channels, sample_rate, SampleFormat::Float32)?,
            partial: PartialFile(partial),
            audio_path: audio_path.to_owned(),
            peaks: ZOOM_LEVELS.iter().map(|&z| Peaks::new(usize::from(channels), z)).collect(),
            meter: ebur128::EbuR128::new(u32::from(channels), sample_rate, ebur128::Mode::I).ok(),
            peaks_dir: peaks_dir.to_owned(),
            sample_rate,
            channels: usize::from(channels),
            frames: 0,
        })
    }

    /// Appends interleaved samples (whole frames).
    pub fn add(&mut self, samples: &[f32]) -> Result<(), WavError> {
        let Self { wav, peaks, meter, .. } = self;
        // Loudness (the costliest part: K-weighting every sample) on a second core while this
        // one writes the file and the overviews.
        std::thread::scope(|scope| {
            if let Some(meter) = meter {
                scope.spawn(|| {
                    let _ = meter.add_frames_f32(samples);
                });
            }
            peaks.iter_mut().for_each(|p| p.add(samples));
            wav.write(samples)
        })?;
        self.frames += (samples.len() / self.channels) as u64;
        Ok(())
    }

    /// Closes the file and writes the overviews. Returns the frames written and the integrated
    /// loudness (LUFS; `None` for silence).
    pub fn finish(self) -> Result<(u64, Option<f64>), WavError> {
        self.wav.finish()?;
        std::fs::rename(&self.partial.0, &self.audio_path)?;
        for (zoom, level) in ZOOM_LEVELS.iter().zip(self.peaks) {
            std::fs::write(self.peaks_dir.join(format!("{zoom}.dat")), level.finish(self.sample_rate))?;
        }
        let loudness = self.meter.and_then(|m| m.loudness_global().ok()).filter(|l| l.is_finite());
        Ok((self.frames, loudness))
    }
}
/// A file being written under a temporary name; removed if abandoned (after the rename to
/// its final name there is nothing left to remove).
struct PartialFile(PathBuf);

impl Drop for PartialFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
