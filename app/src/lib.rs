//! AudioLab's use cases: every change to a project is one function here, and one revisioned
//! command (§13): it reads the rows it changes, lets the domain compute what they become,
//! and commits them in one transaction with the project's next revision, a history entry and
//! the outbox rows for what follows ([`outbox`]); then it delivers those at once. REST
//! handlers, socket commands and the internal node route are thin adapters onto these
//! functions, so no entry point can store a change and forget to announce it. Callers check
//! first, through [`access`], that the caller may reach the rows they name.

pub mod access;
pub mod accounts;
pub mod hashing;
pub mod members;
pub mod outbox;

use audiolab_domain::clip::{Clip, ClipPatch};
use audiolab_domain::comp::{self, Comp};
use audiolab_domain::history::{Change, ChangeKind, HistoryEntry, Row, RowChange};
use audiolab_domain::loop_region::{LoopRegion, LoopRegionPatch};
use audiolab_domain::project::{Project, ProjectPatch};
use audiolab_domain::recording::Take;
use audiolab_domain::track::{NewTrack, Track, TrackIndex, TrackPatch};
use audiolab_domain::user::Actor;
use audiolab_domain::{Frames, ProjectId, SampleRate, TakeId, TrackId, now};
use audiolab_store::{Page, Store, StoreError, StoreResult};
use outbox::Courier;

/// A change computed from fresh reads: the value to answer with and the rows to commit.
type Build<'f, T> = std::pin::Pin<Box<dyn Future<Output = StoreResult<(T, Option<Change>)>> + Send + 'f>>;

/// How often a change is computed again when a row changed between reading and committing.
const ATTEMPTS: usize = 5;

/// The store, the courier that delivers what follows a change, and who makes the changes.
#[derive(Clone, Copy)]
pub struct Changes<'a> {
    pub store: &'a Store,
    pub courier: &'a Courier,
    /// Who makes the changes; `None` for the deployment's own (a take's audio written).
    pub actor: Option<&'a Actor>,
}

/// A committed change: the entry it made (its revision) and what it left behind.
#[derive(Debug, Clone)]
pub struct Committed<T> {
    pub value: T,
    /// The entry, or `None` when the change changed nothing (no revision taken).
    pub entry: Option<HistoryEntry>,
}

impl<'a> Changes<'a> {
    pub fn new(courier: &'a Courier, actor: Option<&'a Actor>) -> Self {
        Self { store: courier.store(), courier, actor }
    }

    /// Commits the change `build` computes from fresh reads, computing it again when a row
    /// changed meanwhile; then delivers its announcement and jobs. `build` answers `None`
    /// when there is nothing to change.
    async fn commit<'f, T, F>(&self, project: ProjectId, mut build: F) -> StoreResult<(T, Option<HistoryEntry>)>
    where
        F: FnMut() -> Build<'f, T>,
    {
        let mut last = None;
        for _ in 0..ATTEMPTS {
            let (value, change) = build().await?;
            let Some(change) = change.filter(|c| c.rows.iter().any(|r| !r.is_empty())) else {
                return Ok((value, None));
            };
            match self.store.commit(project, self.actor, &change).await {
                Ok((entry, outgoing)) => {
                    self.courier.deliver(outgoing).await;
                    return Ok((value, Some(entry)));
                }
                Err(StoreError::Stale(reason)) => last = Some(reason),
                Err(other) => return Err(other),
            }
        }
        Err(StoreError::Conflict(last.unwrap_or_else(|| "the project is being changed concurrently; try again".into())))
    }

    /// Deletes a project with everything in it. Its takes stop and its engine unloads first, so
    /// nothing writes into a deleted project; its sockets close saying why. Not history: the
    /// history goes with it.
    /// Errors: `NotFound` when it is already gone.
    pub async fn delete_project(&self, project: &Project) -> StoreResult<()> {
        self.courier.audio().project_deleted(project.id).await;
        if !self.store.delete_project(project.id).await? {
            return Err(StoreError::NotFound("project"));
        }
        Ok(())
    }

    /// Changes a project's settings (name, description, tempo, time signature, bit depth); a
    /// loaded engine's metronome follows the tempo.
    pub async fn update_project(&self, project: ProjectId, patch: &ProjectPatch) -> StoreResult<Committed<Project>> {
        let (value, entry) = self
            .commit(project, || {
                Box::pin(async move {
                    let before = self.store.get_project(project).await?.ok_or(StoreError::NotFound("project"))?;
                    let mut after = before.clone();
                    after.apply(patch, now())?;
                    let summary = format!("Changed the project's {}", fields_of(&before, &after));
                    let rows = vec![RowChange::updated(Row::Project(before), Row::Project(after.clone()))];
                    Ok((after, Some(Change::new(ChangeKind::ProjectUpdated, summary, rows))))
                })
            })
            .await?;
        Ok(Committed { value, entry })
    }

    pub async fn create_track(&self, project: ProjectId, new: NewTrack) -> StoreResult<Committed<Track>> {
        let requested = new.track_index.map(TrackIndex::new).transpose()?;
        let new = &new;
        let (value, entry) = self
            .commit(project, || {
                Box::pin(async move {
                    let used: Vec<TrackIndex> =
                        self.store.list_tracks(project, Page::ALL).await?.items.iter().map(|t| t.index).collect();
                    let full = || {
                        StoreError::Conflict(format!(
                            "the project already has the maximum of {} tracks",
                            audiolab_domain::track::MAX_TRACKS
                        ))
                    };
                    // A slot taken between this read and the commit makes the commit stale: read again.
                    let index = match requested {
                        Some(_) if used.len() >= usize::from(audiolab_domain::track::MAX_TRACKS) => return Err(full()),
                        Some(index) if used.contains(&index) => {
                            return Err(StoreError::Conflict(format!(
                                "track_index {} is already used in this project",
                                index.get()
                            )));
                        }
                        Some(index) => index,
                        None => TrackIndex::first_free(&used).ok_or_else(full)?,
                    };
                    let track = Track::create(project, new.clone(), index, now())?;
                    let summary = format!("Added track “{}”", track.name);
                    let change = Change::new(
                        ChangeKind::TrackCreated,
                        summary,
                        vec![RowChange::created(Row::Track(track.clone()))],
                    );
                    Ok((track, Some(change)))
                })
            })
            .await?;
        Ok(Committed { value, entry })
    }

    /// Changes a track (its mixer, its name, its input…): heard from the engine's next block,
    /// shown to every client; a new `track_index` moves it to another mixer slot.
    pub async fn update_track(&self, track: &Track, patch: &TrackPatch) -> StoreResult<Committed<Track>> {
        let (value, entry) = self
            .commit(track.project_id, || {
                Box::pin(async move {
                    let before = self.store.get_track(track.id).await?.ok_or(StoreError::NotFound("track"))?;
                    let mut after = before.clone();
                    after.apply(patch, now())?;
                    let summary = format!("Changed track “{}”: {}", after.name, fields_of(&before, &after));
                    let rows = vec![RowChange::updated(Row::Track(before), Row::Track(after.clone()))];
                    Ok((after, Some(Change::new(ChangeKind::TrackUpdated, summary, rows))))
                })
            })
            .await?;
        Ok(Committed { value, entry })
    }

    /// Deletes a track with its clips (kept in the history, so undo brings them back).
    pub async fn delete_track(&self, track: &Track) -> StoreResult<Committed<()>> {
        let (value, entry) = self
            .commit(track.project_id, || {
                Box::pin(async move {
                    let current = self.store.get_track(track.id).await?.ok_or(StoreError::NotFound("track"))?;
                    let mut rows = self.clips_of(&current).await?;
                    let summary = format!("Deleted track “{}”", current.name);
                    rows.push(RowChange::deleted(Row::Track(current)));
                    Ok(((), Some(Change::new(ChangeKind::TrackDeleted, summary, rows))))
                })
            })
            .await?;
        Ok(Committed { value, entry })
    }

    /// Places a new clip (an import landing, `processing` until its job ends) and hands its
    /// job to the workers, in one change.
    pub async fn import_clip(&self, clip: &Clip, job: &audiolab_domain::job::Job) -> StoreResult<Committed<()>> {
        let (value, entry) = self
            .commit(clip.project_id, || {
                Box::pin(async move {
                    let summary = format!("Imported “{}”", clip.name);
                    let change = Change::new(
                        ChangeKind::ClipImported,
                        summary,
                        vec![RowChange::created(Row::Clip(clip.clone()))],
                    )
                    .with_job(job.clone());
                    Ok(((), Some(change)))
                })
            })
            .await?;
        Ok(Committed { value, entry })
    }

    /// Moves, trims, re-gains or fades a clip; a playing engine follows at its next block.
    pub async fn update_clip(&self, clip: &Clip, patch: &ClipPatch, rate: SampleRate) -> StoreResult<Committed<Clip>> {
        let (value, entry) = self
            .commit(clip.project_id, || {
                Box::pin(async move {
                    let before = self.store.get_clip(clip.id).await?.ok_or(StoreError::NotFound("clip"))?;
                    let mut after = before.clone();
                    after.apply(patch, rate, now())?;
                    let summary = format!("Changed clip “{}”: {}", after.name, fields_of(&before, &after));
                    let moved = (after.track_id, after.start, after.length, after.source_offset)
                        != (before.track_id, before.start, before.length, before.source_offset);
                    let mut rows = Vec::new();
                    if let (Some(take), true) = (before.take_id, moved) {
                        if after.track_id != before.track_id {
                            // On another track it is a clip of no take: that track's comp knows nothing of it.
                            (after.take_id, after.active) = (None, true);
                        }
                        let same_track = (after.track_id == before.track_id).then(|| after.clone());
                        let (comp_rows, plays) = self.retake(before.track_id, take, before.id, same_track).await?;
                        if after.track_id == before.track_id {
                            after.active = plays.unwrap_or(after.active);
                        }
                        rows = comp_rows;
                    }
                    rows.insert(0, RowChange::updated(Row::Clip(before), Row::Clip(after.clone())));
                    Ok((after, Some(Change::new(ChangeKind::ClipUpdated, summary, rows))))
                })
            })
            .await?;
        Ok(Committed { value, entry })
    }

    /// Deletes a clip; its audio stays, so undo brings it back whole.
    pub async fn delete_clip(&self, clip: &Clip) -> StoreResult<Committed<()>> {
        let (value, entry) = self
            .commit(clip.project_id, || {
                Box::pin(async move {
                    let current = self.store.get_clip(clip.id).await?.ok_or(StoreError::NotFound("clip"))?;
                    let summary = format!("Deleted clip “{}”", current.name);
                    let mut rows = match current.take_id {
                        Some(take) => self.retake(current.track_id, take, current.id, None).await?.0,
                        None => Vec::new(),
                    };
                    rows.insert(0, RowChange::deleted(Row::Clip(current)));
                    Ok(((), Some(Change::new(ChangeKind::ClipDeleted, summary, rows))))
                })
            })
            .await?;
        Ok(Committed { value, entry })
    }

    /// The comp after one clip of `take` on `track_id` changed (`edited`: the clip as it now is
    /// on that track, or `None` when it left it): the take plays where its clips now are, the
    /// newest other take where they were. Returns the rows of the track and of the other take
    /// clips whose `active` follows, and whether the edited clip plays (when a comp decides).
    async fn retake(
        &self,
        track_id: TrackId,
        take: TakeId,
        clip: audiolab_domain::ClipId,
        edited: Option<Clip>,
    ) -> StoreResult<(Vec<RowChange>, Option<bool>)> {
        let track = self.store.get_track(track_id).await?.ok_or(StoreError::NotFound("track"))?;
        let lanes = self.store.list_clips(track_id, Page::ALL).await?.items;
        let mut comp = comp::current(&track, &lanes);
        if !comp.is_active() {
            return Ok((Vec::new(), None));
        }
        let others: Vec<Clip> = lanes.into_iter().filter(|c| c.id != clip).collect();
        let after: Vec<Clip> = others.iter().cloned().chain(edited).collect();
        comp.remove_take(take, &after);
        for part in after.iter().filter(|c| c.take_id == Some(take)) {
            comp.select(take, part.start, part.end());
        }
        let plays = comp.plays(take);
        Ok((comp::rows(&track, comp, &others, now()), Some(plays)))
    }

    /// Cuts a clip in two at timeline frame `at` (§14): both parts play as the clip did.
    pub async fn split_clip(&self, clip: &Clip, at: Frames) -> StoreResult<Committed<(Clip, Clip)>> {
        let (value, entry) = self
            .commit(clip.project_id, || {
                Box::pin(async move {
                    let before = self.store.get_clip(clip.id).await?.ok_or(StoreError::NotFound("clip"))?;
                    audio_written(&before)?;
                    let (first, second) = before.split(at, now())?;
                    let summary = format!("Split clip “{}”", before.name);
                    let rows = vec![
                        RowChange::updated(Row::Clip(before), Row::Clip(first.clone())),
                        RowChange::created(Row::Clip(second.clone())),
                    ];
                    Ok(((first, second), Some(Change::new(ChangeKind::ClipSplit, summary, rows))))
                })
            })
            .await?;
        Ok(Committed { value, entry })
    }

    /// A copy of a clip at timeline frame `start` of the same track (§14).
    pub async fn duplicate_clip(&self, clip: &Clip, start: Frames) -> StoreResult<Committed<Clip>> {
        let (value, entry) = self
            .commit(clip.project_id, || {
                Box::pin(async move {
                    let source = self.store.get_clip(clip.id).await?.ok_or(StoreError::NotFound("clip"))?;
                    audio_written(&source)?;
                    let copy = source.duplicate(start, now())?;
                    let summary = format!("Duplicated clip “{}”", source.name);
                    let rows = vec![RowChange::created(Row::Clip(copy.clone()))];
                    Ok((copy, Some(Change::new(ChangeKind::ClipDuplicated, summary, rows))))
                })
            })
            .await?;
        Ok(Committed { value, entry })
    }

    /// Deletes a take (§14): its clips go (their audio stays, so undo brings them back) and the
    /// comp no longer plays it; what played around it plays on.
    pub async fn delete_take(&self, take: &Take, project: ProjectId) -> StoreResult<Committed<()>> {
        let (value, entry) = self
            .commit(project, || {
                Box::pin(async move {
                    let track = self.store.get_track(take.track_id).await?.ok_or(StoreError::NotFound("take"))?;
                    let lanes = self.store.list_clips(take.track_id, Page::ALL).await?.items;
                    let (gone, kept): (Vec<Clip>, Vec<Clip>) =
                        lanes.iter().cloned().partition(|c| c.take_id == Some(take.id));
                    let name = gone.first().map_or_else(|| "a take".to_owned(), |c| format!("“{}”", c.name));
                    if gone.is_empty() && !track.comp.plays(take.id) {
                        return Err(StoreError::NotFound("take"));
                    }
                    if gone.iter().any(|c| c.status == audiolab_domain::clip::ClipStatus::Processing) {
                        return Err(StoreError::Conflict(
                            "the take's audio is still being written; delete it once it is ready".into(),
                        ));
                    }
                    let mut comp = comp::current(&track, &lanes);
                    comp.remove_take(take.id, &kept);
                    let mut rows: Vec<RowChange> = gone.into_iter().map(|c| RowChange::deleted(Row::Clip(c))).collect();
                    rows.extend(comp::rows(&track, comp, &kept, now()));
                    let summary = format!("Deleted {name}");
                    Ok(((), Some(Change::new(ChangeKind::TakeDeleted, summary, rows))))
                })
            })
            .await?;
        Ok(Committed { value, entry })
    }

    /// Makes `take` what its track plays over the take's whole range (§14: the comp there) —
    /// all of its clips, if it was split.
    pub async fn activate_take(&self, take: &Take, project: ProjectId) -> StoreResult<Committed<()>> {
        let clips = self.store.list_clips(take.track_id, Page::ALL).await?.items;
        let parts: Vec<&Clip> = clips.iter().filter(|c| c.take_id == Some(take.id)).collect();
        let (Some(start), Some(end)) = (parts.iter().map(|c| c.start).min(), parts.iter().map(|c| c.end()).max())
        else {
            return Err(StoreError::NotFound("clip"));
        };
        let summary = format!("Chose {}", parts[0].name);
        self.change_comp(project, take.track_id, ChangeKind::TakeActivated, summary, |comp, _| {
            comp.select(take.id, start, end);
            Ok(())
        })
        .await
    }

    /// A swipe (§14): `take` plays `[start, end)` of its track's timeline.
    /// `NotFound` for a take that is not (or no longer) one of the track's.
    pub async fn select_in_comp(
        &self,
        project: ProjectId,
        track: TrackId,
        take: TakeId,
        start: Frames,
        end: Frames,
    ) -> StoreResult<Committed<Comp>> {
        if end <= start || start.get() < 0 {
            return Err(StoreError::Invalid(audiolab_domain::ValidationError::new(
                "end",
                "must be after start, both from 0",
            )));
        }
        let summary = "Comped a take".to_owned();
        let committed = self
            .change_comp(project, track, ChangeKind::CompChanged, summary, |comp, takes| {
                // Another track's take, or a deleted one (its journal row stays, nothing to play).
                if !takes.contains(&take) {
                    return Err(StoreError::NotFound("take"));
                }
                comp.select(take, start, end);
                Ok(())
            })
            .await?;
        self.comp_of(track, committed.entry).await
    }

    /// Gives a track a whole comp (`PUT`), checked against its takes.
    pub async fn set_comp(&self, project: ProjectId, track: TrackId, comp: Comp) -> StoreResult<Committed<Comp>> {
        let summary = "Edited the comp".to_owned();
        let committed = self
            .change_comp(project, track, ChangeKind::CompChanged, summary, |current, takes| {
                comp.validate(takes)?;
                *current = comp.clone();
                Ok(())
            })
            .await?;
        self.comp_of(track, committed.entry).await
    }

    async fn comp_of(&self, track: TrackId, entry: Option<HistoryEntry>) -> StoreResult<Committed<Comp>> {
        let track = self.store.get_track(track).await?.ok_or(StoreError::NotFound("track"))?;
        Ok(Committed { value: track.comp, entry })
    }

    /// One edit of a track's comp, with the takes it may name: the track and the take clips
    /// whose `active` follows, in one revisioned change.
    async fn change_comp(
        &self,
        project: ProjectId,
        track_id: TrackId,
        kind: ChangeKind,
        summary: String,
        edit: impl Fn(&mut Comp, &[TakeId]) -> StoreResult<()> + Sync,
    ) -> StoreResult<Committed<()>> {
        let (value, entry) = self
            .commit(project, || {
                let (edit, summary) = (&edit, summary.clone());
                Box::pin(async move {
                    let track = self.store.get_track(track_id).await?;
                    let track = track.filter(|t| t.project_id == project).ok_or(StoreError::NotFound("track"))?;
                    let lanes = self.store.list_clips(track_id, Page::ALL).await?.items;
                    let takes: Vec<TakeId> = lanes.iter().filter_map(|c| c.take_id).collect();
                    let mut comp = comp::current(&track, &lanes);
                    edit(&mut comp, &takes)?;
                    let rows = comp::rows(&track, comp, &lanes, now());
                    Ok(((), Some(Change::new(kind, summary, rows))))
                })
            })
            .await?;
        Ok(Committed { value, entry })
    }

    /// Stores a new loop region; created enabled, it becomes the project's one enabled loop.
    pub async fn create_loop(&self, region: &LoopRegion) -> StoreResult<Committed<()>> {
        let (value, entry) = self
            .commit(region.project_id, || {
                Box::pin(async move {
                    let mut rows = if region.enabled { self.disable_other_loops(region).await? } else { Vec::new() };
                    rows.push(RowChange::created(Row::LoopRegion(region.clone())));
                    let summary = format!("Added loop “{}”", region.name);
                    Ok(((), Some(Change::new(ChangeKind::LoopCreated, summary, rows))))
                })
            })
            .await?;
        Ok(Committed { value, entry })
    }

    /// Edits a loop region (range, repeats, enabled); the engine loops the new range.
    pub async fn update_loop(
        &self,
        region: &LoopRegion,
        patch: &LoopRegionPatch,
        rate: SampleRate,
    ) -> StoreResult<Committed<LoopRegion>> {
        let (value, entry) = self
            .commit(region.project_id, || {
                Box::pin(async move {
                    let before =
                        self.store.get_loop_region(region.id).await?.ok_or(StoreError::NotFound("loop region"))?;
                    let mut after = before.clone();
                    after.apply(patch, rate, now())?;
                    let mut rows = if after.enabled && !before.enabled {
                        self.disable_other_loops(&after).await?
                    } else {
                        Vec::new()
                    };
                    let summary = format!("Changed loop “{}”: {}", after.name, fields_of(&before, &after));
                    rows.push(RowChange::updated(Row::LoopRegion(before), Row::LoopRegion(after.clone())));
                    Ok((after, Some(Change::new(ChangeKind::LoopUpdated, summary, rows))))
                })
            })
            .await?;
        Ok(Committed { value, entry })
    }

    /// Makes `region` the project's one enabled loop, or disables looping with `None` (the
    /// transport's loop toggles). Returns the enabled region.
    /// Errors: `NotFound` when `region` is not a loop region of `project`.
    pub async fn enable_loop(
        &self,
        project: ProjectId,
        region: Option<audiolab_domain::LoopRegionId>,
    ) -> StoreResult<Committed<Option<LoopRegion>>> {
        let (value, entry) = self
            .commit(project, || {
                Box::pin(async move {
                    let regions = self.store.list_loop_regions(project, Page::ALL).await?;
                    let target = match region {
                        Some(id) => Some(
                            regions.iter().find(|r| r.id == id).cloned().ok_or(StoreError::NotFound("loop region"))?,
                        ),
                        None => None,
                    };
                    let at = now();
                    let rows = regions
                        .iter()
                        .filter(|r| r.enabled != (Some(r.id) == region))
                        .map(|before| {
                            let mut after = before.clone();
                            after.enabled = Some(before.id) == region;
                            after.updated_at = at;
                            RowChange::updated(Row::LoopRegion(before.clone()), Row::LoopRegion(after))
                        })
                        // Disabling first: the database allows one enabled loop at any moment.
                        .collect::<Vec<_>>();
                    let (mut off, on): (Vec<_>, Vec<_>) = rows
                        .into_iter()
                        .partition(|r| matches!(&r.after, Some(Row::LoopRegion(after)) if !after.enabled));
                    off.extend(on);
                    let (kind, summary) = match &target {
                        Some(r) => (ChangeKind::LoopEnabled, format!("Turned loop “{}” on", r.name)),
                        None => (ChangeKind::LoopDisabled, "Turned looping off".to_owned()),
                    };
                    let enabled = target.map(|mut r| {
                        r.enabled = true;
                        r
                    });
                    Ok((enabled, Some(Change::new(kind, summary, off))))
                })
            })
            .await?;
        Ok(Committed { value, entry })
    }

    /// The rows that disable every enabled loop of the project other than `region`.
    async fn disable_other_loops(&self, region: &LoopRegion) -> StoreResult<Vec<RowChange>> {
        let at = now();
        Ok(self
            .store
            .list_loop_regions(region.project_id, Page::ALL)
            .await?
            .into_iter()
            .filter(|r| r.enabled && r.id != region.id)
            .map(|before| {
                let mut after = before.clone();
                after.enabled = false;
                after.updated_at = at;
                RowChange::updated(Row::LoopRegion(before), Row::LoopRegion(after))
            })
            .collect())
    }

    pub async fn delete_loop(&self, region: &LoopRegion) -> StoreResult<Committed<()>> {
        let (value, entry) = self
            .commit(region.project_id, || {
                Box::pin(async move {
                    let current =
                        self.store.get_loop_region(region.id).await?.ok_or(StoreError::NotFound("loop region"))?;
                    let summary = format!("Deleted loop “{}”", current.name);
                    let rows = vec![RowChange::deleted(Row::LoopRegion(current))];
                    Ok(((), Some(Change::new(ChangeKind::LoopDeleted, summary, rows))))
                })
            })
            .await?;
        Ok(Committed { value, entry })
    }

    /// Undoes the actor's latest change of the project not undone yet, as a new revision.
    /// Errors: `Conflict` with the reason when there is nothing to undo, or when a later change
    /// by someone else touched the same object or field.
    pub async fn undo(&self, project: ProjectId) -> StoreResult<HistoryEntry> {
        let actor = self.actor.ok_or_else(|| StoreError::Conflict("only a user's changes can be undone".into()))?;
        self.revert(project, actor, ChangeKind::Undo).await
    }

    /// Redoes the actor's latest undo, unless they changed something since.
    /// Errors: as [`Changes::undo`].
    pub async fn redo(&self, project: ProjectId) -> StoreResult<HistoryEntry> {
        let actor = self.actor.ok_or_else(|| StoreError::Conflict("only a user's changes can be redone".into()))?;
        self.revert(project, actor, ChangeKind::Redo).await
    }

    /// Commits the change that reverts the actor's latest change (`Undo`) or latest undo
    /// (`Redo`).
    async fn revert(&self, project: ProjectId, actor: &Actor, kind: ChangeKind) -> StoreResult<HistoryEntry> {
        let what = if kind == ChangeKind::Redo { "redo" } else { "undo" };
        let ((), entry) = self
            .commit(project, || {
                Box::pin(async move {
                    let target = match kind {
                        ChangeKind::Redo => self.store.redo_target(project, actor.id).await?,
                        _ => self.store.undo_target(project, actor.id).await?,
                    };
                    let target = target.ok_or_else(|| StoreError::Conflict(format!("there is nothing to {what}")))?;
                    let later = self
                        .store
                        .history_since(project, target.revision, audiolab_domain::history::KEPT_ENTRIES)
                        .await?;
                    if let Some(blocker) = later.iter().find(|entry| entry.blocks_undo_of(&target)) {
                        let who = blocker.actor.as_ref().map_or("someone", |a| a.username.as_str());
                        return Err(StoreError::Conflict(format!(
                            "cannot {what} “{}”: {who} changed the same thing since (revision {})",
                            target.summary, blocker.revision
                        )));
                    }
                    let at = now();
                    let mut rows = Vec::with_capacity(target.rows.len());
                    for row in target.rows.iter().rev() {
                        let current = self.current_row(row).await?;
                        let reverted = row.revert(current.as_ref(), at).map_err(|reason| {
                            StoreError::Conflict(format!("cannot {what} “{}”: {reason}", target.summary))
                        })?;
                        // A track that goes takes its clips with it: as rows of this change, so
                        // undoing it brings them back too.
                        if let (Some(Row::Track(track)), None) = (&reverted.before, &reverted.after) {
                            let clips = self.clips_of(track).await?;
                            let gone: Vec<_> = rows.iter().map(RowChange::key).collect();
                            rows.extend(clips.into_iter().filter(|clip| !gone.contains(&clip.key())));
                        }
                        rows.push(reverted);
                    }
                    let (summary, redoes) = match kind {
                        ChangeKind::Redo => {
                            (format!("Redid: {}", target.summary.trim_start_matches("Undid: ")), target.undoes)
                        }
                        _ => (format!("Undid: {}", target.summary.trim_start_matches("Redid: ")), None),
                    };
                    let mut change = Change::new(kind, summary, rows);
                    change.undoes = Some(target.revision);
                    change.redoes = redoes;
                    Ok(((), Some(change)))
                })
            })
            .await?;
        entry.ok_or_else(|| StoreError::Conflict(format!("there is nothing to {what}")))
    }

    /// The deletions of a track's clips, for a change that deletes the track.
    async fn clips_of(&self, track: &Track) -> StoreResult<Vec<RowChange>> {
        Ok(self
            .store
            .project_clips(track.project_id)
            .await?
            .into_iter()
            .filter(|c| c.track_id == track.id)
            .map(|c| RowChange::deleted(Row::Clip(c)))
            .collect())
    }

    /// The row a history change names, as it is now.
    async fn current_row(&self, change: &RowChange) -> StoreResult<Option<Row>> {
        use audiolab_domain::transport::ModelItem;
        let key = change.key();
        Ok(match key.item {
            ModelItem::Project => self.store.get_project(key.id.into()).await?.map(Row::Project),
            ModelItem::Track => self.store.get_track(key.id.into()).await?.map(Row::Track),
            ModelItem::Clip => self.store.get_clip(key.id.into()).await?.map(Row::Clip),
            ModelItem::LoopRegion => self.store.get_loop_region(key.id.into()).await?.map(Row::LoopRegion),
        })
    }
}

/// The fields that differ between two versions of a row, in words ("volume, pan").
fn fields_of<T: Clone>(before: &T, after: &T) -> String
where
    Row: From<T>,
{
    let change = RowChange::updated(Row::from(before.clone()), Row::from(after.clone()));
    let fields: Vec<String> = change.fields().unwrap_or_default().into_iter().collect();
    if fields.is_empty() { "nothing".into() } else { fields.join(", ") }
}

/// Only a clip whose audio is written can be cut or copied (`Conflict` otherwise).
fn audio_written(clip: &Clip) -> StoreResult<()> {
    match clip.status {
        audiolab_domain::clip::ClipStatus::Ready => Ok(()),
        _ => Err(StoreError::Conflict(
            "the clip's audio is not ready yet (or failed): it cannot be cut or copied".into(),
        )),
    }
}
