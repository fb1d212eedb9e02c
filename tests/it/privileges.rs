//! Without CAP_NET_RAW and without datagram ICMP the daemon exits 77 with one
//! line naming both remedies; with ping_group_range opened it runs without
//! any capability. Both run as user nobody inside a test namespace, where
//! net.ipv4.ping_group_range is the namespace's own.

use std::fs;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::daemon::TestConfig;
use crate::support::netns::NetNs;
use crate::support::{self, require, workdir};

fn nobody_config(dir: &std::path::Path) -> std::path::PathBuf {
    let mut cfg = TestConfig::new(&["127.0.0.1".to_string()]).render(dir);
    // nobody cannot write the test's log directory; the journal/stderr remain.
    cfg = cfg.replace(
        &format!("file = \"{}/log/fakeups.log\"", dir.display()),
        "file = \"\"",
    );
    for sub in ["lib", "state", "run"] {
        let p = dir.join(sub);
        fs::create_dir_all(&p).unwrap();
        Command::new("chown")
            .arg("nobody")
            .arg(&p)
            .status()
            .unwrap();
    }
    let path = dir.join("fakeups.toml");
    fs::write(&path, cfg).unwrap();
    path
}

fn as_nobody_in(ns: &NetNs, config: &std::path::Path) -> Command {
    let mut c = ns.command("setpriv");
    c.args([
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--",
    ])
    .args(support::FAKEUPS.argv())
    .arg("--config")
    .arg(config)
    .env_remove("NOTIFY_SOCKET")
    .stdin(Stdio::null());
    c
}

#[test]
fn no_icmp_socket_exits_77_naming_both_remedies() {
    require!(
        support::root_and_netns(),
        "no_icmp_socket_exits_77_naming_both_remedies"
    );
    let ns = NetNs::new();
    ns.must_in(&["sysctl", "-qw", "net.ipv4.ping_group_range=1 0"]);
    let dir = workdir();
    let config = nobody_config(dir.path());
    let out = as_nobody_in(&ns, &config).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(77), "{err}");
    let line = err
        .lines()
        .find(|l| l.contains("cannot open an ICMP socket"))
        .unwrap_or_else(|| panic!("no explanation in: {err}"));
    assert!(line.contains("ERROR: "), "{line}");
    assert!(line.contains("CAP_NET_RAW"), "{line}");
    assert!(line.contains("net.ipv4.ping_group_range"), "{line}");
    assert_eq!(
        err.lines().filter(|l| l.contains("ERROR")).count(),
        1,
        "one error line: {err}"
    );
}

#[test]
fn datagram_icmp_works_without_capabilities() {
    require!(
        support::root_and_netns(),
        "datagram_icmp_works_without_capabilities"
    );
    let ns = NetNs::new();
    ns.must_in(&["sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647"]);
    let dir = workdir();
    let config = nobody_config(dir.path());
    let mut child = as_nobody_in(&ns, &config)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let data = dir.path().join("lib/fakeups.dev");
    let ok = support::wait_for(Duration::from_secs(10), Duration::from_millis(50), || {
        support::daemon::read_data_file(&data)
            .get("ups.status")
            .filter(|s| *s == "OL")
            .map(|_| ())
    });
    let pid = child.id();
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(ok.is_some(), "no OL from a capability-less daemon: {err}");
    assert!(
        err.contains("capabilities held at start: none; kept: none"),
        "{err}"
    );
    assert!(err.contains("sentinel 127.0.0.1 answers"), "{err}");
    assert!(status.contains("CapEff:\t0000000000000000"), "{status}");
    assert!(status.contains("Uid:\t65534"), "{status}");
}
