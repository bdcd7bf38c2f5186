//! Closed sets of states as the API names them: enums in the OpenAPI document, so generated
//! SDKs offer them as enums, each converted once from the domain's own type. Fields of these
//! types carry no doc comment: poem-openapi would wrap a described reference in `allOf`, which
//! SDK generators refuse for enums; each type's own description is in the document.

use audiolab_domain::clip::ClipStatus;
use audiolab_domain::job::{JobKind, JobStatus};
use audiolab_domain::recording::RecordingStatus;
use poem_openapi::Enum;

/// Where a clip's audio stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum ClipState {
    /// Being imported or finalised; not playable yet.
    Processing,
    /// Playable.
    Ready,
    /// Could not be made playable; `error` says why.
    Failed,
}

impl From<ClipStatus> for ClipState {
    fn from(status: ClipStatus) -> Self {
        match status {
            ClipStatus::Processing => Self::Processing,
            ClipStatus::Ready => Self::Ready,
            ClipStatus::Failed => Self::Failed,
        }
    }
}

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum JobKindName {
    FinalizeCapture,
    Mixdown,
    Import,
    Flatten,
}

impl From<JobKind> for JobKindName {
    fn from(kind: JobKind) -> Self {
        match kind {
            JobKind::FinalizeCapture => Self::FinalizeCapture,
            JobKind::Mixdown => Self::Mixdown,
            JobKind::Import => Self::Import,
            JobKind::Flatten => Self::Flatten,
        }
    }
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl From<JobStatus> for JobState {
    fn from(status: JobStatus) -> Self {
        match status {
            JobStatus::Queued => Self::Queued,
            JobStatus::Running => Self::Running,
            JobStatus::Succeeded => Self::Succeeded,
            JobStatus::Failed => Self::Failed,
            JobStatus::Cancelled => Self::Cancelled,
        }
    }
}

/// Where a recording session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum RecordingState {
    Recording,
    Stopped,
    Finalizing,
    Saved,
    Failed,
    /// Interrupted (a crash, or its node died) and rebuilt from what reached storage.
    Recovered,
}

impl From<RecordingStatus> for RecordingState {
    fn from(status: RecordingStatus) -> Self {
        match status {
            RecordingStatus::Recording => Self::Recording,
            RecordingStatus::Stopped => Self::Stopped,
            RecordingStatus::Finalizing => Self::Finalizing,
            RecordingStatus::Saved => Self::Saved,
            RecordingStatus::Failed => Self::Failed,
            RecordingStatus::Recovered => Self::Recovered,
        }
    }
}

/// What the transport does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum TransportState {
    Stopped,
    Playing,
    Paused,
}

impl From<audiolab_domain::transport::TransportState> for TransportState {
    fn from(state: audiolab_domain::transport::TransportState) -> Self {
        use audiolab_domain::transport::TransportState as Engine;
        match state {
            Engine::Stopped => Self::Stopped,
            Engine::Playing => Self::Playing,
            Engine::Paused => Self::Paused,
        }
    }
}

/// A member's role in a project: `owner` (everything, one per project), `editor` (edits,
/// records, mixes, imports), `viewer` (reads and listens).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum RoleName {
    Owner,
    Editor,
    Viewer,
}

impl From<audiolab_domain::user::Role> for RoleName {
    fn from(role: audiolab_domain::user::Role) -> Self {
        use audiolab_domain::user::Role;
        match role {
            Role::Owner => Self::Owner,
            Role::Editor => Self::Editor,
            Role::Viewer => Self::Viewer,
        }
    }
}

impl From<RoleName> for audiolab_domain::user::Role {
    fn from(role: RoleName) -> Self {
        use audiolab_domain::user::Role;
        match role {
            RoleName::Owner => Role::Owner,
            RoleName::Editor => Role::Editor,
            RoleName::Viewer => Role::Viewer,
        }
    }
}

/// How a client device's round trip was found: `measured` by a loopback test, `estimated` from
/// the latencies the browser reports (on headphones), or set by hand (`manual`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum LatencySourceName {
    Measured,
    Estimated,
    Manual,
}

impl From<audiolab_domain::device::LatencySource> for LatencySourceName {
    fn from(source: audiolab_domain::device::LatencySource) -> Self {
        use audiolab_domain::device::LatencySource;
        match source {
            LatencySource::Measured => Self::Measured,
            LatencySource::Estimated => Self::Estimated,
            LatencySource::Manual => Self::Manual,
        }
    }
}

impl From<LatencySourceName> for audiolab_domain::device::LatencySource {
    fn from(source: LatencySourceName) -> Self {
        match source {
            LatencySourceName::Measured => Self::Measured,
            LatencySourceName::Estimated => Self::Estimated,
            LatencySourceName::Manual => Self::Manual,
        }
    }
}

/// Declares a value that must be one of a fixed list (integers or strings): an inline `enum` in
/// the document, so SDKs and test generators offer exactly those values, refused at parse time
/// otherwise with a message naming `$field`. Inline rather than a reference, so an optional,
/// nullable field of it stays a plain enum that SDK generators accept (a described reference
/// becomes an `allOf` they refuse). Fields of these types are optional and nullable, and
/// OpenAPI 3.0 asks a nullable enum to list null among its values.
macro_rules! choice {
    ($(#[$doc:meta])* $name:ident ($field:literal): $inner:ty, $ty:literal, $format:expr, [$($value:expr),+]) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name(pub $inner);

        impl $name {
            pub const VALUES: &'static [$inner] = &[$($value),+];
        }

        impl poem_openapi::types::Type for $name {
            const IS_REQUIRED: bool = true;
            type RawValueType = Self;
            type RawElementValueType = Self;

            fn name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn schema_ref() -> poem_openapi::registry::MetaSchemaRef {
                let mut schema = poem_openapi::registry::MetaSchema::new($ty);
                schema.format = $format;
                schema.enum_items = Self::VALUES.iter().map(|v| serde_json::Value::from(*v)).collect();
                schema.enum_items.push(serde_json::Value::Null);
                poem_openapi::registry::MetaSchemaRef::Inline(Box::new(schema))
            }

            fn as_raw_value(&self) -> Option<&Self::RawValueType> {
                Some(self)
            }

            fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
                Box::new(self.as_raw_value().into_iter())
            }
        }

        impl poem_openapi::types::ParseFromJSON for $name {
            fn parse_from_json(value: Option<serde_json::Value>) -> poem_openapi::types::ParseResult<Self> {
                let known = Self::VALUES.iter().find(|v| value.as_ref() == Some(&serde_json::Value::from(**v)));
                match known {
                    Some(v) => Ok(Self(*v)),
                    None => Err(poem_openapi::types::ParseError::custom(format!("{}: must be one of {:?}", $field, Self::VALUES))),
                }
            }
        }

        impl poem_openapi::types::ToJSON for $name {
            fn to_json(&self) -> Option<serde_json::Value> {
                Some(serde_json::Value::from(self.0))
            }
        }
    };
}

choice!(
    /// A project sample rate in Hz.
    SampleRateHz("sample_rate"): u32, "integer", Some("uint32"), [44100, 48000, 88200, 96000, 192000]
);

choice!(
    /// Bit depth of integer audio.
    BitDepthBits("bit_depth"): u16, "integer", Some("uint16"), [16, 24, 32]
);

choice!(
    /// A mixdown's file format, by the names the domain parses (`AudioFormat::as_str`).
    MixdownFormat("format"): &'static str, "string", None, ["wav16", "wav24", "wav_f32", "flac16", "flac24"]
);

#[cfg(test)]
mod tests {
    use super::MixdownFormat;

    #[test]
    fn mixdown_formats_are_the_domains() {
        let names: Vec<&str> = audiolab_domain::mixdown::AudioFormat::ALL.iter().map(|f| f.as_str()).collect();
        assert_eq!(MixdownFormat::VALUES, names.as_slice());
    }
}

/// A string in a request body that must be a JSON string: the framework's own `String` also
/// takes `false` or `12` and turns them into text, which the document does not allow.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Text(pub String);

impl From<Text> for String {
    fn from(text: Text) -> String {
        text.0
    }
}

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl poem_openapi::types::Type for Text {
    const IS_REQUIRED: bool = true;
    type RawValueType = String;
    type RawElementValueType = String;

    fn name() -> std::borrow::Cow<'static, str> {
        "string".into()
    }

    fn schema_ref() -> poem_openapi::registry::MetaSchemaRef {
        <String as poem_openapi::types::Type>::schema_ref()
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl poem_openapi::types::ParseFromJSON for Text {
    fn parse_from_json(value: Option<serde_json::Value>) -> poem_openapi::types::ParseResult<Self> {
        match value {
            Some(serde_json::Value::String(text)) => Ok(Text(text)),
            other => Err(poem_openapi::types::ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

impl poem_openapi::types::ToJSON for Text {
    fn to_json(&self) -> Option<serde_json::Value> {
        Some(serde_json::Value::String(self.0.clone()))
    }
}

/// A role an owner can give: the owner role itself stays with the project's creator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum GrantableRole {
    Editor,
    Viewer,
}

impl From<GrantableRole> for audiolab_domain::user::Role {
    fn from(role: GrantableRole) -> Self {
        match role {
            GrantableRole::Editor => Self::Editor,
            GrantableRole::Viewer => Self::Viewer,
        }
    }
}
