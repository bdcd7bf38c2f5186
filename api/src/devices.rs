//! `GET /api/audio/devices`: the input devices tracks can record from.

use crate::Tag;
use crate::auth::Caller;
use crate::context::ApiContext;
use crate::error::ApiError;
use crate::error::{Answer, codes};
use audiolab_domain::device::InputDevice;
use audiolab_domain::user::Need;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

pub struct DevicesApi;

/// An audio input device.
#[derive(Debug, Object)]
pub struct DeviceView {
    /// Id to pass as `device_id` when arming or recording a track.
    pub device_id: String,
    /// Human-readable name.
    pub name: String,
    /// Input channels the device records.
    pub channels: u16,
    /// The rate the device runs at, in Hz.
    pub sample_rate: u32,
    /// Most input channels the device offers.
    pub max_input_channels: u16,
    /// The device's preferred rate, in Hz.
    pub default_sample_rate: u32,
    /// Whether tracks record from this device unless told otherwise.
    pub is_default: bool,
    /// `virtual` for AudioLab's own devices, `client` for a client device attached to the
    /// project, else the audio host (ALSA, CoreAudio, WASAPI…).
    pub host_api: String,
    /// Manual latency correction (ms) added to the position of every take from this device in
    /// the project given as `project_id` (a client device: the caller's own); 0 without one.
    pub offset_ms: f64,
}

/// A device's manual latency correction.
#[derive(Debug, Object)]
pub struct DeviceOffset {
    /// Milliseconds added to the timeline position of takes recorded from the device
    /// (negative moves them earlier), −1000 to 1000.
    #[oai(validator(minimum(value = "-1000"), maximum(value = "1000")))]
    pub offset_ms: f64,
}

/// The offset now in force.
#[derive(Debug, Object)]
pub struct DeviceOffsetSet {
    /// Always true.
    pub success: bool,
    /// The project the offset belongs to.
    pub project_id: Uuid,
    /// The device.
    pub device_id: String,
    /// Milliseconds, rounded to the microsecond.
    pub offset_ms: f64,
}

/// A client device's round trip, as the client found it.
#[derive(Debug, Object)]
pub struct ClientLatencyRequest {
    /// Output plus input latency in milliseconds, 0–1000: a microphone sample was heard
    /// against what played this long before it.
    #[oai(validator(minimum(value = "0"), maximum(value = "1000")))]
    pub latency_ms: f64,
    // Described on its type (states.rs).
    pub source: crate::states::LatencySourceName,
    /// Your manual correction in milliseconds, −1000 to 1000, added to the position of every
    /// take from this device; kept as it was when absent.
    #[oai(nullable, validator(minimum(value = "-1000"), maximum(value = "1000")))]
    pub offset_ms: Option<f64>,
}

/// The round trip stored for one of the caller's client devices.
#[derive(Debug, Object)]
pub struct ClientLatencyView {
    /// `client:<name>`.
    pub device_id: String,
    /// Output plus input latency in milliseconds.
    pub latency_ms: f64,
    // Described on its type (states.rs).
    pub source: crate::states::LatencySourceName,
    /// Your manual correction in milliseconds, added to the position of every take.
    pub offset_ms: f64,
    /// When it was stored.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<audiolab_domain::device::ClientLatency> for ClientLatencyView {
    fn from(latency: audiolab_domain::device::ClientLatency) -> Self {
        Self {
            device_id: latency.device_id,
            latency_ms: latency.latency_us as f64 / 1000.0,
            source: latency.source.into(),
            offset_ms: latency.offset_us as f64 / 1000.0,
            updated_at: latency.updated_at,
        }
    }
}

impl From<InputDevice> for DeviceView {
    fn from(device: InputDevice) -> Self {
        Self {
            device_id: device.device_id,
            name: device.name,
            channels: device.channels,
            sample_rate: device.sample_rate,
            max_input_channels: device.channels,
            default_sample_rate: device.sample_rate,
            is_default: device.is_default,
            host_api: device.host_api,
            offset_ms: 0.0,
        }
    }
}

#[OpenApi(tag = "Tag::Audio")]
impl DevicesApi {
    /// List input devices
    ///
    /// The virtual devices every node offers (`mock_0` mono sine, `mock_1` stereo tones,
    /// `mock_2` a click on every beat), plus sound-card inputs where there is hardware. With
    /// `project_id`, also the client device attached to that project (`client:<name>`, host
    /// `client`), while it is attached.
    #[oai(path = "/api/audio/devices", method = "get", operation_id = "list_devices")]
    async fn list(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// A project whose attached client device to list too.
        project_id: Query<Option<Uuid>>,
    ) -> Answer<Json<Vec<DeviceView>>, { codes::READ }> {
        let mut devices = ctx.audio.input_devices();
        let mut offsets = std::collections::HashMap::new();
        if let Some(project) = project_id.0 {
            let project = ctx.project(&caller, project.into(), Need::Read).await?;
            let status = ctx.audio.status(project.id).await.map_err(ApiError::from)?;
            if let Some(client) = status.client_device {
                devices.push(client.input_device(status.sample_rate));
            }
            offsets = ctx.store.device_offsets(project.id).await?;
        }
        let mut views = Vec::new();
        for device in devices {
            let offset_us = match audiolab_domain::device::is_client_device(&device.device_id) {
                // A client device's offset is its user's.
                true => ctx.store.client_latency(caller.actor.id, &device.device_id).await?.map_or(0, |l| l.offset_us),
                false => offsets.get(&device.device_id).copied().unwrap_or(0),
            };
            views.push(DeviceView { offset_ms: offset_us as f64 / 1000.0, ..DeviceView::from(device) });
        }
        Ok(Json(views))
    }

    /// Set a device's latency offset in a project
    ///
    /// Added to the timeline position of every take recorded from the device in this project
    /// from now on, to correct what its reported latency misses; other projects are not
    /// touched. Editors and the owner set it. Each take stores the offset it got, so takes can
    /// be re-aligned later. (A client device's offset is its user's: see its latency route.)
    #[oai(
        path = "/api/projects/:project_id/devices/:device_id/offset",
        method = "put",
        operation_id = "set_project_device_offset"
    )]
    async fn set_offset(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Project id.
        project_id: Path<Uuid>,
        /// Device id (a virtual device or a sound-card input).
        device_id: Path<String>,
        body: Json<DeviceOffset>,
    ) -> Answer<Json<DeviceOffsetSet>, { codes::CHANGE_BODY }> {
        let project = ctx.project(&caller, project_id.0.into(), Need::Change).await?;
        if !ctx.has_input_device(&device_id.0) {
            return Err(ApiError::not_found("device").into());
        }
        if !body.offset_ms.is_finite() {
            return Err(ApiError::unprocessable("offset_ms: must be a number of milliseconds").into());
        }
        let offset_us = (body.offset_ms * 1000.0).round() as i64;
        ctx.store.set_device_offset_us(project.id, &device_id.0, offset_us).await?;
        let offset_ms = offset_us as f64 / 1000.0;
        Ok(Json(DeviceOffsetSet { success: true, project_id: project.id.0, device_id: device_id.0, offset_ms }))
    }

    /// Store a client device's round trip
    ///
    /// The caller's client device `client:<name>` (a browser or app attached to a project's
    /// socket) places every take from now on with this round trip, unless it gives one when it
    /// attaches. Store what the loopback calibration measured, or the browser's estimate on
    /// headphones, nudged by hand if need be; `source` says which. `offset_ms` is the caller's
    /// own manual correction for the device: no one else's takes move with it.
    #[oai(path = "/api/audio/devices/:device_id/latency", method = "put", operation_id = "set_client_latency")]
    async fn set_latency(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// A client device id, `client:<name>`.
        #[oai(validator(pattern = r"^client:[A-Za-z0-9_.-]{1,40}$"))]
        device_id: Path<String>,
        body: Json<ClientLatencyRequest>,
    ) -> Answer<Json<ClientLatencyView>, { codes::SIGNED | codes::BODY }> {
        let latency_us = (body.latency_ms * 1000.0).round() as i64;
        let offset_us = body.offset_ms.map(|ms| (ms * 1000.0).round() as i64);
        let stored = ctx
            .store
            .set_client_latency(caller.actor.id, &device_id.0, latency_us, body.source.into(), offset_us)
            .await?;
        Ok(Json(stored.into()))
    }

    /// A client device's stored round trip
    ///
    /// 404 until one is stored for the caller's device.
    #[oai(path = "/api/audio/devices/:device_id/latency", method = "get", operation_id = "get_client_latency")]
    async fn get_latency(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// A client device id, `client:<name>`.
        #[oai(validator(pattern = r"^client:[A-Za-z0-9_.-]{1,40}$"))]
        device_id: Path<String>,
    ) -> Answer<Json<ClientLatencyView>, { codes::SIGNED | codes::LOOKUP }> {
        match ctx.store.client_latency(caller.actor.id, &device_id.0).await? {
            Some(latency) => Ok(Json(latency.into())),
            None => Err(ApiError::not_found("round trip of this client device").into()),
        }
    }
}
