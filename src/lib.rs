//! fakeups: a virtual UPS for home labs. It pings sentinel hosts that are not
//! on the UPS and, when they go silent, makes the distribution's NUT server
//! (dummy-ups) announce OB, then OB LB, and OL again when they answer.
//!
//! The binaries in src/bin only call `daemon::main` and `ctl::main`. What
//! else is public here is what the integration tests need: the command
//! lines (for the man-page check) and the configuration's defaults. See
//! ARCHITECTURE.md for the map of the modules and what may use what.

pub mod cli;
pub mod config;
pub mod ctl;
pub mod daemon;

mod control;
mod core;
mod events;
mod format;
mod nut;
mod paths;
mod probe;
mod state;
mod sys;
mod wake;
