//! NUT: the data file dummy-ups reads (and whether it goes away with the
//! service), the upsd client that reads back what NUT serves and the health
//! weighed from it, and the configuration snippets `fakeupsctl nut-config`
//! prints.

pub mod access;
pub mod address;
pub mod client;
pub mod data_file;
pub mod health;
pub mod lifetime;
pub mod setup;
pub mod view;

pub use data_file::{DataFile, Identity};
pub use health::{Health, HealthEvent};
pub use view::Snapshot;
