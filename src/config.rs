//! The configuration file /etc/fakeups/fakeups.toml: its schema with a
//! default for every key, parsing with `file:line:col` errors, and the
//! checks that need more than one key.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::power::Quorum;
use crate::sentinel::SentinelSpec;

/// Where the daemon and fakeupsctl look when no `--config` is given.
pub const DEFAULT_PATH: &str = "/etc/fakeups/fakeups.toml";

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
    pub level: crate::logging::Level,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Control {
    /// The unix socket fakeupsctl talks to.
    pub socket: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sentinels: vec![SentinelSpec::Gateway],
            state_directory: PathBuf::from("/var/lib/fakeups"),
            detection: Detection::default(),
            battery: Battery::default(),
            pause: Pause::default(),
            nut: Nut::default(),
            log: Log::default(),
            control: Control::default(),
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
            data_file: PathBuf::from("/var/lib/fakeups/fakeups.dev"),
            upsd: "127.0.0.1:3493".to_string(),
            ups: ["fakeups", "qnapups", "ups"].map(String::from).to_vec(),
        }
    }
}

impl Default for Log {
    fn default() -> Self {
        Log {
            file: PathBuf::from("/var/log/fakeups/fakeups.log"),
            level: crate::logging::Level::Info,
        }
    }
}

impl Default for Control {
    fn default() -> Self {
        Control {
            socket: PathBuf::from(crate::cli::DEFAULT_SOCKET),
        }
    }
}

/// A configuration that cannot be used, with where the problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: PathBuf,
    /// 1-based line and column (in characters), when the problem has a place.
    pub position: Option<(usize, usize)>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, col)) => {
                write!(f, "{}:{line}:{col}: {}", self.path.display(), self.message)
            }
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads, parses and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_path_buf(),
            position: None,
            message: format!("cannot read the configuration: {e}"),
        })?;
        Config::parse(path, &text)
    }

    /// Parses and checks `text`; `path` only names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError {
            path: path.to_path_buf(),
            position: e.span().map(|span| line_col(text, span.start)),
            message: e.message().trim().to_string(),
        })?;
        config.check().map_err(|problem| ConfigError {
            path: path.to_path_buf(),
            position: locate_key(text, &problem.key),
            message: format!("{}: {}", problem.key.join("."), problem.message),
        })?;
        Ok(config)
    }

    /// The checks that involve more than one key or more than a type.
    fn check(&self) -> Result<(), Problem> {
        let d = &self.detection;
        let b = &self.battery;
        let fail = |key: &[&str], message: String| {
            Err(Problem {
                key: key.iter().map(|k| k.to_string()).collect(),
                message,
            })
        };
        if self.sentinels.is_empty() {
            return fail(
                &["sentinels"],
                "the list is empty: name at least one host that is not on the UPS".into(),
            );
        }
        for (i, s) in self.sentinels.iter().enumerate() {
            if self.sentinels[..i].contains(s) {
                return fail(&["sentinels"], format!("{s} is listed twice"));
            }
        }
        if d.interval.is_zero() {
            return fail(&["detection", "interval"], "must be longer than 0s".into());
        }
        if d.timeout.is_zero() {
            return fail(&["detection", "timeout"], "must be longer than 0s".into());
        }
        for (key, value, max) in [
            (&["detection", "interval"][..], d.interval, HOUR),
            (&["detection", "timeout"], d.timeout, HOUR),
            (&["detection", "on-battery-after"], d.on_battery_after, DAY),
            (&["detection", "online-after"], d.online_after, DAY),
            (&["battery", "runtime"], b.runtime, WEEK),
            (&["battery", "low-runtime"], b.low_runtime, WEEK),
            (&["battery", "recharge-time"], b.recharge_time, WEEK),
            (
                &["pause", "default-duration"],
                self.pause.default_duration,
                YEAR,
            ),
        ] {
            if value > max {
                return fail(
                    key,
                    format!(
                        "{} is longer than the {} allowed",
                        fmt_duration(value),
                        fmt_duration(max)
                    ),
                );
            }
        }
        if d.timeout >= d.interval {
            return fail(
                &["detection", "timeout"],
                format!(
                    "{} must be shorter than detection.interval ({})",
                    fmt_duration(d.timeout),
                    fmt_duration(d.interval)
                ),
            );
        }
        if let Quorum::AtLeast(n) = d.quorum {
            if n == 0 || n > self.sentinels.len() {
                return fail(
                    &["detection", "quorum"],
                    format!(
                        "{n} is not between 1 and the number of sentinels ({})",
                        self.sentinels.len()
                    ),
                );
            }
        }
        if b.runtime.is_zero() {
            return fail(&["battery", "runtime"], "must be longer than 0s".into());
        }
        if b.low_runtime >= b.runtime {
            return fail(
                &["battery", "low-runtime"],
                format!(
                    "{} must be shorter than battery.runtime ({})",
                    fmt_duration(b.low_runtime),
                    fmt_duration(b.runtime)
                ),
            );
        }
        if b.recharge_time.is_zero() {
            return fail(
                &["battery", "recharge-time"],
                "must be longer than 0s".into(),
            );
        }
        if self.pause.default_duration.is_zero() {
            return fail(
                &["pause", "default-duration"],
                "must be longer than 0s".into(),
            );
        }
        check_file_path(&self.nut.data_file, false).or_else(|m| fail(&["nut", "data-file"], m))?;
        check_file_path(&self.log.file, true).or_else(|m| fail(&["log", "file"], m))?;
        check_file_path(&self.control.socket, false)
            .or_else(|m| fail(&["control", "socket"], m))?;
        if !self.state_directory.is_absolute() {
            return fail(
                &["state-directory"],
                format!("{} is not an absolute path", self.state_directory.display()),
            );
        }
        if !self.nut.upsd.is_empty() {
            if let Err(m) = crate::nut_client::split_host_port(&self.nut.upsd) {
                return fail(&["nut", "upsd"], m);
            }
        }
        for name in &self.nut.ups {
            if !is_ups_name(name) {
                return fail(
                    &["nut", "ups"],
                    format!("{name:?} is not a NUT UPS name (letters, digits, '-', '_', '.')"),
                );
            }
        }
        Ok(())
    }
}

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);
const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);
const YEAR: Duration = Duration::from_secs(366 * 24 * 3600);

struct Problem {
    key: Vec<String>,
    message: String,
}

fn check_file_path(path: &Path, may_be_empty: bool) -> Result<(), String> {
    if path.as_os_str().is_empty() {
        return if may_be_empty {
            Ok(())
        } else {
            Err("must not be empty".into())
        };
    }
    if !path.is_absolute() {
        return Err(format!("{} is not an absolute path", path.display()));
    }
    if path.file_name().is_none() {
        return Err(format!("{} does not name a file", path.display()));
    }
    Ok(())
}

/// A UPS section name as upsd accepts it.
pub fn is_ups_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// `1h`, `2m 30s`, `150ms`: how durations are written in the config.
pub fn fmt_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// The same for a whole number of seconds (what people are shown).
pub fn fmt_secs(secs: u64) -> String {
    fmt_duration(Duration::from_secs(secs))
}

/// 1-based line and column (in characters) of a byte offset in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = text[line_start..offset].chars().count() + 1;
    (line, col)
}

/// Where the value of a dotted key path is written in `text`, if it is.
fn locate_key(text: &str, key: &[String]) -> Option<(usize, usize)> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut table = doc.get_ref();
    let mut span = None;
    for (depth, part) in key.iter().enumerate() {
        let (_, value) = table.iter().find(|(k, _)| k.get_ref().as_ref() == part)?;
        span = Some(value.span());
        if depth + 1 < key.len() {
            table = value.get_ref().as_table()?;
        }
    }
    span.map(|s| line_col(text, s.start))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/etc/fakeups/fakeups.toml"), text)
    }

    #[test]
    fn empty_file_gives_the_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.sentinels, vec![SentinelSpec::Gateway]);
        assert_eq!(c.detection.interval, Duration::from_secs(2));
        assert_eq!(c.battery.low_runtime, Duration::from_secs(180));
    }

    #[test]
    fn the_shipped_file_is_valid_and_documents_the_defaults() {
        let text = include_str!("../packaging/fakeups.toml");
        assert_eq!(parse(text).unwrap(), Config::default());
    }

    #[test]
    fn full_example_parses() {
        let c = parse(
            r#"
sentinels = ["gateway", "192.168.1.2", "switch.lan"]
[detection]
interval = "500ms"
timeout = "300ms"
quorum = "majority"
on-battery-after = "1m"
online-after = "20s"
[battery]
runtime = "10m"
low-runtime = "4m"
recharge-time = "2h"
[nut]
upsd = ""
ups = ["fakeups"]
[log]
level = "debug"
file = ""
"#,
        )
        .unwrap();
        assert_eq!(c.sentinels.len(), 3);
        assert_eq!(c.detection.quorum, Quorum::Majority);
        assert_eq!(c.detection.interval, Duration::from_millis(500));
        assert_eq!(c.battery.recharge_time, Duration::from_secs(7200));
        assert_eq!(c.log.level, crate::logging::Level::Debug);
        assert!(c.nut.upsd.is_empty());
    }

    #[test]
    fn quorum_accepts_a_number_as_integer_or_string() {
        let c = parse("sentinels = [\"a.lan\", \"b.lan\"]\n[detection]\nquorum = 2\n").unwrap();
        assert_eq!(c.detection.quorum, Quorum::AtLeast(2));
        let c = parse("sentinels = [\"a.lan\", \"b.lan\"]\n[detection]\nquorum = \"1\"\n").unwrap();
        assert_eq!(c.detection.quorum, Quorum::AtLeast(1));
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let e = parse("sentinels = [\"gateway\"]\n[detection]\ninterval = \"2s\n").unwrap_err();
        assert_eq!(e.position.map(|p| p.0), Some(3), "{e}");
        assert!(
            e.to_string().starts_with("/etc/fakeups/fakeups.toml:3:"),
            "{e}"
        );
    }

    #[test]
    fn unknown_keys_are_refused_where_they_are() {
        let e = parse("[detection]\nintervall = \"2s\"\n").unwrap_err();
        assert_eq!(e.position, Some((2, 1)), "{e}");
        assert!(e.message.contains("intervall"), "{e}");
    }

    #[test]
    fn semantic_errors_name_the_key_and_its_place() {
        let e = parse("[detection]\ninterval = \"1s\"\ntimeout = \"1s\"\n").unwrap_err();
        assert_eq!(e.position, Some((3, 11)), "{e}");
        assert!(
            e.message
                .starts_with("detection.timeout: 1s must be shorter"),
            "{e}"
        );

        // The conflicting value may be a default that is not written at all.
        let e = parse("[battery]\nlow-runtime = \"6m\"\n").unwrap_err();
        assert!(e.message.starts_with("battery.low-runtime:"), "{e}");
        let e = parse("[battery]\nruntime = \"2m\"\n").unwrap_err();
        assert_eq!(e.position, None);
        assert_eq!(
            e.to_string(),
            "/etc/fakeups/fakeups.toml: battery.low-runtime: 3m must be shorter than battery.runtime (2m)"
        );
    }

    #[test]
    fn each_broken_value_is_refused() {
        for (text, needle) in [
            ("sentinels = []", "sentinels: the list is empty"),
            ("sentinels = [\"10.0.0.300\"]", "neither an IP address"),
            ("sentinels = [\"gateway\", \"gateway\"]", "listed twice"),
            ("[detection]\nquorum = \"most\"", "unknown quorum"),
            (
                "[detection]\nquorum = 3",
                "detection.quorum: 3 is not between",
            ),
            ("[detection]\ninterval = \"soon\"", "duration"),
            (
                "[detection]\ninterval = \"0s\"",
                "detection.interval: must be longer",
            ),
            ("[log]\nlevel = \"loud\"", "unknown variant"),
            ("[nut]\nupsd = \"localhost\"", "nut.upsd"),
            ("[nut]\nups = [\"q n a p\"]", "nut.ups"),
            ("[nut]\ndata-file = \"relative.dev\"", "nut.data-file"),
            ("state-directory = \"var\"", "state-directory"),
            ("sentinels = \"gateway\"", "invalid type"),
        ] {
            let e = parse(text).expect_err(text);
            assert!(e.message.contains(needle), "{text:?} gave {e}");
        }
    }

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("ab\ncdé f", 8), (2, 5));
        assert_eq!(line_col("", 0), (1, 1));
    }
}
