//! The API's error model.
//!
//! Policy: a client's mistake (malformed JSON, a missing field, an out-of-range value, an unknown
//! id, a conflict) is a 4xx whose body says what was wrong: `{"detail", "errors", "success":
//! false}`. Anything unexpected is a 500 whose cause chain is logged and whose body says only
//! that it happened. 503 means a dependency (the database) is unreachable. Input never causes a 500.

use audiolab_domain::ValidationError;
use audiolab_domain::transport::TransportError;
use audiolab_store::StoreError;
use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::error::{ParseMultipartError, ParseParamError, ParsePathError, ParseRequestPayloadError};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};

/// The body of every error response.
#[derive(Debug, Clone, Object)]
pub struct ErrorBody {
    /// What went wrong, in one sentence.
    pub detail: String,
    /// Every individual problem found, e.g. one per invalid field (`"volume: must be between 0 and 2"`).
    pub errors: Vec<String>,
    /// Always `false` on an error.
    pub success: bool,
}

/// Errors any operation may return.
#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// The request could not be read (malformed JSON, wrong content).
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// No valid bearer token: none was sent, or it is unknown, revoked or expired.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>, #[oai(header = "WWW-Authenticate")] String),
    /// The caller is a member of the project whose role does not allow this (viewers change nothing;
    /// only the owner deletes the project or manages its members).
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// The resource does not exist, or belongs to a project the caller is not a member of.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The request conflicts with the current state, e.g. a track index already in use.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// The upload is larger than the configured limit.
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// The body's content type is not one the operation reads (JSON, or audio for uploads).
    /// Raised by the framework before a handler runs; answered by [`framework_error`].
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// The requested byte range lies outside the file; `Content-Range` gives its length.
    #[oai(status = 416)]
    RangeNotSatisfiable(Json<ErrorBody>, #[oai(header = "Content-Range")] String),
    /// A value is missing, of the wrong type or out of range.
    #[oai(status = 422)]
    Unprocessable(Json<ErrorBody>),
    /// Too many failed logins for this username from this address, or from this address, or
    /// too many registrations from it; retry after `Retry-After` seconds.
    #[oai(status = 429)]
    TooManyRequests(Json<ErrorBody>, #[oai(header = "Retry-After")] u32),
    /// An unexpected failure; it has been logged.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// A dependency such as the database is unreachable, the audio node is at its limit of
    /// loaded projects, or every password-hashing slot is busy; retry after the seconds
    /// `Retry-After` gives.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>, #[oai(header = "Retry-After")] u32),
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The statuses an operation can answer with besides success, as bits: each operation names
/// its set in its return type ([`Answer`]), and the document lists exactly those.
pub mod codes {
    pub const BAD_REQUEST: u32 = 1 << 0;
    pub const UNAUTHORIZED: u32 = 1 << 1;
    pub const FORBIDDEN: u32 = 1 << 2;
    pub const NOT_FOUND: u32 = 1 << 3;
    pub const CONFLICT: u32 = 1 << 4;
    pub const TOO_LARGE: u32 = 1 << 5;
    pub const UNSUPPORTED: u32 = 1 << 6;
    pub const RANGE: u32 = 1 << 7;
    pub const UNPROCESSABLE: u32 = 1 << 8;
    pub const TOO_MANY: u32 = 1 << 9;
    pub const INTERNAL: u32 = 1 << 10;
    pub const UNAVAILABLE: u32 = 1 << 11;

    /// Any operation can fail unexpectedly or find the database down.
    pub const ANY: u32 = INTERNAL | UNAVAILABLE;
    /// An operation that needs a token (400 when more than one `Authorization` header is sent).
    pub const SIGNED: u32 = ANY | UNAUTHORIZED | BAD_REQUEST;
    /// A path or query parameter that may be malformed or name nothing the caller can see.
    pub const LOOKUP: u32 = NOT_FOUND | UNPROCESSABLE;
    /// A JSON request body: unreadable, too large, the wrong content type or invalid.
    pub const BODY: u32 = BAD_REQUEST | TOO_LARGE | UNSUPPORTED | UNPROCESSABLE;
    /// Reading something of a project.
    pub const READ: u32 = SIGNED | LOOKUP;
    /// Changing something of a project: refused to viewers, may collide with another change.
    pub const CHANGE: u32 = READ | FORBIDDEN | CONFLICT;
    /// Changing something of a project with a JSON body.
    pub const CHANGE_BODY: u32 = CHANGE | BODY;

    /// The bit of an HTTP status, if it is one an operation declares.
    pub const fn of(status: u16) -> u32 {
        match status {
            400 => BAD_REQUEST,
            401 => UNAUTHORIZED,
            403 => FORBIDDEN,
            404 => NOT_FOUND,
            409 => CONFLICT,
            413 => TOO_LARGE,
            415 => UNSUPPORTED,
            416 => RANGE,
            422 => UNPROCESSABLE,
            429 => TOO_MANY,
            500 => INTERNAL,
            503 => UNAVAILABLE,
            _ => 0,
        }
    }
}

/// An operation's error: an [`ApiError`] whose possible statuses are the bits of `CODES`, so
/// each operation documents exactly the statuses it can answer with.
#[derive(Debug)]
pub struct Fails<const CODES: u32>(pub ApiError);

/// What a handler returns: its success, or one of the errors its `CODES` declare.
pub type Answer<T, const CODES: u32> = Result<T, Fails<CODES>>;

impl<const CODES: u32> ApiResponse for Fails<CODES> {
    fn meta() -> poem_openapi::registry::MetaResponses {
        let mut meta = ApiError::meta();
        meta.responses.retain(|r| r.status.is_some_and(|s| CODES & codes::of(s) != 0));
        meta
    }

    fn register(registry: &mut poem_openapi::registry::Registry) {
        ApiError::register(registry);
    }
}

impl<const CODES: u32> IntoResponse for Fails<CODES> {
    fn into_response(self) -> Response {
        let response = self.0.into_response();
        // An answer the operation does not declare is a bug in its declaration: tests fail on it.
        debug_assert!(
            CODES & codes::of(response.status().as_u16()) != 0,
            "undeclared status {} from an operation declaring {CODES:#b}",
            response.status()
        );
        response
    }
}

impl<const CODES: u32> From<Fails<CODES>> for poem::Error {
    fn from(fails: Fails<CODES>) -> poem::Error {
        poem::Error::from_response(fails.into_response())
    }
}

impl<const CODES: u32, E: Into<ApiError>> From<E> for Fails<CODES> {
    fn from(err: E) -> Self {
        Fails(err.into())
    }
}

/// Seconds a client is asked to wait before retrying a 503.
pub const RETRY_AFTER_SECS: u32 = 5;

fn body(detail: impl Into<String>, errors: Vec<String>) -> Json<ErrorBody> {
    Json(ErrorBody { detail: detail.into(), errors, success: false })
}

impl ApiError {
    pub fn not_found(what: &str) -> Self {
        ApiError::NotFound(body(format!("{what} not found"), vec![]))
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        let detail = detail.into();
        ApiError::Conflict(body(detail.clone(), vec![detail]))
    }

    pub fn unprocessable(detail: impl Into<String>) -> Self {
        let detail = detail.into();
        ApiError::Unprocessable(body(detail.clone(), vec![detail]))
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        let detail = detail.into();
        ApiError::BadRequest(body(detail.clone(), vec![detail]))
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        let detail = detail.into();
        ApiError::Unauthorized(body(detail.clone(), vec![detail]), "Bearer".into())
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        let detail = detail.into();
        ApiError::Forbidden(body(detail.clone(), vec![detail]))
    }

    pub fn too_many_requests(detail: impl Into<String>, retry_after: u64) -> Self {
        let detail = detail.into();
        ApiError::TooManyRequests(body(detail.clone(), vec![detail]), u32::try_from(retry_after).unwrap_or(u32::MAX))
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        let detail = detail.into();
        ApiError::Unavailable(body(detail.clone(), vec![detail]), RETRY_AFTER_SECS)
    }

    pub fn too_large(limit: u64) -> Self {
        ApiError::PayloadTooLarge(body(format!("the upload is larger than {limit} bytes"), vec![]))
    }

    pub fn range_not_satisfiable(length: u64) -> Self {
        let detail = format!("the range lies outside the file's {length} bytes");
        ApiError::RangeNotSatisfiable(body(detail, vec![]), format!("bytes */{length}"))
    }

    /// Logs `err` with its cause chain and answers an opaque 500.
    pub fn internal(err: &(dyn std::error::Error + 'static)) -> Self {
        let mut chain = err.to_string();
        let mut source = err.source();
        while let Some(cause) = source {
            chain.push_str(": ");
            chain.push_str(&cause.to_string());
            source = cause.source();
        }
        tracing::error!(error = %chain, "request failed");
        ApiError::Internal(body("internal server error", vec![]))
    }
}

impl From<ValidationError> for ApiError {
    fn from(err: ValidationError) -> Self {
        ApiError::Unprocessable(body(format!("invalid {}", err.field), vec![err.to_string()]))
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(what) | StoreError::MissingParent(what) => ApiError::not_found(what),
            StoreError::Conflict(message) | StoreError::Stale(message) => ApiError::conflict(message),
            StoreError::Invalid(invalid) => invalid.into(),
            err if err.is_unavailable() => {
                tracing::warn!(error = %err, "database unavailable");
                ApiError::Unavailable(body("the database is unavailable; try again shortly", vec![]), RETRY_AFTER_SECS)
            }
            err => ApiError::internal(&err),
        }
    }
}

impl From<TransportError> for ApiError {
    fn from(err: TransportError) -> Self {
        match err {
            TransportError::NotFound(what) => ApiError::not_found(&what),
            TransportError::Invalid(message) => ApiError::unprocessable(message),
            TransportError::Conflict(message) => ApiError::conflict(message),
            TransportError::Forbidden(message) => ApiError::forbidden(message),
            TransportError::Unavailable(message) => ApiError::unavailable(message),
            TransportError::Internal(message) => {
                tracing::error!(error = %message, "transport failed");
                ApiError::Internal(body("internal server error", vec![]))
            }
        }
    }
}

impl From<audiolab_app::access::AccessError> for ApiError {
    fn from(err: audiolab_app::access::AccessError) -> Self {
        use audiolab_app::access::AccessError;
        match err {
            AccessError::NotFound(what) => ApiError::not_found(what),
            AccessError::Forbidden(message) => ApiError::forbidden(message),
            AccessError::Store(err) => err.into(),
        }
    }
}

impl From<audiolab_app::accounts::AccountError> for ApiError {
    fn from(err: audiolab_app::accounts::AccountError) -> Self {
        use audiolab_app::accounts::AccountError;
        match err {
            AccountError::Invalid(invalid) => invalid.into(),
            AccountError::Unauthorized(message) => ApiError::unauthorized(message),
            AccountError::WrongPassword => ApiError::forbidden(err.to_string()),
            AccountError::RateLimited { wait, .. } => ApiError::too_many_requests(err.to_string(), wait),
            AccountError::Busy(wait) => {
                let detail = err.to_string();
                ApiError::Unavailable(body(detail.clone(), vec![detail]), u32::try_from(wait).unwrap_or(1))
            }
            AccountError::Store(err) => err.into(),
            err @ AccountError::Hashing(_) => ApiError::internal(&err),
        }
    }
}

/// A response in the JSON error shape with `status` and `detail`.
pub fn error_response(status: StatusCode, detail: String) -> Response {
    let mut response = Json(ErrorBody { detail: detail.clone(), errors: vec![detail], success: false }).into_response();
    response.set_status(status);
    response
}

/// Turns errors raised by the framework itself (unparseable parameters or bodies, unknown
/// routes, oversized bodies) into the same JSON error body, so clients see one error shape.
pub async fn framework_error(err: poem::Error) -> Response {
    if err.is_from_response() {
        return err.into_response();
    }
    let (status, detail) = classify(&err);
    let message = err.to_string();
    let errors = match detail.strip_prefix("invalid ") {
        Some(rule) => vec![rule.to_owned(), message],
        None => vec![message],
    };
    let mut response = Json(ErrorBody { detail, errors, success: false }).into_response();
    response.set_status(status);
    response
}

/// The field and rule a body broke, in words (`start: must be at least 0`), read from the
/// framework's validation message (`field `start` verification failed. minimum(0, …)`).
fn rule_broken(reason: &str) -> Option<String> {
    // A closed set of values names its field itself: `…: bit_depth: must be one of [16, 24, 32]`.
    if let Some(at) = reason.find(": must be one of [") {
        let field = reason[..at].rsplit([' ', '"']).next()?;
        let end = reason[at..].find(']')? + at + 1;
        return Some(format!("{field}{}", &reason[at..end]));
    }
    let rest = &reason[reason.find("field `")? + 7..];
    let (field, rest) = rest.split_once('`')?;
    let rule = rest.split_once("verification failed. ")?.1;
    let argument = |rule: &str| rule.split_once('(').map(|(_, a)| a.split([',', ')']).next().unwrap_or("").to_owned());
    let words = if rule.starts_with("minimum(") {
        format!("must be at least {}", argument(rule)?)
    } else if rule.starts_with("maximum(") {
        format!("must be at most {}", argument(rule)?)
    } else if rule.starts_with("maxLength(") {
        format!("must be at most {} characters", argument(rule)?)
    } else if rule.starts_with("minLength(") {
        format!("must be at least {} characters", argument(rule)?)
    } else if rule.starts_with("pattern(") {
        "is blank, contains control characters or is not of the documented form".to_owned()
    } else {
        "breaks a documented rule".to_owned()
    };
    Some(format!("{field}: {words}"))
}

fn classify(err: &poem::Error) -> (StatusCode, String) {
    if let Some(payload) = err.downcast_ref::<ParseRequestPayloadError>() {
        // Syntax errors come from the JSON parser, which always gives a position; schema errors
        // (missing field, wrong type) come from the typed body and name the type instead.
        if payload.reason.contains(" at line ") && payload.reason.contains(" column ") {
            return (StatusCode::BAD_REQUEST, "the request body is not valid JSON".into());
        }
        let detail = match rule_broken(&payload.reason) {
            Some(rule) => format!("invalid {rule}"),
            None => "the request body does not match the expected schema".into(),
        };
        return (StatusCode::UNPROCESSABLE_ENTITY, detail);
    }
    if err.is::<ParseParamError>() || err.is::<ParsePathError>() || err.is::<ParseMultipartError>() {
        return (StatusCode::UNPROCESSABLE_ENTITY, "a request parameter is missing or invalid".into());
    }
    let status = err.status();
    let detail = match status {
        StatusCode::NOT_FOUND => "no such resource".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed on this resource".to_owned(),
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is too large".to_owned(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported content type; send application/json".to_owned(),
        status if status.is_server_error() => {
            tracing::error!(error = %err, "request failed");
            "internal server error".to_owned()
        }
        _ => err.to_string(),
    };
    (status, detail)
}

#[cfg(test)]
mod tests {
    use super::rule_broken;

    #[test]
    fn validation_messages_become_field_and_rule() {
        let reason = r#"parse request payload error: failed to parse "CreateLoopRegion": field `start` verification failed. minimum(0, exclusive: false)"#;
        assert_eq!(rule_broken(reason).as_deref(), Some("start: must be at least 0"));
        let reason = r#"failed to parse "CreateTrack": field `name` verification failed. maxLength(100)"#;
        assert_eq!(rule_broken(reason).as_deref(), Some("name: must be at most 100 characters"));
        let reason = r#"failed to parse "BitDepthBits": bit_depth: must be one of [16, 24, 32] (occurred while parsing "CreateProject")"#;
        assert_eq!(rule_broken(reason).as_deref(), Some("bit_depth: must be one of [16, 24, 32]"));
        assert_eq!(rule_broken("expected a string"), None);
    }
}
