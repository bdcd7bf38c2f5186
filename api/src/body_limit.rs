//! Refuses request bodies above the configured size with 413, whether or not the client
//! declared a `Content-Length` (a chunked body is read up to the limit and no further).

use poem::error::ReadBodyError;
use poem::http::StatusCode;
use poem::http::header::CONTENT_LENGTH;
use poem::{Endpoint, IntoResponse, Request, Response};
use std::sync::Arc;

fn too_large(limit: usize) -> poem::Error {
    poem::Error::from_string(
        format!("the request body is larger than {limit} bytes"),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
}

/// Middleware body for `EndpointExt::around`.
pub async fn limit_body<E: Endpoint>(
    endpoint: Arc<E>,
    mut req: Request,
    limit: usize,
) -> poem::Result<Response> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(length) if length > limit as u64 => return Err(too_large(limit)),
        Some(_) => {}
        None => {
            let body = req.take_body();
            if !body.is_empty() {
                let bytes = body
                    .into_bytes_limit(limit)
                    .await
                    .map_err(|err| match err {
                        ReadBodyError::PayloadTooLarge => too_large(limit),
                        other => other.into(),
                    })?;
                req.set_body(bytes);
            }
        }
    }
    endpoint.call(req).await.map(IntoResponse::into_response)
}
