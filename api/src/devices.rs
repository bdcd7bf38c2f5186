//! `GET /api/audio/devices`: the input devices tracks can record from.

use crate::context::ApiContext;
use crate::{Tag, error::ApiResult};
use audiolab_domain::SampleRate;
use audiolab_domain::device::{InputDevice, virtual_devices};
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

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
    /// `virtual` for AudioLab's own devices, else the audio host (ALSA, CoreAudio, WASAPI…).
    pub host_api: String,
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
        }
    }
}

#[OpenApi(tag = "Tag::Audio")]
impl DevicesApi {
    /// List input devices
    ///
    /// The virtual devices every node offers (`mock_0` mono sine, `mock_1` stereo tones,
    /// `mock_2` a click on every beat), plus sound-card inputs where there is hardware.
    #[oai(path = "/api/audio/devices", method = "get", operation_id = "list_devices")]
    async fn list(&self, _ctx: Data<&ApiContext>) -> ApiResult<Json<Vec<DeviceView>>> {
        Ok(Json(virtual_devices(SampleRate::DEFAULT.hz()).into_iter().map(DeviceView::from).collect()))
    }
}
