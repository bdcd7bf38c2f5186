//! The import path's decoder on arbitrary bytes: it may refuse them, never panic or hang.
//! Run with `cargo +nightly fuzz run import` from the repository root.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The extension hint changes which demuxer is tried first; drive it from the input too.
    let hint = ["wav", "flac", "mp3", "ogg", "aiff", "m4a"].get(usize::from(data.first().copied().unwrap_or(0)) % 7);
    let _ = audiolab_media::decode::decode_all(data.to_vec(), hint.copied());
});
