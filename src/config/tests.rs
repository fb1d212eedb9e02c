//! The configuration file as users write it: defaults, errors and their places.

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::core::Quorum;
use crate::probe::SentinelSpec;
use crate::sys::logging::Level;

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
    let text = include_str!("../../packaging/fakeups.toml");
    assert_eq!(parse(text).unwrap(), Config::default());
}

#[test]
fn the_data_file_of_0_1_is_read_as_the_one_on_run() {
    // fakeups 0.1.0's shipped file named its default, on disk.
    let c = parse("[nut]\ndata-file = \"/var/lib/fakeups/fakeups.dev\"\n").unwrap();
    assert_eq!(c.nut.data_file, Path::new("/run/fakeups/fakeups.dev"));
    assert_eq!(c, Config::default());
    // Any other place is taken as written.
    let c = parse("[nut]\ndata-file = \"/var/lib/fakeups/other.dev\"\n").unwrap();
    assert_eq!(c.nut.data_file, Path::new("/var/lib/fakeups/other.dev"));
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
    assert_eq!(c.log.level, Level::Debug);
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
