//! What every HTTP response of an API process gets on its way out: a request log line that
//! never holds a secret, and the headers with which the studio's pages defend themselves.
//!
//! The log carries the path and a query string whose secret-looking parameters (`access_token`,
//! anything naming a token, key, secret or password) are replaced by `***` — a token pasted into
//! a URL by mistake must not end up in log storage. The headers (§8): a Content-Security-Policy
//! that allows only the server's own scripts, styles and sockets and no framing, `nosniff`,
//! `no-referrer` (so a URL never leaks to another site), and `X-Frame-Options` for old browsers.

use poem::http::{HeaderValue, header};
use poem::{Endpoint, IntoResponse, Request, Response};
use std::time::Instant;
use tracing::Instrument;

/// The studio's policy: its own files only; sockets to itself; never framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; worker-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The interactive API documentation runs the framework's inline scripts; it gets the same
/// headers but a policy that lets those run (it holds no token of the studio's).
const DOCS_POLICY: &str = "default-src 'self' 'unsafe-inline' data:; frame-ancestors 'none'";

/// Parameters whose values are secrets when their lowercase name contains one of these.
const SECRET_NAMES: [&str; 4] = ["token", "key", "secret", "password"];

/// `query` with the value of every secret-looking parameter replaced by `***`.
pub fn redacted_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if SECRET_NAMES.iter().any(|s| name.to_ascii_lowercase().contains(s)) => {
                format!("{name}=***")
            }
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Middleware: one span per request (method, path, redacted query) and one line with the
/// status and duration.
pub async fn log_request<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let query = req.uri().query().map(redacted_query).unwrap_or_default();
    let span = tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), query = %query);
    async move {
        let started = Instant::now();
        let result = next.call(req).await.map(IntoResponse::into_response);
        let duration = started.elapsed();
        match &result {
            Ok(response) => tracing::info!(status = %response.status(), ?duration, "response"),
            Err(error) => tracing::info!(status = %error.status(), %error, ?duration, "error"),
        }
        result
    }
    .instrument(span)
    .await
}

/// Middleware: the security headers on every response (errors included).
pub async fn secure_headers<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let docs = req.uri().path().starts_with("/docs");
    let mut response = match next.call(req).await {
        Ok(response) => response.into_response(),
        Err(error) => error.into_response(),
    };
    let headers = response.headers_mut();
    let policy = if docs { DOCS_POLICY } else { CONTENT_SECURITY_POLICY };
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(policy));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_a_query_are_replaced() {
        assert_eq!(redacted_query("access_token=al_abc&x=1"), "access_token=***&x=1");
        assert_eq!(
            redacted_query("limit=5&API_KEY=zz&secret=s&password=p"),
            "limit=5&API_KEY=***&secret=***&password=***"
        );
        assert_eq!(redacted_query("token"), "token", "a name without a value shows nothing");
        assert_eq!(redacted_query("project_id=1"), "project_id=1");
    }
}
