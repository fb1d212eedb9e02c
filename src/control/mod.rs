//! The control socket: the protocol (frames, requests, the status report),
//! the daemon's server with its permission checks, and fakeupsctl's client.
//! The protocol and the report depend on no I/O module of fakeups.

pub mod client;
mod limits;
pub mod peer;
pub mod protocol;
pub mod report;
pub mod server;

pub use protocol::{ErrorKind, Request, Response};
pub use report::StatusReport;
pub use server::{Command, ControlServer};
