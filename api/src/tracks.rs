//! `/api/tracks`: create, read, update and delete tracks.

use crate::Tag;
use crate::auth::Caller;
use crate::context::ApiContext;
use crate::error::{Answer, codes};
use crate::pagination::paged_list;
use crate::projects::Deleted;
use audiolab_domain::track::{NewTrack, Track, TrackPatch};
use audiolab_domain::user::Need;
use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use uuid::Uuid;

pub struct TracksApi;

/// A track.
#[derive(Debug, Object)]
pub struct TrackView {
    /// Track id.
    pub id: Uuid,
    /// The project the track belongs to.
    pub project_id: Uuid,
    /// Display name.
    pub name: String,
    /// Slot in the project, 0–31, unique within the project.
    pub track_index: u8,
    /// Fader as a linear factor, 0.0–2.0 (1.0 = unity).
    pub volume: f64,
    /// Stereo position, −1.0 (left) to 1.0 (right); constant-power law, −3 dB at centre.
    pub pan: f64,
    /// Muted tracks are silent.
    pub muted: bool,
    /// When any track is soloed, only soloed, unmuted tracks sound.
    pub soloed: bool,
    /// Display colour, `#rrggbb`.
    #[oai(nullable)]
    pub color: Option<String>,
    /// Armed for recording.
    pub record_enabled: bool,
    /// The device the track records from.
    #[oai(nullable)]
    pub input_device_id: Option<String>,
    /// Whether the input is heard while armed.
    pub monitoring: bool,
    /// When the track was created.
    pub created_at: DateTime<Utc>,
    /// When the track was last changed.
    pub updated_at: DateTime<Utc>,
    /// The project revision this request's change made (§13); null when it changed nothing
    /// or only read.
    #[oai(nullable)]
    pub revision: Option<i64>,
}

impl TrackView {
    /// The view as a change's response: with the revision the change made.
    pub(crate) fn with_revision(mut self, entry: Option<&audiolab_domain::history::HistoryEntry>) -> Self {
        self.revision = entry.map(|e| e.revision);
        self
    }
}

impl From<Track> for TrackView {
    fn from(t: Track) -> Self {
        Self {
            id: t.id.0,
            project_id: t.project_id.0,
            name: t.name,
            track_index: t.index.get(),
            volume: t.volume.get(),
            pan: t.pan.get(),
            muted: t.muted,
            soloed: t.soloed,
            color: t.color,
            record_enabled: t.record_enabled,
            input_device_id: t.input_device_id,
            monitoring: t.monitoring,
            created_at: t.created_at,
            updated_at: t.updated_at,
            revision: None,
        }
    }
}

/// A new track.
#[derive(Debug, Object)]
pub struct CreateTrack {
    /// The project to add the track to.
    pub project_id: Uuid,
    /// Display name, 1–100 characters.
    #[oai(validator(
        max_length = 100,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    ))]
    pub name: crate::states::Text,
    /// Slot 0–31; the lowest free slot when absent. 409 if the slot is taken or the project already has 32 tracks.
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "31")))]
    pub track_index: Option<i64>,
    /// Fader, 0.0–2.0 (default 1.0).
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "2")))]
    pub volume: Option<f64>,
    /// Pan, −1.0–1.0 (default 0.0).
    #[oai(nullable, validator(minimum(value = "-1"), maximum(value = "1")))]
    pub pan: Option<f64>,
    /// Default false.
    #[oai(nullable)]
    pub muted: Option<bool>,
    /// Default false.
    #[oai(nullable)]
    pub soloed: Option<bool>,
    /// Display colour, `#rrggbb`.
    #[oai(nullable, validator(pattern = r"^(#[0-9A-Fa-f]{6})?$"))]
    pub color: Option<crate::states::Text>,
    /// Device to record from, e.g. `mock_0`.
    #[oai(nullable, validator(max_length = 200, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"))]
    pub input_device_id: Option<crate::states::Text>,
    /// Hear the input while armed (default false).
    #[oai(nullable)]
    pub monitoring: Option<bool>,
}

/// Changes to a track; absent fields stay as they are. An empty `color` or `input_device_id` clears it.
#[derive(Debug, Object)]
pub struct UpdateTrack {
    /// Display name.
    #[oai(
        nullable,
        validator(
            max_length = 100,
            pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
        )
    )]
    pub name: Option<crate::states::Text>,
    /// Move to slot 0–31 (409 if taken).
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "31")))]
    pub track_index: Option<i64>,
    /// Fader, 0.0–2.0.
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "2")))]
    pub volume: Option<f64>,
    /// Pan, −1.0–1.0.
    #[oai(nullable, validator(minimum(value = "-1"), maximum(value = "1")))]
    pub pan: Option<f64>,
    /// Mute.
    #[oai(nullable)]
    pub muted: Option<bool>,
    /// Solo.
    #[oai(nullable)]
    pub soloed: Option<bool>,
    /// Display colour, `#rrggbb`.
    #[oai(nullable, validator(pattern = r"^(#[0-9A-Fa-f]{6})?$"))]
    pub color: Option<crate::states::Text>,
    /// Arm for recording.
    #[oai(nullable)]
    pub record_enabled: Option<bool>,
    /// Device to record from.
    #[oai(nullable, validator(max_length = 200, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"))]
    pub input_device_id: Option<crate::states::Text>,
    /// Hear the input while armed.
    #[oai(nullable)]
    pub monitoring: Option<bool>,
}

paged_list!(
    /// A page of tracks in index order.
    TrackList of TrackView
);

#[derive(ApiResponse)]
pub enum TrackCreated {
    /// The track was created.
    #[oai(status = 201)]
    Created(Json<TrackView>),
}

#[OpenApi(tag = "Tag::Tracks")]
impl TracksApi {
    /// Create a track
    #[oai(path = "/api/tracks", method = "post", operation_id = "create_track")]
    async fn create(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        body: Json<CreateTrack>,
    ) -> Answer<TrackCreated, { codes::CHANGE_BODY }> {
        let body = body.0;
        let project = ctx.project(&caller, body.project_id.into(), Need::Change).await?;
        let new = NewTrack {
            name: body.name.into(),
            track_index: body.track_index,
            volume: body.volume,
            pan: body.pan,
            muted: body.muted,
            soloed: body.soloed,
            color: body.color.map(String::from),
            input_device_id: body.input_device_id.map(String::from),
            monitoring: body.monitoring,
        };
        let created = ctx.changes(&caller).create_track(project.id, new).await?;
        Ok(TrackCreated::Created(Json(TrackView::from(created.value).with_revision(created.entry.as_ref()))))
    }

    /// Get a track
    #[oai(path = "/api/tracks/:id", method = "get", operation_id = "get_track")]
    async fn get(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Track id.
        id: Path<Uuid>,
    ) -> Answer<Json<TrackView>, { codes::READ }> {
        Ok(Json(ctx.track(&caller, id.0.into(), Need::Read).await?.0.into()))
    }

    /// Update a track
    ///
    /// Changes only the fields given.
    #[oai(path = "/api/tracks/:id", method = "patch", operation_id = "update_track")]
    async fn update(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Track id.
        id: Path<Uuid>,
        body: Json<UpdateTrack>,
    ) -> Answer<Json<TrackView>, { codes::CHANGE_BODY }> {
        let (track, _) = ctx.track(&caller, id.0.into(), Need::Change).await?;
        let b = body.0;
        let patch = TrackPatch {
            name: b.name.map(String::from),
            track_index: b.track_index,
            volume: b.volume,
            pan: b.pan,
            muted: b.muted,
            soloed: b.soloed,
            color: b.color.map(String::from),
            record_enabled: b.record_enabled,
            input_device_id: b.input_device_id.map(String::from),
            monitoring: b.monitoring,
        };
        let updated = ctx.changes(&caller).update_track(&track, &patch).await?;
        Ok(Json(TrackView::from(updated.value).with_revision(updated.entry.as_ref())))
    }

    /// Delete a track
    ///
    /// Deletes the track and its clips.
    #[oai(path = "/api/tracks/:id", method = "delete", operation_id = "delete_track")]
    async fn delete(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Track id.
        id: Path<Uuid>,
    ) -> Answer<Deleted, { codes::CHANGE }> {
        let (track, _) = ctx.track(&caller, id.0.into(), Need::Change).await?;
        ctx.changes(&caller).delete_track(&track).await?;
        Ok(Deleted::Deleted)
    }
}
