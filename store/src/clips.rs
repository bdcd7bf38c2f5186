//! Clips.

use crate::{Page, Paged, Store, StoreError, StoreResult, Versioned, corrupt, on_pool, update_versioned};
use audiolab_domain::clip::{Clip, ClipStatus};
use audiolab_domain::{ClipId, Decibels, Frames, ProjectId, TrackId, ValidationResult};
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(sqlx::FromRow)]
pub(crate) struct ClipRow {
    id: Uuid,
    project_id: Uuid,
    track_id: Uuid,
    take_id: Option<Uuid>,
    name: String,
    audio_key: Option<String>,
    start_frame: i64,
    source_offset_frames: i64,
    length_frames: i64,
    source_length_frames: i64,
    gain_db: f64,
    fade_in_frames: i64,
    fade_out_frames: i64,
    source_sample_rate: i32,
    channels: i16,
    status: String,
    error: Option<String>,
    peaks_key: Option<String>,
    loudness_lufs: Option<f64>,
    active: bool,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl ClipRow {
    pub(crate) fn into_domain(self) -> StoreResult<(Clip, i64)> {
        let clip = Clip {
            id: self.id.into(),
            project_id: self.project_id.into(),
            track_id: self.track_id.into(),
            take_id: self.take_id.map(Into::into),
            name: self.name,
            audio_key: self.audio_key,
            start: Frames(self.start_frame),
            source_offset: Frames(self.source_offset_frames),
            length: Frames(self.length_frames),
            source_length: Frames(self.source_length_frames),
            gain: Decibels(self.gain_db),
            fade_in: Frames(self.fade_in_frames),
            fade_out: Frames(self.fade_out_frames),
            source_sample_rate: u32::try_from(self.source_sample_rate)
                .map_err(|_| corrupt("clips.source_sample_rate", self.source_sample_rate))?,
            channels: u16::try_from(self.channels).map_err(|_| corrupt("clips.channels", self.channels))?,
            status: ClipStatus::parse(&self.status).ok_or_else(|| corrupt("clips.status", &self.status))?,
            error: self.error,
            peaks_key: self.peaks_key,
            loudness_lufs: self.loudness_lufs,
            active: self.active,
            created_at: self.created_at,
            updated_at: self.updated_at,
        };
        Ok((clip, self.version))
    }
}

/// The bound INSERT of a clip, for a pool or a transaction of either engine.
macro_rules! insert_clip_query {
    ($clip:expr) => {{
        let clip = $clip;
sqlx::query(
            "INSERT INTO clips (id, project_id, track_id, take_id, name, audio_key, start_frame, source_offset_frames,
                                length_frames, source_length_frames, gain_db, fade_in_frames, fade_out_frames,
                                source_sample_rate, channels, status, error, peaks_key, loudness_lufs, active,
                                created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)",
        )
        .bind(clip.id.0)
        .bind(clip.project_id.0)
        .bind(clip.track_id.0)
        .bind(clip.take_id.map(|t| t.0))
        .bind(&clip.name)
        .bind(&clip.audio_key)
        .bind(clip.start.get())
        .bind(clip.source_offset.get())
        .bind(clip.length.get())
        .bind(clip.source_length.get())
        .bind(clip.gain.0)
        .bind(clip.fade_in.get())
        .bind(clip.fade_out.get())
        .bind(clip.source_sample_rate as i32)
        .bind(clip.channels as i16)
        .bind(clip.status.as_str())
        .bind(&clip.error)
        .bind(&clip.peaks_key)
        .bind(clip.loudness_lufs)
        .bind(clip.active)
        .bind(clip.created_at)
        .bind(clip.updated_at)
    }};
}
pub(crate) use insert_clip_query;

impl Store {
    /// Stores a new clip. Errors: `MissingParent` when its track or project does not exist.
    #[tracing::instrument(skip_all, fields(clip_id = %clip.id))]
    pub async fn insert_clip(&self, clip: &Clip) -> StoreResult<()> {
        on_pool!(self, pool => insert_clip_query!(clip)
        .execute(pool)
        .await
        .map(drop)
        .map_err(|e| StoreError::from_write(e, "a clip with this id already exists", "track"))?);
        Ok(())
    }

    async fn clip_row(&self, id: ClipId) -> StoreResult<Option<(Clip, i64)>> {
        let row: Option<ClipRow> = on_pool!(self, pool => sqlx::query_as("SELECT * FROM clips WHERE id = $1")
            .bind(id.0)
            .fetch_optional(pool)
            .await?);
        row.map(ClipRow::into_domain).transpose()
    }

    #[tracing::instrument(skip(self))]
    pub async fn get_clip(&self, id: ClipId) -> StoreResult<Option<Clip>> {
        Ok(self.clip_row(id).await?.map(|(clip, _)| clip))
    }

    /// The track's clips in timeline order.
    #[tracing::instrument(skip(self))]
    pub async fn list_clips(&self, track_id: TrackId, page: Page) -> StoreResult<Paged<Clip>> {
        let (rows, total): (Vec<ClipRow>, i64) = on_pool!(self, pool => {
            let rows = sqlx::query_as("SELECT * FROM clips WHERE track_id = $1 ORDER BY start_frame, id LIMIT $2 OFFSET $3")
                .bind(track_id.0)
                .bind(page.limit)
                .bind(page.offset)
                .fetch_all(pool)
                .await?;
            let total = sqlx::query_scalar("SELECT COUNT(*) FROM clips WHERE track_id = $1")
                .bind(track_id.0)
                .fetch_one(pool)
                .await?;
            (rows, total)
        });
        let items = rows.into_iter().map(|r| r.into_domain().map(|(c, _)| c)).collect::<StoreResult<_>>()?;
        Ok(Paged { items, total })
    }

    /// The clips of a recording's takes (one per pass).
    #[tracing::instrument(skip(self))]
    pub async fn session_clips(&self, session: audiolab_domain::RecordingSessionId) -> StoreResult<Vec<Clip>> {
        let rows: Vec<ClipRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT * FROM clips WHERE id IN (SELECT clip_id FROM takes WHERE session_id = $1) ORDER BY id",
        )
        .bind(session.0)
        .fetch_all(pool)
        .await?);
        rows.into_iter().map(|r| r.into_domain().map(|(c, _)| c)).collect()
    }

    /// Every clip of the project, for loading it into an engine or a render.
    #[tracing::instrument(skip(self))]
    pub async fn project_clips(&self, project_id: ProjectId) -> StoreResult<Vec<Clip>> {
        let rows: Vec<ClipRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT * FROM clips WHERE project_id = $1 ORDER BY track_id, start_frame, id",
        )
        .bind(project_id.0)
        .fetch_all(pool)
        .await?);
        rows.into_iter().map(|r| r.into_domain().map(|(c, _)| c)).collect()
    }

    /// Optimistic edit of a clip, as [`Store::update_project`].
    #[tracing::instrument(skip(self, change))]
    pub async fn update_clip(
        &self,
        id: ClipId,
        change: impl FnMut(&mut Clip) -> ValidationResult<()> + Send,
    ) -> StoreResult<Clip> {
        update_versioned(self, id, change).await
    }

    /// Deletes the clip's row (its audio object stays until storage cleanup). Returns whether it existed.
    #[tracing::instrument(skip(self))]
    pub async fn delete_clip(&self, id: ClipId) -> StoreResult<bool> {
        let deleted = on_pool!(self, pool => sqlx::query("DELETE FROM clips WHERE id = $1")
            .bind(id.0)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(deleted == 1)
    }
}

impl Versioned for Clip {
    type Id = ClipId;
    const WHAT: &'static str = "clip";

    async fn load(store: &Store, id: ClipId) -> StoreResult<Option<(Self, i64)>> {
        store.clip_row(id).await
    }

    async fn save(&self, store: &Store, version: i64) -> StoreResult<bool> {
        let clip = self;
        let written = on_pool!(store, pool => sqlx::query(
            "UPDATE clips SET track_id = $3, take_id = $4, name = $5, audio_key = $6, start_frame = $7,
                    source_offset_frames = $8, length_frames = $9, source_length_frames = $10, gain_db = $11,
                    fade_in_frames = $12, fade_out_frames = $13, source_sample_rate = $14, channels = $15,
                    status = $16, error = $17, peaks_key = $18, loudness_lufs = $19, active = $20,
                    updated_at = $21, version = version + 1
             WHERE id = $1 AND version = $2",
        )
        .bind(clip.id.0)
        .bind(version)
        .bind(clip.track_id.0)
        .bind(clip.take_id.map(|t| t.0))
        .bind(&clip.name)
        .bind(&clip.audio_key)
        .bind(clip.start.get())
        .bind(clip.source_offset.get())
        .bind(clip.length.get())
        .bind(clip.source_length.get())
        .bind(clip.gain.0)
        .bind(clip.fade_in.get())
        .bind(clip.fade_out.get())
        .bind(clip.source_sample_rate as i32)
        .bind(clip.channels as i16)
        .bind(clip.status.as_str())
        .bind(&clip.error)
        .bind(&clip.peaks_key)
        .bind(clip.loudness_lufs)
        .bind(clip.active)
        .bind(clip.updated_at)
        .execute(pool)
        .await
        .map_err(|e| StoreError::from_write(e, "clip conflict", "track"))?
        .rows_affected());
        Ok(written == 1)
    }
}
