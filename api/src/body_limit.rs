//! Refuses request bodies above the configured size with 413, whether or not the client
//! declared a `Content-Length` (a chunked body is read up to the limit and no further).
//! An empty body without a content type is read as an absent JSON body, so optional bodies
//! (`POST …/play` with no position) work from a bare `curl -X POST`.

use poem::error::ReadBodyError;
use poem::http::HeaderValue;
use poem::http::StatusCode;
use poem::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use poem::{Endpoint, IntoResponse, Request, Response};
use std::sync::Arc;

fn too_large(limit: usize) -> poem::Error {
    poem::Error::from_string(format!("the request body is larger than {limit} bytes"), StatusCode::PAYLOAD_TOO_LARGE)
}

/// Middleware body for `EndpointExt::around`.
pub async fn limit_body<E: Endpoint>(endpoint: Arc<E>, mut req: Request, limit: usize) -> poem::Result<Response> {
    let declared = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large(limit));
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
