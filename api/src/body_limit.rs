//! Refuses request bodies above the configured size with 413, whether or not the client
//! declared a `Content-Length` (a chunked body is read up to the limit and no further).
//! An empty body without a content type is read as an absent JSON body, so optional bodies
//! (`POST …/play` with no position) work from a bare `curl -X POST`.

use futures_util::StreamExt;
use poem::error::ReadBodyError;
use poem::http::HeaderValue;
use poem::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use poem::http::{Method, StatusCode};
use poem::{Endpoint, IntoResponse, Request, Response};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// How much of an oversized upload is read and dropped before the 413 goes out.
const DRAIN_BYTES: u64 = 16 << 20;

fn too_large(limit: usize) -> poem::Error {
    poem::Error::from_string(format!("the request body is larger than {limit} bytes"), StatusCode::PAYLOAD_TOO_LARGE)
}

/// Whether a request is an audio upload (`POST /api/tracks/{id}/clips`), which streams under
/// its own, larger limit instead of being read into memory.
fn is_upload(req: &Request) -> bool {
    let segments: Vec<&str> = req.uri().path().trim_end_matches('/').split('/').collect();
    req.method() == Method::POST && matches!(segments[..], ["", "api", "tracks", _, "clips"])
}

/// Passes an upload through as a stream that fails once it goes past `limit` bytes; the
/// answer is then 413 whatever the handler made of the cut-off body.
async fn limit_upload<E: Endpoint>(endpoint: Arc<E>, mut req: Request, limit: u64) -> poem::Result<Response> {
    let declared = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Ok(unread_body_refused(upload_too_large(limit)));
    }
    let exceeded = Arc::new(AtomicBool::new(false));
    let flag = exceeded.clone();
    let inner = req.take_body().into_bytes_stream();
    let stream = futures_util::stream::unfold(Some((inner, 0u64)), move |state| {
        let flag = flag.clone();
        async move {
            let (mut inner, mut seen) = state?;
            let chunk = match inner.next().await? {
                Ok(chunk) => chunk,
                Err(err) => return Some((Err(err), None)),
            };
            seen += chunk.len() as u64;
            if seen <= limit {
                return Some((Ok(chunk), Some((inner, seen))));
            }
            flag.store(true, Ordering::Relaxed);
            // Read (and drop) a bounded rest of the body first, so a client still sending
            // receives the 413 instead of a reset connection.
            while seen <= limit.saturating_add(DRAIN_BYTES) {
                match inner.next().await {
                    Some(Ok(chunk)) => seen += chunk.len() as u64,
                    _ => break,
                }
            }
            Some((Err(std::io::Error::other("the upload is too large")), None))
        }
    });
    req.set_body(poem::Body::from_bytes_stream(stream));
    let response = endpoint.call(req).await.map(IntoResponse::into_response);
    if exceeded.load(Ordering::Relaxed) {
        return Err(upload_too_large(limit));
    }
    response
}

/// The answer to a request refused before its body was read: the connection closes after it,
/// so a client does not send its next request after a body the server never read.
fn unread_body_refused(err: poem::Error) -> Response {
    let mut response = crate::error::error_response(err.status(), err.to_string());
    response.headers_mut().insert(poem::http::header::CONNECTION, HeaderValue::from_static("close"));
    response
}

fn upload_too_large(limit: u64) -> poem::Error {
    poem::Error::from_string(format!("the upload is larger than {limit} bytes"), StatusCode::PAYLOAD_TOO_LARGE)
}

/// Middleware body for `EndpointExt::around`: uploads get `upload_limit`, every other body
/// `limit`.
pub async fn limit_body<E: Endpoint>(
    endpoint: Arc<E>,
    mut req: Request,
    limit: usize,
    upload_limit: u64,
) -> poem::Result<Response> {
    if is_upload(&req) {
        return limit_upload(endpoint, req, upload_limit).await;
    }
    let declared = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Ok(unread_body_refused(too_large(limit)));
    }
    let body = req.take_body();
    let empty = body.is_empty();
    if declared.is_none() && !empty {
        let bytes = body.into_bytes_limit(limit).await.map_err(|err| match err {
            ReadBodyError::PayloadTooLarge => too_large(limit),
            other => other.into(),
        })?;
        req.set_body(bytes);
    } else {
        req.set_body(body);
    }
    if empty && !req.headers().contains_key(CONTENT_TYPE) {
        req.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    endpoint.call(req).await.map(IntoResponse::into_response)
}
