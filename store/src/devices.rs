//! Per-device settings: the manual latency offset added to takes recorded from a device in a
//! project, and each user's client devices' round trips and offsets.

use crate::{Store, StoreResult, on_pool};
use audiolab_domain::device::{ClientLatency, LatencySource};
use audiolab_domain::{ProjectId, UserId};
use chrono::{DateTime, Utc};

impl Store {
    /// The manual offset of `device_id` in `project`, microseconds (0 when never set).
    pub async fn device_offset_us(&self, project: ProjectId, device_id: &str) -> StoreResult<i64> {
        let found: Option<i64> = on_pool!(self, pool => sqlx::query_scalar(
            "SELECT offset_us FROM project_device_offsets WHERE project_id = $1 AND device_id = $2",
        )
        .bind(project.0)
        .bind(device_id)
        .fetch_optional(pool)
        .await?);
        Ok(found.unwrap_or(0))
    }

    /// Every device offset set in `project`, by device id.
    pub async fn device_offsets(&self, project: ProjectId) -> StoreResult<std::collections::HashMap<String, i64>> {
        let rows: Vec<(String, i64)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT device_id, offset_us FROM project_device_offsets WHERE project_id = $1",
        )
        .bind(project.0)
        .fetch_all(pool)
        .await?);
        Ok(rows.into_iter().collect())
    }

    /// Sets the manual offset of `device_id` in `project` (−1 s to +1 s; the database refuses
    /// more). Errors: `MissingParent` when the project is gone.
    pub async fn set_device_offset_us(&self, project: ProjectId, device_id: &str, offset_us: i64) -> StoreResult<()> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO project_device_offsets (project_id, device_id, offset_us, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (project_id, device_id) DO UPDATE SET offset_us = EXCLUDED.offset_us, updated_at = EXCLUDED.updated_at",
        )
        .bind(project.0)
        .bind(device_id)
        .bind(offset_us)
        .bind(audiolab_domain::now())
        .execute(pool)
        .await
        .map(drop)
        .map_err(|e| crate::StoreError::from_write(e, "offset out of range", "project"))?);
        Ok(())
    }

    /// The round trip stored for `user`'s client device `device_id`, if any.
    pub async fn client_latency(&self, user: UserId, device_id: &str) -> StoreResult<Option<ClientLatency>> {
        let row: Option<(i64, String, i64, DateTime<Utc>)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT latency_us, source, offset_us, updated_at FROM client_latencies WHERE user_id = $1 AND device_id = $2",
        )
        .bind(user.0)
        .bind(device_id)
        .fetch_optional(pool)
        .await?);
        row.map(|(latency_us, source, offset_us, updated_at)| {
            let source = source.parse().map_err(|_| crate::corrupt("client_latencies.source", source))?;
            Ok(ClientLatency { device_id: device_id.to_owned(), latency_us, source, offset_us, updated_at })
        })
        .transpose()
    }

    /// Stores the round trip of `user`'s client device (0 to 1 s; the database refuses more)
    /// and, when given, its manual offset (−1 s to 1 s; kept as it was when not).
    pub async fn set_client_latency(
        &self,
        user: UserId,
        device_id: &str,
        latency_us: i64,
        source: LatencySource,
        offset_us: Option<i64>,
    ) -> StoreResult<ClientLatency> {
        let now = audiolab_domain::now();
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO client_latencies (user_id, device_id, latency_us, source, offset_us, updated_at)
             VALUES ($1, $2, $3, $4, COALESCE($5, 0), $6)
             ON CONFLICT (user_id, device_id) DO UPDATE
             SET latency_us = EXCLUDED.latency_us, source = EXCLUDED.source,
                 offset_us = COALESCE($5, client_latencies.offset_us), updated_at = EXCLUDED.updated_at",
        )
        .bind(user.0)
        .bind(device_id)
        .bind(latency_us)
        .bind(source.as_str())
        .bind(offset_us)
        .bind(now)
        .execute(pool)
        .await
        .map(drop)
        .map_err(|e| crate::StoreError::from_write(e, "out of range", "user"))?);
        self.client_latency(user, device_id).await?.ok_or(crate::StoreError::NotFound("client device"))
    }
}
