//! A project's history (§13): the list of its revisioned changes, and undo and redo of the
//! caller's own. The rules (which change, which conflict) are in `app` and the domain.

use crate::auth::Caller;
use crate::context::ApiContext;
use crate::error::{Answer, codes};
use audiolab_domain::history::{ChangeKind, HistoryEntry};
use audiolab_domain::transport::{ModelAction, ModelItem};
use audiolab_domain::user::Need;
use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Enum, Object, OpenApi};
use uuid::Uuid;

pub struct HistoryApi;

/// What a history entry did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum ChangeKindName {
    ProjectUpdated,
    TrackCreated,
    TrackUpdated,
    TrackDeleted,
    ClipImported,
    ClipUpdated,
    ClipDeleted,
    ClipSplit,
    ClipDuplicated,
    ClipReady,
    TakeActivated,
    TakesRecorded,
    TakeDeleted,
    CompChanged,
    CompFlattened,
    LoopCreated,
    LoopUpdated,
    LoopDeleted,
    LoopEnabled,
    LoopDisabled,
    Undo,
    Redo,
}

impl From<ChangeKind> for ChangeKindName {
    fn from(kind: ChangeKind) -> Self {
        match kind {
            ChangeKind::ProjectUpdated => Self::ProjectUpdated,
            ChangeKind::TrackCreated => Self::TrackCreated,
            ChangeKind::TrackUpdated => Self::TrackUpdated,
            ChangeKind::TrackDeleted => Self::TrackDeleted,
            ChangeKind::ClipImported => Self::ClipImported,
            ChangeKind::ClipUpdated => Self::ClipUpdated,
            ChangeKind::ClipDeleted => Self::ClipDeleted,
            ChangeKind::ClipSplit => Self::ClipSplit,
            ChangeKind::ClipDuplicated => Self::ClipDuplicated,
            ChangeKind::TakeDeleted => Self::TakeDeleted,
            ChangeKind::ClipReady => Self::ClipReady,
            ChangeKind::TakeActivated => Self::TakeActivated,
            ChangeKind::TakesRecorded => Self::TakesRecorded,
            ChangeKind::CompChanged => Self::CompChanged,
            ChangeKind::CompFlattened => Self::CompFlattened,
            ChangeKind::LoopCreated => Self::LoopCreated,
            ChangeKind::LoopUpdated => Self::LoopUpdated,
            ChangeKind::LoopDeleted => Self::LoopDeleted,
            ChangeKind::LoopEnabled => Self::LoopEnabled,
            ChangeKind::LoopDisabled => Self::LoopDisabled,
            ChangeKind::Undo => Self::Undo,
            ChangeKind::Redo => Self::Redo,
        }
    }
}

/// Which kind of row a change touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum RowItem {
    Project,
    Track,
    Clip,
    LoopRegion,
}

impl From<ModelItem> for RowItem {
    fn from(item: ModelItem) -> Self {
        match item {
            ModelItem::Project => Self::Project,
            ModelItem::Track => Self::Track,
            ModelItem::Clip => Self::Clip,
            ModelItem::LoopRegion => Self::LoopRegion,
        }
    }
}

/// How a row changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum RowAction {
    Created,
    Updated,
    Deleted,
}

impl From<ModelAction> for RowAction {
    fn from(action: ModelAction) -> Self {
        match action {
            ModelAction::Created => Self::Created,
            ModelAction::Updated => Self::Updated,
            ModelAction::Deleted => Self::Deleted,
        }
    }
}

/// Who made a change.
#[derive(Debug, Object)]
pub struct ActorView {
    /// User id.
    pub id: Uuid,
    /// Their username.
    pub username: String,
}

/// One row a change touched.
#[derive(Debug, Object)]
pub struct RowChangeView {
    pub item: RowItem,
    /// The row's id.
    pub id: Uuid,
    pub action: RowAction,
    /// The fields an update set (empty when the row was created or deleted).
    pub fields: Vec<String>,
}

/// One revisioned change of a project.
#[derive(Debug, Object)]
pub struct HistoryEntryView {
    /// The project revision the change made (from 1, one per change).
    pub revision: i64,
    /// Who made it; null for the system's own changes (a take's audio written).
    #[oai(nullable)]
    pub actor: Option<ActorView>,
    /// When it was committed.
    pub at: DateTime<Utc>,
    pub kind: ChangeKindName,
    /// What it did, in words.
    pub summary: String,
    /// Whether its author can undo it.
    pub undoable: bool,
    /// The revision an undo (or a redo) reverted.
    #[oai(nullable)]
    pub undoes: Option<i64>,
    /// The revision a redo made again.
    #[oai(nullable)]
    pub redoes: Option<i64>,
    /// The revision that reverted this entry (an undo, or for an undo its redo).
    #[oai(nullable)]
    pub undone_by: Option<i64>,
    /// The rows it touched.
    pub changes: Vec<RowChangeView>,
}

impl From<HistoryEntry> for HistoryEntryView {
    fn from(entry: HistoryEntry) -> Self {
        let changes = entry
            .rows
            .iter()
            .map(|row| {
                let key = row.key();
                RowChangeView {
                    item: key.item.into(),
                    id: key.id,
                    action: row.action().into(),
                    fields: row.fields().map(|f| f.into_iter().collect()).unwrap_or_default(),
                }
            })
            .collect();
        Self {
            revision: entry.revision,
            actor: entry.actor.map(|a| ActorView { id: a.id.0, username: a.username }),
            at: entry.at,
            kind: entry.kind.into(),
            summary: entry.summary,
            undoable: entry.undoable,
            undoes: entry.undoes,
            redoes: entry.redoes,
            undone_by: entry.undone_by,
            changes,
        }
    }
}

/// A page of a project's history, newest first.
#[derive(Debug, Object)]
pub struct HistoryPage {
    /// The project's current revision.
    pub revision: i64,
    /// Entries, newest first.
    pub entries: Vec<HistoryEntryView>,
    /// Pass as `before` for the next (older) page; null on the last page.
    #[oai(nullable)]
    pub next_before: Option<i64>,
}

#[OpenApi(tag = "crate::Tag::Projects")]
impl HistoryApi {
    /// List a project's history
    ///
    /// Its revisioned changes, newest first: who, when, what. History keeps at least the last
    /// 1,000 entries.
    #[oai(path = "/api/projects/:id/history", method = "get", operation_id = "list_history")]
    async fn list(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Project id.
        id: Path<Uuid>,
        /// Entries per page, 1–500 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<i64>>,
        /// Only entries older than this revision (the previous page's `next_before`).
        #[oai(validator(minimum(value = "1")))]
        before: Query<Option<i64>>,
    ) -> Answer<Json<HistoryPage>, { codes::READ }> {
        let project = ctx.project(&caller, id.0.into(), Need::Read).await?;
        let limit = limit.0.unwrap_or(50);
        let revision = ctx.store.project_revision(project.id).await?;
        let entries = ctx.store.history(project.id, limit, before.0).await?;
        let next_before =
            entries.last().filter(|e| entries.len() as i64 == limit && e.revision > 1).map(|e| e.revision);
        let entries = entries.into_iter().map(HistoryEntryView::from).collect();
        Ok(Json(HistoryPage { revision, entries, next_before }))
    }

    /// Undo
    ///
    /// Undoes the caller's latest change of the project not undone yet, as a new revision
    /// whose entry names what it undid. 409 with the reason when there is nothing to undo, or
    /// when a later change by someone else touched the same object or field.
    #[oai(path = "/api/projects/:id/undo", method = "post", operation_id = "undo")]
    async fn undo(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Project id.
        id: Path<Uuid>,
    ) -> Answer<Json<HistoryEntryView>, { codes::CHANGE }> {
        let project = ctx.project(&caller, id.0.into(), Need::Change).await?;
        Ok(Json(ctx.changes(&caller).undo(project.id).await?.into()))
    }

    /// Redo
    ///
    /// Redoes the caller's latest undo; a new change by the caller since clears it. 409 as
    /// for undo.
    #[oai(path = "/api/projects/:id/redo", method = "post", operation_id = "redo")]
    async fn redo(
        &self,
        ctx: Data<&ApiContext>,
        caller: Caller,
        /// Project id.
        id: Path<Uuid>,
    ) -> Answer<Json<HistoryEntryView>, { codes::CHANGE }> {
        let project = ctx.project(&caller, id.0.into(), Need::Change).await?;
        Ok(Json(ctx.changes(&caller).redo(project.id).await?.into()))
    }
}
