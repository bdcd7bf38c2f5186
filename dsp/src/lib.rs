//! AudioLab's pure DSP: the render core shared by the real-time engine and the offline mixdown.
//!
//! No I/O, no allocation in the per-block functions: they are safe on the audio thread. The
//! render is split in two stages so the engine can do the heavy part ahead of time:
//!
//! 1. [`render::add_clip`]: a clip's source frames, with clip gain and fades, added into a
//!    track's *pre-fader* stereo buffer (the engine's reader thread does this ahead of playback);
//! 2. [`mix::mix_track`]: a pre-fader buffer through the track's fader, pan and mute/solo, summed
//!    into the output (the audio thread does this, so mixer moves apply within one block).
//!
//! Both stages are per-frame functions of absolute positions, so any split of the timeline into
//! blocks gives the same samples: the engine and the mixdown agree sample for sample.

pub mod dither;
pub mod gain;
pub mod input;
pub mod loudness;
pub mod metronome;
pub mod mix;
pub mod peaks;
pub mod render;
pub mod resample;
pub mod transport;

pub use gain::{constant_power_pan, db_to_linear};
