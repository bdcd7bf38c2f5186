//! `import`: an uploaded file decoded (symphonia), resampled to the project rate (rubato) and
//! written as the clip's audio with peaks and loudness, exactly as a recording's clip is. A file
//! that cannot be imported fails the job and the clip with the decoder's reason.

use crate::clip_audio::ClipAudioWriter;
use crate::progress::{Progress, Report, run_blocking};
use audiolab_domain::Frames;
use audiolab_domain::clip::ClipStatus;
use audiolab_domain::job::ImportPayload;
use audiolab_dsp::resample::{ResampleError, StreamResampler};
use audiolab_media::decode::{DecodeError, Decoder};
use audiolab_media::storage::{Storage, StorageError};
use audiolab_media::wav::WavError;
use audiolab_store::{Store, StoreError};
use std::path::Path;

/// Frames gathered before a write, so per-packet overhead stays small.
const WRITE_FRAMES: usize = 32_768;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the job's payload is not an import: {0}")]
    Payload(String),
    #[error("the clip to import into no longer exists")]
    ClipGone,
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("the import was cancelled")]
    Cancelled,
    #[error(transparent)]
    Resample(#[from] ResampleError),
    #[error("cannot write the clip's audio: {0}")]
    Write(#[from] WavError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl ImportError {
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Store(err) => err.is_unavailable(),
            Self::Storage(StorageError::Remote(_)) => true,
            _ => false,
        }
    }
}

/// What an import produced.
pub type Imported = audiolab_domain::job::ImportResult;

/// The decoded, converted audio's shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Converted {
    pub frames: u64,
    pub source_sample_rate: u32,
    pub channels: u16,
    pub loudness_lufs: Option<f64>,
}

/// Decodes `source` and writes it at `rate` as clip audio with overviews. Partial output is
/// removed on failure.
pub fn convert_file(
    source: &Path,
    extension: Option<&str>,
    rate: u32,
    audio_path: &Path,
    peaks_dir: &Path,
    progress: &Progress,
) -> Result<Converted, ImportError> {
    let (converted, warnings) = audiolab_media::decode::tally_warnings(|| {
        let mut decoder = Decoder::open(source, extension)?;
        let (source_rate, channels) = (decoder.sample_rate(), decoder.channels());
        let mut resampler =
            (source_rate != rate).then(|| StreamResampler::new(source_rate, rate, channels)).transpose()?;
        let mut clip = ClipAudioWriter::create(audio_path, peaks_dir, channels as u16, rate)?;
        let mut pending = Vec::with_capacity(WRITE_FRAMES * channels * 2);
        loop {
            let fraction = decoder.progress();
            let Some(block) = decoder.next_block()? else { break };
            if !progress.set(fraction) {
                return Err(ImportError::Cancelled);
            }
            match &mut resampler {
                Some(resampler) => resampler.process(block, &mut pending),
                None => pending.extend_from_slice(block),
            }
            if pending.len() >= WRITE_FRAMES * channels {
                clip.add(&pending)?;
                pending.clear();
            }
        }
        if let Some(resampler) = &mut resampler {
            resampler.finish(&mut pending);
        }
        clip.add(&pending)?;
        let (frames, loudness_lufs) = clip.finish()?;
        Ok(Converted { frames, source_sample_rate: source_rate, channels: channels as u16, loudness_lufs })
    });
    if warnings.count > 0 {
        tracing::warn!(
            file = %source.display(),
            warnings = warnings.count,
            first_from = warnings.first_source.as_deref().unwrap_or(""),
            "the decoder found problems in the file (one line for all of them)"
        );
    }
    if converted.is_err() {
        let _ = std::fs::remove_file(audio_path);
        let _ = std::fs::remove_dir_all(peaks_dir);
    }
    converted
}

/// Runs an import: the upload becomes the clip's audio and the clip turns `ready`, or `failed`
/// with the reason. Idempotent: a clip already ready is left as it is.
pub async fn import(
    store: &Store,
    storage: &Storage,
    payload: &ImportPayload,
    report: Report,
) -> Result<Imported, ImportError> {
    let clip = store.get_clip(payload.clip_id).await?.ok_or(ImportError::ClipGone)?;
    if clip.status == ClipStatus::Ready {
        return Ok(Imported {
            clip_id: clip.id,
            frames: clip.source_length.get() as u64,
            source_sample_rate: clip.source_sample_rate,
            channels: clip.channels,
            loudness_lufs: clip.loudness_lufs,
        });
    }
    let project = store.get_project(clip.project_id).await?.ok_or(ImportError::ClipGone)?;
    let audio_key = format!("projects/{}/imports/{}.wav", clip.project_id, clip.id);
    let peaks_key = format!("projects/{}/peaks/{}", clip.project_id, clip.id);
    let key_error = |e: audiolab_media::storage::InvalidKey| ImportError::Payload(e.to_string());
    let upload = storage.fetch(&payload.upload_key).await?;
    let audio_path = storage.path(&audio_key).map_err(key_error)?;
    let peaks_dir = storage.path(&peaks_key).map_err(key_error)?;
    let extension = payload.extension.clone();
    let rate = project.sample_rate.hz();
    let converted = run_blocking(
        move |progress| convert_file(&upload, extension.as_deref(), rate, &audio_path, &peaks_dir, progress),
        &report,
        0.95,
    )
    .await
    .map_err(|e| ImportError::Storage(StorageError::Io(e)))?;
    let converted = match converted {
        Ok(converted) => converted,
        Err(err) => {
            if !err.is_transient() {
                let reason = err.to_string();
                let _ = store
                    .update_clip(clip.id, |c| {
                        c.status = ClipStatus::Failed;
                        c.error = Some(reason.clone());
                        Ok(())
                    })
                    .await;
            }
            return Err(err);
        }
    };
    storage.publish(&audio_key).await?;
    storage.publish_dir(&peaks_key).await?;
    let frames = Frames(converted.frames as i64);
    store
        .update_clip(clip.id, |c| {
            c.audio_key = Some(audio_key.clone());
            c.peaks_key = Some(peaks_key.clone());
            c.source_offset = Frames::ZERO;
            c.length = frames;
            c.source_length = frames;
            c.source_sample_rate = converted.source_sample_rate;
            c.channels = converted.channels;
            c.loudness_lufs = converted.loudness_lufs;
            c.status = ClipStatus::Ready;
            c.error = None;
            Ok(())
        })
        .await?;
    Ok(Imported {
        clip_id: clip.id,
        frames: converted.frames,
        source_sample_rate: converted.source_sample_rate,
        channels: converted.channels,
        loudness_lufs: converted.loudness_lufs,
    })
}
