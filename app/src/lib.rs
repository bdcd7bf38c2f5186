//! AudioLab's use cases: every change to a project is one function here — one store
//! operation (a transaction where several rows change), then its notifications through the
//! [`AudioControl`] port: the loaded engine, the project's sockets and, in cloud mode, the bus
//! to the other processes. REST handlers, socket commands and the internal node route are thin
//! adapters onto these functions, so no entry point can store a change and forget to announce
//! it. Callers check first, through [`access`], that the caller may reach the rows they name.

pub mod access;
pub mod accounts;
pub mod hashing;
pub mod members;

use audiolab_domain::clip::{Clip, ClipPatch};
use audiolab_domain::loop_region::{LoopRegion, LoopRegionPatch};
use audiolab_domain::project::Project;
use audiolab_domain::recording::Take;
use audiolab_domain::track::{NewTrack, Track, TrackPatch};
use audiolab_domain::transport::{AudioControl, ModelAction, ModelChange, ModelItem};
use audiolab_domain::user::Actor;
use audiolab_domain::{ProjectId, SampleRate, now};
use audiolab_store::{Store, StoreError, StoreResult};

/// The store, the port every change is announced on, and who is making the changes.
#[derive(Clone, Copy)]
pub struct Changes<'a> {
    pub store: &'a Store,
    pub audio: &'a dyn AudioControl,
    /// Who makes the changes; `None` for the deployment's own (a node acting for an API process).
    pub actor: Option<&'a Actor>,
}

impl<'a> Changes<'a> {
    pub fn new(store: &'a Store, audio: &'a dyn AudioControl, actor: Option<&'a Actor>) -> Self {
        Self { store, audio, actor }
    }

    async fn announce(&self, project: ProjectId, item: ModelItem, id: uuid::Uuid, action: ModelAction) {
        let change = ModelChange::new(item, id, action, self.actor.cloned());
        self.audio.project_changed(project, change).await;
    }

    /// Deletes a project with everything in it. Its takes stop and its engine unloads first, so
    /// nothing writes into a deleted project; its sockets close saying why.
    /// Errors: `NotFound` when it is already gone.
    pub async fn delete_project(&self, project: &Project) -> StoreResult<()> {
        self.audio.project_deleted(project.id).await;
        if !self.store.delete_project(project.id).await? {
            return Err(StoreError::NotFound("project"));
        }
        Ok(())
    }

    pub async fn create_track(&self, project: ProjectId, new: NewTrack) -> StoreResult<Track> {
        let track = self.store.create_track(project, new).await?;
        self.announce(project, ModelItem::Track, track.id.0, ModelAction::Created).await;
        Ok(track)
    }

    /// Changes a track (its mixer, its name, its input…): heard from the engine's next block,
    /// shown to every client; a new `track_index` moves it to another mixer slot.
    pub async fn update_track(&self, before: &Track, patch: &TrackPatch) -> StoreResult<Track> {
        let track = self.store.update_track(before.id, |t| t.apply(patch, now())).await?;
        self.audio.track_changed(&track, self.actor).await;
        if track.index != before.index {
            self.announce(track.project_id, ModelItem::Track, track.id.0, ModelAction::Updated).await;
        }
        Ok(track)
    }

    pub async fn delete_track(&self, track: &Track) -> StoreResult<()> {
        if !self.store.delete_track(track.id).await? {
            return Err(StoreError::NotFound("track"));
        }
        self.announce(track.project_id, ModelItem::Track, track.id.0, ModelAction::Deleted).await;
        Ok(())
    }

    /// Moves, trims, re-gains or fades a clip; a playing engine follows at its next block.
    pub async fn update_clip(&self, clip: &Clip, patch: &ClipPatch, rate: SampleRate) -> StoreResult<Clip> {
        let updated = self.store.update_clip(clip.id, |c| c.apply(patch, rate, now())).await?;
        self.announce(updated.project_id, ModelItem::Clip, updated.id.0, ModelAction::Updated).await;
        Ok(updated)
    }

    pub async fn delete_clip(&self, clip: &Clip) -> StoreResult<()> {
        if !self.store.delete_clip(clip.id).await? {
            return Err(StoreError::NotFound("clip"));
        }
        self.announce(clip.project_id, ModelItem::Clip, clip.id.0, ModelAction::Deleted).await;
        Ok(())
    }

    /// Makes `take` the one take of its recording that plays (one statement for all of them).
    pub async fn activate_take(&self, take: &Take, project: ProjectId) -> StoreResult<()> {
        self.store.activate_take(take).await?;
        self.announce(project, ModelItem::Clip, take.clip_id.0, ModelAction::Updated).await;
        Ok(())
    }

    /// Stores a new loop region; created enabled, it becomes the project's one enabled loop.
    pub async fn create_loop(&self, region: &LoopRegion) -> StoreResult<()> {
        self.store.insert_loop_region(region).await?;
        self.announce(region.project_id, ModelItem::LoopRegion, region.id.0, ModelAction::Created).await;
        Ok(())
    }

    /// Edits a loop region (range, repeats, enabled); the engine loops the new range.
    pub async fn update_loop(
        &self,
        region: &LoopRegion,
        patch: &LoopRegionPatch,
        rate: SampleRate,
    ) -> StoreResult<LoopRegion> {
        let updated = self.store.update_loop_region(region.id, |r| r.apply(patch, rate, now())).await?;
        self.announce(updated.project_id, ModelItem::LoopRegion, updated.id.0, ModelAction::Updated).await;
        Ok(updated)
    }

    pub async fn delete_loop(&self, region: &LoopRegion) -> StoreResult<()> {
        if !self.store.delete_loop_region(region.id).await? {
            return Err(StoreError::NotFound("loop region"));
        }
        self.announce(region.project_id, ModelItem::LoopRegion, region.id.0, ModelAction::Deleted).await;
        Ok(())
    }
}
