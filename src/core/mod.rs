//! The decision: quorum, the power and battery model, pause, and how to go
//! on after a restart. Pure: values and time in, decisions out. Nothing here
//! imports the configuration, tokio, the file system or the network, or
//! reads a clock.

pub mod moment;
pub mod pause;
pub mod power;
pub mod quorum;
pub mod restore;
pub mod status;
pub mod wake;

pub use moment::Moment;
pub use pause::PauseRecord;
pub use power::{PowerModel, PowerSettings};
pub use quorum::Quorum;
pub use restore::{Saved, newest, restore};
pub use status::{Cause, Published, Status, Transition};
pub use wake::{Mac, Wake, WakeRecord, WakeSettings};
