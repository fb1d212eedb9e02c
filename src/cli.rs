//! The command lines of `fakeups` and `fakeupsctl`, kept in the library so
//! that the man page check and the shell completion see the same definition.

use std::path::PathBuf;

use clap::Parser;

use crate::config::DEFAULT_PATH;

/// The fakeups daemon.
#[derive(Debug, Parser)]
#[command(
    name = "fakeups",
    version,
    about = "Virtual UPS: pings sentinel hosts that are not on the UPS and drives NUT's dummy-ups",
    long_about = "Virtual UPS: pings sentinel hosts that are not on the UPS (the router, an \
unprotected switch). When enough of them stay silent for detection.on-battery-after, it writes \
ups.status OB to the data file that NUT's dummy-ups driver serves, then OB LB when the simulated \
battery runs low, and OL again once they answer for detection.online-after.\n\n\
Runs in the foreground; under systemd (Type=notify) it reports READY, STATUS and WATCHDOG, \
reloads its configuration on SIGHUP and stops on SIGTERM.",
    after_help = "Exit status: 0 on a clean stop or a valid configuration, 78 for a bad \
configuration, 77 when no ICMP socket can be opened, 1 for other failures."
)]
pub struct DaemonArgs {
    /// Configuration file
    #[arg(short, long, value_name = "PATH", default_value = DEFAULT_PATH)]
    pub config: PathBuf,

    /// Check the configuration file and exit: 0 when valid, 78 with
    /// PATH:LINE:COL: PROBLEM when not
    #[arg(long)]
    pub check_config: bool,
}
