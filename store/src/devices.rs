//! Per-device settings: the manual latency offset added to takes recorded from a device, and
//! each user's client devices' round trips.

use crate::{Store, StoreResult, on_pool};
use audiolab_domain::UserId;
use audiolab_domain::device::{ClientLatency, LatencySource};
use chrono::{DateTime, Utc};

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

    /// The round trip stored for `user`'s client device `device_id`, if any.
    pub async fn client_latency(&self, user: UserId, device_id: &str) -> StoreResult<Option<ClientLatency>> {
        let row: Option<(i64, String, DateTime<Utc>)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT latency_us, source, updated_at FROM client_latencies WHERE user_id = $1 AND device_id = $2",
        )
        .bind(user.0)
        .bind(device_id)
        .fetch_optional(pool)
        .await?);
        row.map(|(latency_us, source, updated_at)| {
            let source = source.parse().map_err(|_| crate::corrupt("client_latencies.source", source))?;
            Ok(ClientLatency { device_id: device_id.to_owned(), latency_us, source, updated_at })
        })
        .transpose()
    }

    /// Stores the round trip of `user`'s client device (0 to 1 s; the database refuses more).
    pub async fn set_client_latency(
        &self,
        user: UserId,
        device_id: &str,
        latency_us: i64,
        source: LatencySource,
    ) -> StoreResult<ClientLatency> {
        let now = audiolab_domain::now();
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO client_latencies (user_id, device_id, latency_us, source, updated_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (user_id, device_id) DO UPDATE
             SET latency_us = EXCLUDED.latency_us, source = EXCLUDED.source, updated_at = EXCLUDED.updated_at",
        )
        .bind(user.0)
        .bind(device_id)
        .bind(latency_us)
        .bind(source.as_str())
        .bind(now)
        .execute(pool)
        .await
        .map(drop)?);
        Ok(ClientLatency { device_id: device_id.to_owned(), latency_us, source, updated_at: now })
    }
}
