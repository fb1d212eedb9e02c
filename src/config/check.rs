//! The checks that need more than one key or more than a type, each failing
//! with the key it is about (and the entry of a list, when it is in one).

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use super::Config;
use crate::core::Quorum;
use crate::format::fmt_duration;
use crate::nut::address::split_host_port;

/// A problem with the value of a key (a dotted path, e.g. `detection.timeout`).
#[derive(Debug)]
pub struct Problem {
    pub key: Vec<String>,
    /// The entry of the list the problem is in, when it is in one.
    pub entry: Option<usize>,
    pub message: String,
}

impl Problem {
    pub fn new(key: &[&str], message: String) -> Problem {
        Problem {
            key: key.iter().map(|k| k.to_string()).collect(),
            entry: None,
            message,
        }
    }
}

/// The checks that involve more than one key or more than a type.
pub fn check(config: &Config) -> Result<(), Problem> {
    let d = &config.detection;
    let b = &config.battery;
    let fail = |key: &[&str], message: String| Err(Problem::new(key, message));
    if config.sentinels.is_empty() {
        return fail(
            &["sentinels"],
            "the list is empty: name at least one host that is not on the UPS".into(),
        );
    }
    // Linear: a generated file may list 100,000 sentinels.
    let mut seen = HashMap::with_capacity(config.sentinels.len());
    for (i, s) in config.sentinels.iter().enumerate() {
        if let Some(first) = seen.insert(s, i) {
            return Err(Problem {
                entry: Some(i),
                ..Problem::new(
                    &["sentinels"],
                    format!("{s} is listed twice (entries {} and {})", first + 1, i + 1),
                )
            });
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
            config.pause.default_duration,
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
        if n == 0 || n > config.sentinels.len() {
            return fail(
                &["detection", "quorum"],
                format!(
                    "{n} is not between 1 and the number of sentinels ({})",
                    config.sentinels.len()
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
    if config.pause.default_duration.is_zero() {
        return fail(
            &["pause", "default-duration"],
            "must be longer than 0s".into(),
        );
    }
    check_file_path(&config.nut.data_file, false).or_else(|m| fail(&["nut", "data-file"], m))?;
    check_file_path(&config.log.file, true).or_else(|m| fail(&["log", "file"], m))?;
    check_file_path(&config.control.socket, false).or_else(|m| fail(&["control", "socket"], m))?;
    if !config.state_directory.is_absolute() {
        return fail(
            &["state-directory"],
            format!("{:?} is not an absolute path", config.state_directory),
        );
    }
    if !config.nut.upsd.is_empty() {
        if let Err(e) = split_host_port(&config.nut.upsd) {
            return fail(&["nut", "upsd"], e.to_string());
        }
    }
    for (i, name) in config.nut.ups.iter().enumerate() {
        if !is_ups_name(name) {
            return Err(Problem {
                entry: Some(i),
                ..Problem::new(
                    &["nut", "ups"],
                    format!("{name:?} is not a NUT UPS name (letters, digits, '-', '_', '.')"),
                )
            });
        }
    }
    Ok(())
}

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);
const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);
const YEAR: Duration = Duration::from_secs(366 * 24 * 3600);

fn check_file_path(path: &Path, may_be_empty: bool) -> Result<(), String> {
    if path.as_os_str().is_empty() {
        return if may_be_empty {
            Ok(())
        } else {
            Err("must not be empty".into())
        };
    }
    if !path.is_absolute() {
        return Err(format!("{path:?} is not an absolute path"));
    }
    if path.file_name().is_none() {
        return Err(format!("{path:?} does not name a file"));
    }
    Ok(())
}

/// A UPS section name as upsd accepts it.
fn is_ups_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}
