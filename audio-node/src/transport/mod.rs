//! The node's side of the socket: connections and their commands, the fan-out of what engines
//! report, the internal control route, and what happens when a right is taken away.

pub mod hub;
pub mod internal;
pub mod reports;
pub mod revocation;
pub mod ws;
