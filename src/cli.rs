//! The command lines of `fakeups` and `fakeupsctl`, kept in the library so
//! that the man page check and the shell completion see the same definition.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::paths;

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
    #[arg(short, long, value_name = "PATH", default_value = paths::CONFIG)]
    pub config: PathBuf,

    /// Check the configuration file and exit: 0 when valid, 78 with
    /// PATH:LINE:COL: PROBLEM when not
    #[arg(long)]
    pub check_config: bool,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| format!("{text:?}: {e}"))?;
    if d.is_zero() {
        return Err(format!("{text:?}: must be longer than 0s"));
    }
    Ok(d)
}

/// fakeupsctl: pause, resume and inspect the fakeups daemon.
#[derive(Debug, Parser)]
#[command(
    name = "fakeupsctl",
    version,
    about = "Pause, resume, inspect the fakeups daemon, wake machines and run drills",
    long_about = "Pause, resume and inspect the fakeups daemon over its control socket.\n\n\
A pause holds the published status at OL with a full battery whatever the sentinels do, \
for maintenance on a sentinel (e.g. a router reboot). It survives a restart of the daemon \
and a reboot, and ends by itself at its end time. Pausing and resuming need root or \
membership of group fakeups; anyone may read the status.",
    after_help = "Exit status: 0 on success, 64 for a bad request, 69 when the daemon is not \
running or does not answer in time, 70 for an unexpected answer, 75 when the daemon could \
not carry out the request, 76 for a protocol version mismatch, 77 when permission is denied, \
78 for a bad configuration file (nut-config)."
)]
pub struct CtlArgs {
    /// The daemon's control socket (control.socket in fakeups.toml)
    #[arg(long, global = true, value_name = "PATH", default_value = paths::CONTROL_SOCKET)]
    pub socket: PathBuf,

    /// How long to wait for the daemon's answer
    #[arg(long, global = true, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,

    #[command(subcommand)]
    pub command: CtlCommand,
}

#[derive(Debug, Subcommand)]
pub enum CtlCommand {
    /// Hold OL with a full battery for maintenance on a sentinel
    #[command(
        long_about = "Hold the published status at OL with a full battery whatever \
the sentinels do, so that no NUT client shuts down while a sentinel (the router) is down \
for maintenance. Without --for or --until-resumed the pause lasts pause.default-duration \
of the daemon's configuration. Pausing again replaces the pause. Needs root or group fakeups."
    )]
    Pause(PauseArgs),
    /// End a pause and watch the sentinels again
    #[command(
        long_about = "End a pause: the daemon watches the sentinels again, and goes \
OB only after they have been silent for a whole detection.on-battery-after. Resuming when \
not paused succeeds and changes nothing. Needs root or group fakeups."
    )]
    Resume,
    /// Show the status, battery, sentinels, pause and what NUT serves
    #[command(
        long_about = "Show the status written for NUT and since when, the battery \
charge and runtime, each sentinel (answered or silent, last round-trip time, last answer), \
the pause if any, and what upsd really serves for each UPS name with the clients logged in \
to it. Open to every local user."
    )]
    Status {
        /// Print the status as one JSON object (see fakeupsctl(8) for its fields)
        #[arg(long)]
        json: bool,
    },
    /// Send a wake-on-LAN magic packet now
    #[command(long_about = "Send a wake-on-LAN magic packet now to a machine: a \
[[wake.host]] by its name or MAC, a NUT client of the last outage by its address, or \
any MAC in this machine's IPv4 neighbour table. The packet goes as UDP to port 9 of \
the directed broadcast of the subnet that reaches it. Needs root or group fakeups.")]
    Wake {
        /// A [[wake.host]] name, a NUT client's address, or a MAC (00:11:32:aa:bb:cc)
        #[arg(value_name = "NAME|MAC")]
        target: String,
    },
    /// Run a simulated outage through the whole chain, or stop it
    #[command(
        long_about = "Run a drill: a simulated outage through the whole chain, so \
that the machines on the UPS can be seen to shut down and come back without pulling a \
plug. The status goes OB at once, OB LB when the battery model says (NUT clients shut \
down then, as in a real outage), and OL after --for; then the machines that went down are \
woken as after a real outage (wake.after, wake.retry-every). Logged as a drill \
everywhere (FAKEUPS_DRILL=1 for hooks, tag drill=true in Sentry). Refused while paused \
or on battery; a restart of the daemon ends it. Needs root."
    )]
    Drill(DrillArgs),
    /// Print the NUT configuration fakeups needs (for a NUT set up by hand)
    #[command(long_about = "Print what /etc/nut/nut.conf, ups.conf, upsd.conf and \
upsd.users need for fakeups: the three UPS names (fakeups, qnapups, ups) reading the \
daemon's data file with dummy-ups, upsd on port 3493, and the read-only users. The \
package writes these itself into a NUT that was not configured yet; when NUT was \
configured before, add them by hand. Run as root to see the password generated at \
install for NUT user fakeups. Does not talk to the daemon.")]
    NutConfig {
        /// The daemon's configuration, for the data file path
        #[arg(long, value_name = "PATH", default_value = paths::CONFIG)]
        config: PathBuf,
    },
    /// Print a shell completion script for fakeupsctl
    #[command(
        long_about = "Print a completion script for fakeupsctl to standard output. \
The package installs the bash one; e.g. `fakeupsctl completions zsh > ~/.zfunc/_fakeupsctl`."
    )]
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct DrillArgs {
    /// How long the simulated outage lasts before OL, e.g. 10m
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration, required_unless_present = "stop", conflicts_with = "stop")]
    pub duration: Option<Duration>,

    /// End the drill under way now
    #[arg(long)]
    pub stop: bool,
}

#[derive(Debug, Args)]
pub struct PauseArgs {
    /// How long the pause lasts, e.g. 30m, 2h, 1h 30m
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration, conflicts_with = "until_resumed")]
    pub duration: Option<Duration>,

    /// Pause until `fakeupsctl resume`, with no end time
    #[arg(long)]
    pub until_resumed: bool,

    /// Why, for the logs and the status (e.g. "router firmware update")
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}
