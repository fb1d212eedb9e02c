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

fn load(bytes: &[u8]) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fakeups.toml");
    std::fs::write(&path, bytes).unwrap();
    Config::load(&path)
}

#[test]
fn invalid_utf8_is_refused_at_its_byte() {
    let e = load(b"sentinels = [\"gateway\"]\n[nut]\nups = [\"caf\xe9\"]\n").unwrap_err();
    assert_eq!(e.position, Some((3, 12)), "{e}");
    assert_eq!(
        e.message,
        "byte 0xE9 is not UTF-8 (byte offset 41): the configuration must be UTF-8"
    );
    // The column counts the characters before it, not the bytes.
    let e = load(
        &[
            &b"# \xc3\xa9\n# \xc3\xa9\xc3\xa9"[..],
            "\u{1F50C}".as_bytes(),
            b"\xff",
        ]
        .concat(),
    )
    .unwrap_err();
    assert_eq!(e.position, Some((2, 6)), "{e}");
    // A character cut off at the end of the file.
    let e = load(b"# caf\xc3").unwrap_err();
    assert_eq!(e.position, Some((1, 6)), "{e}");
    assert!(
        e.message
            .starts_with("the file ends inside a UTF-8 character")
    );
    // An unreadable file has no place, and says why.
    let e = Config::load(Path::new("/nonexistent/fakeups.toml")).unwrap_err();
    assert_eq!(e.position, None);
    assert!(e.message.starts_with("cannot read the configuration: "));
}

fn dotted(parts: usize) -> String {
    vec!["a"; parts].join(".")
}

#[test]
fn a_key_too_deep_for_the_parser_is_refused_where_it_starts() {
    // The parser's own limit: 80 parts get as far as the schema, 81 do not.
    let e = parse(&format!("x = 1\n  {} = 1\n", dotted(80))).unwrap_err();
    assert!(e.message.starts_with("unknown field `a`"), "{e}");
    let e = parse(&format!("x = 1\n  {} = 1\n", dotted(81))).unwrap_err();
    assert_eq!(e.position, Some((2, 3)), "{e}");
    assert_eq!(
        e.message,
        "this dotted key has 81 parts, more than the 80 the parser allows"
    );
    // In a table header, quoted, spaced, in an inline table.
    let header = format!("[{}]\n", vec!["\"q.q\""; 100].join(" . "));
    let e = parse(&format!("# [a.b.c]\n{header}")).unwrap_err();
    assert_eq!(e.position, Some((2, 2)), "{e}");
    assert!(e.message.contains("100 parts"), "{e}");
    let e = parse(&format!(
        "s = \"a.b\"\nx = {{ y = 1, {} = 2 }}\n",
        dotted(90)
    ))
    .unwrap_err();
    assert_eq!(e.position, Some((2, 14)), "{e}");
    // Deep arrays and inline tables have their place from the parser.
    let e = parse(&format!("x = {}{}\n", "[".repeat(100), "]".repeat(100))).unwrap_err();
    assert!(e.position.is_some(), "{e}");
}

#[test]
fn deep_key_skips_strings_and_comments() {
    use super::locate::{DeepKey, deep_key};
    let deep = dotted(81);
    let cases = [
        (format!("x = \"{deep}\"\n"), None),
        (format!("x = '{deep}'\n"), None),
        (format!("x = \"\"\"\n{deep}\n\"\"\"\n"), None),
        (format!("x = '''\n{deep}\n'''''\n"), None),
        (format!("x = \"\\\"{deep}\"\n"), None),
        (format!("# {deep}\n"), None),
        (format!("x = 1.5\n{deep} = 1\n"), Some(8)),
        (format!("x = \"\"\"a\"\"\"\"\"\n{deep} = 1\n"), Some(14)),
    ];
    for (text, start) in cases {
        assert_eq!(
            deep_key(&text),
            start.map(|start| DeepKey { start, parts: 81 }),
            "{text}"
        );
    }
}

#[test]
fn every_message_is_one_line() {
    for (text, needle) in [
        (
            "[log]\nlevel = \"\"\"a\nb\"\"\"\n",
            "unknown variant `a\\nb`",
        ),
        ("\"new\\nline\" = 1\n", "unknown field `new\\nline`"),
        ("\"esc\\u001b[31m\" = 1\n", "unknown field `esc\\u{1b}[31m`"),
        ("\"sep\\u2028\" = 1\n", "unknown field `sep\\u{2028}`"),
        (
            "state-directory = \"\"\"multi\nline\"\"\"\n",
            "\"multi\\nline\" is not an absolute path",
        ),
    ] {
        let e = parse(text).unwrap_err();
        assert!(e.message.contains(needle), "{text:?} gave {e}");
        assert_eq!(e.to_string().lines().count(), 1, "{e}");
    }
    // A path given on the command line with a line break in it.
    let e = Config::parse(Path::new("/tmp/a\nb.toml"), "sentinels = 1").unwrap_err();
    assert!(e.to_string().starts_with("/tmp/a\\nb.toml:1:13: "), "{e}");
}

#[test]
fn an_echoed_huge_value_is_cut_in_its_middle() {
    let huge = "x".repeat(100_000);
    let e = parse(&format!("sentinels = [\"{huge}\"]\n")).unwrap_err();
    assert_eq!(e.position, Some((1, 14)));
    assert!(e.message.len() < 500, "{} bytes", e.message.len());
    assert!(e.message.starts_with("\"xxx"), "{e}");
    assert!(e.message.contains("characters left out"), "{e}");
    assert!(e.message.ends_with("nor \"gateway\""), "{e}");
}

#[test]
fn a_sentinel_listed_twice_is_refused_at_its_second_entry() {
    let e =
        parse("sentinels = [\n  \"gateway\",\n  \"10.0.0.1\",\n  \"Gateway\",\n]\n").unwrap_err();
    assert_eq!(e.position, Some((4, 3)), "{e}");
    assert_eq!(
        e.message,
        "sentinels: gateway is listed twice (entries 1 and 3)"
    );
    let e = parse("[nut]\nups = [\"fakeups\", \"q n a p\"]\n").unwrap_err();
    assert_eq!(e.position, Some((2, 19)), "{e}");
}

#[test]
fn a_hundred_thousand_sentinels_are_checked_in_one_pass() {
    // The duplicate is the last entry: a quadratic check takes seconds.
    let mut list: Vec<String> = (0..100_000).map(|i| format!("\"h{i}.lan\"")).collect();
    list.push("\"h0.lan\"".into());
    let text = format!("sentinels = [{}]\n", list.join(",\n"));
    let started = std::time::Instant::now();
    let e = parse(&text).unwrap_err();
    assert_eq!(e.position, Some((100_001, 1)), "{e}");
    // Generous for a debug build on a busy machine; the quadratic check took
    // 20 s in a release build.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn paths_that_cannot_work_are_refused_without_the_file_system() {
    let long_name = "x".repeat(256);
    let long_path = format!("/{}", vec!["d"; 2050].join("/"));
    for (text, needle) in [
        (
            "[nut]\ndata-file = \"/var/lib/fakeups/a\\u0000b\"".to_string(),
            "nut.data-file: \"/var/lib/fakeups/a\\0b\" contains a NUL byte",
        ),
        (
            "[log]\nfile = \"/var/log/\\u0000\"".into(),
            "log.file: \"/var/log/\\0\" contains a NUL byte",
        ),
        (
            format!("[nut]\ndata-file = \"/var/lib/{long_name}\""),
            "nut.data-file: the name \"xxxxxxxxxxxxxxxxxxxxxxxx\"... is 256 bytes long; a file name may have 255",
        ),
        (
            format!("[log]\nfile = \"/var/log/{long_name}/fakeups.log\""),
            "log.file: the name \"xxxxxxxxxxxxxxxxxxxxxxxx\"... is 256 bytes long",
        ),
        (
            format!("[nut]\ndata-file = \"/var/lib/{}\"", "x".repeat(223)),
            "nut.data-file: the name \"xxxxxxxxxxxxxxxxxxxxxxxx\"... is 223 bytes long; a file written in place by renaming may have 222",
        ),
        (
            format!("[log]\nfile = \"{long_path}\""),
            "log.file: the path is 4100 bytes long, more than 4095",
        ),
        (
            format!("state-directory = \"{}\"", &long_path[..4060]),
            "state-directory: the path is 4060 bytes long, more than 4051",
        ),
        (
            format!(
                "[control]\nsocket = \"/run/fakeups/{}.sock\"",
                "s".repeat(90)
            ),
            "control.socket: the path is 108 bytes long, more than 107: a unix socket's path fits in 108 bytes",
        ),
        (
            "[control]\nsocket = \"/run/fakeups/\"".into(),
            "control.socket: \"/run/fakeups/\" names a directory, not a socket",
        ),
        (
            "[nut]\ndata-file = \"/var/lib/fakeups/..\"".into(),
            "nut.data-file: \"/var/lib/fakeups/..\" names a directory, not a file",
        ),
        (
            "[nut]\ndata-file = \"/\"".into(),
            "nut.data-file: \"/\" names a directory, not a file",
        ),
        (
            "[nut]\ndata-file = \"\"".into(),
            "nut.data-file: must not be empty",
        ),
        (
            "[log]\nfile = \"/run/fakeups/fakeups.dev\"".into(),
            "log.file: \"/run/fakeups/fakeups.dev\" is also nut.data-file",
        ),
        (
            "state-directory = \"/run/fakeups\"\n[control]\nsocket = \"/run/fakeups/state.json\""
                .into(),
            "state-directory: its state file \"/run/fakeups/state.json\" is also control.socket",
        ),
    ] {
        let e = parse(&text).expect_err(&text);
        assert!(e.message.starts_with(needle), "{text:?} gave {e}");
        assert!(e.position.is_some(), "{e}");
    }
    // At the limits, and an empty log file (off).
    let ok = format!(
        "[nut]\ndata-file = \"/var/lib/{}\"\n[log]\nfile = \"\"\n[control]\nsocket = \"/run/{}\"\n",
        "x".repeat(222),
        "s".repeat(102)
    );
    parse(&ok).unwrap();
}

#[test]
fn paths_that_cannot_work_on_this_disk_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    std::fs::write(dir.path().join("file"), "").unwrap();
    std::os::unix::net::UnixListener::bind(dir.path().join("sock")).unwrap();
    for (text, needle) in [
        (
            format!("[nut]\ndata-file = \"{d}\""),
            format!("nut.data-file: \"{d}\" is a directory, not a file"),
        ),
        (
            format!("[log]\nfile = \"{d}\""),
            format!("log.file: \"{d}\" is a directory, not a file"),
        ),
        (
            format!("[control]\nsocket = \"{d}\""),
            format!("control.socket: \"{d}\" is a directory, not a socket"),
        ),
        (
            format!("state-directory = \"{d}/file\""),
            format!("state-directory: \"{d}/file\" is a regular file, not a directory"),
        ),
        (
            format!("[nut]\ndata-file = \"{d}/file/sub/fakeups.dev\""),
            format!(
                "nut.data-file: \"{d}/file/sub/fakeups.dev\" cannot be created: \"{d}/file\" is a regular file, not a directory"
            ),
        ),
    ] {
        let e = load(text.as_bytes()).expect_err(&text);
        assert!(e.message.starts_with(&needle), "{text:?} gave {e}");
        assert!(e.position.is_some(), "{e}");
        // Without the file system the same text is fine.
        parse(&text).unwrap();
    }
    // What does not exist yet, its parents neither, is created at start; an
    // existing socket (the running daemon's, at a reload) is fine. A file
    // that is not a socket is left to the server, which refuses it (73).
    load(format!("[control]\nsocket = \"{d}/file\"").as_bytes()).unwrap();
    let text = format!(
        "state-directory = \"{d}/new/state\"\n[nut]\ndata-file = \"{d}/new/lib/fakeups.dev\"\n\
         [log]\nfile = \"{d}/new/log/fakeups.log\"\n[control]\nsocket = \"{d}/sock\"\n"
    );
    load(text.as_bytes()).unwrap();
}

#[test]
fn a_file_longer_than_the_limit_is_refused_where_it_passes_it() {
    // 64-byte comment lines: the limit falls at the start of a line.
    let line = format!("#{}\n", "x".repeat(62));
    let lines = MAX_SIZE / line.len();
    let mut text = line.repeat(lines);
    load(text.as_bytes()).unwrap();
    text.push('\n');
    let e = load(text.as_bytes()).unwrap_err();
    assert_eq!(e.position, Some((lines + 1, 1)), "{e}");
    assert_eq!(
        e.message,
        "the file goes on past 4 MiB here; a configuration may have at most that"
    );
    // A character cut by the limit is not an encoding error.
    let mut bytes = line.repeat(lines - 1).into_bytes();
    bytes.extend_from_slice(&[b'#'; 63]);
    bytes.extend_from_slice("é".repeat(4).as_bytes());
    let e = load(&bytes).unwrap_err();
    assert_eq!(e.position, Some((lines, 64)), "{e}");
    assert!(e.message.starts_with("the file goes on past"), "{e}");
}
