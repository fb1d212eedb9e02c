//! The moment now on the clocks that survive a restart: wall time, the
//! kernel's boot id and CLOCK_BOOTTIME (which counts suspend and is not
//! moved by wall-clock steps).

use std::sync::OnceLock;
use std::time::Duration;

use chrono::Local;

use crate::core::Moment;
use crate::paths::BOOT_ID;

/// Now, on this machine.
pub fn now() -> Moment {
    Moment {
        wall: Local::now(),
        boot_id: this_boot_id().clone(),
        since_boot: nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
            .ok()
            .map(Duration::from),
    }
}

/// The id of the current boot, read once: it cannot change while the
/// process runs, and on battery the state is saved at every round.
fn this_boot_id() -> &'static Option<String> {
    static ID: OnceLock<Option<String>> = OnceLock::new();
    ID.get_or_init(|| {
        std::fs::read_to_string(BOOT_ID)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_machine_has_a_boot_id_and_a_boot_clock() {
        let m = super::now();
        assert!(m.boot_id.is_some() && m.since_boot.is_some(), "{m:?}");
    }
}
