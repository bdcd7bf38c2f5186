//! Typed identifiers, so a track id can never be passed where a project id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
        #[serde(transparent)]
        #[schemars(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh, time-ordered id (UUIDv7), so ids sort roughly by creation.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(/// Identifies a user account (the owner of projects).
    UserId);
id_type!(/// Identifies an API token (a login session or a personal API key).
    TokenId);
id_type!(/// Identifies a project.
    ProjectId);
id_type!(/// Identifies a track.
    TrackId);
id_type!(/// Identifies a clip on a track.
    ClipId);
id_type!(/// Identifies one take (one pass) of a recording.
    TakeId);
id_type!(/// Identifies a recording session.
    RecordingSessionId);
id_type!(/// Identifies a loop region.
    LoopRegionId);
id_type!(/// Identifies a background job.
    JobId);
