//! The `audiolab` binary as a library: command-line interface and process startup, so tests
//! can start the real application on port 0.

pub mod cli;
pub mod connection;
pub mod preflight;
pub mod startup;
pub mod telemetry;

pub use startup::{Application, Role};
