//! The node among others: its registration, its subscription to the bus, and how it follows
//! the revisions of the projects it hosts (§13).

pub mod bus;
mod follow;
pub mod registry;
