//! The daemon's clocks, behind a trait so that its unit tests set the time:
//! monotonic time for the decision, wall time for people and for a pause's
//! end, and the boot clock for the state that survives a restart.

use std::time::Instant;

use chrono::{DateTime, Local};

use crate::core::Moment;
use crate::sys::boot;

pub trait Clock: Send + Sync {
    /// Monotonic time.
    fn now(&self) -> Instant;
    /// Wall time.
    fn wall(&self) -> DateTime<Local>;
    /// Now on the clocks that survive a restart.
    fn moment(&self) -> Moment;
}

/// The machine's clocks.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn wall(&self) -> DateTime<Local> {
        Local::now()
    }

    fn moment(&self) -> Moment {
        boot::now()
    }
}

#[cfg(test)]
pub use manual::ManualClock;

#[cfg(test)]
mod manual {
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    use chrono::{DateTime, Local, TimeDelta};

    use super::Clock;
    use crate::core::Moment;

    /// Clocks that move only when told to: all by the same amount, or the
    /// wall clock alone (a step, as NTP makes one).
    pub struct ManualClock {
        start: Instant,
        wall: DateTime<Local>,
        boot_id: String,
        since_boot: Duration,
        elapsed: Mutex<Duration>,
        wall_steps: Mutex<TimeDelta>,
    }

    impl ManualClock {
        pub fn new() -> ManualClock {
            ManualClock {
                start: Instant::now(),
                wall: Local::now(),
                boot_id: "11111111-2222-3333-4444-555555555555".into(),
                since_boot: Duration::from_secs(1000),
                elapsed: Mutex::new(Duration::ZERO),
                wall_steps: Mutex::new(TimeDelta::zero()),
            }
        }

        pub fn advance(&self, by: Duration) {
            *self.elapsed.lock().unwrap_or_else(|p| p.into_inner()) += by;
        }

        /// Steps the wall clock alone by `by` (ahead or back); the
        /// monotonic and boot clocks do not move.
        pub fn step_wall(&self, by: TimeDelta) {
            *self.wall_steps.lock().unwrap_or_else(|p| p.into_inner()) += by;
        }

        fn elapsed(&self) -> Duration {
            *self.elapsed.lock().unwrap_or_else(|p| p.into_inner())
        }
    }

    impl Clock for ManualClock {
        fn now(&self) -> Instant {
            self.start + self.elapsed()
        }

        fn wall(&self) -> DateTime<Local> {
            let steps = *self.wall_steps.lock().unwrap_or_else(|p| p.into_inner());
            self.wall + TimeDelta::from_std(self.elapsed()).unwrap_or(TimeDelta::MAX) + steps
        }

        fn moment(&self) -> Moment {
            Moment {
                wall: self.wall(),
                boot_id: Some(self.boot_id.clone()),
                since_boot: Some(self.since_boot + self.elapsed()),
            }
        }
    }
}
