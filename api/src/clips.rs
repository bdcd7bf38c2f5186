//! `/api/clips` and `/api/tracks/{id}/clips`: list, read, edit and delete clips.

use crate::Tag;
use crate::auth::Caller;
use crate::context::ApiContext;
use crate::error::{Answer, codes};
use crate::error::{ApiError, ApiResult};
use crate::pagination::{page, paged_list};
use crate::projects::Deleted;
use audiolab_domain::clip::{Clip, ClipPatch};
use audiolab_domain::user::Need;
use audiolab_domain::{ClipId, SampleRate};
use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

pub struct ClipsApi;

/// Where to cut a clip.
#[derive(Debug, Object)]
pub struct SplitClip {
    /// The timeline position of the cut, in seconds, strictly inside the clip.
    #[oai(validator(minimum(value = "0")))]
    pub at: f64,
}

/// A clip cut in two.
#[derive(Debug, Object)]
pub struct SplitClipResult {
    /// The clip, now ending at the cut.
    pub first: ClipView,
    /// The new clip from the cut on, on the same audio.
    pub second: ClipView,
    /// The project revision the cut made (§13).
    pub revision: i64,
}

/// Where to place a copy.
#[derive(Debug, Object)]
pub struct DuplicateClip {
    /// The copy's timeline position in seconds.
    #[oai(validator(minimum(value = "0")))]
    pub start: f64,
}

/// A clip: a region of source audio placed on a track.
#[derive(Debug, Object)]
pub struct ClipView {
    /// Clip id.
    pub id: Uuid,
    /// The track the clip is on.
    pub track_id: Uuid,
    /// The project.
    pub project_id: Uuid,
    /// The take the clip was recorded as, if it was recorded.
    #[oai(nullable)]
    pub take_id: Option<Uuid>,
    /// Display name.
    pub name: String,
    // Described on its type (states.rs).
    pub status: crate::states::ClipState,
    /// Why processing failed, when it did.
    #[oai(nullable)]
    pub error: Option<String>,
    /// Timeline position in seconds.
    pub start: f64,
    /// Timeline position in frames at the project rate.
    pub start_frame: i64,
    /// Seconds trimmed from the head of the source.
    pub offset: f64,
    /// Frames trimmed from the head of the source.
    pub offset_frames: i64,
    /// Seconds of source that play.
    pub length: f64,
    /// Frames of source that play.
    pub length_frames: i64,
    /// Clip gain in dB, −60 to +20.
    pub gain_db: f64,
    /// Fade-in length in seconds.
    pub fade_in: f64,
    /// Fade-out length in seconds.
    pub fade_out: f64,
    /// The source's original sample rate in Hz (audio is stored at the project rate).
    pub source_sample_rate: u32,
    /// Channels of the source audio.
    pub channels: u16,
    /// Integrated loudness (LUFS) once analysed.
    #[oai(nullable)]
    pub loudness_lufs: Option<f64>,
    /// Whether the clip plays; older takes are kept but inactive.
    pub active: bool,
    /// When the clip was created.
    pub created_at: DateTime<Utc>,
    /// When the clip was last changed.
    pub updated_at: DateTime<Utc>,
    /// The project revision this request's change made (§13); null when it changed nothing
    /// or only read.
    #[oai(nullable)]
    pub revision: Option<i64>,
}

impl ClipView {
    /// The view as a change's response: with the revision the change made.
    pub(crate) fn with_revision(mut self, entry: Option<&audiolab_domain::history::HistoryEntry>) -> Self {
        self.revision = entry.map(|e| e.revision);
        self
    }

    pub(crate) fn new(c: Clip, rate: SampleRate) -> Self {
        Self {
            id: c.id.0,
            track_id: c.track_id.0,
            project_id: c.project_id.0,
            take_id: c.take_id.map(|t| t.0),
            name: c.name,
            status: c.status.into(),
            error: c.error,
            start: c.start.to_seconds(rate),
            start_frame: c.start.get(),
            offset: c.source_offset.to_seconds(rate),
            offset_frames: c.source_offset.get(),
            length: c.length.to_seconds(rate),
            length_frames: c.length.get(),
            gain_db: c.gain.0,
            fade_in: c.fade_in.to_seconds(rate),
            fade_out: c.fade_out.to_seconds(rate),
            source_sample_rate: c.source_sample_rate,
            channels: c.channels,
            loudness_lufs: c.loudness_lufs,
            active: c.active,
            created_at: c.created_at,
            updated_at: c.updated_at,
            revision: None,
        }
    }
}

/// An edit of a clip; absent fields stay as they are. Times are seconds.
#[derive(Debug, Object)]
pub struct UpdateClip {
    /// Display name.
    #[oai(
        nullable,
        validator(
            max_length = 200,
            pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
        )
    )]
    pub name: Option<crate::states::Text>,
    /// Move the clip to another track of the same project.
    #[oai(nullable)]
    pub track_id: Option<Uuid>,
    /// New timeline position.
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "864000")))]
    pub start: Option<f64>,
    /// Trim the head: seconds of source skipped.
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "864000")))]
    pub offset: Option<f64>,
    /// Trim the tail: seconds of source that play. `offset + length` must fit the source.
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "864000")))]
    pub length: Option<f64>,
    /// Clip gain in dB, −60 to +20.
    #[oai(nullable, validator(minimum(value = "-60"), maximum(value = "20")))]
    pub gain_db: Option<f64>,
    /// Fade-in length; fade in + fade out must fit the clip.
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "864000")))]
    pub fade_in: Option<f64>,
    /// Fade-out length.
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "864000")))]
    pub fade_out: Option<f64>,
}

paged_list!(
    /// A page of clips in timeline order.
    ClipList of ClipView
);

impl ClipsApi {
    async fn owned_clip(ctx: &ApiContext, caller: &Caller, id: ClipId, need: Need) -> ApiResult<(Clip, SampleRate)> {
        let clip = ctx.store.get_clip(id).await?.ok_or_else(|| ApiError::not_found("clip"))?;
        let project = ctx.project_as(caller, clip.project_id, need, "clip").await?;
        Ok((clip, project.sample_rate))
    }
}

/// A duplicated clip.
#[derive(poem_openapi::ApiResponse)]
pub enum DuplicatedClip {
    /// The copy.
    #[oai(status = 201)]
    Created(Json<ClipView>),
}

#[OpenApi(tag = "Tag::Clips")]
impl ClipsApi {
    /// Import an audio file as a clip
    ///
    /// Upload up to `max_upload_bytes` (413 above). The file is decoded, resampled to the
    /// project rate and placed at `start` by an import job; a file that cannot be decoded fails
    /// the job and the clip with the reason.
    #[oai(path = "/api/tracks/:id/clips", method = "post", operation_id = "import_clip")]
    async fn import(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Track id.
        id: Path<Uuid>,
        /// Raw uploads: timeline position in seconds (default 0).
        #[oai(validator(minimum(value = "0"), maximum(value = "864000")))]
        start: Query<Option<f64>>,
        /// Raw uploads: clip name.
        name: Query<Option<String>>,
        /// Raw uploads: the file's name, whose extension hints at the format.
        filename: Query<Option<String>>,
        body: crate::imports::UploadBody,
    ) -> Answer<
        crate::imports::ImportResponse,
        { codes::CHANGE | codes::BAD_REQUEST | codes::TOO_LARGE | codes::UNSUPPORTED },
    > {
        Ok(crate::imports::import(&ctx, &caller, id.0, start.0, name.0, filename.0, body).await?)
    }

    /// List a track's clips
    ///
    /// In timeline order, including inactive takes.
    #[oai(path = "/api/tracks/:id/clips", method = "get", operation_id = "list_track_clips")]
    async fn list(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Track id.
        id: Path<Uuid>,
        /// Page size, 1–500 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<i64>>,
        /// Items to skip (default 0).
        #[oai(validator(minimum(value = "0")))]
        offset: Query<Option<i64>>,
    ) -> Answer<Json<ClipList>, { codes::READ }> {
        let (track, project) = ctx.track(&caller, id.0.into(), Need::Read).await?;
        let page = page(limit.0, offset.0)?;
        let clips = ctx.store.list_clips(track.id, page).await?;
        Ok(Json(ClipList::new(clips, page, |c| ClipView::new(c, project.sample_rate))))
    }

    /// A clip's waveform overview
    ///
    /// audiowaveform `.dat` version 2 (16-bit min/max per pixel and channel) of the clip's
    /// source audio, at the zoom level nearest `samples_per_pixel` (256, 1024 or 4096; default
    /// 256). 409 while the clip is still processing.
    #[oai(path = "/api/clips/:id/peaks", method = "get", operation_id = "get_clip_peaks")]
    async fn peaks(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Clip id.
        id: Path<Uuid>,
        /// Frames per pixel wanted.
        #[oai(validator(minimum(value = "1"), maximum(value = "1048576")))]
        samples_per_pixel: Query<Option<u32>>,
    ) -> Answer<poem_openapi::payload::Binary<Vec<u8>>, { codes::READ | codes::CONFLICT }> {
        let (clip, _) = Self::owned_clip(&ctx, &caller, id.0.into(), Need::Read).await?;
        let Some(key) = clip.peaks_key else {
            return Err(ApiError::conflict(format!(
                "clip {} has no waveform yet (status {})",
                clip.id,
                clip.status.as_str()
            ))
            .into());
        };
        let wanted = samples_per_pixel.0.unwrap_or(256).max(1);
        let zoom = audiolab_dsp::peaks::ZOOM_LEVELS
            .into_iter()
            .min_by_key(|z| ((f64::from(*z) / f64::from(wanted)).ln().abs() * 1e6) as u64)
            .unwrap_or(256);
        let path =
            ctx.storage.fetch(&format!("{key}/{zoom}.dat")).await.map_err(|_| ApiError::not_found("waveform"))?;
        let bytes = tokio::fs::read(&path).await.map_err(|_| ApiError::not_found("waveform"))?;
        Ok(poem_openapi::payload::Binary(bytes))
    }

    /// Download a clip's audio
    ///
    /// The clip's whole source audio (32-bit float WAV at the project rate; a take's clip plays
    /// the stretch from `offset` for `length`). Supports `Range`. 409 while processing.
    #[oai(path = "/api/clips/:id/audio", method = "get", operation_id = "download_clip_audio")]
    async fn audio(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Clip id.
        id: Path<Uuid>,
        /// Byte range, e.g. `bytes=0-1023`.
        #[oai(name = "Range")]
        range: poem_openapi::param::Header<Option<String>>,
    ) -> Answer<
        poem_openapi::payload::Response<poem_openapi::payload::Binary<poem::Body>>,
        { codes::READ | codes::CONFLICT | codes::RANGE },
    > {
        let (clip, _) = Self::owned_clip(&ctx, &caller, id.0.into(), Need::Read).await?;
        let Some(key) = clip.audio_key.filter(|_| clip.status == audiolab_domain::clip::ClipStatus::Ready) else {
            return Err(ApiError::conflict(format!(
                "clip {} has no audio yet (status {})",
                clip.id,
                clip.status.as_str()
            ))
            .into());
        };
        let name = format!("clip-{}.wav", clip.id);
        Ok(crate::download::serve(&ctx.storage, &key, "audio/wav", &name, range.0.as_deref()).await?)
    }

    /// Get a clip
    #[oai(path = "/api/clips/:id", method = "get", operation_id = "get_clip")]
    async fn get(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Clip id.
        id: Path<Uuid>,
    ) -> Answer<Json<ClipView>, { codes::READ }> {
        let (clip, rate) = Self::owned_clip(&ctx, &caller, id.0.into(), Need::Read).await?;
        Ok(Json(ClipView::new(clip, rate)))
    }

    /// Edit a clip
    ///
    /// Move, trim, set gain and fades, rename, or move to another track of the project.
    #[oai(path = "/api/clips/:id", method = "patch", operation_id = "update_clip")]
    async fn update(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Clip id.
        id: Path<Uuid>,
        body: Json<UpdateClip>,
    ) -> Answer<Json<ClipView>, { codes::CHANGE_BODY }> {
        let (clip, rate) = Self::owned_clip(&ctx, &caller, id.0.into(), Need::Change).await?;
        let b = body.0;
        if let Some(track_id) = b.track_id {
            let (target, _) = ctx.track(&caller, track_id.into(), Need::Change).await?;
            if target.project_id != clip.project_id {
                return Err(ApiError::unprocessable("track_id: the target track belongs to another project").into());
            }
        }
        let patch = ClipPatch {
            name: b.name.map(String::from),
            track_id: b.track_id.map(Into::into),
            start: b.start,
            offset: b.offset,
            length: b.length,
            gain_db: b.gain_db,
            fade_in: b.fade_in,
            fade_out: b.fade_out,
        };
        let updated = ctx.changes(&caller).update_clip(&clip, &patch, rate).await?;
        Ok(Json(ClipView::new(updated.value, rate).with_revision(updated.entry.as_ref())))
    }

    /// Split a clip
    ///
    /// Cuts the clip in two at `at`: the clip ends there and a new clip on the same audio
    /// starts there; the fade-in stays on the first, the fade-out on the second. A clip whose
    /// audio is still being written cannot be cut (409).
    #[oai(path = "/api/clips/:id/split", method = "post", operation_id = "split_clip")]
    async fn split(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Clip id.
        id: Path<Uuid>,
        body: Json<SplitClip>,
    ) -> Answer<Json<SplitClipResult>, { codes::CHANGE_BODY }> {
        let (clip, rate) = Self::owned_clip(&ctx, &caller, id.0.into(), Need::Change).await?;
        let at = audiolab_domain::Frames::from_seconds("at", body.0.at, rate)?;
        let split = ctx.changes(&caller).split_clip(&clip, at).await?;
        let (first, second) = split.value;
        Ok(Json(SplitClipResult {
            first: ClipView::new(first, rate),
            second: ClipView::new(second, rate),
            revision: split.entry.map_or(0, |e| e.revision),
        }))
    }

    /// Duplicate a clip
    ///
    /// A copy on the same track at `start`, on the same audio. A copy of a take's clip belongs
    /// to no take: it plays where the track's comp does not.
    #[oai(path = "/api/clips/:id/duplicate", method = "post", operation_id = "duplicate_clip")]
    async fn duplicate(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Clip id.
        id: Path<Uuid>,
        body: Json<DuplicateClip>,
    ) -> Answer<DuplicatedClip, { codes::CHANGE_BODY }> {
        let (clip, rate) = Self::owned_clip(&ctx, &caller, id.0.into(), Need::Change).await?;
        let start = audiolab_domain::Frames::from_seconds("start", body.0.start, rate)?;
        let copy = ctx.changes(&caller).duplicate_clip(&clip, start).await?;
        Ok(DuplicatedClip::Created(Json(ClipView::new(copy.value, rate).with_revision(copy.entry.as_ref()))))
    }

    /// Delete a clip
    #[oai(path = "/api/clips/:id", method = "delete", operation_id = "delete_clip")]
    async fn delete(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Clip id.
        id: Path<Uuid>,
    ) -> Answer<Deleted, { codes::CHANGE }> {
        let (clip, _) = Self::owned_clip(&ctx, &caller, id.0.into(), Need::Change).await?;
        ctx.changes(&caller).delete_clip(&clip).await?;
        Ok(Deleted::Deleted)
    }
}
