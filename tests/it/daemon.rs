//! The real fakeups daemon against real ICMP (sentinels on veth pairs in
//! network namespaces this test creates) and a real upsd + dummy-ups.

use std::fs;
use std::time::{Duration, Instant};

use crate::support::daemon::{Daemon, DataWatch, TestConfig};
use crate::support::logs::monolog_in_order;
use crate::support::netns::NetNs;
use crate::support::nut::{Nut, StatusWatch};
use crate::support::{self, require, workdir};
use nix::sys::signal::Signal;

const SEC: Duration = Duration::from_secs(1);

fn cap_eff(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:").map(|v| v.trim().to_string()))
        .unwrap_or_default()
}

/// Cut the link: OL, OB within on-battery-after + 2 s, OB LB when the
/// runtime left reaches low-runtime, OL within online-after + 2 s of the
/// restore; all read back through upsd; the three monolog lines.
#[test]
fn outage_goes_ob_then_lb_then_ol_through_upsd() {
    require!(
        support::root_netns_and_nut(),
        "outage_goes_ob_then_lb_then_ol_through_upsd"
    );
    let ns = NetNs::new();
    let dir = workdir();
    let cfg = TestConfig::new(&[ns.peer_ip()]);
    let mut daemon = Daemon::start_ready(dir.path(), &cfg);
    assert_eq!(daemon.data()["ups.status"], "OL");
    // Root starts it: it keeps CAP_NET_RAW (bit 13) and nothing else.
    assert_eq!(cap_eff(daemon.pid()), "0000000000002000");

    let nut = Nut::start(&daemon.data_file(), &["fakeups"]);
    let mut watch = StatusWatch::new(&nut, "fakeups");
    assert!(watch.until("OL", 5 * SEC).is_some(), "{}", nut.logs());
    let file = DataWatch::start(daemon.data_file());

    let cut = Instant::now();
    ns.cut();
    let ob = watch.until("OB", 4 * SEC);
    let ob = ob.unwrap_or_else(|| panic!("no OB within 4 s: {}", watch.history()));
    println!("OB at upsd {:.2}s after the cut", (ob - cut).as_secs_f64());

    let lb = watch.until("OB LB", 3 * SEC + 3 * SEC);
    let lb = lb.unwrap_or_else(|| panic!("no OB LB: {}", watch.history()));
    println!("OB LB at upsd {:.2}s after OB", (lb - ob).as_secs_f64());
    // In the data file the LB moment is exact to a round: 6 s runtime, LB
    // with 3 s left, so 3 s after OB.
    let (f_ob, f_lb) = (file.first("OB").unwrap(), file.first("OB LB").unwrap());
    let gap = (f_lb - f_ob).as_secs_f64();
    assert!(
        (2.75..=3.45).contains(&gap),
        "LB {gap:.2}s after OB in the file"
    );
    let lb_runtime = file.changes().iter().find(|c| c.1 == "OB LB").unwrap().2;
    assert!(
        (2..=3).contains(&lb_runtime),
        "battery.runtime {lb_runtime} at LB"
    );
    assert!(lb >= f_lb && lb - f_lb < Duration::from_millis(1600));

    let restored = Instant::now();
    ns.restore();
    let ol = watch.until("OL", 3 * SEC);
    let ol = ol.unwrap_or_else(|| panic!("no OL within 3 s: {}", watch.history()));
    println!(
        "OL at upsd {:.2}s after the restore",
        (ol - restored).as_secs_f64()
    );
    // upsd served exactly these, in order.
    let served: Vec<&str> = watch.seen.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(served, ["OL", "OB", "OB LB", "OL"], "{}", watch.history());

    assert!(daemon.stop().success());
    let log = daemon.log();
    monolog_in_order(
        &log,
        &[
            ("WARNING", "Power lost - switching to OB"),
            ("CRITICAL", "Battery critically low - switching to OB LB"),
            ("INFO", "Power restored"),
        ],
    )
    .unwrap();
    // STATUS= followed the state and STOPPING=1 came last.
    let statuses = daemon.notify.statuses();
    assert!(
        statuses.iter().any(|s| s.starts_with("OB: 0/1")),
        "{statuses:?}"
    );
    assert!(
        statuses.iter().any(|s| s.starts_with("OB LB: 0/1")),
        "{statuses:?}"
    );
    assert!(daemon.notify.count_lines("STOPPING=1") == 1);
}

/// Two sentinels, one cut: quorum `all` stays OL. A reload to quorum `any`
/// goes OB; a broken config on reload is refused and the old one kept.
#[test]
fn quorum_all_holds_with_one_of_two_and_any_goes_ob_after_reload() {
    require!(
        support::root_netns_and_nut(),
        "quorum_all_holds_with_one_of_two_and_any_goes_ob_after_reload"
    );
    let (a, b) = (NetNs::new(), NetNs::new());
    let dir = workdir();
    let mut cfg = TestConfig::new(&[a.peer_ip(), b.peer_ip()]);
    let mut daemon = Daemon::start_ready(dir.path(), &cfg);
    let nut = Nut::start(&daemon.data_file(), &["fakeups"]);
    let mut watch = StatusWatch::new(&nut, "fakeups");
    assert!(watch.until("OL", 5 * SEC).is_some());

    a.cut();
    // on-battery-after is 2 s: twice that and more, still OL.
    let seen = watch.during(5 * SEC);
    assert_eq!(seen, ["OL"], "quorum all went off with one of two silent");
    assert_eq!(daemon.data()["ups.status"], "OL");

    cfg.quorum = "\"any\"".into();
    fs::write(&daemon.config, cfg.render(dir.path())).unwrap();
    let before = daemon.notify.messages().len();
    let reload = Instant::now();
    daemon.signal(Signal::SIGHUP);
    let r = daemon
        .notify
        .wait_line("RELOADING=1", before, 5 * SEC)
        .expect("RELOADING=1");
    let msg = &daemon.notify.messages()[r].1;
    assert!(
        msg.lines().any(|l| l.starts_with("MONOTONIC_USEC=")),
        "{msg}"
    );
    daemon
        .notify
        .wait_line("READY=1", r, 5 * SEC)
        .expect("READY=1 after reload");
    let ob = watch.until("OB", 4 * SEC);
    let ob = ob.unwrap_or_else(|| panic!("quorum any did not go OB: {}", watch.history()));
    println!("OB {:.2}s after the reload", (ob - reload).as_secs_f64());

    // A broken file on reload: refused with its place, the daemon goes on.
    fs::write(&daemon.config, "[detection]\nquorum = \"most\"\n").unwrap();
    daemon.signal(Signal::SIGHUP);
    let found = support::wait_for(5 * SEC, Duration::from_millis(50), || {
        daemon
            .log()
            .lines()
            .find(|l| l.contains("reload refused"))
            .map(String::from)
    })
    .expect("reload refused in the log");
    assert!(found.contains("ERROR: reload refused"), "{found}");
    assert!(
        found.contains("fakeups.toml:2:10: unknown quorum"),
        "{found}"
    );
    assert!(daemon.running());
    a.restore();
    assert!(watch.until("OL", 3 * SEC).is_some(), "{}", watch.history());
}

/// kill -9 while on battery, then a restart: the charge goes on from where
/// it was and the status never passes through OL.
#[test]
fn restart_after_kill_9_on_battery_keeps_charge_and_status() {
    require!(
        support::root_netns_and_nut(),
        "restart_after_kill_9_on_battery_keeps_charge_and_status"
    );
    let ns = NetNs::new();
    let dir = workdir();
    let mut cfg = TestConfig::new(&[ns.peer_ip()]);
    cfg.runtime = "60s";
    cfg.low_runtime = "10s";
    let mut daemon = Daemon::start_ready(dir.path(), &cfg);
    let nut = Nut::start(&daemon.data_file(), &["fakeups"]);
    let mut watch = StatusWatch::new(&nut, "fakeups");
    assert!(watch.until("OL", 5 * SEC).is_some());
    ns.cut();
    assert!(watch.until("OB", 4 * SEC).is_some(), "{}", watch.history());
    std::thread::sleep(3 * SEC);

    let file = DataWatch::start(daemon.data_file());
    std::thread::sleep(Duration::from_millis(100));
    let before = daemon.data();
    let killed = Instant::now();
    daemon.kill9();
    daemon.restart();
    let gap = killed.elapsed();
    std::thread::sleep(SEC);
    let after = daemon.data();

    // The data file never said OL, and neither did upsd.
    let statuses: Vec<String> = file.changes().into_iter().map(|c| c.1).collect();
    assert_eq!(statuses, ["OB"], "data file statuses across the restart");
    let seen = watch.during(2 * SEC);
    assert_eq!(seen, ["OB"]);

    let runtime = |m: &std::collections::HashMap<String, String>| -> f64 {
        m["battery.runtime"].parse().unwrap()
    };
    // 1 s of waiting after READY, the restart gap, and one interval plus
    // a second of rounding on either side.
    let drained = runtime(&before) - runtime(&after);
    let expected = 1.0 + gap.as_secs_f64();
    println!(
        "runtime before {} after {} (restart took {:.2}s)",
        before["battery.runtime"],
        after["battery.runtime"],
        gap.as_secs_f64()
    );
    assert!(
        drained >= expected - 1.2 && drained <= expected + 1.2,
        "drained {drained}s across the restart, expected about {expected:.1}s"
    );
    let charge = |m: &std::collections::HashMap<String, String>| -> i64 {
        m["battery.charge"].parse().unwrap()
    };
    assert!(charge(&after) <= charge(&before) && charge(&after) >= charge(&before) - 5);
    assert!(daemon.log().contains("restored OB with battery"));
}

/// sd_notify: READY=1 only after the first round and the data file,
/// WATCHDOG=1 at half of WATCHDOG_USEC from the main loop, STOPPING=1.
#[test]
fn notifies_systemd_ready_watchdog_status_stopping() {
    require!(
        support::root_and_netns(),
        "notifies_systemd_ready_watchdog_status_stopping"
    );
    let dir = workdir();
    let cfg = TestConfig::new(&["127.0.0.1".to_string()]);
    let path = dir.path().join("fakeups.toml");
    fs::write(&path, cfg.render(dir.path())).unwrap();
    // The daemon as systemd starts it, with a watchdog of 400 ms.
    let start = |notify: &support::notify::NotifySocket| {
        support::FAKEUPS
            .command()
            .arg("--config")
            .arg(&path)
            .env("NOTIFY_SOCKET", &notify.path)
            .env("WATCHDOG_USEC", "400000")
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let notify = support::notify::NotifySocket::bind(dir.path());
    let mut child = start(&notify);
    let ready = notify.wait_line("READY=1", 0, 10 * SEC);
    let data = support::daemon::read_data_file(&dir.path().join("lib/fakeups.dev"));
    let _ = child.kill();
    let _ = child.wait();
    let r = ready.expect("READY=1");
    assert_eq!(data["ups.status"], "OL", "data file written before READY=1");
    let msg = &notify.messages()[r].1;
    assert!(msg.contains("STATUS=OL: 1/1 sentinels answering"), "{msg}");

    // A new run to count watchdog pings over 2 s: one per 200 ms.
    let notify2 = support::notify::NotifySocket::bind(&dir.path().join("lib"));
    let mut child = start(&notify2);
    notify2.wait_line("READY=1", 0, 10 * SEC).expect("READY=1");
    let n0 = notify2.count_lines("WATCHDOG=1");
    std::thread::sleep(2 * SEC);
    let pings = notify2.count_lines("WATCHDOG=1") - n0;
    assert!((8..=12).contains(&pings), "{pings} watchdog pings in 2 s");
    // A stopped main loop sends none.
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, Signal::SIGSTOP).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let n1 = notify2.count_lines("WATCHDOG=1");
    std::thread::sleep(SEC);
    assert_eq!(notify2.count_lines("WATCHDOG=1"), n1);
    nix::sys::signal::kill(pid, Signal::SIGCONT).unwrap();
    nix::sys::signal::kill(pid, Signal::SIGTERM).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(notify2.count_lines("STOPPING=1"), 1);
}

/// `gateway` is read from the route table: the daemon runs inside a test
/// namespace whose default route points at the veth's host side.
#[test]
fn gateway_sentinel_follows_the_default_route() {
    require!(
        support::root_and_netns(),
        "gateway_sentinel_follows_the_default_route"
    );
    let ns = NetNs::new();
    let dir = workdir();
    let cfg = TestConfig::new(&["gateway".to_string()]);
    let prefix = ["ip", "netns", "exec", ns.name.as_str()];
    let daemon = Daemon::start_with(dir.path(), &cfg.render(dir.path()), &prefix);
    daemon.wait_ready();
    assert_eq!(daemon.data()["ups.status"], "OL");
    assert!(
        daemon.log().contains("INFO: sentinel gateway answers"),
        "{}",
        daemon.log()
    );
    let file = DataWatch::start(daemon.data_file());
    ns.cut();
    assert!(
        support::wait_for(4 * SEC, Duration::from_millis(50), || file.first("OB")).is_some(),
        "{}",
        daemon.log()
    );
    assert!(
        daemon
            .log()
            .contains("NOTICE: sentinel gateway is silent: no IPv4 default route"),
        "{}",
        daemon.log()
    );
    ns.restore();
    assert!(
        support::wait_for(3 * SEC, Duration::from_millis(50), || {
            (daemon.data()["ups.status"] == "OL").then_some(())
        })
        .is_some()
    );
}

/// IPv6, IPv4 and a host name in one round, all on loopback.
#[test]
fn pings_ipv6_ipv4_and_names() {
    require!(support::root_and_netns(), "pings_ipv6_ipv4_and_names");
    let dir = workdir();
    let cfg = TestConfig::new(&["::1".into(), "127.0.0.1".into(), "localhost".into()]);
    let daemon = Daemon::start_ready(dir.path(), &cfg);
    std::thread::sleep(Duration::from_millis(500));
    let log = daemon.log();
    for name in ["::1", "127.0.0.1", "localhost"] {
        assert!(
            log.contains(&format!("INFO: sentinel {name} answers")),
            "{log}"
        );
    }
    assert!(!log.contains(" is silent"), "{log}");
}

/// A host name whose resolution starts failing keeps its last good address.
/// The daemon runs in a mount namespace where /etc/hosts is the test's own
/// and nsswitch.conf says `hosts: files`, so no DNS query leaves the machine.
#[test]
fn resolver_failure_keeps_the_last_good_address() {
    require!(
        support::root_and_netns(),
        "resolver_failure_keeps_the_last_good_address"
    );
    if !support::have("unshare") {
        support::skip(
            "resolver_failure_keeps_the_last_good_address",
            "needs unshare (util-linux)",
        );
        return;
    }
    let dir = workdir();
    let hosts = dir.path().join("hosts");
    let nsswitch = dir.path().join("nsswitch.conf");
    fs::write(
        &hosts,
        "127.0.0.1 localhost\n127.0.0.9 sentinel.fakeups.test\n",
    )
    .unwrap();
    fs::write(&nsswitch, "hosts: files\n").unwrap();
    let mut cfg = TestConfig::new(&["sentinel.fakeups.test".into()]);
    cfg.on_battery_after = "1s";
    let script = format!(
        "mount --bind {} /etc/hosts && mount --bind {} /etc/nsswitch.conf && exec \"$0\" \"$@\"",
        hosts.display(),
        nsswitch.display()
    );
    let prefix = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script.as_str(),
    ];
    let daemon = Daemon::start_with(dir.path(), &cfg.render(dir.path()), &prefix);
    daemon.wait_ready();
    assert_eq!(daemon.data()["ups.status"], "OL", "{}", daemon.log());
    // The name goes away; the file keeps its inode so the bind mount sees it.
    fs::write(&hosts, "127.0.0.1 localhost\n").unwrap();
    let line = support::wait_for(3 * SEC, Duration::from_millis(50), || {
        daemon
            .log()
            .lines()
            .find(|l| l.contains("cannot resolve sentinel.fakeups.test"))
            .map(String::from)
    });
    let line = line.unwrap_or_else(|| panic!("no resolver failure logged:\n{}", daemon.log()));
    assert!(
        line.contains("keeping its last good address 127.0.0.9"),
        "{line}"
    );
    // Three times on-battery-after later, still answered at the old address.
    std::thread::sleep(3 * SEC);
    assert_eq!(daemon.data()["ups.status"], "OL");
    assert!(!daemon.log().contains("is silent"), "{}", daemon.log());
}
