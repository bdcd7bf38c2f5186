//! `flatten`: a track's comp rendered to one clip (§14). The track's pre-fader audio — the comp's
//! pieces of its takes with their crossfades, and its clips of no take where no segment is,
//! exactly as the engine plays them — is written as a new clip's audio (with peaks and
//! loudness); then, in one revisioned change in the name of who asked, that clip plays and
//! everything it was made of stays on the track, silent (the takes as lanes), the comp empty.
//! Undo gives the comp back.

use crate::progress::{Report, run_blocking};
use audiolab_domain::clip::{Clip, ClipStatus, NewClip};
use audiolab_domain::comp::{self, Comp};
use audiolab_domain::history::{Change, ChangeKind, Row, RowChange};
use audiolab_domain::job::{FlattenPayload, FlattenResult};
use audiolab_domain::{Frames, now};
use audiolab_jobs::clip_audio::ClipAudioWriter;
use audiolab_media::storage::{Storage, StorageError};
use audiolab_media::timeline;
use audiolab_media::wav::WavError;
use audiolab_store::{Page, Store, StoreError};

/// Frames rendered per block.
const BLOCK_FRAMES: usize = 16_384;

#[derive(Debug, thiserror::Error)]
pub enum FlattenError {
    #[error("the track no longer exists")]
    TrackGone,
    #[error("the track has no comp to flatten: record a take on it first")]
    NothingToFlatten,
    #[error("a clip of the comp cannot be read: {0}")]
    Unreadable(String),
    #[error("the flatten was cancelled")]
    Cancelled,
    #[error("the track changed while it was being flattened; flatten it again")]
    Changed,
    #[error("cannot write the clip's audio: {0}")]
    Write(#[from] WavError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl FlattenError {
    /// Whether trying again may help (the database or the bucket was away).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Store(err) => err.is_unavailable(),
            Self::Storage(StorageError::Remote(_)) => true,
            _ => false,
        }
    }
}

pub async fn flatten(
    store: &Store,
    storage: &Storage,
    payload: &FlattenPayload,
    report: Report,
) -> Result<FlattenResult, FlattenError> {
    let track = store.get_track(payload.track_id).await?.ok_or(FlattenError::TrackGone)?;
    let project = store.get_project(track.project_id).await?.ok_or(FlattenError::TrackGone)?;
    let clips = store.list_clips(track.id, Page::ALL).await?.items;
    let comp = comp::current(&track, &clips);
    if !comp.is_active() {
        return Err(FlattenError::NothingToFlatten);
    }
    let missing = timeline::fetch_audio(storage, &clips).await;
    if let Some(key) = missing.first() {
        return Err(FlattenError::Unreadable(key.clone()));
    }
    let playing = audiolab_domain::track::Track { comp: comp.clone(), ..track.clone() };
    let (opened, skipped) = timeline::open(project.sample_rate, std::slice::from_ref(&playing), &clips, storage);
    if let Some(skipped) = skipped.first() {
        return Err(FlattenError::Unreadable(format!("clip {}: {}", skipped.clip, skipped.reason)));
    }
    let Some(mut sources) = opened.tracks.into_iter().next() else {
        return Err(FlattenError::NothingToFlatten);
    };
    let start = sources.clips.iter().map(|c| c.placement.start).min().unwrap_or(0);
    let end = sources.clips.iter().map(|c| c.placement.end()).max().unwrap_or(0);

    let name = format!("{} (flattened)", track.name);
    let new = NewClip {
        project_id: track.project_id,
        track_id: track.id,
        take_id: None,
        name,
        start: Frames(start),
        length: Frames(end - start),
        source_sample_rate: project.sample_rate.hz(),
        channels: 2,
    };
    let mut clip = Clip::create(new, now()).map_err(|e| FlattenError::Unreadable(e.to_string()))?;
    let audio_key = format!("projects/{}/flattened/{}.wav", clip.project_id, clip.id);
    let peaks_key = format!("projects/{}/peaks/{}", clip.project_id, clip.id);
    let key_error = |e: audiolab_media::storage::InvalidKey| FlattenError::Unreadable(e.to_string());
    let (audio_path, peaks_dir) =
        (storage.path(&audio_key).map_err(key_error)?, storage.path(&peaks_key).map_err(key_error)?);
    let rate = project.sample_rate.hz();
    let rendered = run_blocking(
        move |progress| -> Result<Option<(u64, Option<f64>)>, WavError> {
            let mut writer = ClipAudioWriter::create(&audio_path, &peaks_dir, 2, rate)?;
            let (mut block, mut scratch) = (vec![0.0f32; BLOCK_FRAMES * 2], Vec::new());
            let mut position = start;
            while position < end {
                let frames = (end - position).min(BLOCK_FRAMES as i64) as usize;
                let out = &mut block[..frames * 2];
                out.fill(0.0);
                sources.render(position, out, &mut scratch);
                writer.add(out)?;
                position += frames as i64;
                if !progress.set((position - start) as f64 / (end - start).max(1) as f64) {
                    return Ok(None);
                }
            }
            writer.finish().map(Some)
        },
        &report,
        0.95,
    )
    .await
    .map_err(|e| FlattenError::Storage(StorageError::Io(e)))??;
    let Some((frames, loudness)) = rendered else { return Err(FlattenError::Cancelled) };
    storage.publish(&audio_key).await?;
    storage.publish_dir(&peaks_key).await?;
    clip.audio_key = Some(audio_key);
    clip.peaks_key = Some(peaks_key);
    clip.length = Frames(frames as i64);
    clip.source_length = clip.length;
    clip.loudness_lufs = loudness;
    clip.status = ClipStatus::Ready;

    // One change in the name of who asked: the new clip plays, what it was made of is silent.
    let at = now();
    let mut rows = vec![RowChange::created(Row::Clip(clip.clone()))];
    let others: Vec<Clip> = clips.iter().filter(|c| c.take_id.is_none() && c.active).cloned().collect();
    rows.extend(others.into_iter().map(|c| {
        let silent = Clip { active: false, updated_at: at, ..c.clone() };
        RowChange::updated(Row::Clip(c), Row::Clip(silent))
    }));
    rows.extend(comp::rows(&track, Comp { segments: Vec::new(), ..comp }, &clips, at));
    let change = Change::new(ChangeKind::CompFlattened, format!("Flattened “{}”", track.name), rows);
    match store.commit(track.project_id, payload.actor.as_ref(), &change).await {
        Ok(_) => Ok(FlattenResult { clip_id: clip.id, frames }),
        Err(StoreError::Stale(_)) => Err(FlattenError::Changed),
        Err(other) => Err(other.into()),
    }
}
