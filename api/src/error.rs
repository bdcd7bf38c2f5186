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
    /// The resource does not exist (or belongs to someone else).
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
    /// An unexpected failure; it has been logged.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// A dependency such as the database is unreachable, or the audio node is at its limit of
    /// loaded projects; retry after the seconds `Retry-After` gives.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>, #[oai(header = "Retry-After")] u32),
}

pub type ApiResult<T> = Result<T, ApiError>;

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
            StoreError::Conflict(message) => ApiError::conflict(message),
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
            TransportError::Unavailable(message) => ApiError::unavailable(message),
            TransportError::Internal(message) => {
                tracing::error!(error = %message, "transport failed");
                ApiError::Internal(body("internal server error", vec![]))
            }
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
    let mut response = Json(ErrorBody { detail, errors: vec![message], success: false }).into_response();
    response.set_status(status);
    response
}

fn classify(err: &poem::Error) -> (StatusCode, String) {
    if let Some(payload) = err.downcast_ref::<ParseRequestPayloadError>() {
        // Syntax errors come from the JSON parser, which always gives a position; schema errors
        // (missing field, wrong type) come from the typed body and name the type instead.
        if payload.reason.contains(" at line ") && payload.reason.contains(" column ") {
            return (StatusCode::BAD_REQUEST, "the request body is not valid JSON".into());
        }
        return (StatusCode::UNPROCESSABLE_ENTITY, "the request body does not match the expected schema".into());
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
