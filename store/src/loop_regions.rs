//! Loop regions.

use crate::{Store, StoreError, StoreResult, Versioned, corrupt, on_pool, update_versioned};
use audiolab_domain::loop_region::LoopRegion;
use audiolab_domain::{Frames, LoopRegionId, ProjectId, ValidationResult};
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(sqlx::FromRow)]
pub(crate) struct LoopRegionRow {
    id: Uuid,
    project_id: Uuid,
    name: String,
    start_frame: i64,
    end_frame: i64,
    enabled: bool,
    repeat_count: Option<i32>,
    auto_punch_record: bool,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl LoopRegionRow {
    pub(crate) fn into_domain(self) -> StoreResult<(LoopRegion, i64)> {
        let repeat_count = self
            .repeat_count
            .map(|n| u32::try_from(n).map_err(|_| corrupt("loop_regions.repeat_count", n)))
            .transpose()?;
        let region = LoopRegion {
            id: self.id.into(),
            project_id: self.project_id.into(),
            name: self.name,
            start: Frames(self.start_frame),
            end: Frames(self.end_frame),
            enabled: self.enabled,
            repeat_count,
            auto_punch_record: self.auto_punch_record,
            created_at: self.created_at,
            updated_at: self.updated_at,
        };
        Ok((region, self.version))
    }
}

/// Disables the project's ($1) enabled regions other than $2, stamping them changed at $3.
const DISABLE_OTHERS: &str = "UPDATE loop_regions SET enabled = FALSE, updated_at = $3, version = version + 1
                              WHERE project_id = $1 AND enabled AND id <> $2";

impl Store {
    /// Inserts a region. An enabled region becomes the project's only enabled one (the others
    /// are disabled in the same transaction). Errors: `MissingParent` when the project does not
    /// exist.
    #[tracing::instrument(skip_all, fields(loop_region_id = %region.id))]
    pub async fn insert_loop_region(&self, region: &LoopRegion) -> StoreResult<()> {
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            if region.enabled {
                sqlx::query(DISABLE_OTHERS).bind(region.project_id.0).bind(region.id.0).bind(region.updated_at)
                    .execute(&mut *tx).await?;
            }
            sqlx::query(
                "INSERT INTO loop_regions (id, project_id, name, start_frame, end_frame, enabled, repeat_count,
                                           auto_punch_record, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(region.id.0)
            .bind(region.project_id.0)
            .bind(&region.name)
            .bind(region.start.get())
            .bind(region.end.get())
            .bind(region.enabled)
            .bind(region.repeat_count.map(|n| n as i32))
            .bind(region.auto_punch_record)
            .bind(region.created_at)
            .bind(region.updated_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::from_write(e, "a loop region with this id already exists", "project"))?;
            tx.commit().await?;
        });
        Ok(())
    }

    async fn loop_region_row(&self, id: LoopRegionId) -> StoreResult<Option<(LoopRegion, i64)>> {
        let row: Option<LoopRegionRow> = on_pool!(self, pool => sqlx::query_as("SELECT * FROM loop_regions WHERE id = $1")
            .bind(id.0)
            .fetch_optional(pool)
            .await?);
        row.map(LoopRegionRow::into_domain).transpose()
    }

    #[tracing::instrument(skip(self))]
    pub async fn get_loop_region(&self, id: LoopRegionId) -> StoreResult<Option<LoopRegion>> {
        Ok(self.loop_region_row(id).await?.map(|(region, _)| region))
    }

    /// The project's loop regions in timeline order.
    #[tracing::instrument(skip(self))]
    pub async fn list_loop_regions(&self, project_id: ProjectId, page: crate::Page) -> StoreResult<Vec<LoopRegion>> {
        let rows: Vec<LoopRegionRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT * FROM loop_regions WHERE project_id = $1 ORDER BY start_frame, id LIMIT $2 OFFSET $3",
        )
        .bind(project_id.0)
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(pool)
        .await?);
        rows.into_iter().map(|r| r.into_domain().map(|(l, _)| l)).collect()
    }

    /// Optimistic edit of a loop region, as [`Store::update_project`].
    #[tracing::instrument(skip(self, change))]
    pub async fn update_loop_region(
        &self,
        id: LoopRegionId,
        change: impl FnMut(&mut LoopRegion) -> ValidationResult<()> + Send,
    ) -> StoreResult<LoopRegion> {
        update_versioned(self, id, change).await
    }

    #[tracing::instrument(skip(self))]
    pub async fn delete_loop_region(&self, id: LoopRegionId) -> StoreResult<bool> {
        let deleted = on_pool!(self, pool => sqlx::query("DELETE FROM loop_regions WHERE id = $1")
            .bind(id.0)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(deleted == 1)
    }
}

impl Versioned for LoopRegion {
    type Id = LoopRegionId;
    const WHAT: &'static str = "loop region";

    async fn load(store: &Store, id: LoopRegionId) -> StoreResult<Option<(Self, i64)>> {
        store.loop_region_row(id).await
    }

    async fn save(&self, store: &Store, version: i64) -> StoreResult<bool> {
        let region = self;
        let written = on_pool!(store, pool => {
            let mut tx = pool.begin().await?;
            if region.enabled {
                sqlx::query(DISABLE_OTHERS).bind(region.project_id.0).bind(region.id.0).bind(region.updated_at)
                    .execute(&mut *tx).await?;
            }
            let written = sqlx::query(
            "UPDATE loop_regions SET name = $3, start_frame = $4, end_frame = $5, enabled = $6, repeat_count = $7,
                    auto_punch_record = $8, updated_at = $9, version = version + 1
             WHERE id = $1 AND version = $2",
        )
        .bind(region.id.0)
        .bind(version)
        .bind(&region.name)
        .bind(region.start.get())
        .bind(region.end.get())
        .bind(region.enabled)
        .bind(region.repeat_count.map(|n| n as i32))
        .bind(region.auto_punch_record)
        .bind(region.updated_at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
            // A lost race rolls back the disabling too.
            if written == 1 {
                tx.commit().await?;
            }
            written
        });
        Ok(written == 1)
    }
}

impl Store {
    /// Makes `region` the project's only enabled loop (or disables all with `None`) and returns
    /// it, in one transaction. Errors: `NotFound` when `region` is not a loop region of
    /// `project_id`.
    #[tracing::instrument(skip(self))]
    pub async fn enable_loop_region(
        &self,
        project_id: ProjectId,
        region: Option<LoopRegionId>,
    ) -> StoreResult<Option<LoopRegion>> {
        let now = audiolab_domain::now();
        // With no region to keep, the nil id matches nothing, so every region is disabled.
        let keep = region.map_or(Uuid::nil(), |r| r.0);
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(DISABLE_OTHERS).bind(project_id.0).bind(keep).bind(now).execute(&mut *tx).await?;
            if let Some(id) = region {
                let enabled = sqlx::query(
                    "UPDATE loop_regions SET enabled = TRUE, updated_at = $3, version = version + 1
                     WHERE project_id = $1 AND id = $2 AND NOT enabled",
                )
                .bind(project_id.0)
                .bind(id.0)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if enabled == 0 {
                    let exists: Option<i64> = sqlx::query_scalar(
                        "SELECT version FROM loop_regions WHERE project_id = $1 AND id = $2",
                    )
                    .bind(project_id.0)
                    .bind(id.0)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if exists.is_none() {
                        return Err(StoreError::NotFound("loop region"));
                    }
                }
            }
            tx.commit().await?;
        });
        self.enabled_loop_region(project_id).await
    }

    /// The project's enabled loop region, if any.
    pub async fn enabled_loop_region(&self, project_id: ProjectId) -> StoreResult<Option<LoopRegion>> {
        Ok(self.list_loop_regions(project_id, crate::Page::ALL).await?.into_iter().find(|r| r.enabled))
    }
}
