//! What a node does when a right is taken away or a device must give way (§8): the sockets
//! that relied on the right close, and a client device is *released* — every take recording
//! from it stops and is saved with what arrived, its connection is told why, and the node's
//! clock paces the engine again. One mechanism for every reason a device goes: the owner
//! detaches it, its user is removed or demoted or changes their password, it stayed away too
//! long, or it was away when someone else started the transport or attached.

use crate::device::{AWAY_GRACE, DeviceLink};
use crate::node::Node;
use crate::recording::RecordingInput;
use audiolab_domain::ProjectId;
use audiolab_domain::transport::{TransportError, TransportResult, TransportStatus};
use audiolab_domain::user::Revocation;
use std::sync::Arc;

impl Node {
    /// Detaches `link`, the client device of `project`, for `reason`: its takes stop and are
    /// saved with what arrived (in the name of `actor`, or the system's), its connection is told
    /// why, the node's clock takes over.
    pub async fn release_device(
        &self,
        project: ProjectId,
        link: &Arc<DeviceLink>,
        reason: &str,
        actor: Option<&audiolab_domain::user::Actor>,
    ) {
        link.end(reason);
        let takes: Vec<_> = self
            .recordings
            .lock()
            .await
            .values()
            .filter(|r| {
                r.project_id == project && matches!(&r.input, RecordingInput::Client(l) if Arc::ptr_eq(l, link))
            })
            .map(|r| r.id)
            .collect();
        for take in takes {
            if let Err(error) = self.stop_recording(project, None, take, actor).await {
                tracing::warn!(%project, session_id = %take, %error, "a released device's take could not be saved");
            }
        }
        if let Some(session) = self.session(project).await {
            session.detach_device(link).await;
        }
        tracing::info!(%project, device = %link.device_id, reason, "client device released");
    }

    /// Releases the project's client device if it is away (its connection lost): an absent
    /// device never holds the transport for anyone else.
    pub async fn release_away_device(&self, project: ProjectId, reason: &str) {
        let Some(session) = self.session(project).await else { return };
        if let Some(link) = session.client_device().filter(|link| link.away_for().is_some()) {
            self.release_device(project, &link, reason, None).await;
        }
    }

    /// Releases the client devices that have been away for longer than [`AWAY_GRACE`].
    pub async fn release_expired_devices(&self) {
        for session in self.sessions().await {
            let expired = session.client_device().filter(|link| link.away_for().is_some_and(|away| away >= AWAY_GRACE));
            if let Some(link) = expired {
                self.release_device(session.project_id, &link, "the device was away for too long", None).await;
            }
        }
    }

    /// The owner's detach: releases the project's client device, connected or away.
    /// Errors: `not_found` when none is attached.
    pub async fn detach_device(&self, project: ProjectId) -> TransportResult<TransportStatus> {
        let session = self.session(project).await.ok_or_else(|| TransportError::not_found("attached client device"))?;
        let link = session.client_device().ok_or_else(|| TransportError::not_found("attached client device"))?;
        self.release_device(project, &link, "the project's owner detached the device", None).await;
        Ok(session.status())
    }

    /// A right was taken away: the node's sockets that relied on it close, and the devices of
    /// users who may no longer record are released.
    pub async fn revoke(&self, revocation: Revocation) {
        self.hub().revoke(revocation.clone());
        for session in self.sessions().await {
            if let Some(link) = session.client_device()
                && revocation.detaches(session.project_id, link.owner)
            {
                self.release_device(session.project_id, &link, revocation.reason(), None).await;
            }
        }
    }
}
