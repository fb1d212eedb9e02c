//! Faults a Raspberry Pi meets over years, against the real daemon: a
//! silent sentinel with a long timeout, a disk that stalls, a crash at the
//! worst moment, and the writes an SD card takes on battery. strace holds
//! or delays the daemon's system calls at exact points.

use std::time::{Duration, Instant};

use crate::support::daemon::{Daemon, DataWatch, TestConfig};
use crate::support::netns::NetNs;
use crate::support::strace::{self, Strace};
use crate::support::{self, require, stderr, stdout, workdir};

const SEC: Duration = Duration::from_secs(1);

fn root_netns_strace() -> Result<(), String> {
    support::root_and_netns()?;
    strace::available()
}

/// One sentinel in `ns`, OB a second after it goes silent, and a battery
/// that lasts an hour: the test stays on OB, never reaches OB LB.
pub fn long_on_battery(ns: &NetNs) -> TestConfig {
    let mut cfg = TestConfig::new(&[ns.peer_ip()]);
    cfg.on_battery_after = "1s";
    cfg.runtime = "1h";
    cfg.low_runtime = "10m";
    cfg
}

/// Runs fakeupsctl and returns how long it took, and its output.
fn timed(daemon: &Daemon, args: &[&str]) -> (Duration, std::process::Output) {
    let t = Instant::now();
    let out = daemon.ctl(args);
    (t.elapsed(), out)
}

/// A sentinel that is silent for the whole of a 4 s timeout, every 5 s:
/// pause, resume and status are answered at once, and WATCHDOG=1 keeps
/// coming, because the round runs beside the loop.
#[test]
fn the_loop_answers_while_a_long_round_waits_for_a_silent_sentinel() {
    require!(
        support::root_and_netns(),
        "the_loop_answers_while_a_long_round_waits_for_a_silent_sentinel"
    );
    let ns = NetNs::new();
    ns.cut();
    let dir = workdir();
    let mut cfg = TestConfig::new(&[ns.peer_ip()]);
    cfg.interval = "5s";
    cfg.timeout = "4s";
    cfg.on_battery_after = "1h";
    cfg.runtime = "2h";
    cfg.low_runtime = "1h";
    // A watchdog of 2 s: WATCHDOG=1 every second.
    let daemon = Daemon::start_env(
        dir.path(),
        &cfg.render(dir.path()),
        &[],
        &[("WATCHDOG_USEC", "2000000")],
    );
    daemon.wait_ready();
    let start = Instant::now();
    let mut worst = Duration::ZERO;
    for _ in 0..4 {
        for args in [
            &["pause", "--for", "10m"][..],
            &["status"][..],
            &["resume"][..],
        ] {
            let (took, out) = timed(&daemon, args);
            assert!(out.status.success(), "{args:?}: {}", stderr(&out));
            worst = worst.max(took);
        }
        std::thread::sleep(Duration::from_millis(700));
    }
    // The benchmark reports the figures; here a generous bound (the rounds
    // take 4 s: a command that waited for one would take up to that).
    assert!(worst < SEC, "a command took {worst:?} during 4 s rounds");
    // Two whole rounds and more for the watchdog.
    std::thread::sleep((12 * SEC).saturating_sub(start.elapsed()));
    let beats: Vec<Instant> = daemon
        .notify
        .messages()
        .into_iter()
        .filter(|(t, m)| *t >= start && m.lines().any(|l| l == "WATCHDOG=1"))
        .map(|(t, _)| t)
        .collect();
    let gap = beats
        .windows(2)
        .map(|w| w[1] - w[0])
        .chain([beats.first().map_or(start.elapsed(), |t| *t - start)])
        .max()
        .unwrap_or_default();
    assert!(
        beats.len() >= 10 && gap < Duration::from_millis(2500),
        "{} WATCHDOG=1 in {:?}, longest gap {gap:?}",
        beats.len(),
        start.elapsed()
    );
    assert!(
        daemon.log().contains("is silent"),
        "the sentinel was silent all along"
    );
}

/// Every fsync stalls for 8 s, as on a dying SD card: status is answered at
/// once, and a pause takes effect and says that it is not on disk yet,
/// instead of timing out.
#[test]
fn a_stalled_disk_holds_no_answer() {
    require!(root_netns_strace(), "a_stalled_disk_holds_no_answer");
    let dir = workdir();
    let cfg = TestConfig::new(&["127.0.0.1".to_string()]);
    let daemon = Daemon::start_ready(dir.path(), &cfg);
    let _stall = Strace::attach(
        daemon.pid(),
        &[
            "-e",
            "trace=fsync,fdatasync",
            "-e",
            "inject=fsync,fdatasync:delay_enter=8000000",
        ],
        &dir.path().join("strace.out"),
    );
    let (took, out) = timed(&daemon, &["pause", "--for", "10m"]);
    assert!(out.status.success(), "pause: {}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("not on disk yet"),
        "the reply says the save is pending: {text}"
    );
    assert!(took < Duration::from_millis(4500), "pause took {took:?}");
    // The pause holds, and status is answered while the save waits.
    for _ in 0..3 {
        let (took, out) = timed(&daemon, &["status"]);
        assert!(out.status.success(), "status: {}", stderr(&out));
        assert!(stdout(&out).contains("PAUSED"), "{}", stdout(&out));
        assert!(took < SEC, "status took {took:?} with the disk stalled");
    }
}

/// The daemon is killed right after the data file turns OB (strace holds
/// the rename that made it so): the restarted daemon goes on with OB, never
/// OL, while the sentinel is still silent.
#[test]
fn a_crash_right_after_ob_never_brings_ol_back() {
    require!(
        root_netns_strace(),
        "a_crash_right_after_ob_never_brings_ol_back"
    );
    let ns = NetNs::new();
    let dir = workdir();
    let cfg = long_on_battery(&ns);
    let mut daemon = Daemon::start_ready(dir.path(), &cfg);
    assert_eq!(daemon.data()["ups.status"], "OL");
    // On mains nothing is written; from now on every rename is held 3 s
    // once done, so the first that makes the data file say OB is caught.
    let mut hold = Strace::attach(
        daemon.pid(),
        &[
            "-e",
            "trace=rename,renameat,renameat2",
            "-e",
            "inject=rename,renameat,renameat2:delay_exit=3000000",
        ],
        &dir.path().join("strace.out"),
    );
    ns.cut();
    let ob = support::wait_for(15 * SEC, Duration::from_millis(5), || {
        (daemon.data().get("ups.status").map(String::as_str) == Some("OB")).then_some(())
    });
    daemon.kill9();
    hold.detach();
    assert!(ob.is_some(), "no OB; log:\n{}", daemon.log());
    let watch = DataWatch::start(daemon.data_file());
    daemon.restart();
    std::thread::sleep(3 * SEC);
    let statuses: Vec<String> = watch.changes().into_iter().map(|(_, s, _)| s).collect();
    assert!(
        statuses.iter().all(|s| s != "OL"),
        "back to OL after the crash: {statuses:?}; log:\n{}",
        daemon.log()
    );
    assert!(daemon.log().contains("restored OB"), "{}", daemon.log());
}

/// On battery an SD card is spared: after the state saved at OB, no fsync
/// at all for 10 s of rounds (every 200 ms); none on mains either, nor at a
/// start that finds the state as it is.
#[test]
fn on_battery_rounds_make_no_fsync() {
    require!(root_netns_strace(), "on_battery_rounds_make_no_fsync");
    let ns = NetNs::new();
    let dir = workdir();
    let cfg = long_on_battery(&ns);
    let mut daemon = Daemon::start_ready(dir.path(), &cfg);
    // A first start saves the state; the next one finds it unchanged.
    assert!(daemon.stop().success());
    daemon.restart();
    let count = Strace::attach(
        daemon.pid(),
        &["-e", "trace=fsync,fdatasync"],
        &dir.path().join("strace.out"),
    );
    let fsyncs = || {
        count
            .lines()
            .iter()
            .filter(|l| l.contains("fsync("))
            .count()
    };
    std::thread::sleep(2 * SEC);
    assert_eq!(fsyncs(), 0, "on mains: {:?}", count.lines());
    ns.cut();
    assert!(
        daemon
            .wait_log("Power lost - switching to OB", 10 * SEC)
            .is_some()
    );
    // The OB save: the file and its directory.
    let at_ob = support::wait_for(10 * SEC, Duration::from_millis(20), || {
        (fsyncs() >= 2).then(fsyncs)
    });
    assert_eq!(at_ob, Some(2), "the OB save: {:?}", count.lines());
    let at_ob = 2;
    std::thread::sleep(10 * SEC);
    assert_eq!(daemon.data()["ups.status"], "OB");
    assert_eq!(fsyncs(), at_ob, "fsyncs on battery: {:?}", count.lines());
}
