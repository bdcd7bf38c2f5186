//! An optional JSON request body: absent (or empty) means "use the defaults", an object is
//! read as usual, and a literal `null` — which the document does not allow — is refused, where
//! the framework's `Json<Option<T>>` would take it for "absent".

use poem::{FromRequest, Request, RequestBody, Result};
use poem_openapi::error::ParseRequestPayloadError;
use poem_openapi::payload::{Json, ParsePayload, Payload};
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::{ParseFromJSON, Type};

#[derive(Debug)]
pub struct OptionalJson<T>(pub Option<T>);

impl<T: Type> Payload for OptionalJson<T> {
    const CONTENT_TYPE: &'static str = <Json<T> as Payload>::CONTENT_TYPE;

    fn check_content_type(content_type: &str) -> bool {
        <Json<T> as Payload>::check_content_type(content_type)
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: ParseFromJSON> ParsePayload for OptionalJson<T> {
    const IS_REQUIRED: bool = false;

    async fn from_request(request: &Request, body: &mut RequestBody) -> Result<Self> {
        let data = Vec::<u8>::from_request(request, body).await?;
        if data.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(None));
        }
        let reason = |reason: String| ParseRequestPayloadError { reason };
        let value: serde_json::Value = serde_json::from_slice(&data).map_err(|e| reason(e.to_string()))?;
        if value.is_null() {
            return Err(reason("the body must be a JSON object, or absent".into()).into());
        }
        T::parse_from_json(Some(value)).map(|v| Self(Some(v))).map_err(|e| reason(e.into_message()).into())
    }
}

poem_openapi::impl_apirequest_for_payload!(OptionalJson<T>, T: ParseFromJSON);
