//! The transport operations on a node's projects ([`AudioControl`]): each loads the project if
//! needed, moves its engine, and tells its clients.

use crate::engine::{Command, TransportState};
use crate::session::Session;
use audiolab_domain::history::ProjectChange;
use audiolab_domain::transport::{AudioControl, LoadSummary, TransportError, TransportResult, TransportStatus};
use audiolab_domain::transport::{RecordRequest, RecordingStarted, RecordingStopped};
use audiolab_domain::{Frames, ProjectId, RecordingSessionId, TrackId};
use audiolab_transport::protocol::{PlaybackEvent, ServerMessage};

use super::{Node, Parked, busy, seconds_to_frames, store_error};

impl Node {
    /// One transport move: loads the project if needed, applies `command` on its engine, and
    /// tells the project's clients with an `event` carrying the resulting status.
    async fn drive(
        &self,
        project: ProjectId,
        event: fn(PlaybackEvent) -> ServerMessage,
        command: impl FnOnce(&Session) -> TransportResult<Command>,
    ) -> TransportResult<TransportStatus> {
        let session = self.loaded(project).await?;
        session.command(command(&session)?).await.map_err(busy)?;
        let status = session.status();
        self.publish(project, event, &status);
        Ok(status)
    }
}

#[async_trait::async_trait]
impl AudioControl for Node {
    async fn load(&self, project: ProjectId) -> TransportResult<LoadSummary> {
        match self.refresh(project).await? {
            Some(summary) => Ok(summary),
            None => Ok(self.loaded(project).await?.summary()),
        }
    }

    async fn play(&self, project: ProjectId, position: Option<f64>) -> TransportResult<TransportStatus> {
        self.release_away_device(project, "the transport was started while the device was away").await;
        self.drive(project, ServerMessage::PlaybackStarted, |session| {
            Ok(Command::Play { from: position.map(|p| seconds_to_frames(p, session)).transpose()? })
        })
        .await
    }

    async fn pause(&self, project: ProjectId) -> TransportResult<TransportStatus> {
        self.drive(project, ServerMessage::PlaybackPaused, |_| Ok(Command::Pause)).await
    }

    async fn resume(&self, project: ProjectId) -> TransportResult<TransportStatus> {
        self.release_away_device(project, "the transport was started while the device was away").await;
        self.drive(project, ServerMessage::PlaybackStarted, |_| Ok(Command::Resume)).await
    }

    async fn stop(
        &self,
        project: ProjectId,
        actor: Option<&audiolab_domain::user::Actor>,
    ) -> TransportResult<TransportStatus> {
        self.end_takes(project, actor).await;
        self.drive(project, ServerMessage::PlaybackStopped, |_| Ok(Command::Stop)).await
    }

    async fn seek(&self, project: ProjectId, position: f64) -> TransportResult<TransportStatus> {
        self.drive(project, ServerMessage::PlaybackSeeked, |session| {
            Ok(Command::Seek(seconds_to_frames(position, session)?))
        })
        .await
    }

    async fn status(&self, project: ProjectId) -> TransportResult<TransportStatus> {
        if let Some(session) = self.session(project).await {
            return Ok(session.status());
        }
        let parked = self.parked.lock().unwrap_or_else(|p| p.into_inner()).get(&project).copied();
        let found = self
            .store
            .get_project(project)
            .await
            .map_err(store_error)?
            .ok_or_else(|| TransportError::not_found("project"))?;
        let mut status = TransportStatus::unloaded(project, found.sample_rate.hz());
        if let Some(Parked { frame, paused }) = parked {
            // Unloaded while idle: the next command loads it where it was.
            status.frame = frame;
            status.position = Frames(frame).to_seconds(found.sample_rate);
            status.status = if paused { TransportState::Paused } else { TransportState::Stopped };
        }
        Ok(status)
    }

    async fn set_metronome(
        &self,
        project: ProjectId,
        metronome: audiolab_domain::transport::MetronomeSettings,
    ) -> TransportResult<TransportStatus> {
        metronome.validate().map_err(TransportError::Invalid)?;
        let session = self.loaded(project).await?;
        session.set_metronome(metronome).await.map_err(busy)?;
        Ok(session.status())
    }

    async fn record_start(&self, project: ProjectId, request: RecordRequest) -> TransportResult<RecordingStarted> {
        self.start_recording(project, request).await
    }

    async fn record_stop(
        &self,
        project: ProjectId,
        track: Option<TrackId>,
        session: RecordingSessionId,
        actor: Option<&audiolab_domain::user::Actor>,
    ) -> TransportResult<RecordingStopped> {
        self.stop_recording(project, track, session, actor).await
    }

    async fn announce(&self, change: &ProjectChange) -> TransportResult<()> {
        self.apply_change(change).await;
        Ok(())
    }

    async fn revoked(&self, revocation: audiolab_domain::user::Revocation) -> TransportResult<()> {
        self.revoke(revocation).await;
        Ok(())
    }

    async fn detach_device(&self, project: ProjectId) -> TransportResult<TransportStatus> {
        Node::detach_device(self, project).await
    }

    async fn project_deleted(&self, project: ProjectId) {
        self.unload_project(project, "the project was deleted").await;
    }

    fn input_devices(&self) -> Vec<audiolab_domain::device::InputDevice> {
        #[allow(unused_mut)]
        let mut devices = audiolab_domain::device::virtual_devices(audiolab_domain::SampleRate::DEFAULT.hz());
        #[cfg(feature = "hw-audio")]
        devices.extend(crate::device::cpal_input::input_devices());
        devices
    }
}
