//! The checks that need more than one key or more than a type, and what a
//! path may be without looking at the disk, each failing with the key it is
//! about (and the entry of a list, when it is in one).

use std::collections::HashMap;
use std::net::IpAddr;
use std::os::unix::ffi::OsStrExt;
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
    /// The key within that entry, when the list is an array of tables.
    pub field: Option<&'static str>,
    pub message: String,
}

impl Problem {
    pub fn new(key: &[&str], message: String) -> Problem {
        Problem {
            key: key.iter().map(|k| k.to_string()).collect(),
            entry: None,
            field: None,
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
    if let Quorum::AtLeast(n) = d.quorum
        && (n == 0 || n > config.sentinels.len())
    {
        return fail(
            &["detection", "quorum"],
            format!(
                "{n} is not between 1 and the number of sentinels ({})",
                config.sentinels.len()
            ),
        );
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
    for (key, path, kind) in paths(config) {
        check_path(path, kind).or_else(|m| fail(key, m))?;
    }
    check_distinct(config)?;
    if !config.nut.upsd.is_empty()
        && let Err(e) = split_host_port(&config.nut.upsd)
    {
        return fail(&["nut", "upsd"], e.to_string());
    }
    check_events(config)?;
    check_sentry(config)?;
    check_wake(config)?;
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

/// `[events]`: an absolute program, a timeout and a queue that can be met.
fn check_events(config: &Config) -> Result<(), Problem> {
    let e = &config.events;
    if let Some(program) = e.command.first()
        && !program.starts_with('/')
    {
        return Err(Problem {
            entry: Some(0),
            ..Problem::new(
                &["events", "command"],
                format!(
                    "{program:?} is not an absolute path: name the program in full \
                         (e.g. \"/usr/local/bin/notify\"); the hook gets only a fixed PATH"
                ),
            )
        });
    }
    if let Some(i) = e.command.iter().position(|a| a.contains('\0')) {
        return Err(Problem {
            entry: Some(i),
            ..Problem::new(&["events", "command"], "contains a NUL byte".into())
        });
    }
    if e.timeout.is_zero() {
        return Err(Problem::new(
            &["events", "timeout"],
            "must be longer than 0s".into(),
        ));
    }
    if e.timeout > HOUR {
        return Err(Problem::new(
            &["events", "timeout"],
            format!(
                "{} is longer than the {} allowed",
                fmt_duration(e.timeout),
                fmt_duration(HOUR)
            ),
        ));
    }
    if e.queue == 0 || e.queue > 10_000 {
        return Err(Problem::new(
            &["events", "queue"],
            format!("{} is not between 1 and 10000", e.queue),
        ));
    }
    Ok(())
}

/// `[sentry]`: a DSN that parses, as Sentry shows it for the project.
fn check_sentry(config: &Config) -> Result<(), Problem> {
    let s = &config.sentry;
    if s.dsn.is_empty() {
        return Ok(());
    }
    if let Err(e) = s.dsn.parse::<sentry::types::Dsn>() {
        return Err(Problem::new(
            &["sentry", "dsn"],
            format!(
                "{:?} is not a Sentry DSN ({e}); it looks like \
                 https://PUBLIC_KEY@o0.ingest.sentry.io/PROJECT_ID",
                s.dsn
            ),
        ));
    }
    Ok(())
}

/// `[wake]`: timings that can be met, and hosts that can be told apart
/// and reached.
fn check_wake(config: &Config) -> Result<(), Problem> {
    let w = &config.wake;
    for (key, value, min, max) in [
        ("after", w.after, Duration::ZERO, DAY),
        ("retry-every", w.retry_every, Duration::from_secs(1), HOUR),
        (
            "give-up-after",
            w.give_up_after,
            Duration::from_secs(1),
            WEEK,
        ),
    ] {
        let message = if value < min {
            format!(
                "{} is shorter than {}",
                fmt_duration(value),
                fmt_duration(min)
            )
        } else if value > max {
            format!(
                "{} is longer than the {} allowed",
                fmt_duration(value),
                fmt_duration(max)
            )
        } else {
            continue;
        };
        return Err(Problem::new(&["wake", key], message));
    }
    let mut names = HashMap::with_capacity(w.host.len());
    let mut macs = HashMap::with_capacity(w.host.len());
    for (i, host) in w.host.iter().enumerate() {
        let at = |field: &'static str, message: String| Problem {
            entry: Some(i),
            field: Some(field),
            ..Problem::new(&["wake", "host"], message)
        };
        if host.name.is_empty() || host.name.len() > 64 {
            return Err(at("name", "must have 1 to 64 characters".into()));
        }
        if host.name.chars().any(char::is_control) {
            return Err(at(
                "name",
                format!("{:?} contains a control character", host.name),
            ));
        }
        if let Some(first) = names.insert(host.name.as_str(), i) {
            return Err(at(
                "name",
                format!(
                    "{:?} names two hosts (entries {} and {})",
                    host.name,
                    first + 1,
                    i + 1
                ),
            ));
        }
        if let Some(first) = macs.insert(host.mac, i) {
            return Err(at(
                "mac",
                format!(
                    "{} is the MAC of two hosts (entries {} and {})",
                    host.mac,
                    first + 1,
                    i + 1
                ),
            ));
        }
        if let Some(name) = &host.interface
            && (name.is_empty()
                || name.len() > 15
                || name == "."
                || name == ".."
                || name
                    .chars()
                    .any(|c| c == '/' || c.is_whitespace() || c.is_control()))
        {
            return Err(at(
                "interface",
                format!(
                    "{name:?} is not a network interface name (1 to 15 characters, no '/' or spaces)"
                ),
            ));
        }
        if let Some(address) = host.address
            && (address.is_loopback() || address.is_unspecified() || address.is_multicast())
        {
            return Err(at(
                "address",
                format!("{address} is not the address of a host on the LAN"),
            ));
        }
        match (host.address, &host.interface) {
            (None, None) => {
                return Err(at(
                    "mac",
                    format!(
                        "host {:?} has neither an address nor an interface: give its IPv4 \
                         address (or the interface it is reached on), so that fakeups knows \
                         which subnet's broadcast reaches it",
                        host.name
                    ),
                ));
            }
            (Some(IpAddr::V6(_)), None) => {
                return Err(at(
                    "address",
                    format!(
                        "{} is IPv6: wake-on-LAN goes to an IPv4 subnet's broadcast; add \
                         `interface` to name the one that reaches it",
                        host.address.map(|a| a.to_string()).unwrap_or_default()
                    ),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);
const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);
const YEAR: Duration = Duration::from_secs(366 * 24 * 3600);

/// What a configured path is for, which decides what it may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    /// A file written beside itself and renamed over (`nut.data-file`).
    Renamed,
    /// A file opened for appending; "" turns it off (`log.file`).
    Appended,
    /// A unix socket bound there (`control.socket`).
    Socket,
    /// A directory fakeups writes its state file in (`state-directory`).
    Directory,
}

/// Every path of the configuration: its key, its value, what it is for.
pub fn paths(config: &Config) -> [(&'static [&'static str], &Path, PathKind); 4] {
    [
        (
            &["nut", "data-file"],
            &config.nut.data_file,
            PathKind::Renamed,
        ),
        (&["log", "file"], &config.log.file, PathKind::Appended),
        (
            &["control", "socket"],
            &config.control.socket,
            PathKind::Socket,
        ),
        (
            &["state-directory"],
            &config.state_directory,
            PathKind::Directory,
        ),
    ]
}

/// Linux's limits on a file name (NAME_MAX) and on a path given to a system
/// call, its final NUL included (PATH_MAX).
const NAME_MAX: usize = nix::libc::NAME_MAX as usize;
const PATH_MAX: usize = nix::libc::PATH_MAX as usize;
/// A unix socket's path must fit in `sun_path` (108 bytes) with its NUL.
const SOCKET_PATH_MAX: usize = 107;
/// What the temporary file of an atomic write adds to the name it stands
/// for (sys::atomic_file): a leading `.` and `.tmp<pid>.<n>`, with a pid of
/// up to 7 digits (pid_max is at most 2^22) and a 64-bit counter.
const TEMPORARY_EXTRA: usize = 1 + ".tmp".len() + 7 + 1 + 20;
/// The longest path fakeups makes in the state directory, beyond the
/// directory itself: `/` and the temporary file of `state.json`.
const STATE_DIRECTORY_EXTRA: usize = 1 + "state.json".len() + TEMPORARY_EXTRA;

/// What can be told of a path without the file system: that it is a path
/// at all, absolute, of a kind that fits its use, and within the kernel's
/// limits once fakeups adds its temporary names to it.
fn check_path(path: &Path, kind: PathKind) -> Result<(), String> {
    let bytes = path.as_os_str().as_bytes();
    if bytes.is_empty() {
        return match kind {
            PathKind::Appended => Ok(()),
            _ => Err("must not be empty".into()),
        };
    }
    if bytes.contains(&0) {
        return Err(format!(
            "{} contains a NUL byte, which no path can hold",
            quoted(path)
        ));
    }
    if !path.is_absolute() {
        return Err(format!("{} is not an absolute path", quoted(path)));
    }
    if kind != PathKind::Directory
        && (bytes.ends_with(b"/") || bytes.ends_with(b"/.") || bytes.ends_with(b"/.."))
    {
        let what = if kind == PathKind::Socket {
            "a socket"
        } else {
            "a file"
        };
        return Err(format!("{} names a directory, not {what}", quoted(path)));
    }
    for name in bytes.split(|&b| b == b'/') {
        if name.len() > NAME_MAX {
            return Err(format!(
                "the name {} is {} bytes long; a file name may have {NAME_MAX}",
                quoted_start(name),
                name.len()
            ));
        }
    }
    let name_len = path.file_name().map_or(0, |n| n.len());
    if kind == PathKind::Renamed && name_len + TEMPORARY_EXTRA > NAME_MAX {
        return Err(format!(
            "the name {} is {name_len} bytes long; a file written in place by renaming \
             may have {} (its temporary file's name is longer by {TEMPORARY_EXTRA})",
            quoted_start(path.file_name().map_or(&[][..], |n| n.as_bytes())),
            NAME_MAX - TEMPORARY_EXTRA
        ));
    }
    let (longest, max) = match kind {
        PathKind::Renamed => (bytes.len() + TEMPORARY_EXTRA, PATH_MAX - 1),
        PathKind::Appended => (bytes.len(), PATH_MAX - 1),
        PathKind::Directory => (bytes.len() + STATE_DIRECTORY_EXTRA, PATH_MAX - 1),
        PathKind::Socket => (bytes.len(), SOCKET_PATH_MAX),
    };
    if longest > max {
        let limit = max - (longest - bytes.len());
        let why = match kind {
            PathKind::Socket => "a unix socket's path fits in 108 bytes with its NUL (sun_path)",
            PathKind::Renamed => "its temporary file's path must stay below PATH_MAX (4096)",
            PathKind::Directory => "the state file's path must stay below PATH_MAX (4096)",
            PathKind::Appended => "a path must stay below PATH_MAX (4096)",
        };
        return Err(format!(
            "the path is {} bytes long, more than {limit}: {why}",
            bytes.len()
        ));
    }
    Ok(())
}

/// Two keys that name one file: fakeups would write both into it.
fn check_distinct(config: &Config) -> Result<(), Problem> {
    let state_file = config.state_directory.join("state.json");
    let files = paths(config);
    let mut named: Vec<(&[&str], &Path)> = Vec::with_capacity(files.len() + 1);
    for (key, path, kind) in files {
        let path = match kind {
            PathKind::Directory => &state_file,
            _ => path,
        };
        if path.as_os_str().is_empty() {
            continue;
        }
        if let Some((other, _)) = named.iter().find(|(_, p)| *p == path) {
            let what = if kind == PathKind::Directory {
                format!("its state file {} is", quoted(path))
            } else {
                format!("{} is", quoted(path))
            };
            return Err(Problem::new(
                key,
                format!("{what} also {}", other.join(".")),
            ));
        }
        named.push((key, path));
    }
    Ok(())
}

/// A path in quotes, with its control characters escaped.
pub fn quoted(path: &Path) -> String {
    format!("{:?}", path.as_os_str())
}

/// The start of a long name, in quotes.
fn quoted_start(name: &[u8]) -> String {
    const SHOWN: usize = 24;
    let text = String::from_utf8_lossy(&name[..name.len().min(SHOWN)]).into_owned();
    if name.len() > SHOWN {
        format!("{:?}...", text)
    } else {
        format!("{text:?}")
    }
}

/// A UPS section name as upsd accepts it.
fn is_ups_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}
