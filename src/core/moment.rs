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

impl Moment {
    /// The time since boot at this moment, if `boot_id` names this
    /// moment's boot (both known): then spans from a time on that boot's
    /// clock can be measured on it. None for another boot or an unknown one.
    pub fn since_boot_in(&self, boot_id: Option<&str>) -> Option<Duration> {
        match (boot_id, self.boot_id.as_deref()) {
            (Some(theirs), Some(ours)) if theirs == ours => self.since_boot,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_boot_clock_counts_only_within_its_boot() {
        let m = Moment {
            wall: Local::now(),
            boot_id: Some("a".into()),
            since_boot: Some(Duration::from_secs(5)),
        };
        assert_eq!(m.since_boot_in(Some("a")), Some(Duration::from_secs(5)));
        assert_eq!(m.since_boot_in(Some("b")), None);
        assert_eq!(m.since_boot_in(None), None);
        let unknown = Moment {
            boot_id: None,
            ..m.clone()
        };
        assert_eq!(unknown.since_boot_in(None), None);
        let no_clock = Moment {
            since_boot: None,
            ..m
        };
        assert_eq!(no_clock.since_boot_in(Some("a")), None);
    }
}
