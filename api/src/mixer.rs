//! `/api/audio/tracks/{id}/volume|pan|mute|solo`: the live mixer, persisted.

use crate::Tag;
use crate::auth::Caller;
use crate::context::ApiContext;
use crate::error::ApiResult;
use crate::error::{Answer, codes};
use audiolab_domain::track::TrackPatch;
use audiolab_domain::user::Need;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

pub struct MixerApi;

/// The new fader value.
#[derive(Debug, Object)]
pub struct VolumeChanged {
    /// Always true.
    pub success: bool,
    /// The track changed.
    pub track_id: Uuid,
    /// Linear factor, 0.0–2.0.
    pub volume: f64,
}

/// The new pan position.
#[derive(Debug, Object)]
pub struct PanChanged {
    /// Always true.
    pub success: bool,
    /// The track changed.
    pub track_id: Uuid,
    /// −1.0 (left) to 1.0 (right).
    pub pan: f64,
}

/// The new mute state.
#[derive(Debug, Object)]
pub struct MuteChanged {
    /// Always true.
    pub success: bool,
    /// The track changed.
    pub track_id: Uuid,
    /// Whether the track is muted.
    pub muted: bool,
}

/// The new solo state.
#[derive(Debug, Object)]
pub struct SoloChanged {
    /// Always true.
    pub success: bool,
    /// The track changed.
    pub track_id: Uuid,
    /// Whether the track is soloed.
    pub soloed: bool,
}

impl MixerApi {
    async fn change(
        ctx: &ApiContext,
        caller: &Caller,
        id: Uuid,
        patch: TrackPatch,
    ) -> ApiResult<audiolab_domain::track::Track> {
        let (track, _) = ctx.track(caller, id.into(), Need::Change).await?;
        Ok(ctx.changes(caller).update_track(&track, &patch).await?.value)
    }
}

#[OpenApi(tag = "Tag::Audio")]
impl MixerApi {
    /// Set a track's volume
    ///
    /// Persisted, and applied to a playing engine within one block.
    #[oai(path = "/api/audio/tracks/:id/volume", method = "post", operation_id = "set_track_volume")]
    async fn volume(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Track id.
        id: Path<Uuid>,
        /// Linear factor, 0.0–2.0.
        volume: Query<f64>,
    ) -> Answer<Json<VolumeChanged>, { codes::CHANGE }> {
        let track =
            Self::change(&ctx, &caller, id.0, TrackPatch { volume: Some(volume.0), ..Default::default() }).await?;
        Ok(Json(VolumeChanged { success: true, track_id: track.id.0, volume: track.volume.get() }))
    }

    /// Set a track's pan
    ///
    /// Persisted, and applied to a playing engine within one block.
    #[oai(path = "/api/audio/tracks/:id/pan", method = "post", operation_id = "set_track_pan")]
    async fn pan(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Track id.
        id: Path<Uuid>,
        /// −1.0 (left) to 1.0 (right).
        pan: Query<f64>,
    ) -> Answer<Json<PanChanged>, { codes::CHANGE }> {
        let track = Self::change(&ctx, &caller, id.0, TrackPatch { pan: Some(pan.0), ..Default::default() }).await?;
        Ok(Json(PanChanged { success: true, track_id: track.id.0, pan: track.pan.get() }))
    }

    /// Mute or unmute a track
    #[oai(path = "/api/audio/tracks/:id/mute", method = "post", operation_id = "set_track_mute")]
    async fn mute(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Track id.
        id: Path<Uuid>,
        /// Whether to mute.
        muted: Query<bool>,
    ) -> Answer<Json<MuteChanged>, { codes::CHANGE }> {
        let track =
            Self::change(&ctx, &caller, id.0, TrackPatch { muted: Some(muted.0), ..Default::default() }).await?;
        Ok(Json(MuteChanged { success: true, track_id: track.id.0, muted: track.muted }))
    }

    /// Solo or unsolo a track
    #[oai(path = "/api/audio/tracks/:id/solo", method = "post", operation_id = "set_track_solo")]
    async fn solo(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Track id.
        id: Path<Uuid>,
        /// Whether to solo.
        soloed: Query<bool>,
    ) -> Answer<Json<SoloChanged>, { codes::CHANGE }> {
        let track =
            Self::change(&ctx, &caller, id.0, TrackPatch { soloed: Some(soloed.0), ..Default::default() }).await?;
        Ok(Json(SoloChanged { success: true, track_id: track.id.0, soloed: track.soloed }))
    }
}
