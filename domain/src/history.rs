//! Project history (§13): every change to a project is a list of row changes, each the row as
//! it was and as it became. That one shape is what the store commits, what engines and clients
//! are told, what the history lists, and what undo and redo invert. Pure: the rules of undo
//! (which fields a change set, when a later change conflicts, what reverting leaves) live here.

use crate::clip::Clip;
use crate::loop_region::LoopRegion;
use crate::project::Project;
use crate::track::Track;
use crate::transport::{ModelAction, ModelChange, ModelItem};
use crate::user::Actor;
use crate::{JobId, ProjectId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use uuid::Uuid;

/// History keeps at least this many entries of a project (older ones may be pruned).
pub const KEPT_ENTRIES: i64 = 1_000;

/// Fields that record when a row changed, not what it is: never a conflict, never undone.
const BOOKKEEPING: [&str; 2] = ["created_at", "updated_at"];

/// One row of a project, as history keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "item", content = "row", rename_all = "snake_case")]
pub enum Row {
    Project(Project),
    Track(Track),
    Clip(Clip),
    LoopRegion(LoopRegion),
}

impl From<Project> for Row {
    fn from(project: Project) -> Self {
        Row::Project(project)
    }
}

impl From<Track> for Row {
    fn from(track: Track) -> Self {
        Row::Track(track)
    }
}

impl From<Clip> for Row {
    fn from(clip: Clip) -> Self {
        Row::Clip(clip)
    }
}

impl From<LoopRegion> for Row {
    fn from(region: LoopRegion) -> Self {
        Row::LoopRegion(region)
    }
}

/// Which row: its kind and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RowKey {
    pub item: ModelItem,
    pub id: Uuid,
}

impl Row {
    pub fn key(&self) -> RowKey {
        let (item, id) = match self {
            Row::Project(p) => (ModelItem::Project, p.id.0),
            Row::Track(t) => (ModelItem::Track, t.id.0),
            Row::Clip(c) => (ModelItem::Clip, c.id.0),
            Row::LoopRegion(r) => (ModelItem::LoopRegion, r.id.0),
        };
        RowKey { item, id }
    }

    /// The row's fields as a JSON object (its serialised form).
    fn fields(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(mut tagged)) => match tagged.remove("row") {
                Some(Value::Object(fields)) => fields,
                _ => Map::new(),
            },
            _ => Map::new(),
        }
    }

    /// The same kind of row with `fields`.
    fn with_fields(&self, fields: Map<String, Value>) -> Result<Row, String> {
        let item = serde_json::to_value(self.key().item).map_err(|e| e.to_string())?;
        let tagged = serde_json::json!({ "item": item, "row": Value::Object(fields) });
        serde_json::from_value(tagged).map_err(|e| format!("the row cannot be restored: {e}"))
    }

    fn set_updated_at(&mut self, at: DateTime<Utc>) {
        match self {
            Row::Project(p) => p.updated_at = at,
            Row::Track(t) => t.updated_at = at,
            Row::Clip(c) => c.updated_at = at,
            Row::LoopRegion(r) => r.updated_at = at,
        }
    }
}

/// One row as it was (`None`: it did not exist) and as it became (`None`: deleted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowChange {
    pub before: Option<Row>,
    pub after: Option<Row>,
}

impl RowChange {
    pub fn created(row: Row) -> Self {
        Self { before: None, after: Some(row) }
    }

    pub fn updated(before: Row, after: Row) -> Self {
        Self { before: Some(before), after: Some(after) }
    }

    pub fn deleted(row: Row) -> Self {
        Self { before: Some(row), after: None }
    }

    pub fn key(&self) -> RowKey {
        match (&self.after, &self.before) {
            (Some(row), _) | (None, Some(row)) => row.key(),
            (None, None) => RowKey { item: ModelItem::Project, id: Uuid::nil() },
        }
    }

    pub fn action(&self) -> ModelAction {
        match (&self.before, &self.after) {
            (None, _) => ModelAction::Created,
            (Some(_), Some(_)) => ModelAction::Updated,
            (Some(_), None) => ModelAction::Deleted,
        }
    }

    /// The fields this change set, or `None` when it made or removed the whole row.
    pub fn fields(&self) -> Option<BTreeSet<String>> {
        let (Some(before), Some(after)) = (&self.before, &self.after) else { return None };
        let (before, after) = (before.fields(), after.fields());
        let changed = after
            .iter()
            .filter(|(name, value)| !BOOKKEEPING.contains(&name.as_str()) && before.get(*name) != Some(*value))
            .map(|(name, _)| name.clone())
            .collect();
        Some(changed)
    }

    /// Whether this change changes nothing (an update that sets every field to its value).
    pub fn is_empty(&self) -> bool {
        self.fields().is_some_and(|fields| fields.is_empty())
    }

    /// Whether `self` and `other` touched the same row in a way that matters to undo: one of
    /// them made or removed it, or both set one same field.
    pub fn touches(&self, other: &RowChange) -> bool {
        if self.key() != other.key() {
            return false;
        }
        match (self.fields(), other.fields()) {
            (Some(mine), Some(theirs)) => mine.intersection(&theirs).next().is_some(),
            _ => true,
        }
    }

    /// The change that undoes `self`, given the row as it is now (`current`) and the time: a
    /// made row is removed, a removed row comes back, an edited row gets back the fields
    /// `self` set while every other field keeps its current value.
    ///
    /// Errors: the row is not in the state `self` left it in (removed since, or made again).
    pub fn revert(&self, current: Option<&Row>, at: DateTime<Utc>) -> Result<RowChange, String> {
        match (&self.before, &self.after, current) {
            (None, Some(_), Some(now)) => Ok(RowChange::deleted(now.clone())),
            (Some(old), None, None) => {
                let mut back = old.clone();
                back.set_updated_at(at);
                Ok(RowChange::created(back))
            }
            (Some(old), Some(_), Some(now)) => {
                let mut fields = now.fields();
                let old_fields = old.fields();
                for name in self.fields().unwrap_or_default() {
                    if let Some(value) = old_fields.get(&name) {
                        fields.insert(name, value.clone());
                    }
                }
                let mut reverted = now.with_fields(fields)?;
                reverted.set_updated_at(at);
                Ok(RowChange::updated(now.clone(), reverted))
            }
            (Some(_), None, Some(_)) => Err(format!("the {} exists again", self.key().item.noun())),
            (_, Some(_), None) => Err(format!("the {} has been deleted since", self.key().item.noun())),
            (None, None, _) => Err("the change is empty".into()),
        }
    }

    /// How this change is announced to engines and clients.
    pub fn announcement(&self, actor: Option<&Actor>) -> ModelChange {
        let key = self.key();
        let mut change = ModelChange::new(key.item, key.id, self.action(), actor.cloned());
        change.fields = self.fields().map(|f| f.into_iter().collect()).unwrap_or_default();
        change
    }
}

/// What a history entry did, for a client to show and filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
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

impl ChangeKind {
    pub const ALL: [ChangeKind; 22] = [
        Self::ProjectUpdated,
        Self::TrackCreated,
        Self::TrackUpdated,
        Self::TrackDeleted,
        Self::ClipImported,
        Self::ClipUpdated,
        Self::ClipDeleted,
        Self::ClipSplit,
        Self::ClipDuplicated,
        Self::ClipReady,
        Self::TakeActivated,
        Self::TakesRecorded,
        Self::TakeDeleted,
        Self::CompChanged,
        Self::CompFlattened,
        Self::LoopCreated,
        Self::LoopUpdated,
        Self::LoopDeleted,
        Self::LoopEnabled,
        Self::LoopDisabled,
        Self::Undo,
        Self::Redo,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ProjectUpdated => "project_updated",
            Self::TrackCreated => "track_created",
            Self::TrackUpdated => "track_updated",
            Self::TrackDeleted => "track_deleted",
            Self::ClipImported => "clip_imported",
            Self::ClipUpdated => "clip_updated",
            Self::ClipDeleted => "clip_deleted",
            Self::ClipSplit => "clip_split",
            Self::ClipDuplicated => "clip_duplicated",
            Self::TakeDeleted => "take_deleted",
            Self::ClipReady => "clip_ready",
            Self::TakeActivated => "take_activated",
            Self::TakesRecorded => "takes_recorded",
            Self::CompChanged => "comp_changed",
            Self::CompFlattened => "comp_flattened",
            Self::LoopCreated => "loop_created",
            Self::LoopUpdated => "loop_updated",
            Self::LoopDeleted => "loop_deleted",
            Self::LoopEnabled => "loop_enabled",
            Self::LoopDisabled => "loop_disabled",
            Self::Undo => "undo",
            Self::Redo => "redo",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// Changes the system makes on its own (a take's audio written) are not anyone's to undo.
    pub fn undoable(self) -> bool {
        !matches!(self, Self::ClipReady)
    }
}

/// A change about to be committed: what it is, said once, and its rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub kind: ChangeKind,
    pub summary: String,
    pub rows: Vec<RowChange>,
    /// For an undo or redo: the revision it undoes or redoes.
    pub undoes: Option<i64>,
    pub redoes: Option<i64>,
    /// Jobs the change queues: their rows are written with it, and pushed to the workers
    /// after it.
    pub jobs: Vec<crate::job::Job>,
    /// Takes the change records (written before its rows: a recording's clips name them).
    pub takes: Vec<crate::recording::Take>,
}

impl Change {
    pub fn new(kind: ChangeKind, summary: impl Into<String>, rows: Vec<RowChange>) -> Self {
        Self { kind, summary: summary.into(), rows, undoes: None, redoes: None, jobs: Vec::new(), takes: Vec::new() }
    }

    pub fn with_job(mut self, job: crate::job::Job) -> Self {
        self.jobs.push(job);
        self
    }
}

/// One entry of a project's history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    pub project_id: ProjectId,
    pub revision: i64,
    /// Who made it; `None` for the system's own changes.
    pub actor: Option<Actor>,
    pub at: DateTime<Utc>,
    pub kind: ChangeKind,
    pub summary: String,
    pub undoable: bool,
    /// The revision this entry undid (an undo) or redid (a redo).
    pub undoes: Option<i64>,
    pub redoes: Option<i64>,
    /// The revision of the undo (or, for an undo, the redo) that reverted this entry.
    pub undone_by: Option<i64>,
    pub rows: Vec<RowChange>,
}

impl HistoryEntry {
    /// Whether this entry stops its author's undo (or redo) of `target` (§13): a change by
    /// someone else (the system's own never conflict), still in effect (not undone, not an
    /// undo), made after what `target` did, that touched the same row or field.
    pub fn blocks_undo_of(&self, target: &HistoryEntry) -> bool {
        let someone_else = self.actor.as_ref().is_some_and(|a| target.actor.as_ref().is_none_or(|t| a.id != t.id));
        let in_effect = self.undone_by.is_none() && self.kind != ChangeKind::Undo;
        let after = self.original_revision() > target.original_revision();
        someone_else
            && in_effect
            && after
            && self.rows.iter().any(|mine| target.rows.iter().any(|theirs| mine.touches(theirs)))
    }

    /// When what this entry does was first done: a redo's (or an undo's) original change.
    fn original_revision(&self) -> i64 {
        match self.kind {
            ChangeKind::Redo => self.redoes.unwrap_or(self.revision),
            ChangeKind::Undo => self.undoes.unwrap_or(self.revision),
            _ => self.revision,
        }
    }

    /// How the entry is announced.
    pub fn announcement(&self) -> ProjectChange {
        ProjectChange {
            project_id: self.project_id,
            revision: self.revision,
            changes: self.rows.iter().map(|row| row.announcement(self.actor.as_ref())).collect(),
        }
    }
}

/// A committed change as engines and clients hear of it: which rows, at which revision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProjectChange {
    pub project_id: ProjectId,
    pub revision: i64,
    pub changes: Vec<ModelChange>,
}

/// What must follow a committed change, kept in the outbox until it has been delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Outgoing {
    /// Tell the engines and the clients of the project.
    Announce(ProjectChange),
    /// Hand a job (its row committed) to the workers; pushing it twice is harmless.
    PushJob { job_id: JobId },
    /// A right was taken away (§8): every process closes what relied on it.
    Revoke(crate::user::Revocation),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Pan, TrackId, Volume};

    fn track(volume: f64, pan: f64, name: &str) -> Track {
        let at = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        Track {
            id: TrackId(Uuid::from_u128(7)),
            project_id: ProjectId(Uuid::from_u128(1)),
            name: name.into(),
            index: crate::track::TrackIndex::new(2).unwrap(),
            volume: Volume::new(volume).unwrap(),
            pan: Pan::new(pan).unwrap(),
            muted: false,
            soloed: false,
            color: None,
            record_enabled: false,
            input_device_id: None,
            monitoring: false,
            comp: Default::default(),
            created_at: at,
            updated_at: at,
        }
    }

    #[test]
    fn an_update_names_the_fields_it_set_and_not_its_timestamps() {
        let mut after = track(0.5, 0.0, "Bass");
        after.updated_at = Utc::now();
        let change = RowChange::updated(Row::Track(track(1.0, 0.0, "Bass")), Row::Track(after));
        assert_eq!(change.fields().unwrap().into_iter().collect::<Vec<_>>(), vec!["volume".to_string()]);
    }

    #[test]
    fn reverting_an_edit_restores_its_fields_and_keeps_later_edits_to_others() {
        let edit = RowChange::updated(Row::Track(track(1.0, 0.0, "Bass")), Row::Track(track(0.5, 0.0, "Bass")));
        let now = Row::Track(track(0.5, -0.5, "Bass DI"));
        let undo = edit.revert(Some(&now), Utc::now()).unwrap();
        let Some(Row::Track(back)) = undo.after else { panic!("an update") };
        assert_eq!((back.volume.get(), back.pan.get(), back.name.as_str()), (1.0, -0.5, "Bass DI"));
    }

    #[test]
    fn edits_of_different_fields_do_not_touch_and_of_the_same_field_do() {
        let base = Row::Track(track(1.0, 0.0, "Bass"));
        let volume = RowChange::updated(base.clone(), Row::Track(track(0.5, 0.0, "Bass")));
        let pan = RowChange::updated(base.clone(), Row::Track(track(1.0, 0.3, "Bass")));
        let volume_again = RowChange::updated(base.clone(), Row::Track(track(0.2, 0.0, "Bass")));
        assert!(!volume.touches(&pan));
        assert!(volume.touches(&volume_again));
        assert!(volume.touches(&RowChange::deleted(base)));
    }

    #[test]
    fn a_deleted_row_comes_back_whole_and_a_created_one_goes() {
        let row = Row::Track(track(0.8, 0.1, "Keys"));
        let back = RowChange::deleted(row.clone()).revert(None, Utc::now()).unwrap();
        assert_eq!(back.action(), ModelAction::Created);
        assert_eq!(back.after.as_ref().map(Row::key), Some(row.key()));
        let gone = RowChange::created(row.clone()).revert(Some(&row), Utc::now()).unwrap();
        assert_eq!(gone.action(), ModelAction::Deleted);
        assert!(RowChange::created(row.clone()).revert(None, Utc::now()).is_err());
        assert!(RowChange::deleted(row.clone()).revert(Some(&row), Utc::now()).is_err());
    }
}
