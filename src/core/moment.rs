//! When something happened, on the clocks that matter across a wall-clock
//! step, a restart and a reboot. A value: nothing here reads a clock.

use std::time::Duration;

use chrono::{DateTime, Local};

/// A moment on three clocks: wall time, for people and for what must hold
/// across a reboot (the end of a pause set before it); the boot and the time
/// since it (CLOCK_BOOTTIME, which wall-clock steps do not move and which
/// counts suspend) to measure spans within one boot: how long the daemon
/// was down, how long a pause has left.
#[derive(Debug, Clone, PartialEq)]
pub struct Moment {
    pub wall: DateTime<Local>,
    pub boot_id: Option<String>,
    pub since_boot: Option<Duration>,
}
