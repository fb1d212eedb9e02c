//! Every path fakeups uses by default, in one place: what the package
//! installs, what the unit prepares, and what the kernel offers.

/// The configuration file (`fakeups --config`, `fakeupsctl nut-config --config`).
pub const CONFIG: &str = "/etc/fakeups/fakeups.toml";
/// The control socket (`control.socket`, `fakeupsctl --socket`).
pub const CONTROL_SOCKET: &str = "/run/fakeups/control.sock";
/// The file every dummy-ups section reads (`nut.data-file`). On the tmpfs
/// of /run, in the unit's RuntimeDirectory: systemd keeps it across a
/// restart and removes it when the service stops or fails for good, so
/// dummy-ups exits and NUT stops serving a status nobody updates.
pub const DATA_FILE: &str = "/run/fakeups/fakeups.dev";
/// Where fakeups 0.1.0 wrote the data file, on disk: it outlived the daemon,
/// and NUT served its last status for ever. Its configuration file spelled
/// this path out, so a configuration kept from then still names it; it is
/// read as [`DATA_FILE`], and the package leaves a symbolic link here to
/// [`DATA_FILE`] for the NUT sections that still read it.
pub const DATA_FILE_0_1: &str = "/var/lib/fakeups/fakeups.dev";
/// Where the state that survives a restart is kept (`state-directory`).
pub const STATE_DIRECTORY: &str = "/var/lib/fakeups";
/// The monolog-format log file (`log.file`).
pub const LOG_FILE: &str = "/var/log/fakeups/fakeups.log";
/// The password the package generated for NUT user fakeups.
pub const NUT_PASSWORD: &str = "/etc/fakeups/nut-password";
/// The route table of this process's network namespace. Through /proc/self
/// because the unit's ProcSubset=pid hides the /proc/net link.
pub const ROUTE_TABLE: &str = "/proc/self/net/route";
/// The kernel's id of the current boot.
pub const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";
/// The seed of the UPS serial number (hashed, never shown).
pub const MACHINE_ID: &str = "/etc/machine-id";
