//! `/ws/audio/{project_id}`: the WebSocket transport. JSON text frames `{"type", "data"}`;
//! control commands answered one `control_response` each; the project's events broadcast to
//! every client once it has spoken.

use crate::hub::{Outbox, message};
use crate::node::Node;
use audiolab_domain::ProjectId;
use audiolab_domain::track::{Track, TrackPatch};
use audiolab_domain::transport::{AudioControl, RecordRequest, TransportError, TransportResult};
use futures_util::StreamExt;
use poem::http::StatusCode;
use poem::web::websocket::{CloseCode, Message, WebSocket, WebSocketConfig, WebSocketStream};
use poem::web::{Data, Path};
use poem::{IntoResponse, Response, handler};
use serde_json::{Value, json};
use std::sync::Arc;

/// Largest frame a client may send; larger ones close the connection with 1009.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

fn error_response(status: StatusCode, detail: &str) -> Response {
    let body = json!({"detail": detail, "errors": [detail], "success": false});
    poem::web::Json(body).with_status(status).into_response()
}

/// The upgrade handler. Unknown or malformed project ids are refused before the upgrade.
#[handler]
pub async fn ws_audio(Path(project): Path<String>, ws: WebSocket, node: Data<&Arc<Node>>) -> Response {
    let Ok(project) = project.parse::<uuid::Uuid>().map(ProjectId::from) else {
        return error_response(StatusCode::UNPROCESSABLE_ENTITY, "project_id: not a UUID");
    };
    match node.store().get_project(project).await {
        Ok(Some(_)) => {}
        Ok(None) => return error_response(StatusCode::NOT_FOUND, "project not found"),
        Err(_) => return error_response(StatusCode::SERVICE_UNAVAILABLE, "the database is unavailable"),
    }
    let node = node.clone();
    let config =
        WebSocketConfig::default().max_message_size(Some(MAX_FRAME_BYTES)).max_frame_size(Some(MAX_FRAME_BYTES));
    ws.config(config).on_upgrade(move |socket| serve(socket, project, node)).into_response()
}

async fn serve(socket: WebSocketStream, project: ProjectId, node: Arc<Node>) {
    let (sink, mut stream) = socket.split();
    let outbox = Outbox::new(sink);
    let closing = node.hub().closing(project);
    // The server sends nothing until the client speaks; then it joins the project's broadcasts.
    let mut membership = None;
    loop {
        let incoming = tokio::select! {
            incoming = stream.next() => match incoming {
                Some(incoming) => incoming,
                None => break,
            },
            reason = closing.closed() => {
                outbox.close(Message::Close(Some((CloseCode::Normal, reason)))).await;
                break;
            }
        };
        let reply = match incoming {
            Ok(Message::Close(_)) => break,
            Ok(Message::Text(text)) => handle_text(&text, project, &node).await,
            Ok(Message::Binary(_)) => Some(error("binary frames are reserved for audio streaming")),
            Ok(Message::Ping(_) | Message::Pong(_)) => None,
            Err(err) => {
                let oversized = err.to_string().contains("too long") || err.to_string().contains("Space limit");
                if oversized {
                    outbox.close(Message::Close(Some((CloseCode::Size, "frame too large".into())))).await;
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
}

fn error(text: &str) -> String {
    message("error", json!({"message": text})).to_string()
}

async fn handle_text(text: &str, project: ProjectId, node: &Node) -> Option<String> {
    let Ok(frame) = serde_json::from_str::<Value>(text) else {
        return Some(error("malformed JSON"));
    };
    match frame["type"].as_str() {
        Some("ping") => Some(
            message("pong", json!({"server_time": chrono::Utc::now().timestamp_micros() as f64 / 1e6})).to_string(),
        ),
        Some("control") => {
            let id = frame["id"].clone();
            let command = frame["command"].as_str().unwrap_or_default().to_owned();
            let data = frame.get("data").cloned().unwrap_or(Value::Null);
            let outcome = control(&command, &data, project, node).await;
            let body = match outcome {
                Ok(result) => json!({"id": id, "command": command, "success": true, "result": result}),
                Err(err) => json!({"id": id, "command": command, "success": false, "error": err.to_string()}),
            };
            Some(message("control_response", body).to_string())
        }
        Some(other) => Some(error(&format!("unknown message type {other:?}"))),
        None => Some(error("a message needs a \"type\"")),
    }
}

fn seconds(data: &Value, field: &str) -> TransportResult<Option<f64>> {
    match &data[field] {
        Value::Null => Ok(None),
        value => value
            .as_f64()
            .map(Some)
            .ok_or_else(|| TransportError::Invalid(format!("{field}: must be a number of seconds"))),
    }
}

/// Runs one control command on this node: the WebSocket `control` messages and the internal
/// HTTP control route both come through here. Returns the command's result as JSON.
pub async fn control(command: &str, data: &Value, project: ProjectId, node: &Node) -> TransportResult<Value> {
    let status = match command {
        "unload" => {
            node.unload_project(project, "the project was deleted").await;
            return Ok(Value::Null);
        }
        "load" => return Ok(serde_json::to_value(node.load(project).await?).unwrap_or(Value::Null)),
        "status" => node.status(project).await?,
        "play" => node.play(project, seconds(data, "position")?).await?,
        "pause" => node.pause(project).await?,
        "resume" => node.resume(project).await?,
        "stop" => node.stop(project).await?,
        "seek" => {
            let position =
                seconds(data, "position")?.ok_or_else(|| TransportError::Invalid("position: required".into()))?;
            node.seek(project, position).await?
        }
        "loop_enable" => {
            let id = data["loop_region_id"].as_str().and_then(|s| s.parse::<uuid::Uuid>().ok());
            let id = id.ok_or_else(|| TransportError::Invalid("loop_region_id: required, a UUID".into()))?;
            node.set_loop(project, Some(id.into())).await?
        }
        "loop_disable" => node.set_loop(project, None).await?,
        "set_track" => return set_track(data, project, node).await,
        "record_start" => {
            let request: RecordRequest = serde_json::from_value(data.clone()).map_err(|e| {
                TransportError::Invalid(format!("record_start needs {{track_id, device_id?, start_time?}}: {e}"))
            })?;
            return Ok(serde_json::to_value(node.record_start(project, request).await?).unwrap_or(Value::Null));
        }
        "record_stop" => {
            let id = data["session_id"].as_str().and_then(|s| s.parse::<uuid::Uuid>().ok());
            let id = id.ok_or_else(|| TransportError::Invalid("session_id: required, a UUID".into()))?;
            let track = match &data["track_id"] {
                Value::Null => None,
                value => Some(
                    value
                        .as_str()
                        .and_then(|s| s.parse::<uuid::Uuid>().ok())
                        .ok_or_else(|| TransportError::Invalid("track_id: a UUID".into()))?,
                ),
            };
            let stopped = node.record_stop(project, track.map(Into::into), id.into()).await?;
            return Ok(serde_json::to_value(stopped).unwrap_or(Value::Null));
        }
        other => return Err(TransportError::Invalid(format!("unknown command {other:?}"))),
    };
    Ok(serde_json::to_value(status).unwrap_or(Value::Null))
}

async fn set_track(data: &Value, project: ProjectId, node: &Node) -> TransportResult<Value> {
    let id = data["track_id"].as_str().and_then(|s| s.parse::<uuid::Uuid>().ok());
    let id = id.ok_or_else(|| TransportError::Invalid("track_id: required, a UUID".into()))?;
    let number = |field: &str| match &data[field] {
        Value::Null => Ok(None),
        v => v.as_f64().map(Some).ok_or_else(|| TransportError::Invalid(format!("{field}: must be a number"))),
    };
    let flag = |field: &str| match &data[field] {
        Value::Null => Ok(None),
        v => v.as_bool().map(Some).ok_or_else(|| TransportError::Invalid(format!("{field}: must be true or false"))),
    };
    let patch = TrackPatch {
        volume: number("volume")?,
        pan: number("pan")?,
        muted: flag("muted")?,
        soloed: flag("soloed")?,
        ..Default::default()
    };
    let store = node.store();
    match store.get_track(id.into()).await {
        Ok(Some(track)) if track.project_id == project => {}
        Ok(_) => return Err(TransportError::NotFound("track")),
        Err(_) => return Err(TransportError::Unavailable("the database is unavailable".into())),
    }
    let track =
        store.update_track(id.into(), |t| t.apply(&patch, audiolab_domain::now())).await.map_err(|e| match e {
            audiolab_store::StoreError::Invalid(invalid) => TransportError::Invalid(invalid.to_string()),
            audiolab_store::StoreError::NotFound(what) => TransportError::NotFound(what),
            other => TransportError::Internal(other.to_string()),
        })?;
    node.track_changed(&track).await;
    Ok(track_json(&track))
}

/// A track as clients see it in `track_update` messages (the same fields as the REST API).
pub fn track_json(track: &Track) -> Value {
    json!({
        "id": track.id,
        "project_id": track.project_id,
        "name": track.name,
        "track_index": track.index.get(),
        "volume": track.volume.get(),
        "pan": track.pan.get(),
        "muted": track.muted,
        "soloed": track.soloed,
        "color": track.color,
        "record_enabled": track.record_enabled,
        "input_device_id": track.input_device_id,
        "monitoring": track.monitoring,
        "updated_at": track.updated_at,
    })
}
