//! Wake-on-LAN after an outage, with real parts: the router is a network
//! namespace (the sentinel), each NAS another, running a real upsmon
//! logged in to the test's real upsd over its own veth. A NAS powers off
//! when its upsmon runs SHUTDOWNCMD and powers on when a magic packet with
//! its MAC reaches port 9 in its namespace (support/nas.rs). The packets
//! go only to the directed broadcast of the NAS's veth subnet.

use std::time::{Duration, Instant};

use crate::support::ctl::{ctl_as, ensure_fakeups_group, status_json};
use crate::support::daemon::{Daemon, DataWatch, TestConfig};
use crate::support::nas::Nas;
use crate::support::netns::NetNs;
use crate::support::nut::Nut;
use crate::support::{self, require, stderr, stdout, wait_for, workdir};

const SEC: Duration = Duration::from_secs(1);
/// The slack the timing assertions allow on `after` and `retry-every`.
const SLACK: Duration = Duration::from_secs(1);

/// The router, the daemon watching it, upsd listening on the NASes' veths
/// and the NASes logged in to it.
struct Rig {
    router: NetNs,
    daemon: Daemon,
    _nut: Nut,
    watch: DataWatch,
    nases: Vec<Nas>,
}

/// `nases`: for each NAS, whether it shuts down at OB LB (else it only
/// watches and stays up). `wake`: the `[wake]` table and any hosts.
fn rig(dir: &std::path::Path, nases: &[bool], wake: impl Fn(&[Nas]) -> String) -> Rig {
    let router = NetNs::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let nases: Vec<Nas> = nases.iter().map(|&down| Nas::start(port, down)).collect();
    let mut cfg = TestConfig::new(&[router.peer_ip()]);
    cfg.upsd = format!("127.0.0.1:{port}");
    cfg.on_battery_after = "1s";
    let config = format!("{}{}", cfg.render(dir), wake(&nases));
    let daemon = Daemon::start_with(dir, &config, &[]);
    daemon.wait_ready();
    let hosts: Vec<String> = nases.iter().map(|n| n.ns.host_ip()).collect();
    let nut = Nut::start_listening(&daemon.data_file(), &["fakeups"], port, &hosts);
    let rig = Rig {
        watch: DataWatch::start(daemon.data_file()),
        router,
        daemon,
        _nut: nut,
        nases,
    };
    rig.wait_logged_in();
    rig
}

impl Rig {
    /// Until upsd lists every NAS as a client.
    fn wait_logged_in(&self) {
        let want: Vec<String> = self.nases.iter().map(Nas::address).collect();
        let seen = wait_for(20 * SEC, SEC / 5, || {
            let s = status_json(&self.daemon.socket());
            let clients = s["nut"]["ups"][0]["clients"].clone();
            want.iter()
                .all(|a| {
                    clients
                        .as_array()
                        .is_some_and(|c| c.iter().any(|x| x == a.as_str()))
                })
                .then_some(())
        });
        assert!(
            seen.is_some(),
            "the NASes never logged in: {}\n{}",
            status_json(&self.daemon.socket()),
            self.nases
                .iter()
                .map(Nas::upsmon_log)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    /// The router goes silent until the NAS at `nas` has shut down.
    /// Returns when the router was cut.
    fn outage_until_shutdown(&self, nas: usize) -> Instant {
        let cut = Instant::now();
        self.router.cut();
        let down = wait_for(30 * SEC, SEC / 10, || {
            (!self.nases[nas].log().shutdowns.is_empty()).then_some(())
        });
        assert!(
            down.is_some(),
            "the NAS did not shut down: {:?}\n{}\n{}",
            self.watch.changes(),
            self.nases[nas].upsmon_log(),
            self.daemon.log()
        );
        assert!(
            self.watch.first("OB LB").is_some(),
            "{:?}",
            self.watch.changes()
        );
        cut
    }

    /// Power back: the router answers; returns when the data file said OL.
    fn power_back(&self) -> Instant {
        self.router.restore();
        let after = self.watch.changes().len();
        wait_for(20 * SEC, SEC / 20, || {
            self.watch
                .changes()
                .iter()
                .skip(after.saturating_sub(1))
                .find(|(_, s, _)| s == "OL")
                .map(|(t, _, _)| *t)
        })
        .unwrap_or_else(|| panic!("never OL again: {:?}", self.watch.changes()))
    }

    fn wait_power_ons(&self, nas: usize, n: usize, timeout: Duration) {
        let on = wait_for(timeout, SEC / 20, || {
            (self.nases[nas].log().power_ons.len() >= n).then_some(())
        });
        assert!(
            on.is_some(),
            "no magic packet powered NAS {nas} on: {:?}\n{}",
            self.nases[nas].log(),
            self.daemon.log()
        );
    }
}

fn assert_near(what: &str, got: Duration, want: Duration) {
    assert!(
        got + SLACK >= want && got <= want + SLACK,
        "{what}: {got:?}, not within {SLACK:?} of {want:?}"
    );
}

#[test]
fn a_nas_that_shut_down_is_woken_after_power_returns_and_one_that_stayed_up_is_not() {
    require!(
        support::root_netns_and_nut(),
        "a_nas_that_shut_down_is_woken_after_power_returns_and_one_that_stayed_up_is_not"
    );
    let dir = workdir();
    let rig = rig(dir.path(), &[true, false], |_| {
        "[wake]\nafter = \"3s\"\nretry-every = \"2s\"\ngive-up-after = \"1m\"\n".into()
    });
    let (nas, stayed) = (&rig.nases[0], &rig.nases[1]);
    // Its card misses the first packet: the second must follow.
    nas.ignore_next(1);
    let cut = rig.outage_until_shutdown(0);
    let s = status_json(&rig.daemon.socket());
    let targets = s["wake"]["targets"].as_array().cloned().unwrap_or_default();
    for n in [nas, stayed] {
        let t = targets
            .iter()
            .find(|t| t["name"] == n.address().as_str())
            .unwrap_or_else(|| panic!("{} is not a target: {s}", n.address()));
        assert_eq!(t["mac"], n.mac.as_str(), "{t}");
        assert_eq!(t["mac_from"], "neighbours", "{t}");
    }
    assert_eq!(s["wake"]["outage"]["on_battery"], true, "{s}");

    let ol = rig.power_back();
    // Between the first packet (ignored) and the second: the status shows
    // the wake under way.
    wait_for(20 * SEC, SEC / 50, || nas.log().packets.first().copied())
        .unwrap_or_else(|| panic!("no packet: {}", rig.daemon.log()));
    let human = stdout(&rig.daemon.ctl(&["status"]));
    assert!(human.contains("Wake:      waking"), "{human}");
    assert!(
        human.contains(&format!(
            "  {} [{}, from neighbours]: sent 1 time(s)",
            nas.address(),
            nas.mac
        )),
        "{human}"
    );
    rig.wait_power_ons(0, 1, 20 * SEC);
    let packets = nas.log().packets.clone();
    assert!(packets.len() >= 2, "{packets:?}");
    assert_near("first packet after OL", packets[0] - ol, 3 * SEC);
    assert_near(
        "second packet after the first",
        packets[1] - packets[0],
        2 * SEC,
    );
    assert!(
        rig.daemon
            .notify
            .statuses()
            .iter()
            .any(|l| l.ends_with("; waking 1 machine")),
        "{:?}",
        rig.daemon.notify.statuses()
    );

    // Its upsmon logs in again: up, and the packets stop.
    let up = rig
        .daemon
        .wait_log(&format!("wake: {} is up again", nas.address()), 15 * SEC)
        .unwrap_or_else(|| panic!("never up: {}", rig.daemon.log()));
    let up_seen = Instant::now();
    assert!(up.contains("INFO"), "{up}");
    let sent = nas.log().packets.len();
    std::thread::sleep(5 * SEC);
    assert_eq!(
        nas.log().packets.len(),
        sent,
        "packets after the NAS was up"
    );
    // The whole cycle, for the record (cargo test -- --nocapture).
    let at = |t: Instant| format!("{:6.2} s", (t - cut).as_secs_f64());
    let log = nas.log();
    eprintln!("wake cycle (router cut at 0 s; after 3s, retry-every 2s):");
    eprintln!("  {}  OB", at(rig.watch.first("OB").unwrap()));
    eprintln!("  {}  OB LB", at(rig.watch.first("OB LB").unwrap()));
    eprintln!(
        "  {}  the NAS's upsmon runs SHUTDOWNCMD: off",
        at(log.shutdowns[0])
    );
    eprintln!("  {}  OL (router restored before)", at(ol));
    for (i, p) in log.packets.iter().enumerate() {
        eprintln!("  {}  magic packet {} arrives", at(*p), i + 1);
    }
    eprintln!("  {}  powered on, upsmon started", at(log.power_ons[0]));
    eprintln!("  {}  fakeups logs: {}", at(up_seen), up.trim());
    eprintln!("fakeupsctl status during the wake:\n{human}");
    drop(log);
    assert!(stayed.log().packets.is_empty(), "{:?}", stayed.log());
    assert!(stayed.log().shutdowns.is_empty());
    let log = rig.daemon.log();
    let first = format!(
        "NOTICE: wake: magic packet 1 for {} ({}) sent to {}:9",
        nas.address(),
        nas.mac,
        nas.ns.broadcast()
    );
    assert!(log.contains(&first), "{log}");
    assert!(
        log.contains(&format!(
            "wake: {} stayed up: no packet for it",
            stayed.address()
        )),
        "{log}"
    );
    let s = status_json(&rig.daemon.socket());
    assert!(s["wake"]["outage"].is_null(), "{s}");
    let states: Vec<String> = s["wake"]["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            format!(
                "{} {}",
                t["name"].as_str().unwrap(),
                t["description"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        states.contains(&format!("{} stayed up", stayed.address())),
        "{states:?}"
    );
    assert!(
        states
            .iter()
            .any(|s| s.starts_with(&format!("{} up after", nas.address()))),
        "{states:?}"
    );
}

#[test]
fn a_kill_and_a_restart_while_waiting_do_not_lose_the_wake() {
    require!(
        support::root_netns_and_nut(),
        "a_kill_and_a_restart_while_waiting_do_not_lose_the_wake"
    );
    let dir = workdir();
    let mut rig = rig(dir.path(), &[true], |_| {
        "[wake]\nafter = \"4s\"\nretry-every = \"2s\"\ngive-up-after = \"1m\"\n".into()
    });
    rig.nases[0].ignore_next(1);
    rig.outage_until_shutdown(0);
    let ol = rig.power_back();
    // Killed while it waits for `after`: the runtime copy keeps the wake.
    std::thread::sleep(SEC);
    rig.daemon.kill9();
    rig.daemon.restart();
    let first = wait_for(15 * SEC, SEC / 20, || {
        rig.nases[0].log().packets.first().copied()
    })
    .unwrap_or_else(|| panic!("no packet after the kill: {}", rig.daemon.log()));
    assert_near(
        "first packet after OL, across a kill -9",
        first - ol,
        4 * SEC,
    );
    // Stopped and started between two packets: the next still comes.
    rig.daemon.stop();
    rig.daemon.restart();
    rig.wait_power_ons(0, 1, 15 * SEC);
    let packets = rig.nases[0].log().packets.clone();
    assert!(packets[1] > first, "{packets:?}");
    assert!(
        rig.daemon
            .wait_log(
                &format!("wake: {} is up again", rig.nases[0].address()),
                15 * SEC
            )
            .is_some(),
        "{}",
        rig.daemon.log()
    );
}

#[test]
fn give_up_stops_the_packets_and_fakeupsctl_wake_is_for_root_and_group_fakeups() {
    require!(
        support::root_netns_and_nut(),
        "give_up_stops_the_packets_and_fakeupsctl_wake_is_for_root_and_group_fakeups"
    );
    ensure_fakeups_group();
    let dir = workdir();
    // The NAS is a configured host, not a NUT client: pinged first, its
    // MAC from the configuration.
    let rig = rig(dir.path(), &[true], |nases| {
        format!(
            "[wake]\nnut-clients = false\nafter = \"1s\"\nretry-every = \"2s\"\n\
             give-up-after = \"5s\"\n[[wake.host]]\nname = \"nas\"\nmac = \"{}\"\n\
             address = \"{}\"\n",
            nases[0].mac,
            nases[0].address()
        )
    });
    let nas = &rig.nases[0];
    // Never wakes: its card ignores every packet.
    nas.ignore_next(usize::MAX);
    rig.outage_until_shutdown(0);
    rig.power_back();
    let line = rig
        .daemon
        .wait_log("wake: giving up on nas", 20 * SEC)
        .unwrap_or_else(|| panic!("never gave up: {}", rig.daemon.log()));
    assert!(line.contains("WARNING"), "{line}");
    // Packets at 0 s, 2 s and 4 s after the first; none at 6 s.
    let sent = nas.log().packets.len();
    assert_eq!(sent, 3, "{:?}", nas.log());
    std::thread::sleep(5 * SEC);
    assert_eq!(nas.log().packets.len(), sent, "packets after giving up");
    let s = status_json(&rig.daemon.socket());
    assert_eq!(s["wake"]["targets"][0]["state"], "gave-up", "{s}");

    // fakeupsctl wake: root or group fakeups, by name or MAC.
    let sock = rig.daemon.socket();
    let out = ctl_as(&sock, &["wake", &nas.address()], Some(&[]));
    assert_eq!(out.status.code(), Some(77), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("needs root or membership of group fakeups"),
        "{}",
        stderr(&out)
    );
    std::thread::sleep(SEC / 2);
    assert_eq!(
        nas.log().packets.len(),
        sent,
        "a refused wake sent a packet"
    );
    let out = ctl_as(&sock, &["wake", "nas"], Some(&["fakeups"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("sent to {}:9", nas.ns.broadcast())),
        "{}",
        stdout(&out)
    );
    let out = rig.daemon.ctl(&["wake", &nas.mac]);
    assert!(out.status.success(), "{}", stderr(&out));
    let got = wait_for(5 * SEC, SEC / 20, || {
        (nas.log().packets.len() == sent + 2).then_some(())
    });
    assert!(got.is_some(), "{:?}", nas.log());
    let out = rig.daemon.ctl(&["wake", "no-such-machine"]);
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    // A drill needs root, not only the group.
    let out = ctl_as(&sock, &["drill", "--for", "1m"], Some(&["fakeups"]));
    assert_eq!(out.status.code(), Some(77), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("a drill needs root"),
        "{}",
        stderr(&out)
    );
    assert_eq!(status_json(&sock)["status"], "OL");
}

#[test]
fn a_drill_runs_the_whole_chain_and_the_nas_comes_back() {
    require!(
        support::root_netns_and_nut(),
        "a_drill_runs_the_whole_chain_and_the_nas_comes_back"
    );
    let dir = workdir();
    let mut rig = rig(dir.path(), &[true], |_| {
        "[wake]\nafter = \"2s\"\nretry-every = \"2s\"\ngive-up-after = \"1m\"\n".into()
    });
    let sock = rig.daemon.socket();
    // Refused while paused.
    assert!(rig.daemon.ctl(&["pause", "--for", "5m"]).status.success());
    let out = rig.daemon.ctl(&["drill", "--for", "8s"]);
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    assert!(stderr(&out).contains("paused"), "{}", stderr(&out));
    assert!(rig.daemon.ctl(&["resume"]).status.success());
    let out = rig.daemon.ctl(&["drill", "--stop"]);
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));

    let before = rig.watch.changes().len();
    let out = rig.daemon.ctl(&["drill", "--for", "9s"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Drill started by root"),
        "{}",
        stdout(&out)
    );
    let ob = wait_for(5 * SEC, SEC / 20, || {
        rig.watch
            .changes()
            .iter()
            .skip(before)
            .find(|(_, s, _)| s == "OB")
            .map(|c| c.0)
    });
    assert!(ob.is_some(), "no OB at once: {:?}", rig.watch.changes());
    let s = status_json(&sock);
    assert_eq!(s["drill"]["by"], "root", "{s}");
    assert_eq!(s["wake"]["outage"]["drill"], true, "{s}");
    // The NAS's upsmon shuts it down at OB LB, as in a real outage.
    let down = wait_for(20 * SEC, SEC / 10, || {
        (!rig.nases[0].log().shutdowns.is_empty()).then_some(())
    });
    assert!(down.is_some(), "{}", rig.nases[0].upsmon_log());
    // OL when the drill is over, then the wake.
    let ol = wait_for(15 * SEC, SEC / 20, || {
        rig.watch
            .changes()
            .iter()
            .skip(before + 1)
            .find(|(_, s, _)| s == "OL")
            .map(|c| c.0)
    })
    .unwrap_or_else(|| panic!("the drill never ended: {:?}", rig.watch.changes()));
    rig.wait_power_ons(0, 1, 15 * SEC);
    let first = rig.nases[0].log().packets[0];
    assert_near("first packet after the drill's OL", first - ol, 2 * SEC);
    assert!(
        rig.daemon
            .wait_log(
                &format!("wake: {} is up again", rig.nases[0].address()),
                15 * SEC
            )
            .is_some(),
        "{}",
        rig.daemon.log()
    );
    let log = rig.daemon.log();
    for line in [
        "NOTICE: Drill started by root",
        "WARNING: Drill: Power lost - switching to OB",
        "CRITICAL: Drill: Battery critically low - switching to OB LB",
        "INFO: Drill: Power restored",
        "NOTICE: Drill ended: its time is up",
    ] {
        assert!(log.contains(line), "{line:?} not in:\n{log}");
    }
    // A restart ends a drill, and says so.
    assert!(rig.daemon.ctl(&["drill", "--for", "5m"]).status.success());
    rig.daemon.stop();
    rig.daemon.restart();
    assert!(
        rig.daemon
            .wait_log("NOTICE: Drill ended: fakeups restarted during it", 5 * SEC)
            .is_some(),
        "{}",
        rig.daemon.log()
    );
    let s = status_json(&sock);
    assert_eq!(s["status"], "OL", "{s}");
    assert!(s["drill"].is_null(), "{s}");
}
