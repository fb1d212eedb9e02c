//! What the daemon asks of the operating system: atomic files, a worker
//! thread for the writes, logging,
//! capabilities, the round timer, sd_notify, the boot clock and exit
//! statuses. Each file wraps one facility and decides nothing.

pub mod atomic_file;
pub mod boot;
pub mod lane;
pub mod logging;
pub mod notify;
pub mod privileges;
pub mod round_timer;
pub mod sysexits;
