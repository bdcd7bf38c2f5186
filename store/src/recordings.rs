//! Recording sessions (the crash-safety journal) and their takes.

use crate::{Store, StoreError, StoreResult, corrupt, on_pool};
use audiolab_domain::clip::Clip;
use audiolab_domain::recording::{RecordingSession, RecordingStatus, Take};
use audiolab_domain::{Frames, RecordingSessionId, TakeId, TrackId};
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(sqlx::FromRow)]
struct SessionRow {
    id: Uuid,
    project_id: Uuid,
    track_id: Uuid,
    device_id: String,
    status: String,
    start_frame: i64,
    applied_offset_frames: i64,
    capture_key: String,
    error: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<SessionRow> for RecordingSession {
    type Error = StoreError;
    fn try_from(row: SessionRow) -> StoreResult<Self> {
        Ok(RecordingSession {
            id: row.id.into(),
            project_id: row.project_id.into(),
            track_id: row.track_id.into(),
            device_id: row.device_id,
            status: RecordingStatus::parse(&row.status)
                .ok_or_else(|| corrupt("recording_sessions.status", &row.status))?,
            start: Frames(row.start_frame),
            applied_offset: Frames(row.applied_offset_frames),
            capture_key: row.capture_key,
            error: row.error,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct TakeRow {
    id: Uuid,
    session_id: Uuid,
    track_id: Uuid,
    clip_id: Uuid,
    pass_index: i32,
    capture_offset_frames: i64,
    length_frames: i64,
    created_at: DateTime<Utc>,
}

impl TryFrom<TakeRow> for Take {
    type Error = StoreError;
    fn try_from(row: TakeRow) -> StoreResult<Self> {
        Ok(Take {
            id: row.id.into(),
            session_id: row.session_id.into(),
            track_id: row.track_id.into(),
            clip_id: row.clip_id.into(),
            pass_index: u32::try_from(row.pass_index).map_err(|_| corrupt("takes.pass_index", row.pass_index))?,
            capture_offset: Frames(row.capture_offset_frames),
            length: Frames(row.length_frames),
            created_at: row.created_at,
        })
    }
}

/// What a finalised take's clip becomes.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadyClip {
    pub clip_id: audiolab_domain::ClipId,
    pub audio_key: String,
    pub source_offset: Frames,
    pub length: Frames,
    pub source_length: Frames,
    pub peaks_key: String,
    pub loudness_lufs: Option<f64>,
}

/// The bound INSERT of a take, for a pool or a transaction of either engine.
macro_rules! insert_take_query {
    ($take:expr) => {{
        let take = $take;
sqlx::query(
            "INSERT INTO takes (id, session_id, track_id, clip_id, pass_index, capture_offset_frames, length_frames, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(take.id.0)
        .bind(take.session_id.0)
        .bind(take.track_id.0)
        .bind(take.clip_id.0)
        .bind(take.pass_index as i32)
        .bind(take.capture_offset.get())
        .bind(take.length.get())
        .bind(take.created_at)
    }};
}
pub(crate) use insert_take_query;

impl Store {
    /// Writes the journal row of a recording. Errors: `MissingParent` for an unknown track.
    #[tracing::instrument(skip_all, fields(session_id = %session.id))]
    pub async fn insert_recording_session(&self, session: &RecordingSession) -> StoreResult<()> {
        self.insert_recording_session_on(session, None).await
    }

    /// Inserts the journal row of a take recorded by the node `node` (none in `serve`), which
    /// other nodes may claim with [`Store::claim_orphaned_recordings`] once it stops heartbeating.
    #[tracing::instrument(skip(self, session), fields(session_id = %session.id))]
    pub async fn insert_recording_session_on(
        &self,
        session: &RecordingSession,
        node: Option<uuid::Uuid>,
    ) -> StoreResult<()> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO recording_sessions (id, project_id, track_id, device_id, status, start_frame,
                                             applied_offset_frames, capture_key, error, created_at, updated_at, node_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(session.id.0)
        .bind(session.project_id.0)
        .bind(session.track_id.0)
        .bind(&session.device_id)
        .bind(session.status.as_str())
        .bind(session.start.get())
        .bind(session.applied_offset.get())
        .bind(&session.capture_key)
        .bind(&session.error)
        .bind(session.created_at)
        .bind(session.updated_at)
        .bind(node)
        .execute(pool)
        .await
        .map(drop)
        .map_err(|e| StoreError::from_write(e, "a recording session with this id already exists", "track"))?);
        Ok(())
    }

    #[tracing::instrument(skip(self))]
    pub async fn get_recording_session(&self, id: RecordingSessionId) -> StoreResult<Option<RecordingSession>> {
        let row: Option<SessionRow> = on_pool!(self, pool => sqlx::query_as("SELECT * FROM recording_sessions WHERE id = $1")
            .bind(id.0)
            .fetch_optional(pool)
            .await?);
        row.map(RecordingSession::try_from).transpose()
    }

    /// Sessions in `status`, oldest first: `Recording` ones after a restart are the interrupted captures.
    #[tracing::instrument(skip(self))]
    pub async fn recording_sessions_with_status(&self, status: RecordingStatus) -> StoreResult<Vec<RecordingSession>> {
        let rows: Vec<SessionRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT * FROM recording_sessions WHERE status = $1 ORDER BY id",
        )
        .bind(status.as_str())
        .fetch_all(pool)
        .await?);
        rows.into_iter().map(RecordingSession::try_from).collect()
    }

    /// Takes over the takes still `recording` on nodes that stopped heartbeating for
    /// `stale_after`: they become `me`'s, in one statement, so two live nodes sweeping at once
    /// never both claim one. Returns the claimed sessions, for `me` to recover.
    #[tracing::instrument(skip(self))]
    pub async fn claim_orphaned_recordings(
        &self,
        me: uuid::Uuid,
        stale_after: std::time::Duration,
    ) -> StoreResult<Vec<RecordingSessionId>> {
        let cutoff = audiolab_domain::now() - chrono::Duration::from_std(stale_after).unwrap_or(chrono::Duration::MAX);
        let claimed: Vec<uuid::Uuid> = on_pool!(self, pool => sqlx::query_scalar(
            "UPDATE recording_sessions SET node_id = $1
             WHERE status = 'recording' AND node_id IS NOT NULL AND node_id <> $1
               AND node_id NOT IN (SELECT id FROM audio_nodes WHERE heartbeat_at >= $2)
             RETURNING id",
        )
        .bind(me)
        .bind(cutoff)
        .fetch_all(pool)
        .await?);
        Ok(claimed.into_iter().map(RecordingSessionId::from).collect())
    }

    /// Moves a session to `status` only if it is currently in `from` (a compare-and-set, so two
    /// processes cannot both finalise one capture). Returns whether it moved.
    #[tracing::instrument(skip(self))]
    pub async fn transition_recording_session(
        &self,
        id: RecordingSessionId,
        from: RecordingStatus,
        to: RecordingStatus,
        error: Option<&str>,
    ) -> StoreResult<bool> {
        let moved = on_pool!(self, pool => sqlx::query(
            "UPDATE recording_sessions SET status = $3, error = $4, updated_at = $5 WHERE id = $1 AND status = $2",
        )
        .bind(id.0)
        .bind(from.as_str())
        .bind(to.as_str())
        .bind(error)
        .bind(Utc::now())
        .execute(pool)
        .await?
        .rows_affected());
        Ok(moved == 1)
    }

    /// Finishes a finalised capture in one transaction: every take's clip gets its audio and
    /// becomes `ready`, and the session moves `finalizing` → `outcome`. All or nothing, so a
    /// crash halfway never leaves some takes ready and the session unfinished. Returns false
    /// (changing nothing) when the session was not finalizing.
    #[tracing::instrument(skip(self, clips))]
    pub async fn finish_capture(
        &self,
        id: RecordingSessionId,
        outcome: RecordingStatus,
        clips: &[ReadyClip],
    ) -> StoreResult<bool> {
        let now = audiolab_domain::now();
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let moved = sqlx::query(
                "UPDATE recording_sessions SET status = $3, error = NULL, updated_at = $4 WHERE id = $1 AND status = $2",
            )
            .bind(id.0)
            .bind(RecordingStatus::Finalizing.as_str())
            .bind(outcome.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if moved != 1 {
                return Ok(false);
            }
            for clip in clips {
                sqlx::query(
                    "UPDATE clips SET audio_key = $2, source_offset_frames = $3, length_frames = $4,
                            source_length_frames = $5, status = 'ready', error = NULL, peaks_key = $6,
                            loudness_lufs = $7, updated_at = $8, version = version + 1
                     WHERE id = $1",
                )
                .bind(clip.clip_id.0)
                .bind(&clip.audio_key)
                .bind(clip.source_offset.get())
                .bind(clip.length.get())
                .bind(clip.source_length.get())
                .bind(&clip.peaks_key)
                .bind(clip.loudness_lufs)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Ends a recording: `recording` → `stopped`, recording where its take landed on the timeline
    /// and the latency compensation applied. Returns false when it was not recording.
    #[tracing::instrument(skip(self))]
    pub async fn stop_recording_session(
        &self,
        id: RecordingSessionId,
        start: Frames,
        applied_offset: Frames,
    ) -> StoreResult<bool> {
        let moved = on_pool!(self, pool => sqlx::query(
            "UPDATE recording_sessions SET status = 'stopped', start_frame = $2, applied_offset_frames = $3, updated_at = $4
             WHERE id = $1 AND status = 'recording'",
        )
        .bind(id.0)
        .bind(start.get())
        .bind(applied_offset.get())
        .bind(Utc::now())
        .execute(pool)
        .await?
        .rows_affected());
        Ok(moved == 1)
    }

    /// Stores the takes of one recording with their clips, all or none.
    /// Errors: `Conflict` when the session already has a take for one of the passes.
    #[tracing::instrument(skip_all, fields(takes = takes.len()))]
    pub async fn insert_takes(&self, takes: &[(Take, Clip)]) -> StoreResult<()> {
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for (take, clip) in takes {
                insert_take_query!(take)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| StoreError::from_write(e, "this pass already has a take", "recording session"))?;
                crate::clips::insert_clip_query!(clip)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| StoreError::from_write(e, "a clip with this id already exists", "track"))?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Errors: `Conflict` when the session already has a take for this pass.
    #[tracing::instrument(skip_all, fields(take_id = %take.id))]
    pub async fn insert_take(&self, take: &Take) -> StoreResult<()> {
        on_pool!(self, pool => insert_take_query!(take)
        .execute(pool)
        .await
        .map(drop)
        .map_err(|e| StoreError::from_write(e, "this pass already has a take", "recording session"))?);
        Ok(())
    }

    #[tracing::instrument(skip(self))]
    pub async fn get_take(&self, id: TakeId) -> StoreResult<Option<Take>> {
        let row: Option<TakeRow> = on_pool!(self, pool => sqlx::query_as("SELECT * FROM takes WHERE id = $1")
            .bind(id.0)
            .fetch_optional(pool)
            .await?);
        row.map(Take::try_from).transpose()
    }

    /// The track's takes, newest first.
    #[tracing::instrument(skip(self))]
    pub async fn list_takes(&self, track_id: TrackId, page: crate::Page) -> StoreResult<Vec<Take>> {
        let rows: Vec<TakeRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT * FROM takes WHERE track_id = $1 ORDER BY created_at DESC, pass_index DESC LIMIT $2 OFFSET $3",
        )
        .bind(track_id.0)
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(pool)
        .await?);
        rows.into_iter().map(Take::try_from).collect()
    }
}
