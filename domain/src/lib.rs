//! The AudioLab domain model: units, entities and the rules that keep them valid.
//!
//! Everything here is pure: no I/O, no clocks except timestamps handed in by callers. The store
//! persists these types and the API converts its JSON into them once, at the edge.

pub mod clip;
pub mod comp;
pub mod device;
pub mod error;
pub mod history;
pub mod ids;
pub mod job;
pub mod loop_region;
pub mod mixdown;
pub mod project;
pub mod recording;
pub mod track;
pub mod transport;
pub mod units;
pub mod user;

pub use error::{ValidationError, ValidationResult};
pub use ids::{ClipId, JobId, LoopRegionId, ProjectId, RecordingSessionId, TakeId, TokenId, TrackId, UserId};
pub use units::{BitDepth, Decibels, Frames, Pan, SampleRate, Tempo, TimeSignature, Volume};

/// The current time at the precision every store keeps (microseconds), so a value written and
/// read back compares equal.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(6)
}
