//! Tracks, with the rule that a project's track indexes are unique and at most 32.

use crate::{Page, Paged, Store, StoreError, StoreResult, Versioned, corrupt, on_pool, update_versioned};
use audiolab_domain::track::{MAX_TRACKS, NewTrack, Track, TrackIndex};
use audiolab_domain::{Pan, ProjectId, TrackId, ValidationResult, Volume};
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(sqlx::FromRow)]
pub(crate) struct TrackRow {
    id: Uuid,
    project_id: Uuid,
    name: String,
    track_index: i16,
    volume: f64,
    pan: f64,
    muted: bool,
    soloed: bool,
    color: Option<String>,
    record_enabled: bool,
    input_device_id: Option<String>,
    monitoring: bool,
    comp: String,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TrackRow {
    pub(crate) fn into_domain(self) -> StoreResult<(Track, i64)> {
        let track = Track {
            id: self.id.into(),
            project_id: self.project_id.into(),
            name: self.name,
            index: TrackIndex::new(self.track_index.into())
                .map_err(|_| corrupt("tracks.track_index", self.track_index))?,
            volume: Volume::new(self.volume).map_err(|_| corrupt("tracks.volume", self.volume))?,
            pan: Pan::new(self.pan).map_err(|_| corrupt("tracks.pan", self.pan))?,
            muted: self.muted,
            soloed: self.soloed,
            color: self.color,
            record_enabled: self.record_enabled,
            input_device_id: self.input_device_id,
            monitoring: self.monitoring,
            comp: serde_json::from_str(&self.comp).map_err(|_| corrupt("tracks.comp", &self.comp))?,
            created_at: self.created_at,
            updated_at: self.updated_at,
        };
        Ok((track, self.version))
    }
}

/// The track's comp as stored (JSON text on both backends).
pub(crate) fn comp_json(track: &Track) -> String {
    serde_json::to_string(&track.comp).unwrap_or_default()
}

fn duplicate_index(index: TrackIndex) -> String {
    format!("track_index {} is already used in this project", index.get())
}

impl Store {
    /// Validates and stores a new track. Without an explicit index it takes the lowest free one.
    ///
    /// Errors: `Invalid` for bad fields; `Conflict` when the index is taken or the project already
    /// has 32 tracks; `MissingParent` when the project does not exist.
    #[tracing::instrument(skip(self, new), fields(project_id = %project_id))]
    pub async fn create_track(&self, project_id: ProjectId, new: NewTrack) -> StoreResult<Track> {
        let requested = new.track_index.map(TrackIndex::new).transpose()?;
        // Two clients taking "the next free slot" at once race for it; the loser picks again.
        for _ in 0..MAX_TRACKS {
            let index = match requested {
                Some(index) => index,
                None => {
                    let used = self.used_track_indexes(project_id).await?;
                    TrackIndex::first_free(&used).ok_or_else(|| {
                        StoreError::Conflict(format!("the project already has the maximum of {MAX_TRACKS} tracks"))
                    })?
                }
            };
            let track = Track::create(project_id, new.clone(), index, audiolab_domain::now())?;
            match self.insert_track(&track).await {
                Err(StoreError::Conflict(_)) if requested.is_none() => continue,
                Err(StoreError::Conflict(_)) if self.count_tracks(project_id).await? >= i64::from(MAX_TRACKS) => {
                    return Err(StoreError::Conflict(format!(
                        "the project already has the maximum of {MAX_TRACKS} tracks"
                    )));
                }
                Err(StoreError::Conflict(_)) => {
                    return Err(StoreError::Conflict(duplicate_index(index)));
                }
                other => return other.map(|()| track),
            }
        }
        Err(StoreError::Conflict("could not find a free track index; try again".into()))
    }

    async fn insert_track(&self, track: &Track) -> StoreResult<()> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO tracks (id, project_id, name, track_index, volume, pan, muted, soloed, color, record_enabled,
                                 input_device_id, monitoring, created_at, updated_at, comp)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(track.id.0)
        .bind(track.project_id.0)
        .bind(&track.name)
        .bind(i16::from(track.index.get()))
        .bind(track.volume.get())
        .bind(track.pan.get())
        .bind(track.muted)
        .bind(track.soloed)
        .bind(&track.color)
        .bind(track.record_enabled)
        .bind(&track.input_device_id)
        .bind(track.monitoring)
        .bind(track.created_at)
        .bind(track.updated_at)
        .bind(comp_json(track))
        .execute(pool)
        .await
        .map(drop)
        .map_err(|e| StoreError::from_write(e, &duplicate_index(track.index), "project"))?);
        Ok(())
    }

    async fn used_track_indexes(&self, project_id: ProjectId) -> StoreResult<Vec<TrackIndex>> {
        let used: Vec<i16> = on_pool!(self, pool => sqlx::query_scalar("SELECT track_index FROM tracks WHERE project_id = $1")
            .bind(project_id.0)
            .fetch_all(pool)
            .await?);
        used.into_iter().map(|i| TrackIndex::new(i.into()).map_err(|_| corrupt("tracks.track_index", i))).collect()
    }

    pub async fn count_tracks(&self, project_id: ProjectId) -> StoreResult<i64> {
        Ok(on_pool!(self, pool => sqlx::query_scalar("SELECT COUNT(*) FROM tracks WHERE project_id = $1")
            .bind(project_id.0)
            .fetch_one(pool)
            .await?))
    }

    async fn track_row(&self, id: TrackId) -> StoreResult<Option<(Track, i64)>> {
        let row: Option<TrackRow> = on_pool!(self, pool => sqlx::query_as("SELECT * FROM tracks WHERE id = $1")
            .bind(id.0)
            .fetch_optional(pool)
            .await?);
        row.map(TrackRow::into_domain).transpose()
    }

    #[tracing::instrument(skip(self))]
    pub async fn get_track(&self, id: TrackId) -> StoreResult<Option<Track>> {
        Ok(self.track_row(id).await?.map(|(track, _)| track))
    }

    /// The project's tracks in index order.
    #[tracing::instrument(skip(self))]
    pub async fn list_tracks(&self, project_id: ProjectId, page: Page) -> StoreResult<Paged<Track>> {
        let rows: Vec<TrackRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT * FROM tracks WHERE project_id = $1 ORDER BY track_index LIMIT $2 OFFSET $3",
        )
        .bind(project_id.0)
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(pool)
        .await?);
        let items = rows.into_iter().map(|r| r.into_domain().map(|(t, _)| t)).collect::<StoreResult<_>>()?;
        Ok(Paged { items, total: self.count_tracks(project_id).await? })
    }

    /// Optimistic edit of a track, as [`Store::update_project`].
    ///
    /// Errors: `NotFound`, `Invalid`, `Conflict` (index taken, or concurrent edits).
    #[tracing::instrument(skip(self, change))]
    pub async fn update_track(
        &self,
        id: TrackId,
        change: impl FnMut(&mut Track) -> ValidationResult<()> + Send,
    ) -> StoreResult<Track> {
        update_versioned(self, id, change).await
    }
}

impl Versioned for Track {
    type Id = TrackId;
    const WHAT: &'static str = "track";

    async fn load(store: &Store, id: TrackId) -> StoreResult<Option<(Self, i64)>> {
        store.track_row(id).await
    }

    async fn save(&self, store: &Store, version: i64) -> StoreResult<bool> {
        let track = self;
        let written = on_pool!(store, pool => sqlx::query(
            "UPDATE tracks SET name = $3, track_index = $4, volume = $5, pan = $6, muted = $7, soloed = $8, color = $9,
                    record_enabled = $10, input_device_id = $11, monitoring = $12, updated_at = $13, comp = $14,
                    version = version + 1
             WHERE id = $1 AND version = $2",
        )
        .bind(track.id.0)
        .bind(version)
        .bind(&track.name)
        .bind(i16::from(track.index.get()))
        .bind(track.volume.get())
        .bind(track.pan.get())
        .bind(track.muted)
        .bind(track.soloed)
        .bind(&track.color)
        .bind(track.record_enabled)
        .bind(&track.input_device_id)
        .bind(track.monitoring)
        .bind(track.updated_at)
        .bind(comp_json(track))
        .execute(pool)
        .await
        .map_err(|e| StoreError::from_write(e, &duplicate_index(track.index), "project"))?
        .rows_affected());
        Ok(written == 1)
    }
}
