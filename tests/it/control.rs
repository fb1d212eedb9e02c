//! fakeupsctl and the control socket, with the real daemon and the real
//! fakeupsctl binary: pause, resume, expiry, persistence, authorization, the
//! NUT view against a real upsd, and bad clients.

use std::fs;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::ctl::{ctl_as, status_json};
use crate::support::daemon::{Daemon, DataWatch, TestConfig};
use crate::support::netns::NetNs;
use crate::support::nut::{Nut, StatusWatch};
use crate::support::{self, require, stderr, stdout, workdir};
use nix::sys::signal::Signal;

const SEC: Duration = Duration::from_secs(1);

/// `[..] NOTICE: Paused by root until 2026-11-21T16:00:00: why`
fn is_pause_line(line: &str, by: &str, why: &str) -> bool {
    let Some(rest) = line.split_once("] NOTICE: Paused by ").map(|(_, r)| r) else {
        return false;
    };
    let Some(rest) = rest.strip_prefix(&format!("{by} until ")) else {
        return false;
    };
    // 19 characters of local time, then the reason.
    rest.len() > 19 && rest.as_bytes()[10] == b'T' && rest[19..] == format!(": {why}")
}

#[test]
fn pause_holds_ol_through_an_outage_and_resume_lets_it_go_ob() {
    require!(
        support::root_netns_and_nut(),
        "pause_holds_ol_through_an_outage_and_resume_lets_it_go_ob"
    );
    let ns = NetNs::new();
    let dir = workdir();
    let cfg = TestConfig::new(&[ns.peer_ip()]);
    let daemon = Daemon::start_ready(dir.path(), &cfg);
    let nut = Nut::start(&daemon.data_file(), &["fakeups"]);
    let mut watch = StatusWatch::new(&nut, "fakeups");
    assert!(watch.until("OL", 5 * SEC).is_some());

    let out = daemon.ctl(&[
        "pause",
        "--for",
        "10m",
        "--reason",
        "router firmware update",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("Paused by root until "),
        "{}",
        stdout(&out)
    );
    let line = daemon
        .wait_log("Paused by root", 2 * SEC)
        .expect("pause logged");
    assert!(
        is_pause_line(&line, "root", "router firmware update"),
        "{line}"
    );

    ns.cut();
    // Twice on-battery-after and more: upsd keeps serving OL, full battery.
    assert_eq!(watch.during(5 * SEC), ["OL"], "{}", watch.history());
    let data = daemon.data();
    assert_eq!(
        (data["ups.status"].as_str(), data["battery.charge"].as_str()),
        ("OL", "100")
    );
    let s = status_json(&daemon.socket());
    assert_eq!(s["pause"]["by"], "root");
    assert_eq!(s["pause"]["reason"], "router firmware update");
    assert_eq!(s["sentinels"][0]["answered"], false);
    assert!(
        s["summary"]
            .as_str()
            .unwrap()
            .starts_with("PAUSED by root until "),
        "{s}"
    );
    let human = stdout(&daemon.ctl(&["status"]));
    assert!(human.contains("Pause:     PAUSED until "), "{human}");
    assert!(
        daemon
            .notify
            .statuses()
            .iter()
            .any(|st| st.starts_with("PAUSED "))
    );

    let resumed = Instant::now();
    let out = daemon.ctl(&["resume"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "Resumed by root - watching sentinels again\n");
    let ob = watch.until("OB", 4 * SEC);
    let ob = ob.unwrap_or_else(|| panic!("no OB after resume: {}", watch.history()));
    // A resume starts the watch afresh: not before on-battery-after.
    assert!(ob - resumed >= 2 * SEC - Duration::from_millis(300));
    assert!(
        daemon
            .log()
            .contains("INFO: Resumed by root - watching sentinels again")
    );
    assert!(status_json(&daemon.socket())["pause"].is_null());
}

#[test]
fn a_pause_for_2s_expires_by_itself() {
    require!(
        support::root_and_netns(),
        "a_pause_for_2s_expires_by_itself"
    );
    let ns = NetNs::new();
    let dir = workdir();
    let cfg = TestConfig::new(&[ns.peer_ip()]);
    let daemon = Daemon::start_ready(dir.path(), &cfg);
    let file = DataWatch::start(daemon.data_file());
    // The pause starts between the request and the reply (far apart when
    // the binaries run under an emulator): lower bounds count from the
    // request, upper bounds from the reply.
    let sent = Instant::now();
    let out = daemon.ctl(&["pause", "--for", "2s"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let replied = Instant::now();
    ns.cut();
    let line = daemon
        .wait_log("Pause expired - watching sentinels again", 4 * SEC)
        .unwrap_or_else(|| panic!("no expiry: {}", daemon.log()));
    let expired = Instant::now();
    assert!(line.contains("] INFO: Pause expired"), "{line}");
    assert!(
        expired - sent >= 2 * SEC && expired - replied < 3 * SEC,
        "expired {:?} after the request, {:?} after the reply",
        expired - sent,
        expired - replied
    );
    let ob = support::wait_for(4 * SEC, Duration::from_millis(20), || file.first("OB"));
    let ob = ob.unwrap_or_else(|| panic!("no OB after expiry: {}", daemon.log()));
    // OL until the expiry, OB a full on-battery-after later.
    assert!(
        ob - sent >= 4 * SEC - Duration::from_millis(300),
        "{:?}",
        ob - sent
    );
    assert!(status_json(&daemon.socket())["pause"].is_null());
}

#[test]
fn a_pause_survives_a_daemon_restart() {
    require!(
        support::root_and_netns(),
        "a_pause_survives_a_daemon_restart"
    );
    let ns = NetNs::new();
    let dir = workdir();
    let cfg = TestConfig::new(&[ns.peer_ip()]);
    let mut daemon = Daemon::start_ready(dir.path(), &cfg);
    let out = daemon.ctl(&["pause", "--until-resumed", "--reason", "switch swap"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let before = status_json(&daemon.socket())["pause"].clone();
    assert!(before["until"].is_null());

    assert!(daemon.stop().success());
    assert!(!daemon.socket().exists(), "the socket goes with the daemon");
    ns.cut();
    daemon.restart();
    let after = status_json(&daemon.socket())["pause"].clone();
    assert_eq!(after, before);
    assert!(
        daemon
            .log()
            .contains("pause restored: paused by root until resumed: switch swap")
    );
    std::thread::sleep(4 * SEC);
    assert_eq!(daemon.data()["ups.status"], "OL", "{}", daemon.log());

    // And through a kill -9 too (the pause was saved when it was set).
    daemon.kill9();
    daemon.restart();
    assert_eq!(status_json(&daemon.socket())["pause"], before);
}

#[test]
fn only_root_or_group_fakeups_may_pause_but_anyone_reads_status() {
    require!(
        support::root_and_netns(),
        "only_root_or_group_fakeups_may_pause_but_anyone_reads_status"
    );
    support::ctl::ensure_fakeups_group();
    let dir = workdir();
    let cfg = TestConfig::new(&["127.0.0.1".to_string()]);
    let daemon = Daemon::start_ready(dir.path(), &cfg);
    let sock = daemon.socket();

    for args in [&["pause"][..], &["pause", "--for", "1h"], &["resume"]] {
        let out = ctl_as(&sock, args, Some(&[]));
        assert_eq!(out.status.code(), Some(77), "{args:?}: {}", stderr(&out));
        assert_eq!(
            stderr(&out),
            "fakeupsctl: permission denied: pausing needs root or membership of group fakeups\n"
        );
        assert!(stdout(&out).is_empty());
    }
    assert!(
        status_json(&sock)["pause"].is_null(),
        "a refused pause changed nothing"
    );
    assert!(
        daemon
            .log()
            .contains("NOTICE: refused a pause request from nobody")
    );

    let out = ctl_as(&sock, &["status"], Some(&[]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("127.0.0.1: answered"));

    // Supplementary membership of group fakeups is enough.
    let out = ctl_as(
        &sock,
        &["pause", "--for", "5m", "--reason", "reboot"],
        Some(&["fakeups"]),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let s = status_json(&sock);
    assert_eq!(s["pause"]["by"], "nobody");
    assert_eq!(s["pause"]["reason"], "reboot");
    let out = ctl_as(&sock, &["resume"], Some(&["nogroup", "fakeups"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(status_json(&sock)["pause"].is_null());
}

/// Logs in to upsd as upsmon does and stays connected.
fn nut_login(nut: &Nut, user: &str, pass: &str, ups: &str) -> TcpStream {
    let mut s = TcpStream::connect(nut.addr()).unwrap();
    s.set_read_timeout(Some(5 * SEC)).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    for cmd in [
        format!("USERNAME {user}"),
        format!("PASSWORD {pass}"),
        format!("LOGIN {ups}"),
    ] {
        s.write_all(format!("{cmd}\n").as_bytes()).unwrap();
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "OK", "{cmd}: {line}");
    }
    s
}

#[test]
fn status_shows_what_upsd_serves_and_its_problems() {
    require!(
        support::root_netns_and_nut(),
        "status_shows_what_upsd_serves_and_its_problems"
    );
    let dir = workdir();
    let mut cfg = TestConfig::new(&["127.0.0.1".to_string()]);
    cfg.ups = vec!["fakeups".into(), "qnapups".into()];
    // The daemon must write the data file before the drivers start, so
    // upsd's port is chosen first and the daemon reads back from it.
    let port_holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = port_holder.local_addr().unwrap().port();
    drop(port_holder);
    cfg.upsd = format!("127.0.0.1:{port}");
    let daemon = Daemon::start_ready(dir.path(), &cfg);
    let mut nut = Nut::start_on(&daemon.data_file(), &["fakeups", "qnapups"], port);

    let _client = nut_login(&nut, "admin", "123456", "qnapups");
    let seen = support::wait_for(8 * SEC, Duration::from_millis(200), || {
        let s = status_json(&daemon.socket());
        (s["nut"]["ups"][1]["clients"] == serde_json::json!(["127.0.0.1"])).then_some(s)
    });
    let s = seen.unwrap_or_else(|| panic!("client never shown: {}", status_json(&daemon.socket())));
    assert_eq!(s["nut"]["ups"][0]["name"], "fakeups");
    assert_eq!(s["nut"]["ups"][0]["status"], "OL");
    assert_eq!(s["nut"]["ups"][1]["status"], "OL");
    let human = stdout(&daemon.ctl(&["status"]));
    assert!(
        human.contains("  qnapups: OL, clients 127.0.0.1\n"),
        "{human}"
    );

    // The qnapups driver dies: a warning once, in status and STATUS=.
    let warned = daemon.log_count("NUT not serving qnapups");
    nut.kill_driver("qnapups");
    let line = daemon
        .wait_log_after("NUT not serving qnapups", warned, 10 * SEC)
        .unwrap_or_else(|| panic!("no warning: {}", daemon.log()));
    assert!(
        line.ends_with("WARNING: NUT not serving qnapups: driver not connected"),
        "{line}"
    );
    let s = status_json(&daemon.socket());
    assert_eq!(s["nut"]["ups"][1]["problem"], "driver not connected");
    assert!(
        s["summary"]
            .as_str()
            .unwrap()
            .ends_with("; NUT not serving qnapups: driver not connected")
    );
    assert!(
        daemon
            .notify
            .statuses()
            .iter()
            .any(|st| st.contains("NUT not serving qnapups: driver not connected"))
    );
    std::thread::sleep(4 * SEC);
    assert_eq!(
        daemon.log_count("NUT not serving qnapups"),
        warned + 1,
        "once per episode"
    );

    // It comes back: recovered by itself.
    let recovered = daemon.log_count("NUT serves qnapups again");
    nut.start_driver("qnapups");
    daemon
        .wait_log_after("NUT serves qnapups again", recovered, 15 * SEC)
        .unwrap_or_else(|| panic!("no recovery: {}", daemon.log()));
    assert!(status_json(&daemon.socket())["nut"]["ups"][1]["problem"].is_null());

    // upsd stops: a warning, not a crash; status still answers.
    let warned = daemon.log_count("NUT not serving fakeups, qnapups: upsd at");
    nut.stop_upsd();
    let line = daemon
        .wait_log_after(
            "NUT not serving fakeups, qnapups: upsd at",
            warned,
            10 * SEC,
        )
        .unwrap_or_else(|| panic!("no upsd warning: {}", daemon.log()));
    assert!(line.contains("WARNING"), "{line}");
    let s = status_json(&daemon.socket());
    assert!(
        s["nut"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("unreachable")),
        "{s}"
    );
    assert_eq!(s["status"], "OL");
}

fn raw_exchange(sock: &std::path::Path, bytes: &[u8]) -> Option<serde_json::Value> {
    let mut s = UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(8 * SEC)).unwrap();
    let _ = s.write_all(bytes);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = vec![];
    let _ = s.read_to_end(&mut out);
    if out.len() < 4 {
        return None;
    }
    let len = u32::from_be_bytes([out[0], out[1], out[2], out[3]]) as usize;
    assert_eq!(out.len(), 4 + len, "one whole frame");
    Some(serde_json::from_slice(&out[4..]).unwrap())
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

#[test]
fn bad_clients_get_an_error_or_a_closed_connection_and_never_stop_the_daemon() {
    require!(
        support::root_and_netns(),
        "bad_clients_get_an_error_or_a_closed_connection_and_never_stop_the_daemon"
    );
    let dir = workdir();
    let cfg = TestConfig::new(&["127.0.0.1".to_string()]);
    let mut daemon = Daemon::start_ready(dir.path(), &cfg);
    let sock = daemon.socket();

    // A client that connects and says nothing holds no one up.
    let _idle = UnixStream::connect(&sock).unwrap();

    let mut garbage = vec![0u8; 512];
    for (i, b) in garbage.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(151).wrapping_add(7);
    }
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("random bytes", garbage),
        ("oversized length", (u32::MAX).to_be_bytes().to_vec()),
        ("truncated frame", {
            let mut v = 100u32.to_be_bytes().to_vec();
            v.extend_from_slice(b"{\"version\":1");
            v
        }),
        ("not JSON", framed(b"hello")),
        (
            "unknown request",
            framed(br#"{"version":1,"request":{"type":"reboot"}}"#),
        ),
        (
            "unknown version",
            framed(br#"{"version":9,"request":{"type":"status"}}"#),
        ),
        ("no version", framed(br#"{"request":{"type":"status"}}"#)),
    ];
    for (what, bytes) in cases {
        match raw_exchange(&sock, &bytes) {
            None => println!("{what}: connection closed"),
            Some(v) => {
                assert_eq!(v["version"], 1, "{what}: {v}");
                assert_eq!(v["response"]["result"], "error", "{what}: {v}");
                println!("{what}: {}", v["response"]["message"]);
            }
        }
        let out = daemon.ctl(&["status"]);
        assert!(
            out.status.success(),
            "status after {what}: {}",
            stderr(&out)
        );
    }
    let v = raw_exchange(
        &sock,
        &framed(br#"{"version":9,"request":{"type":"status"}}"#),
    )
    .unwrap();
    assert_eq!(v["response"]["kind"], "unsupported-version");

    // 50 clients at once all get answers.
    let children: Vec<_> = (0..50)
        .map(|_| {
            support::FAKEUPSCTL
                .command()
                .arg("--socket")
                .arg(&sock)
                .args(["status", "--json"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut ok = 0;
    for c in children {
        let out = c.wait_with_output().unwrap();
        if out.status.success()
            && serde_json::from_slice::<serde_json::Value>(&out.stdout)
                .is_ok_and(|v| v["status"] == "OL")
        {
            ok += 1;
        } else {
            eprintln!("failed: {}", stderr(&out));
        }
    }
    assert_eq!(ok, 50);
    assert!(daemon.running());
}

#[test]
fn fakeupsctl_errors_are_one_line_with_their_exit_status() {
    require!(
        support::root_and_netns(),
        "fakeupsctl_errors_are_one_line_with_their_exit_status"
    );
    let dir = workdir();
    let missing = dir.path().join("run/control.sock");
    let out = ctl_as(&missing, &["status"], None);
    assert_eq!(out.status.code(), Some(69));
    assert_eq!(
        stderr(&out),
        format!(
            "fakeupsctl: fakeups is not running (no socket at {})\n",
            missing.display()
        )
    );

    let cfg = TestConfig::new(&["127.0.0.1".to_string()]);
    let mut daemon = Daemon::start_ready(dir.path(), &cfg);
    // A daemon that does not answer in time.
    daemon.signal(Signal::SIGSTOP);
    let out = ctl_as(&daemon.socket(), &["--timeout", "1s", "status"], None);
    daemon.signal(Signal::SIGCONT);
    assert_eq!(out.status.code(), Some(69), "{}", stderr(&out));
    assert!(stderr(&out).starts_with("fakeupsctl: fakeups did not answer within 1s"));
    assert_eq!(stderr(&out).lines().count(), 1);

    // A bad argument: one line, exit 64.
    let out = ctl_as(&daemon.socket(), &["pause", "--for", "soon"], None);
    assert_eq!(out.status.code(), Some(64));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    let out = ctl_as(
        &daemon.socket(),
        &["pause", "--for", "1h", "--until-resumed"],
        None,
    );
    assert_eq!(out.status.code(), Some(64));

    // kill -9 leaves a stale socket, which the next start replaces.
    daemon.kill9();
    assert!(daemon.socket().exists());
    let out = ctl_as(&daemon.socket(), &["status"], None);
    assert_eq!(out.status.code(), Some(69));
    assert!(
        stderr(&out).contains("fakeups is not running (nothing listens on"),
        "{}",
        stderr(&out)
    );
    daemon.restart();
    assert!(daemon.log().contains("replacing the stale socket"));
    assert!(daemon.ctl(&["status"]).status.success());
    let mode = fs::metadata(daemon.socket()).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o666
    );
    assert!(daemon.stop().success());

    // A path that is not a socket is never removed: the daemon refuses to start.
    fs::write(daemon.socket(), "not a socket").unwrap();
    daemon.spawn();
    let status = support::wait_for(10 * SEC, Duration::from_millis(50), || {
        daemon
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    })
    .expect("the daemon exits");
    assert_eq!(status.code(), Some(73));
    assert_eq!(fs::read_to_string(daemon.socket()).unwrap(), "not a socket");
    assert!(
        daemon.stderr().contains("refusing to remove"),
        "{}",
        daemon.stderr()
    );
}
