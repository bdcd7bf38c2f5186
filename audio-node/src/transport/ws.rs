//! `/ws/audio/{project_id}`: the WebSocket transport. JSON text frames `{"type", "data"}`;
//! control commands answered one `control_response` each; the project's events broadcast to
//! every client once it has spoken.

use crate::device::ClientDevice;
use crate::node::Node;
use crate::node::store_error;
use crate::session::Heard;
use crate::transport::hub::Outbox;
use audiolab_app::Changes;
use audiolab_app::access::{self, AccessError};
use audiolab_domain::ProjectId;
use audiolab_domain::track::TrackPatch;
use audiolab_domain::transport::{AudioControl, TransportError, TransportResult};
use audiolab_domain::user::{Actor, Need};
use audiolab_transport::gate::{Admitted, OriginPolicy};
use audiolab_transport::protocol::{
    AttachAs, AttachRole, Attached, ClientMessage, ControlCommand, ControlResponse, Refusal, ServerMessage,
};
use audiolab_transport::protocol::{CommandResult, CompState, MissedChange, Reverted, SetTrack, TrackState};
use audiolab_transport::{MAX_FRAME_BYTES, is_oversized};
use futures_util::StreamExt;
use poem::http::StatusCode;
use poem::web::websocket::{CloseCode, Message, WebSocket, WebSocketConfig, WebSocketStream};
use poem::web::{Data, Path};
use poem::{IntoResponse, Request, Response, handler};
use serde_json::{Value, json};
use std::sync::Arc;

/// How often a client that has spoken is pinged, so a quiet socket (a stopped project's
/// listener) is not closed by the server's idle timeout while the client is there.
pub const KEEPALIVE: std::time::Duration = std::time::Duration::from_secs(15);

fn error_response(status: StatusCode, detail: &str) -> Response {
    let body = json!({"detail": detail, "errors": [detail], "success": false});
    poem::web::Json(body).with_status(status).into_response()
}

/// The upgrade handler. Unknown or malformed project ids, pages of other origins and callers
/// who may not see the project are refused before the upgrade.
#[handler]
pub async fn ws_audio(
    req: &Request,
    Path(project): Path<String>,
    ws: WebSocket,
    node: Data<&Arc<Node>>,
    origins: Data<&OriginPolicy>,
) -> Response {
    let Ok(project) = project.parse::<uuid::Uuid>().map(ProjectId::from) else {
        return error_response(StatusCode::UNPROCESSABLE_ENTITY, "project_id: not a UUID");
    };
    if let Err(refusal) = origins.check(req) {
        return refusal;
    }
    let admitted = match audiolab_transport::gate::admit(node.store(), req.extensions().get(), project).await {
        Ok(admitted) => admitted,
        Err(refusal) => return refusal,
    };
    let node = node.clone();
    let config =
        WebSocketConfig::default().max_message_size(Some(MAX_FRAME_BYTES)).max_frame_size(Some(MAX_FRAME_BYTES));
    ws.config(config).on_upgrade(move |socket| serve(socket, project, node, admitted)).into_response()
}

/// Resolves when `token` expires (never without one). Sleeps at most a day at a time, so a
/// key that lives ten years is not cut short by a clamped timer.
async fn expiry(token: Option<audiolab_domain::user::Credential>) {
    let Some(token) = token else { return std::future::pending().await };
    loop {
        let left = (token.expires_at - chrono::Utc::now()).to_std().unwrap_or_default();
        if left.is_zero() {
            return;
        }
        tokio::time::sleep(left.min(std::time::Duration::from_secs(86_400))).await;
    }
}

async fn serve(socket: WebSocketStream, project: ProjectId, node: Arc<Node>, admitted: Admitted) {
    let (sink, mut stream) = socket.split();
    let outbox = Outbox::new(sink);
    let closing = node.hub().closing(project);
    let mut revocations = node.hub().revocations();
    let mut revocations_open = true;
    let expired = expiry(admitted.token);
    tokio::pin!(expired);
    let actor = &admitted.actor;
    // The server sends nothing until the client speaks; then it joins the project's broadcasts.
    let mut membership = None;
    let mut keepalive = tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE);
    // Attached as the project's audio device (its monitor stream goes out at this pace), or
    // as a listener.
    let mut attachment = Attachment::None;
    let mut pump = tokio::time::interval(MONITOR_PUMP);
    pump.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    'connection: loop {
        let incoming = tokio::select! {
            incoming = stream.next() => match incoming {
                Some(incoming) => incoming,
                None => break,
            },
            _ = pump.tick(), if matches!(attachment, Attachment::Device(_)) => {
                let Attachment::Device(device) = &mut attachment else { continue };
                if let Some(reason) = device.link.ended() {
                    // Detached by the node (the owner, a revoked right, a long absence).
                    let detached = ServerMessage::Detached { device_id: Some(device.link.device_id.clone()), reason: Some(reason) };
                    attachment = Attachment::None;
                    if !outbox.send(detached.frame().to_string()).await {
                        break;
                    }
                    continue;
                }
                for frame in device.monitor_frames() {
                    if !outbox.send_binary(frame.to_vec()).await {
                        break 'connection;
                    }
                }
                for ack in device.acknowledgements() {
                    if !outbox.send(ServerMessage::MicAck(ack).frame().to_string()).await {
                        break 'connection;
                    }
                }
                continue;
            }
            heard = attachment.listen() => {
                use tokio::sync::broadcast::error::RecvError;
                let sent = match heard {
                    Ok(Heard::Frame(frame)) => outbox.send_binary(frame.to_vec()).await,
                    Ok(Heard::Device { device_id, monitor_stream }) => {
                        outbox.send(ServerMessage::DeviceChanged { device_id, monitor_stream }.frame().to_string()).await
                    }
                    Err(RecvError::Lagged(missed)) => {
                        outbox.send(error(&format!("this listener fell behind: {missed} monitor frames were skipped"))).await
                    }
                    Err(RecvError::Closed) => {
                        attachment = Attachment::None;
                        true
                    }
                };
                if !sent {
                    break;
                }
                continue;
            }
            _ = keepalive.tick(), if membership.is_some() => {
                outbox.send_control(Message::Ping(Vec::new())).await;
                continue;
            }
            reason = closing.closed() => {
                outbox.send_control(Message::Close(Some((CloseCode::Normal, reason)))).await;
                break;
            }
            () = &mut expired => {
                let reason = "the token has expired; sign in again".to_owned();
                outbox.send_control(Message::Close(Some((CloseCode::Policy, reason)))).await;
                break;
            }
            revoked = revocations.recv(), if revocations_open => {
                use tokio::sync::broadcast::error::RecvError;
                let reason = match revoked {
                    Ok(revocation) => revocation.closes(project, actor.id, admitted.token.map(|t| t.id)).map(str::to_owned),
                    // Notices missed while busy: check the rights from the database instead.
                    Err(RecvError::Lagged(_)) => allowed(&node, &admitted, project, Need::Read).await.err().map(|e| e.to_string()),
                    Err(RecvError::Closed) => {
                        revocations_open = false;
                        None
                    }
                };
                match reason {
                    Some(reason) => {
                        outbox.send_control(Message::Close(Some((CloseCode::Policy, reason)))).await;
                        break;
                    }
                    None => continue,
                }
            }
        };
        let reply = match incoming {
            Ok(Message::Close(_)) => break,
            Ok(Message::Text(text)) => handle_text(&text, project, &node, &admitted, &mut attachment).await,
            Ok(Message::Binary(bytes)) => handle_binary(&bytes, &mut attachment),
            Ok(Message::Ping(_) | Message::Pong(_)) => None,
            Err(err) => {
                if is_oversized(&err) {
                    outbox.send_control(Message::Close(Some((CloseCode::Size, "frame too large".into())))).await;
                }
                break;
            }
        };
        if let Some(reply) = reply {
            if !outbox.send(reply).await {
                break;
            }
        }
        if membership.is_none() {
            membership = Some(node.hub().join(project, outbox.clone()));
        }
    }
    // A device whose connection ends without `detach` waits for its client to come back (as
    // `ClientDevice` is dropped).
    drop(attachment);
}

/// What a connection is attached as.
#[derive(Default)]
enum Attachment {
    #[default]
    None,
    Device(ClientDevice),
    /// Hears the project's monitor stream.
    Listener(tokio::sync::broadcast::Receiver<Heard>),
}

impl Attachment {
    /// The next monitor frame a listener hears (never ready for anything else).
    async fn listen(&mut self) -> Result<Heard, tokio::sync::broadcast::error::RecvError> {
        match self {
            Attachment::Listener(frames) => frames.recv().await,
            _ => std::future::pending().await,
        }
    }

    /// Ends a device or a listener (`detach`, or attaching again); the connection is then
    /// unattached. A device goes as every device goes: released, its takes saved with what
    /// arrived.
    async fn detach(&mut self, node: &Node, project: ProjectId, reason: &str, actor: &Actor) {
        if let Attachment::Device(device) = std::mem::take(self)
            && device.current()
        {
            node.release_device(project, &device.link, reason, Some(actor)).await;
        }
    }
}

/// How often an attached device's monitor audio is sent: well inside any lookahead.
const MONITOR_PUMP: std::time::Duration = std::time::Duration::from_millis(5);

/// Answers one binary frame: audio from the attached device. Anything else is an `error`.
fn handle_binary(bytes: &[u8], attachment: &mut Attachment) -> Option<String> {
    let frame = match audiolab_transport::wire::decode(bytes) {
        Ok(frame) => frame,
        Err(fault) => return Some(error(&fault.to_string())),
    };
    let Attachment::Device(device) = attachment else {
        return Some(error("attach as the project's device before sending audio"));
    };
    device.microphone(frame).err().map(|fault| error(&fault))
}

fn error(text: &str) -> String {
    ServerMessage::Error { message: text.to_owned() }.frame().to_string()
}

fn control_response(id: Value, command: &str, outcome: TransportResult<CommandResult>) -> String {
    ServerMessage::ControlResponse(ControlResponse::new(id, command, outcome)).frame().to_string()
}

/// Answers one text frame. `None` for messages that need no answer (`subscribe`).
async fn handle_text(
    text: &str,
    project: ProjectId,
    node: &Arc<Node>,
    admitted: &Admitted,
    attachment: &mut Attachment,
) -> Option<String> {
    match ClientMessage::parse(text) {
        Ok(ClientMessage::Attach(request)) => {
            let need = if request.role == AttachRole::Listener { Need::Read } else { Need::Change };
            if let Err(refused) = allowed(node, admitted, project, need).await {
                return Some(error(&format!("attach: {refused}")));
            }
            match attach(node, project, &admitted.actor, &request, attachment).await {
                Ok(answer) => Some(ServerMessage::Attached(answer).frame().to_string()),
                Err(refused) => Some(error(&format!("attach: {refused}"))),
            }
        }
        Ok(ClientMessage::Detach) => {
            let device_id = match &*attachment {
                Attachment::Device(device) => Some(device.link.device_id.clone()),
                Attachment::Listener(_) => None,
                Attachment::None => return Some(error("detach: this connection is not attached")),
            };
            attachment.detach(node, project, "the device detached", &admitted.actor).await;
            Some(ServerMessage::Detached { device_id, reason: None }.frame().to_string())
        }
        Ok(ClientMessage::Played(report)) => match attachment {
            Attachment::Device(device) => device.played(report).err().map(|fault| error(&fault)),
            _ => Some(error("played: attach as the project's device first")),
        },
        Ok(ClientMessage::Ping) => {
            let server_time = chrono::Utc::now().timestamp_micros() as f64 / 1e6;
            Some(ServerMessage::Pong { server_time }.frame().to_string())
        }
        Ok(ClientMessage::Subscribe { since: None }) => None,
        Ok(ClientMessage::Subscribe { since: Some(since) }) => {
            Some(catch_up(node, project, since).await.frame().to_string())
        }
        Ok(ClientMessage::Control { id, command }) if command.is_internal() => {
            let refused = TransportError::Invalid(format!("unknown command {:?}", command.name()));
            Some(control_response(id, command.name(), Err(refused)))
        }
        Ok(ClientMessage::Control { id, command }) => {
            let name = command.name();
            Some(control_response(id, name, control(command, project, node, Caller::Member(admitted)).await))
        }
        Err(Refusal::Malformed(reason)) => Some(error(&reason)),
        Err(Refusal::BadCommand { id, command, error }) => Some(control_response(id, &command, Err(error))),
    }
}

/// Attaches the connection as `request` asks (ending what it was attached as before).
async fn attach(
    node: &Node,
    project: ProjectId,
    actor: &Actor,
    request: &audiolab_transport::protocol::Attach,
    attachment: &mut Attachment,
) -> TransportResult<Attached> {
    let role = request.check().map_err(TransportError::Invalid)?;
    attachment.detach(node, project, "its connection attached again", actor).await;
    let session = node.loaded(project).await?;
    let rate = session.rate.hz();
    match role {
        AttachAs::Listener => {
            // Subscribed before reading the device, so a change in between is told after.
            *attachment = Attachment::Listener(session.listeners.subscribe());
            let device = session.client_device();
            let device_id = device.as_ref().map(|link| link.device_id.clone());
            let monitor_stream = device.map_or(0, |link| link.monitor_stream);
            let answer = Attached {
                role: request.role,
                device_id,
                sample_rate: rate,
                lookahead_frames: 0,
                monitor_stream,
                resumed: false,
                latency_frames: 0,
                latency_source: None,
                consumed: 0,
                played_until: None,
                microphone: Vec::new(),
            };
            Ok(answer)
        }
        AttachAs::Device { device_id, lookahead } => {
            // The round trip the client gives, else the one stored for this user's device.
            let (latency, latency_source) = match request.latency_frames {
                Some(frames) => (frames, Some("given".to_owned())),
                None => match node.store().client_latency(actor.id, &device_id).await {
                    Ok(Some(stored)) => (stored.frames(rate), Some(stored.source.as_str().to_owned())),
                    Ok(None) => (0, None),
                    Err(err) => return Err(crate::node::store_error(err)),
                },
            };
            // An away device (its connection lost) gives way to anyone attaching another:
            // it is released, its take saved; only the same device of the same user resumes.
            if let Some(away) = session
                .client_device()
                .filter(|link| link.away_for().is_some() && !(link.owner == actor.id && link.device_id == device_id))
            {
                node.release_device(project, &away, "another device attached while this one was away", None).await;
            }
            let channels = request.channels.unwrap_or(1);
            let device = ClientDevice::attach(session, device_id, actor.id, channels, lookahead, latency).await?;
            let (consumed, played_until, microphone) = device.progress();
            let answer = Attached {
                role: request.role,
                device_id: Some(device.link.device_id.clone()),
                sample_rate: rate,
                lookahead_frames: device.link.lookahead,
                monitor_stream: device.link.monitor_stream,
                resumed: device.resumed,
                latency_frames: u64::from(latency),
                latency_source,
                consumed,
                played_until,
                microphone,
            };
            *attachment = Attachment::Device(device);
            Ok(answer)
        }
    }
}

/// Who sends a control command.
#[derive(Debug, Clone, Copy)]
pub enum Caller<'a> {
    /// A user on the socket: their token and membership are checked before every command, so
    /// a member removed or demoted, or a token revoked, meanwhile is refused at once.
    Member(&'a Admitted),
    /// An API process on the internal route (it checked its user the same way), acting for
    /// `actor` when a user made the request.
    Deployment { actor: Option<&'a Actor> },
}

/// Changes a client missed after revision `since` (§13): listed when there are few, else
/// `resync`.
async fn catch_up(node: &Node, project: ProjectId, since: i64) -> ServerMessage {
    const MOST: i64 = 200;
    let resync = |revision| ServerMessage::Resync { project_id: project.0, revision };
    let Ok(revision) = node.store().project_revision(project).await else { return resync(0) };
    if since >= revision {
        return ServerMessage::Missed { project_id: project.0, revision, changes: Vec::new() };
    }
    let entries = match node.store().history_since(project, since, MOST + 1).await {
        Ok(entries) => entries,
        Err(_) => return resync(revision),
    };
    let complete = entries.first().is_some_and(|e| e.revision == since + 1) && entries.len() as i64 <= MOST;
    if !complete {
        return resync(revision);
    }
    let changes = entries
        .iter()
        .flat_map(|entry| {
            entry.announcement().changes.into_iter().map(move |c| MissedChange {
                revision: entry.revision,
                item: c.item,
                id: c.id,
                action: c.action,
                actor: c.actor,
                fields: c.fields,
            })
        })
        .collect();
    ServerMessage::Missed { project_id: project.0, revision, changes }
}

/// Runs one control command on this node: the WebSocket `control` messages and the internal
/// HTTP control route both come through here. Returns the command's typed result.
pub async fn control(
    command: ControlCommand,
    project: ProjectId,
    node: &Arc<Node>,
    caller: Caller<'_>,
) -> TransportResult<CommandResult> {
    let actor = match caller {
        Caller::Member(admitted) => {
            allowed(node, admitted, project, command.need()).await?;
            Some(&admitted.actor)
        }
        Caller::Deployment { actor } => actor,
    };
    let status = match command {
        ControlCommand::Unload {} => {
            node.unload_project(project, "the project was deleted").await;
            return Ok(CommandResult::Nothing);
        }
        ControlCommand::Load {} => return Ok(CommandResult::Loaded(node.load(project).await?)),
        ControlCommand::Status {} => node.status(project).await?,
        ControlCommand::Play { position } => node.play(project, position).await?,
        ControlCommand::Pause {} => node.pause(project).await?,
        ControlCommand::Resume {} => node.resume(project).await?,
        ControlCommand::Stop {} => node.stop(project, actor).await?,
        ControlCommand::Seek { position } => node.seek(project, position).await?,
        ControlCommand::LoopEnable { loop_region_id } => {
            let courier = node.courier();
            Changes::new(&courier, actor)
                .enable_loop(project, Some(loop_region_id.into()))
                .await
                .map_err(store_error)?;
            node.loaded(project).await?.status()
        }
        ControlCommand::LoopDisable {} => {
            let courier = node.courier();
            Changes::new(&courier, actor).enable_loop(project, None).await.map_err(store_error)?;
            node.loaded(project).await?.status()
        }
        ControlCommand::CompSelect { track_id, take_id, start, end } => {
            let project_row = node.store().get_project(project).await.map_err(store_error)?;
            let rate = project_row.ok_or_else(|| TransportError::not_found("project"))?.sample_rate;
            let frames = |field, seconds| {
                audiolab_domain::Frames::from_seconds(field, seconds, rate)
                    .map_err(|e| TransportError::Invalid(e.to_string()))
            };
            let (start, end) = (frames("start", start)?, frames("end", end)?);
            let courier = node.courier();
            let committed = Changes::new(&courier, actor)
                .select_in_comp(project, track_id.into(), take_id.into(), start, end)
                .await
                .map_err(store_error)?;
            let revision = committed.entry.map(|e| e.revision);
            return Ok(CommandResult::Comp(CompState::new(track_id, &committed.value, rate.hz(), revision)));
        }
        ControlCommand::Undo {} => {
            let courier = node.courier();
            let entry = Changes::new(&courier, actor).undo(project).await.map_err(store_error)?;
            return Ok(CommandResult::Revision(Reverted { revision: entry.revision, summary: entry.summary }));
        }
        ControlCommand::Redo {} => {
            let courier = node.courier();
            let entry = Changes::new(&courier, actor).redo(project).await.map_err(store_error)?;
            return Ok(CommandResult::Revision(Reverted { revision: entry.revision, summary: entry.summary }));
        }
        ControlCommand::Announce(change) => {
            node.apply_change(&change).await;
            return Ok(CommandResult::Nothing);
        }
        ControlCommand::DetachDevice {} => node.detach_device(project).await?,
        ControlCommand::Metronome(settings) => node.set_metronome(project, settings).await?,
        ControlCommand::SetTrack(change) => return set_track(change, project, node, actor).await,
        ControlCommand::RecordStart(request) => {
            return Ok(CommandResult::RecordingStarted(node.record_start(project, request).await?));
        }
        ControlCommand::RecordStop { session_id, track_id } => {
            let stopped = node.record_stop(project, track_id.map(Into::into), session_id.into(), actor).await?;
            return Ok(CommandResult::RecordingStopped(stopped));
        }
    };
    Ok(CommandResult::Status(status))
}

/// Refuses a command whose token was revoked or expired, or that the actor's role in the
/// project does not allow (or, to a non-member, answers that the project does not exist).
async fn allowed(node: &Node, admitted: &Admitted, project: ProjectId, need: Need) -> TransportResult<()> {
    if let Some(token) = admitted.token {
        let now = chrono::Utc::now();
        let live = token.expires_at > now
            && node.store().token_is_live(token.id, now).await.map_err(crate::node::store_error)?;
        if !live {
            return Err(TransportError::Forbidden(
                "the token this socket was opened with was revoked or expired".into(),
            ));
        }
    }
    match access::project(node.store(), &admitted.actor, project, need, "project").await {
        Ok(_) => Ok(()),
        Err(AccessError::NotFound(what)) => Err(TransportError::not_found(what)),
        Err(AccessError::Forbidden(reason)) => Err(TransportError::Forbidden(reason)),
        Err(AccessError::Store(err)) => Err(crate::node::store_error(err)),
    }
}

async fn set_track(
    change: SetTrack,
    project: ProjectId,
    node: &Arc<Node>,
    actor: Option<&Actor>,
) -> TransportResult<CommandResult> {
    let patch = TrackPatch {
        volume: change.volume,
        pan: change.pan,
        muted: change.muted,
        soloed: change.soloed,
        ..Default::default()
    };
    let id = change.track_id.into();
    let track = match node.store().get_track(id).await.map_err(crate::node::store_error)? {
        Some(track) if track.project_id == project => track,
        _ => return Err(TransportError::not_found("track")),
    };
    let courier = node.courier();
    let changes = audiolab_app::Changes::new(&courier, actor);
    let updated = changes.update_track(&track, &patch).await.map_err(crate::node::store_error)?;
    let revision = updated.entry.map(|e| e.revision);
    Ok(CommandResult::Track(TrackState { revision, ..TrackState::from(&updated.value) }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use audiolab_domain::user::Credential;
    use std::time::Duration;

    fn expiring_in(after: chrono::Duration) -> Option<Credential> {
        Some(Credential { id: audiolab_domain::TokenId::new(), expires_at: chrono::Utc::now() + after })
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_that_lives_years_is_not_cut_short_by_the_timer() {
        // The paused clock runs 400 days ahead in an instant; the wall clock stays where it is.
        let waited =
            tokio::time::timeout(Duration::from_secs(400 * 86_400), expiry(expiring_in(chrono::Duration::days(3650))));
        assert!(waited.await.is_err(), "a ten-year key expired early");
        assert!(tokio::time::timeout(Duration::from_secs(1), expiry(None)).await.is_err(), "no token, no expiry");
    }

    #[tokio::test]
    async fn an_expired_token_ends_at_once() {
        let ended = tokio::time::timeout(Duration::from_secs(1), expiry(expiring_in(chrono::Duration::seconds(-1))));
        assert!(ended.await.is_ok());
    }
}
