//! The socket route of an API process: a client is proxied to the project's node, so a client
//! needs only the API's address; the node learns who the socket acts for from signed headers.

use crate::gate::refuse;
use crate::nodes::RemoteNodes;
use audiolab_domain::ProjectId;
use futures_util::{SinkExt, StreamExt};
use poem::http::StatusCode;
use poem::web::websocket::{CloseCode, Message, WebSocket, WebSocketConfig, WebSocketStream};
use poem::web::{Data, Path};
use poem::{IntoResponse, Request, Response, handler};
use std::sync::Arc;
use tokio_tungstenite::tungstenite::Message as Upstream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

/// `/ws/audio/{project_id}` on an API process: proxies the client to the project's node.
#[handler]
pub async fn ws_proxy(
    req: &Request,
    Path(project): Path<String>,
    ws: WebSocket,
    nodes: Data<&Arc<RemoteNodes>>,
    origins: Data<&crate::gate::OriginPolicy>,
) -> Response {
    let Ok(project) = project.parse::<uuid::Uuid>().map(ProjectId::from) else {
        return refuse(StatusCode::UNPROCESSABLE_ENTITY, "project_id: not a UUID");
    };
    if let Err(refusal) = origins.check(req) {
        return refusal;
    }
    // The same check as the node's own, here before a node is even chosen.
    let admitted = match crate::gate::admit(&nodes.store, req.extensions().get(), project).await {
        Ok(admitted) => admitted,
        Err(refusal) => return refusal,
    };
    let url = match nodes.node_url(project).await {
        Ok(url) => url,
        Err(error) => return refuse(StatusCode::SERVICE_UNAVAILABLE, &error.to_string()),
    };
    let upstream_url = format!("{}/ws/audio/{project}", url.replacen("http", "ws", 1));
    let upstream = match upstream_request(&upstream_url, nodes.secret.as_deref(), &admitted) {
        Ok(request) => tokio_tungstenite::connect_async(request).await,
        Err(error) => Err(error),
    };
    let upstream = match upstream {
        Ok((socket, _)) => socket,
        Err(error) => {
            return refuse(StatusCode::SERVICE_UNAVAILABLE, &format!("the audio node did not answer: {error}"));
        }
    };
    let limit = crate::MAX_FRAME_BYTES;
    let config = WebSocketConfig::default().max_message_size(Some(limit)).max_frame_size(Some(limit));
    ws.config(config).on_upgrade(move |client| pump(client, upstream)).into_response()
}

/// The upgrade request to a node: the deployment's secret, the user the socket acts for and
/// the token it came with (so the node closes it when that token is revoked or expires).
fn upstream_request(
    url: &str,
    secret: Option<&str>,
    admitted: &crate::gate::Admitted,
) -> Result<tokio_tungstenite::tungstenite::handshake::client::Request, tokio_tungstenite::tungstenite::Error> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::http::HeaderValue;
    let mut request = url.into_client_request()?;
    let headers = request.headers_mut();
    let invalid =
        |_| tokio_tungstenite::tungstenite::Error::Url(tokio_tungstenite::tungstenite::error::UrlError::EmptyHostName);
    headers.insert(crate::gate::SECRET_HEADER, HeaderValue::from_str(secret.unwrap_or_default()).map_err(invalid)?);
    let actor = crate::gate::actor_header(&admitted.actor);
    headers.insert(crate::gate::ACTOR_HEADER, HeaderValue::from_str(&actor).map_err(invalid)?);
    if let Some(token) = &admitted.token {
        let token = crate::gate::token_header(token);
        headers.insert(crate::gate::TOKEN_HEADER, HeaderValue::from_str(&token).map_err(invalid)?);
    }
    Ok(request)
}

type UpstreamSocket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn pump(client: WebSocketStream, upstream: UpstreamSocket) {
    let (mut to_client, mut from_client) = client.split();
    let (mut to_node, mut from_node) = upstream.split();
    loop {
        tokio::select! {
            message = from_client.next() => match message {
                Some(Ok(message)) => {
                    let closing = matches!(message, Message::Close(_));
                    if to_node.send(upstream_message(message)).await.is_err() || closing {
                        break;
                    }
                }
                Some(Err(error)) => {
                    if crate::is_oversized(&error) {
                        let _ = to_client.send(Message::Close(Some((CloseCode::Size, "frame too large".into())))).await;
                    }
                    break;
                }
                None => break,
            },
            message = from_node.next() => match message {
                Some(Ok(message)) => {
                    let Some(message) = client_message(message) else { continue };
                    let closing = matches!(message, Message::Close(_));
                    if to_client.send(message).await.is_err() || closing {
                        break;
                    }
                }
                _ => {
                    let _ = to_client.send(Message::Close(Some((CloseCode::Away, "the audio node went away".into())))).await;
                    break;
                }
            },
        }
    }
    let _ = to_node.close().await;
}

fn upstream_message(message: Message) -> Upstream {
    match message {
        Message::Text(text) => Upstream::text(text),
        Message::Binary(data) => Upstream::binary(data),
        Message::Ping(data) => Upstream::Ping(data.into()),
        Message::Pong(data) => Upstream::Pong(data.into()),
        Message::Close(frame) => Upstream::Close(
            frame.map(|(code, reason)| CloseFrame { code: u16::from(code).into(), reason: reason.into() }),
        ),
    }
}

fn client_message(message: Upstream) -> Option<Message> {
    Some(match message {
        Upstream::Text(text) => Message::Text(text.to_string()),
        Upstream::Binary(data) => Message::Binary(data.to_vec()),
        Upstream::Ping(data) => Message::Ping(data.to_vec()),
        Upstream::Pong(data) => Message::Pong(data.to_vec()),
        Upstream::Close(frame) => Message::Close(frame.map(|f| (u16::from(f.code).into(), f.reason.to_string()))),
        Upstream::Frame(_) => return None,
    })
}
