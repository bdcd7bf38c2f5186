//! Per-device settings: the manual latency offset added to takes recorded from a device.

use crate::{Store, StoreResult, on_pool};

impl Store {
    /// The device's manual offset in microseconds (0 when never set).
    pub async fn device_offset_us(&self, device_id: &str) -> StoreResult<i64> {
        let found: Option<i64> = on_pool!(self, pool => sqlx::query_scalar("SELECT offset_us FROM device_offsets WHERE device_id = $1")
            .bind(device_id)
            .fetch_optional(pool)
            .await?);
        Ok(found.unwrap_or(0))
    }

    /// Sets the device's manual offset (−1 s to +1 s; the database refuses more).
    pub async fn set_device_offset_us(&self, device_id: &str, offset_us: i64) -> StoreResult<()> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO device_offsets (device_id, offset_us, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (device_id) DO UPDATE SET offset_us = EXCLUDED.offset_us, updated_at = EXCLUDED.updated_at",
        )
        .bind(device_id)
        .bind(offset_us)
        .bind(audiolab_domain::now())
        .execute(pool)
        .await
        .map(drop)?);
        Ok(())
    }
}
