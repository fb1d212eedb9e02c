//! What `fakeupsctl status` shows, as the daemon sends it (and `--json`
//! prints it). Fields are only ever added within a format version.

use std::net::IpAddr;
use std::path::PathBuf;

use chrono::{DateTime, Local};
use serde::{Deserialize, Serialize};

/// The daemon's view of everything, as `fakeupsctl status --json` prints it.
/// Fields are only ever added within a format version.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StatusReport {
    /// Format version of this object (1).
    pub format: u32,
    pub daemon: DaemonInfo,
    /// `OL`, `OB` or `OB LB`: what is written for NUT.
    pub status: String,
    pub status_since: DateTime<Local>,
    /// The one-line summary systemd shows (STATUS=).
    pub summary: String,
    pub battery: BatteryReport,
    pub detection: DetectionReport,
    pub sentinels: Vec<SentinelReport>,
    pub pause: Option<PauseReport>,
    pub nut: NutReport,
    /// Where events go besides the logs: the hook and Sentry. Absent from
    /// a daemon older than 0.3.0.
    #[serde(default)]
    pub outlets: OutletsReport,
    /// The machines to wake after the last outage. Absent from a daemon
    /// older than 0.4.0.
    #[serde(default)]
    pub wake: WakeReport,
    /// The drill under way, if one is.
    #[serde(default)]
    pub drill: Option<DrillReport>,
}

/// Wake-on-LAN after an outage.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WakeReport {
    /// The outage whose machines are (or will be) woken; None once the
    /// wake is over.
    pub outage: Option<OutageReport>,
    /// When the first packets go out, while power is back but not yet for
    /// `wake.after`.
    pub first_packet_at: Option<DateTime<Local>>,
    /// Packets are going out.
    pub waking: bool,
    /// The targets of the last outage, and how each fared.
    pub targets: Vec<WakeTargetReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutageReport {
    pub since: DateTime<Local>,
    pub drill: bool,
    pub on_battery: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WakeTargetReport {
    /// The `[[wake.host]]` name, or the NUT client's address.
    pub name: String,
    pub nut_client: bool,
    pub address: Option<IpAddr>,
    pub mac: Option<String>,
    /// `config` or `neighbours`.
    pub mac_from: Option<String>,
    /// `down`, `up`, `gave-up` or `no-mac`.
    pub state: String,
    /// Magic packets sent since the outage.
    pub sent: u32,
    /// Up this long after the first packet; absent if it stayed up.
    pub up_after_ms: Option<u64>,
    /// The state for people: "sent 3 time(s)", "up after 1m 5s".
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillReport {
    pub since: DateTime<Local>,
    pub until: DateTime<Local>,
    pub by: String,
}

/// `[events] command` and `[sentry] dsn`, as they fare.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct OutletsReport {
    pub hooks: OutletReport,
    pub sentry: OutletReport,
}

/// One outlet: whether it is on, and how it fared.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct OutletReport {
    pub on: bool,
    /// The hook's command line, or Sentry's host.
    pub target: Option<String>,
    /// Hook runs that succeeded; envelopes Sentry took.
    pub delivered: u64,
    /// Events dropped: a full queue, or Sentry not answering.
    pub dropped: u64,
    pub last_failure: Option<FailureReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureReport {
    pub at: DateTime<Local>,
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DaemonInfo {
    pub version: String,
    pub pid: u32,
    pub started: DateTime<Local>,
    pub config: PathBuf,
    pub data_file: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct BatteryReport {
    /// Percent.
    pub charge: u8,
    /// Seconds left.
    pub runtime: u64,
    pub charge_low: u8,
    pub runtime_low: u64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DetectionReport {
    pub quorum: String,
    pub silent: usize,
    pub total: usize,
    pub interval_ms: u64,
    pub on_battery_after_ms: u64,
    pub online_after_ms: u64,
    /// How long the quorum has been met without yet giving OB.
    pub lost_for_ms: Option<u64>,
    /// How long the sentinels have answered without yet giving OL.
    pub back_for_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PauseReport {
    pub since: DateTime<Local>,
    /// None: until resumed.
    pub until: Option<DateTime<Local>>,
    pub by: String,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NutReport {
    /// The upsd read back, or None when `nut.upsd` is "".
    pub upsd: Option<String>,
    /// When upsd was last asked.
    pub checked: Option<DateTime<Local>>,
    /// Why upsd could not be asked, if it could not.
    pub error: Option<String>,
    pub ups: Vec<UpsReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpsReport {
    pub name: String,
    /// What upsd serves as ups.status, when it serves it.
    pub status: Option<String>,
    /// Addresses of the clients logged in to this UPS.
    pub clients: Vec<String>,
    /// Why upsd does not serve what fakeups wrote, if it does not.
    pub problem: Option<String>,
}

/// What a sentinel did lately, as shown by `fakeupsctl status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentinelReport {
    /// As written in the configuration.
    pub name: String,
    /// The address pinged in the last round, if there was one.
    pub address: Option<IpAddr>,
    /// Whether it answered in the last round.
    pub answered: bool,
    /// Round-trip time of the last answer, milliseconds.
    pub last_rtt_ms: Option<f64>,
    /// Wall time of the last answer.
    pub last_answer: Option<DateTime<Local>>,
    /// Rounds without an answer since the last one.
    pub silent_rounds: u64,
    /// Why it was silent in the last round, if it was.
    pub problem: Option<String>,
}
