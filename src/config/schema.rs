//! The schema of /etc/fakeups/fakeups.toml: every table and key, each with
//! its default (the shipped file documents the same values).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::core::{Mac, Quorum};
use crate::paths;
use crate::probe::SentinelSpec;
use crate::sys::logging::Level;

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Config {
    /// Hosts that are NOT on the UPS: an address, a host name or `gateway`.
    pub sentinels: Vec<SentinelSpec>,
    /// Where the state that survives a restart is kept.
    pub state_directory: PathBuf,
    pub detection: Detection,
    pub battery: Battery,
    pub pause: Pause,
    pub nut: Nut,
    pub log: Log,
    pub control: Control,
    pub events: Events,
    pub sentry: SentryConfig,
    pub wake: WakeConfig,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Detection {
    /// Time between the starts of two rounds of pings.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// How long a round waits for an answer.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// How many silent sentinels mean that mains is lost.
    #[serde(with = "super::quorum")]
    pub quorum: Quorum,
    /// How long the quorum must be met before `OB`.
    #[serde(with = "humantime_serde")]
    pub on_battery_after: Duration,
    /// How long the quorum must be unmet before `OL` again.
    #[serde(with = "humantime_serde")]
    pub online_after: Duration,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Battery {
    /// Time a full simulated battery lasts on battery.
    #[serde(with = "humantime_serde")]
    pub runtime: Duration,
    /// Runtime left at which the status becomes `OB LB`.
    #[serde(with = "humantime_serde")]
    pub low_runtime: Duration,
    /// Time an empty simulated battery takes to refill on mains.
    #[serde(with = "humantime_serde")]
    pub recharge_time: Duration,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Pause {
    /// Length of `fakeupsctl pause` without `--for`.
    #[serde(with = "humantime_serde")]
    pub default_duration: Duration,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Nut {
    /// The file every dummy-ups section reads.
    pub data_file: PathBuf,
    /// upsd to read back what NUT serves; empty disables the check.
    pub upsd: String,
    /// The UPS names upsd serves from the data file.
    pub ups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Log {
    /// The monolog-format log file; empty disables it.
    pub file: PathBuf,
    /// The lowest level logged.
    pub level: Level,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Control {
    /// The unix socket fakeupsctl talks to.
    pub socket: PathBuf,
}

/// `[events]`: the command run at every event.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Events {
    /// The program (an absolute path) and its arguments; empty: off.
    pub command: Vec<String>,
    /// How long one run may take before it is killed.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// How many events may wait for the hook; more are dropped.
    pub queue: usize,
}

/// `[sentry]`: where errors and power transitions are reported.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct SentryConfig {
    /// The project's DSN; empty: off.
    pub dsn: String,
    pub environment: String,
    /// Empty: fakeups@ and the package version.
    pub release: String,
}

/// `[wake]`: wake-on-LAN for the machines that went down in an outage.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct WakeConfig {
    /// Wake the NUT clients that were logged in during the outage.
    pub nut_clients: bool,
    /// How long power must be back before the first packet.
    #[serde(with = "humantime_serde")]
    pub after: Duration,
    #[serde(with = "humantime_serde")]
    pub retry_every: Duration,
    /// How long after the first packet a machine that is not up is given up.
    #[serde(with = "humantime_serde")]
    pub give_up_after: Duration,
    /// `[[wake.host]]`: more machines to wake after an outage.
    pub host: Vec<WakeHost>,
}

/// One `[[wake.host]]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct WakeHost {
    /// For logs, status and `fakeupsctl wake NAME`.
    pub name: String,
    pub mac: Mac,
    /// Pinged to know whether it is up; picks the subnet to broadcast on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<IpAddr>,
    /// The interface whose subnet's broadcast reaches it, when there is
    /// no IPv4 address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
}

impl Default for WakeConfig {
    fn default() -> Self {
        WakeConfig {
            nut_clients: true,
            after: Duration::from_secs(120),
            retry_every: Duration::from_secs(30),
            give_up_after: Duration::from_secs(30 * 60),
            host: vec![],
        }
    }
}

impl Default for Events {
    fn default() -> Self {
        Events {
            command: vec![],
            timeout: Duration::from_secs(30),
            queue: 100,
        }
    }
}

impl Default for SentryConfig {
    fn default() -> Self {
        SentryConfig {
            dsn: String::new(),
            environment: "production".into(),
            release: String::new(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sentinels: vec![SentinelSpec::Gateway],
            state_directory: PathBuf::from(paths::STATE_DIRECTORY),
            detection: Detection::default(),
            battery: Battery::default(),
            pause: Pause::default(),
            nut: Nut::default(),
            log: Log::default(),
            control: Control::default(),
            events: Events::default(),
            sentry: SentryConfig::default(),
            wake: WakeConfig::default(),
        }
    }
}

impl Default for Detection {
    fn default() -> Self {
        Detection {
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
            quorum: Quorum::All,
            on_battery_after: Duration::from_secs(30),
            online_after: Duration::from_secs(15),
        }
    }
}

impl Default for Battery {
    fn default() -> Self {
        Battery {
            runtime: Duration::from_secs(5 * 60),
            low_runtime: Duration::from_secs(3 * 60),
            recharge_time: Duration::from_secs(60 * 60),
        }
    }
}

impl Default for Pause {
    fn default() -> Self {
        Pause {
            default_duration: Duration::from_secs(60 * 60),
        }
    }
}

impl Default for Nut {
    fn default() -> Self {
        Nut {
            data_file: PathBuf::from(paths::DATA_FILE),
            upsd: "127.0.0.1:3493".to_string(),
            ups: ["fakeups", "qnapups", "ups"].map(String::from).to_vec(),
        }
    }
}

impl Default for Log {
    fn default() -> Self {
        Log {
            file: PathBuf::from(paths::LOG_FILE),
            level: Level::Info,
        }
    }
}

impl Default for Control {
    fn default() -> Self {
        Control {
            socket: PathBuf::from(paths::CONTROL_SOCKET),
        }
    }
}
