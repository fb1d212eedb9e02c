//! fakeups: a virtual UPS for home labs. It pings sentinel hosts that are not
//! on the UPS and, when they go silent, makes the distribution's NUT server
//! (dummy-ups) announce OB, then OB LB, and OL again when they answer.
//!
//! The binaries in src/bin only parse their arguments and call into here.

pub mod atomic_file;
pub mod cli;
pub mod config;
pub mod control;
pub mod control_server;
pub mod ctl;
pub mod daemon;
pub mod logging;
pub mod nut_client;
pub mod nut_data;
pub mod nut_setup;
pub mod nut_view;
pub mod power;
pub mod privileges;
pub mod probe;
pub mod round_timer;
pub mod sentinel;
pub mod state;
pub mod sysexits;
pub mod systemd;
