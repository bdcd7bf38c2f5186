//! `finalize_capture`: a stopped (or interrupted) recording's chunks become the audio of its
//! takes' clips. Idempotent: a session already saved is left as it is, and a second worker
//! racing the first loses the compare-and-set on the session's status.

use crate::clip_audio::ClipAudioWriter;
use audiolab_domain::clip::{Clip, ClipStatus, NewClip};
use audiolab_domain::recording::{RecordingSession, RecordingStatus, Take};
use audiolab_domain::{ClipId, Frames, RecordingSessionId, TakeId};
use audiolab_media::capture::{self, CaptureError};
use audiolab_media::storage::Storage;
use audiolab_store::{ReadyClip, Store, StoreError};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum FinalizeError {
    #[error("recording session not found")]
    NotFound,
    #[error("the recording is still in progress")]
    StillRecording,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error("storage key: {0}")]
    Key(String),
    #[error(transparent)]
    Storage(#[from] audiolab_media::storage::StorageError),
}

impl FinalizeError {
    /// Whether trying again may succeed (the database or the disk hiccuped), as opposed to a
    /// capture that can never be finalised.
    pub fn is_transient(&self) -> bool {
        match self {
            FinalizeError::Store(err) => err.is_unavailable(),
            FinalizeError::Capture(audiolab_media::capture::CaptureError::Io(_)) => true,
            // A capture that is nowhere will not appear; an unreachable object store may.
            FinalizeError::Storage(audiolab_media::storage::StorageError::Io(e)) => {
                e.kind() != std::io::ErrorKind::NotFound
            }
            FinalizeError::Storage(audiolab_media::storage::StorageError::Remote(_)) => true,
            _ => false,
        }
    }
}

/// What finalisation produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Finalized {
    pub clips: Vec<ClipId>,
    pub frames: u64,
    /// The session's final status: `saved`, or `recovered` after a crash.
    pub status: RecordingStatus,
}

/// One take of a recording: a stretch of the capture and where it lands on the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TakeSpan {
    pub capture_offset: u64,
    pub timeline_start: i64,
    pub frames: u64,
}

/// The takes of a stopped recording and their clips (status `processing` until finalised),
/// oldest first, in one revisioned change with what the track then plays (§14): each take
/// becomes the comp over its range, in recording order, so the newest loop pass wins and an
/// older take under a new one stops sounding there (it stays a lane). A take clip is active
/// while the comp plays it somewhere.
pub async fn create_takes(
    store: &Store,
    session: &RecordingSession,
    spans: &[TakeSpan],
    channels: u16,
    sample_rate: u32,
    actor: Option<&audiolab_domain::user::Actor>,
) -> Result<(Vec<ClipId>, Vec<audiolab_store::OutboxItem>), FinalizeError> {
    if spans.is_empty() {
        // Nothing was kept (a punch the take never reached): no take, no change.
        return Ok((Vec::new(), Vec::new()));
    }
    let takes = store.list_takes(session.track_id, audiolab_store::Page::ALL).await?;
    let earlier = takes.len();
    let mut rows = Vec::with_capacity(spans.len());
    for (pass, span) in spans.iter().enumerate() {
        let take_id = TakeId::new();
        let new = NewClip {
            project_id: session.project_id,
            track_id: session.track_id,
            take_id: Some(take_id),
            name: format!("Take {}", earlier + pass + 1),
            start: Frames(span.timeline_start),
            length: Frames(span.frames as i64),
            source_sample_rate: sample_rate,
            channels,
        };
        let clip = Clip::create(new, audiolab_domain::now()).map_err(|e| FinalizeError::Key(e.to_string()))?;
        let take = Take {
            id: take_id,
            session_id: session.id,
            track_id: session.track_id,
            clip_id: clip.id,
            pass_index: pass as u32,
            capture_offset: Frames(span.capture_offset as i64),
            length: Frames(span.frames as i64),
            created_at: clip.created_at,
        };
        rows.push((take, clip));
    }
    use audiolab_domain::history::{Change, ChangeKind, Row, RowChange};
    let summary = match rows.len() {
        1 => format!("Recorded {}", rows[0].1.name),
        n => format!("Recorded {n} takes"),
    };
    // One revisioned change (§13): undoing it takes the recording out of the arrangement and
    // gives the track its comp back. Someone changing the track meanwhile: read it again.
    let mut tries = 0;
    loop {
        let track = store.get_track(session.track_id).await?.ok_or(FinalizeError::NotFound)?;
        let lanes = store.list_clips(session.track_id, audiolab_store::Page::ALL).await?.items;
        let mut comp = audiolab_domain::comp::current(&track, &lanes);
        for (take, clip) in &rows {
            comp.select(take.id, clip.start, clip.end());
        }
        let mut changes: Vec<RowChange> = rows
            .iter()
            .map(|(take, clip)| RowChange::created(Row::Clip(Clip { active: comp.plays(take.id), ..clip.clone() })))
            .collect();
        changes.extend(audiolab_domain::comp::rows(&track, comp, &lanes, audiolab_domain::now()));
        let mut change = Change::new(ChangeKind::TakesRecorded, summary.clone(), changes);
        change.takes = rows.iter().map(|(take, _)| take.clone()).collect();
        match store.commit(session.project_id, actor, &change).await {
            Ok((_, outgoing)) => return Ok((rows.iter().map(|(_, clip)| clip.id).collect(), outgoing)),
            // A fader moved on the track meanwhile: read it again (a drag sends many).
            Err(StoreError::Stale(_)) if tries < 40 => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(5 * tries)).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// Recovers a recording interrupted by a crash: its take is what reached storage, finalised
/// with status `recovered`. Nothing is deleted. Returns `None` when another process got to it
/// first.
pub async fn recover_capture(
    store: &Store,
    storage: &Storage,
    session_id: RecordingSessionId,
) -> Result<Option<Finalized>, FinalizeError> {
    let session = store.get_recording_session(session_id).await?.ok_or(FinalizeError::NotFound)?;
    // In cloud mode the chunks are in the bucket: the node that recorded them may be dead.
    let dir = storage.fetch_dir(&session.capture_key).await?;
    let counted = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || {
            Ok::<_, CaptureError>((capture::read_manifest(&dir)?, capture::frames(&dir)?))
        })
        .await
        .map_err(|e| CaptureError::Io(std::io::Error::other(e)))?
    };
    let (manifest, frames) = match counted {
        Ok(found) if found.1 > 0 => found,
        Ok(_) | Err(_) => {
            let reason = "interrupted before any audio reached storage";
            store
                .transition_recording_session(
                    session_id,
                    RecordingStatus::Recording,
                    RecordingStatus::Failed,
                    Some(reason),
                )
                .await?;
            return Ok(None);
        }
    };
    if !store.stop_recording_session(session_id, session.start, session.applied_offset).await? {
        return Ok(None);
    }
    let span = TakeSpan { capture_offset: 0, timeline_start: session.start.get(), frames };
    // The system's own: left to the outbox's dispatchers to announce.
    create_takes(store, &session, &[span], manifest.channels, manifest.sample_rate, None).await?;
    finalize(store, storage, session_id, RecordingStatus::Recovered).await.map(Some)
}

/// Turns the capture of `session_id` into its clips' audio and marks them ready.
pub async fn finalize_capture(
    store: &Store,
    storage: &Storage,
    session_id: RecordingSessionId,
) -> Result<Finalized, FinalizeError> {
    finalize(store, storage, session_id, RecordingStatus::Saved).await
}

async fn finalize(
    store: &Store,
    storage: &Storage,
    session_id: RecordingSessionId,
    outcome: RecordingStatus,
) -> Result<Finalized, FinalizeError> {
    let session = store.get_recording_session(session_id).await?.ok_or(FinalizeError::NotFound)?;
    let takes: Vec<_> = store
        .list_takes(session.track_id, audiolab_store::Page::ALL)
        .await?
        .into_iter()
        .filter(|t| t.session_id == session_id)
        .collect();
    let clips: Vec<ClipId> = takes.iter().map(|t| t.clip_id).collect();
    let done = match session.status {
        RecordingStatus::Recording => return Err(FinalizeError::StillRecording),
        RecordingStatus::Saved | RecordingStatus::Recovered => true,
        _ => false,
    };
    if done {
        return Ok(Finalized { clips, frames: 0, status: session.status });
    }
    store.transition_recording_session(session_id, RecordingStatus::Stopped, RecordingStatus::Finalizing, None).await?;

    // One WAV per capture; each take's clip plays its stretch of it.
    let capture_dir = storage.fetch_dir(&session.capture_key).await?;
    let audio_key = format!("projects/{}/takes/{}.wav", session.project_id, session.id);
    let peaks_key = format!("projects/{}/peaks/{}", session.project_id, session.id);
    let audio_path = storage.path(&audio_key).map_err(|e| FinalizeError::Key(e.to_string()))?;
    let peaks_dir = storage.path(&peaks_key).map_err(|e| FinalizeError::Key(e.to_string()))?;
    let assembled = tokio::task::spawn_blocking(move || render_capture(&capture_dir, &audio_path, &peaks_dir))
        .await
        .map_err(|e| CaptureError::Io(std::io::Error::other(e)))?;
    let published = match assembled {
        Ok(done) => match publish(storage, &audio_key, &peaks_key).await {
            Ok(()) => Ok(done),
            Err(err) => {
                // Not written where the others read it: back to `stopped`, for a retry.
                let stopped = RecordingStatus::Stopped;
                store.transition_recording_session(session_id, RecordingStatus::Finalizing, stopped, None).await?;
                return Err(err);
            }
        },
        Err(err) => Err(err),
    };
    let (frames, loudness) = match published {
        Ok(done) => done,
        Err(err) => {
            let reason = err.to_string();
            store
                .transition_recording_session(
                    session_id,
                    RecordingStatus::Finalizing,
                    RecordingStatus::Failed,
                    Some(&reason),
                )
                .await?;
            for clip in &clips {
                let _ = store
                    .update_clip(*clip, |c| {
                        c.status = ClipStatus::Failed;
                        c.error = Some(reason.clone());
                        Ok(())
                    })
                    .await;
            }
            return Err(err.into());
        }
    };

    let ready: Vec<ReadyClip> = takes
        .iter()
        .map(|take| ReadyClip {
            clip_id: take.clip_id,
            audio_key: audio_key.clone(),
            source_offset: take.capture_offset,
            // A take cannot outlast the audio that reached the disk (after a crash it may).
            length: Frames(take.length.get().min((frames as i64 - take.capture_offset.get()).max(0))),
            source_length: Frames(frames as i64),
            peaks_key: peaks_key.clone(),
            loudness_lufs: loudness,
        })
        .collect();
    if !store.finish_capture(session_id, outcome, &ready).await? {
        // Another delivery of the job got there first: finished is finished.
        let now = store.get_recording_session(session_id).await?.ok_or(FinalizeError::NotFound)?;
        if !matches!(now.status, RecordingStatus::Saved | RecordingStatus::Recovered) {
            let reason = format!("the recording is {}, not being finalised", now.status.as_str());
            return Err(FinalizeError::Store(StoreError::Conflict(reason)));
        }
    }
    Ok(Finalized { clips, frames, status: outcome })
}

/// Sends a finalised capture's audio and waveforms where every process reads them.
async fn publish(storage: &Storage, audio_key: &str, peaks_key: &str) -> Result<(), FinalizeError> {
    storage.publish(audio_key).await?;
    storage.publish_dir(peaks_key).await?;
    Ok(())
}

/// One pass over a capture into its clip audio, overviews and loudness.
fn render_capture(capture_dir: &Path, audio_path: &Path, peaks_dir: &Path) -> Result<(u64, Option<f64>), CaptureError> {
    let manifest = capture::read_manifest(capture_dir)?;
    let mut clip = ClipAudioWriter::create(audio_path, peaks_dir, manifest.channels, manifest.sample_rate)?;
    capture::read_frames(capture_dir, |samples| Ok(clip.add(samples)?))?;
    Ok(clip.finish()?)
}
