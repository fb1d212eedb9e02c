//! `fakeups --check-config`: the real binary on broken files gives exit 78
//! and `PATH:LINE:COL: problem` (or `PATH: key: problem` for a problem that
//! has no single place); the shipped file is valid.

use std::fs;
use std::path::Path;

use crate::support;

mod fuzz;

fn check(path: &Path) -> (i32, String, String) {
    let out = support::FAKEUPS
        .command()
        .arg("--check-config")
        .arg("--config")
        .arg(path)
        .output()
        .expect("run fakeups");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_shipped_config_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/fakeups.toml");
    let (code, out, err) = check(&path);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), format!("{}: valid", path.display()));
}

#[test]
fn every_example_config_is_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/examples");
    let mut n = 0;
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let (code, _, err) = check(&path);
            assert_eq!(code, 0, "{}: {err}", path.display());
            n += 1;
        }
    }
    assert!(n > 0, "no example in {}", dir.display());
}

#[test]
fn broken_configs_exit_78_with_their_place() {
    let dir = support::workdir();
    // (file text, expected message after "PATH:", where `L:C: ` is the place)
    let cases: &[(&str, &str)] = &[
        // TOML syntax: an unterminated string
        (
            "[detection]\ninterval = \"2s\n",
            "2:15: invalid basic string",
        ),
        // an unknown key
        (
            "[detection]\nintervall = \"2s\"\n",
            "2:1: unknown field `intervall`",
        ),
        // an unknown table
        (
            "[battery]\nruntime = \"5m\"\n[batery]\n",
            "3:2: unknown field `batery`",
        ),
        // a duration that is not one
        ("[battery]\nruntime = \"five minutes\"\n", "2:11: "),
        // a wrong type
        (
            "sentinels = \"gateway\"\n",
            "1:13: invalid type: string \"gateway\", expected a sequence",
        ),
        // a sentinel that is neither an address, a name nor gateway
        (
            "sentinels = [\"gateway\", \"10.0.0.300\"]\n",
            "1:25: \"10.0.0.300\" is neither an IP address",
        ),
        // an unknown quorum
        (
            "[detection]\nquorum = \"most\"\n",
            "2:10: unknown quorum \"most\"",
        ),
        // timeout not shorter than interval (semantic, with its place)
        (
            "[detection]\ninterval = \"1s\"\ntimeout = \"1s\"\n",
            "3:11: detection.timeout: 1s must be shorter than detection.interval (1s)",
        ),
        // low-runtime not below runtime
        (
            "[battery]\nruntime = \"3m\"\nlow-runtime = \"3m\"\n",
            "3:15: battery.low-runtime: 3m must be shorter than battery.runtime (3m)",
        ),
        // an empty sentinel list
        ("sentinels = []\n", "1:13: sentinels: the list is empty"),
        // a quorum larger than the list
        (
            "sentinels = [\"gateway\"]\n[detection]\nquorum = 2\n",
            "3:10: detection.quorum: 2 is not between 1 and the number of sentinels (1)",
        ),
        // an unknown log level
        ("[log]\nlevel = \"loud\"\n", "2:9: unknown variant `loud`"),
        // a hook that is not an absolute path (the entry's place)
        (
            "[events]\ncommand = [\"notify.sh\", \"power\"]\n",
            "2:12: events.command: \"notify.sh\" is not an absolute path",
        ),
        // a hook command that is not a list
        (
            "[events]\ncommand = \"/usr/local/bin/notify\"\n",
            "2:11: invalid type: string \"/usr/local/bin/notify\", expected a sequence",
        ),
        // a hook timeout of nothing, a queue of none
        (
            "[events]\ntimeout = \"0s\"\n",
            "2:11: events.timeout: must be longer than 0s",
        ),
        (
            "[events]\nqueue = 0\n",
            "2:9: events.queue: 0 is not between 1 and 10000",
        ),
        // a DSN that does not parse
        (
            "[sentry]\ndsn = \"https://sentry.io/42\"\n",
            "2:7: sentry.dsn: \"https://sentry.io/42\" is not a Sentry DSN (",
        ),
        (
            "[sentry]\ndsn = \"public@o0.ingest.sentry.io/42\"\n",
            "2:7: sentry.dsn: \"public@o0.ingest.sentry.io/42\" is not a Sentry DSN (",
        ),
        // an unknown key of the new tables
        (
            "[sentry]\ndsn = \"\"\nrelease-name = \"x\"\n",
            "3:1: unknown field `release-name`",
        ),
        // [wake]: a bad MAC, at its value
        (
            "[[wake.host]]\nname = \"nas\"\nmac = \"00:11:32:aa:bb\"\naddress = \"192.168.1.20\"\n",
            "3:7: \"00:11:32:aa:bb\" is not a MAC address",
        ),
        (
            "[[wake.host]]\nname = \"nas\"\nmac = \"ff:ff:ff:ff:ff:ff\"\naddress = \"192.168.1.20\"\n",
            "3:7: \"ff:ff:ff:ff:ff:ff\" is a multicast or broadcast address",
        ),
        // a name given to two hosts: the second name's place
        (
            "[[wake.host]]\nname = \"nas\"\nmac = \"00:11:32:aa:bb:cc\"\naddress = \"192.168.1.20\"\n\
             [[wake.host]]\nname = \"nas\"\nmac = \"00:11:32:aa:bb:cd\"\naddress = \"192.168.1.21\"\n",
            "6:8: wake.host: \"nas\" names two hosts (entries 1 and 2)",
        ),
        // one MAC for two hosts
        (
            "[[wake.host]]\nname = \"a\"\nmac = \"00:11:32:aa:bb:cc\"\ninterface = \"eth0\"\n\
             [[wake.host]]\nname = \"b\"\nmac = \"00-11-32-AA-BB-CC\"\ninterface = \"eth0\"\n",
            "7:7: wake.host: 00:11:32:aa:bb:cc is the MAC of two hosts (entries 1 and 2)",
        ),
        // neither an address nor an interface
        (
            "[[wake.host]]\nname = \"nas\"\nmac = \"00:11:32:aa:bb:cc\"\n",
            "3:7: wake.host: host \"nas\" has neither an address nor an interface",
        ),
        // a missing MAC
        (
            "[[wake.host]]\nname = \"nas\"\naddress = \"192.168.1.20\"\n",
            "1:1: missing field `mac`",
        ),
        // an IPv6 address alone cannot pick an IPv4 subnet
        (
            "[[wake.host]]\nname = \"nas\"\nmac = \"00:11:32:aa:bb:cc\"\naddress = \"fd00::20\"\n",
            "4:11: wake.host: fd00::20 is IPv6",
        ),
        (
            "[[wake.host]]\nname = \"nas\"\nmac = \"00:11:32:aa:bb:cc\"\ninterface = \"eth0/1\"\n",
            "4:13: wake.host: \"eth0/1\" is not a network interface name",
        ),
        (
            "[wake]\nretry-every = \"0s\"\n",
            "2:15: wake.retry-every: 0s is shorter than 1s",
        ),
        (
            "[wake]\nafter = \"2d\"\n",
            "2:9: wake.after: 2days is longer than the 1day allowed",
        ),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("broken-{i}.toml"));
        fs::write(&path, text).unwrap();
        let (code, out, err) = check(&path);
        assert_eq!(code, 78, "case {i} {text:?}: {err}");
        assert!(out.is_empty());
        let line = err.trim_end();
        assert_eq!(line.lines().count(), 1, "one line: {line}");
        let want = format!("{}:{expected}", path.display());
        assert!(
            line.starts_with(&want),
            "case {i} {text:?}:\n got {line}\nwant {want}..."
        );
    }
}

#[test]
fn a_semantic_error_without_a_place_names_the_key() {
    let dir = support::workdir();
    let path = dir.path().join("f.toml");
    // low-runtime keeps its default (3m), which is not below this runtime.
    fs::write(&path, "[battery]\nruntime = \"2m\"\n").unwrap();
    let (code, _, err) = check(&path);
    assert_eq!(code, 78);
    assert_eq!(
        err.trim_end(),
        format!(
            "{}: battery.low-runtime: 3m must be shorter than battery.runtime (2m)",
            path.display()
        )
    );
}

#[test]
fn a_missing_file_is_a_config_error() {
    let (code, _, err) = check(Path::new("/nonexistent/fakeups.toml"));
    assert_eq!(code, 78);
    assert!(
        err.starts_with("/nonexistent/fakeups.toml: cannot read the configuration"),
        "{err}"
    );
}

#[test]
fn the_daemon_refuses_to_start_on_a_bad_config() {
    let dir = support::workdir();
    let path = dir.path().join("f.toml");
    fs::write(&path, "sentinels = []\n").unwrap();
    let out = support::FAKEUPS
        .command()
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("sentinels: the list is empty"));
}

/// Checks a file holding `bytes`: its path, exit status and stderr.
fn check_bytes(dir: &Path, name: &str, bytes: &[u8]) -> (String, i32, String) {
    let path = dir.join(name);
    fs::write(&path, bytes).unwrap();
    let (code, _, err) = check(&path);
    (path.display().to_string(), code, err)
}

/// Each `(file, message after "PATH:")` is refused with exit 78 and exactly
/// that one line.
fn assert_refused(cases: &[(Vec<u8>, String)]) {
    let dir = support::workdir();
    for (i, (bytes, expected)) in cases.iter().enumerate() {
        let (path, code, err) = check_bytes(dir.path(), &format!("case-{i}.toml"), bytes);
        let text = String::from_utf8_lossy(bytes);
        let shown: String = text.chars().take(120).collect();
        assert_eq!(code, 78, "case {i} {shown:?}: {err}");
        assert_eq!(err, format!("{path}:{expected}\n"), "case {i} {shown:?}");
    }
}

#[test]
fn a_file_that_is_not_utf8_is_refused_at_its_first_bad_byte() {
    assert_refused(&[
        (
            b"sentinels = [\"gateway\"]\n[nut]\nups = [\"caf\xe9\"]\n".to_vec(),
            "3:12: byte 0xE9 is not UTF-8 (byte offset 41): the configuration must be UTF-8".into(),
        ),
        (
            b"\xff\xfesentinels = []\n".to_vec(),
            "1:1: byte 0xFF is not UTF-8 (byte offset 0): the configuration must be UTF-8".into(),
        ),
        (
            "# caf\u{e9}\n# \u{e9}t\u{e9}".as_bytes()[..14].to_vec(),
            "2:5: the file ends inside a UTF-8 character (byte offset 13): the configuration \
             must be UTF-8"
                .into(),
        ),
    ]);
}

#[test]
fn a_key_too_deep_for_the_parser_is_refused_where_it_starts() {
    let deep = vec!["a"; 120].join(".");
    assert_refused(&[
        (
            format!("sentinels = [\"gateway\"]\n  {deep} = 1\n").into_bytes(),
            "2:3: this dotted key has 120 parts, more than the 80 the parser allows".into(),
        ),
        (
            format!("[detection]\n[{deep}]\n").into_bytes(),
            "2:2: this dotted key has 120 parts, more than the 80 the parser allows".into(),
        ),
    ]);
}

#[test]
fn every_rejection_is_one_line() {
    assert_refused(&[
        (
            b"[log]\nlevel = \"\"\"very\nloud\"\"\"\n".to_vec(),
            "2:9: unknown variant `very\\nloud`, expected one of `debug`, `info`, `notice`, \
             `warning`, `error`, `critical`"
                .into(),
        ),
        (
            b"[control]\n\"sock\\net\" = \"/run/x\"\n".to_vec(),
            "2:1: unknown field `sock\\net`, expected `socket`".into(),
        ),
        (
            b"state-directory = '''\nvar'''\n".to_vec(),
            "1:19: state-directory: \"var\" is not an absolute path".into(),
        ),
    ]);
}

#[test]
fn a_hundred_thousand_sentinels_are_checked_in_one_pass() {
    let dir = support::workdir();
    let list: Vec<String> = (0..100_000).map(|i| format!("\"h{i}.lan\"")).collect();
    let text = format!("sentinels = [\n{},\n\"H99999.lan\"]\n", list.join(",\n"));
    let started = std::time::Instant::now();
    let (path, code, err) = check_bytes(dir.path(), "many.toml", text.as_bytes());
    let took = started.elapsed();
    // Measured: 0.3 s for a debug build, 20 s for the quadratic check of
    // 0.1.0 (release). The bound leaves room for a busy machine.
    assert!(
        took < std::time::Duration::from_secs(5),
        "{took:?} to check 100,000 sentinels"
    );
    assert_eq!(code, 78, "{err}");
    assert_eq!(
        err,
        format!(
            "{path}:100002:1: sentinels: h99999.lan is listed twice (entries 100000 and 100001)\n"
        )
    );
}

#[test]
fn paths_that_cannot_work_are_refused_where_they_are_written() {
    let dir = support::workdir();
    let d = dir.path().display().to_string();
    fs::write(dir.path().join("file"), "").unwrap();
    let long_name = "x".repeat(5000);
    let long_socket = format!("/run/fakeups/{}.sock", "s".repeat(100));
    let cases: Vec<(Vec<u8>, String)> = [
        (
            format!("[nut]\ndata-file = \"{d}\"\n"),
            format!("2:13: nut.data-file: \"{d}\" is a directory, not a file"),
        ),
        (
            format!("[log]\nfile = \"{d}\"\n"),
            format!("2:8: log.file: \"{d}\" is a directory, not a file"),
        ),
        (
            format!("[control]\nsocket = \"{d}\"\n"),
            format!("2:10: control.socket: \"{d}\" is a directory, not a socket"),
        ),
        (
            format!("state-directory = \"{d}/file\"\n"),
            format!("1:19: state-directory: \"{d}/file\" is a regular file, not a directory"),
        ),
        (
            format!("[nut]\ndata-file = \"{d}/file/new/fakeups.dev\"\n"),
            format!(
                "2:13: nut.data-file: \"{d}/file/new/fakeups.dev\" cannot be created: \
                 \"{d}/file\" is a regular file, not a directory"
            ),
        ),
        (
            "[nut]\ndata-file = \"/var/lib/fakeups/\\u0000.dev\"\n".into(),
            "2:13: nut.data-file: \"/var/lib/fakeups/\\0.dev\" contains a NUL byte, which no \
             path can hold"
                .into(),
        ),
        // in a directory that does not exist yet: refused all the same
        (
            format!("[log]\nfile = \"/nonexistent/{long_name}\"\n"),
            "2:8: log.file: the name \"xxxxxxxxxxxxxxxxxxxxxxxx\"... is 5000 bytes long; a file \
             name may have 255"
                .into(),
        ),
        (
            format!("[control]\nsocket = \"{long_socket}\"\n"),
            "2:10: control.socket: the path is 118 bytes long, more than 107: a unix socket's \
             path fits in 108 bytes with its NUL (sun_path)"
                .into(),
        ),
    ]
    .into_iter()
    .map(|(text, expected)| (text.into_bytes(), expected))
    .collect();
    assert_refused(&cases);

    // Paths that do not exist yet, nor their directories, are fine.
    let (_, code, err) = check_bytes(
        dir.path(),
        "new.toml",
        format!(
            "state-directory = \"{d}/a/state\"\n[nut]\ndata-file = \"{d}/b/fakeups.dev\"\n\
             [log]\nfile = \"{d}/c/fakeups.log\"\n[control]\nsocket = \"{d}/d/control.sock\"\n"
        )
        .as_bytes(),
    );
    assert_eq!(code, 0, "{err}");
}
