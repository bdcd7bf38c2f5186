//! AudioLab's audio files and where they are kept.
//!
//! [`wav`] reads frames at any position without decoding what comes before (the engine's
//! read-ahead needs that) and writes WAV; [`storage`] maps object keys to files, refusing keys
//! that could escape the storage root; [`encode`] writes renders as WAV or FLAC as they are produced;
//! [`decode`] turns any supported file into clip audio.

pub mod capture;
pub mod decode;
pub mod encode;
pub mod mix;
pub mod storage;
pub mod timeline;
pub mod wav;
