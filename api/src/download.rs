//! Streaming a stored audio object to a client: the right content type and length, and
//! `Range` requests (one range; `206` with `Content-Range`, `416` outside the file), read from
//! disk as the client takes it.

use crate::error::{ApiError, ApiResult};
use poem::Body;
use poem::http::StatusCode;
use poem_openapi::payload::{Binary, Response};
use std::ops::Range;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// What a `Range` header asks of a file of `length` bytes: `Ok(None)` for the whole file (no
/// header, or one this server does not honour, such as several ranges), `Err` when it lies
/// outside the file.
pub fn requested_range(header: Option<&str>, length: u64) -> Result<Option<Range<u64>>, ()> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.split_once('-') else { return Ok(None) };
    let (first, last) = (first.trim(), last.trim());
    let range = match (number(first), number(last)) {
        // The last N bytes.
        (None, Some(suffix)) if first.is_empty() && suffix > 0 && length > 0 => length.saturating_sub(suffix)..length,
        (Some(start), None) if last.is_empty() && start < length => start..length,
        // `end` comes from the client: up to u64::MAX, so `end + 1` saturates.
        (Some(start), Some(end)) if start <= end && start < length => start..end.saturating_add(1).min(length),
        _ if first.is_empty() && last.is_empty() => return Ok(None),
        _ => return Err(()),
    };
    Ok(Some(range))
}

/// A byte position: digits only; one too large for `u64` saturates (it lies past any file).
fn number(digits: &str) -> Option<u64> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.parse().unwrap_or(u64::MAX))
}

/// The stored object `key` as a download, whole or the range asked for.
pub async fn serve(
    storage: &audiolab_media::storage::Storage,
    key: &str,
    content_type: &str,
    file_name: &str,
    range_header: Option<&str>,
) -> ApiResult<Response<Binary<Body>>> {
    let path = storage.fetch(key).await.map_err(|_| ApiError::not_found("audio file"))?;
    let mut file = tokio::fs::File::open(&path).await.map_err(|_| ApiError::not_found("audio file"))?;
    let length = file.metadata().await.map_err(|e| ApiError::internal(&e))?.len();
    let range = requested_range(range_header, length).map_err(|()| ApiError::range_not_satisfiable(length))?;
    let (status, span) = match &range {
        Some(r) => (StatusCode::PARTIAL_CONTENT, r.clone()),
        None => (StatusCode::OK, 0..length),
    };
    file.seek(std::io::SeekFrom::Start(span.start)).await.map_err(|e| ApiError::internal(&e))?;
    let body = Body::from_async_read(file.take(span.end - span.start));
    let mut response = Response::new(Binary(body))
        .status(status)
        .header("Content-Type", content_type)
        .header("Content-Length", (span.end - span.start).to_string())
        .header("Accept-Ranges", "bytes")
        .header("Content-Disposition", format!("attachment; filename=\"{file_name}\""));
    if range.is_some() {
        // A range is never empty here (`start < end <= length`), so `end - 1` cannot wrap.
        response = response.header("Content-Range", format!("bytes {}-{}/{length}", span.start, span.end - 1));
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        assert_eq!(requested_range(None, 100), Ok(None));
        assert_eq!(requested_range(Some("bytes=0-9"), 100), Ok(Some(0..10)));
        assert_eq!(requested_range(Some("bytes=90-"), 100), Ok(Some(90..100)));
        assert_eq!(requested_range(Some("bytes=-10"), 100), Ok(Some(90..100)));
        assert_eq!(requested_range(Some("bytes=-500"), 100), Ok(Some(0..100)));
        assert_eq!(requested_range(Some("bytes=50-1000"), 100), Ok(Some(50..100)), "clamped to the end");
        assert_eq!(requested_range(Some("bytes=0-1,5-9"), 100), Ok(None), "several ranges: the whole file");
        assert_eq!(requested_range(Some("items=0-1"), 100), Ok(None));
        assert_eq!(requested_range(Some("bytes=100-"), 100), Err(()));
        assert_eq!(requested_range(Some("bytes=9-5"), 100), Err(()));
        assert_eq!(requested_range(Some("bytes=abc-"), 100), Err(()));
        assert_eq!(requested_range(Some("bytes=-0"), 100), Err(()));
    }

    #[test]
    fn client_numbers_at_the_edge_of_u64_saturate() {
        let max = u64::MAX;
        assert_eq!(requested_range(Some(&format!("bytes=5-{max}")), 100), Ok(Some(5..100)));
        assert_eq!(requested_range(Some(&format!("bytes=0-{max}")), 100), Ok(Some(0..100)));
        assert_eq!(requested_range(Some(&format!("bytes=-{max}")), 100), Ok(Some(0..100)));
        assert_eq!(requested_range(Some(&format!("bytes={max}-")), 100), Err(()));
        assert_eq!(requested_range(Some(&format!("bytes={max}-{max}")), 100), Err(()));
        assert_eq!(
            requested_range(Some("bytes=0-99999999999999999999999"), 100),
            Ok(Some(0..100)),
            "past u64 saturates"
        );
        assert_eq!(requested_range(Some("bytes=+5-9"), 100), Err(()), "digits only");
        assert_eq!(requested_range(Some(&format!("bytes=99-{max}")), 100), Ok(Some(99..100)));
    }
}
