//! Packet loss (issue 11): a sentinel whose echo requests are sometimes
//! dropped is asked again within the same round, so no round goes silent
//! and the status stays OL. The loss is exact, not random: iptables'
//! `statistic --mode nth` in the sentinel's namespace drops every n-th echo
//! request, the first included, so every round that starts on a dropped
//! echo needs its second one.

use std::time::Duration;

use crate::support::daemon::{Daemon, DataWatch, TestConfig};
use crate::support::netns::NetNs;
use crate::support::{self, require, run, stdout, workdir};

/// Rounds watched after the first: each case runs about this many seconds.
const ROUNDS: usize = 12;

fn root_netns_and_iptables() -> Result<(), String> {
    support::root_and_netns()?;
    if !support::have("iptables") {
        return Err("needs iptables (apt-get install iptables)".into());
    }
    Ok(())
}

/// The packets the namespace's one INPUT rule dropped so far.
fn dropped(ns: &NetNs) -> u64 {
    let out = run(
        "ip",
        &[
            "netns", "exec", &ns.name, "iptables", "-L", "INPUT", "-v", "-x", "-n",
        ],
    );
    stdout(&out)
        .lines()
        .find(|l| l.contains("DROP"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The daemon with one sentinel whose every `every`-th echo request is
/// dropped, at the timings of the soak (interval 1 s, timeout
/// 500 ms) and a short on-battery-after: over ROUNDS rounds, none silent,
/// no "is silent" line, no OB, the data file OL throughout. Before attempts
/// were repeated, every `every`-th round was silent.
fn no_round_goes_silent_when_every_nth_echo_is_dropped(every: u32, test: &str) {
    require!(root_netns_and_iptables(), test);
    let ns = NetNs::new();
    let every_s = every.to_string();
    ns.must_in(&[
        "iptables",
        "-A",
        "INPUT",
        "-p",
        "icmp",
        "--icmp-type",
        "echo-request",
        "-m",
        "statistic",
        "--mode",
        "nth",
        "--every",
        &every_s,
        "--packet",
        "0",
        "-j",
        "DROP",
    ]);
    let dir = workdir();
    let mut cfg = TestConfig::new(&[ns.peer_ip()]);
    cfg.interval = "1s";
    cfg.timeout = "500ms";
    cfg.on_battery_after = "2s";
    cfg.online_after = "1s";
    let mut daemon = Daemon::start_ready(dir.path(), &cfg);
    let file = DataWatch::start(daemon.data_file());
    // The first round (before READY=1) and ROUNDS more, each logged at
    // level debug; generous time for a slow machine or an emulator.
    let done = daemon.wait_log_after(
        "DEBUG: round done",
        ROUNDS,
        Duration::from_secs(ROUNDS as u64 * 3 + 10),
    );
    assert!(done.is_some(), "not {ROUNDS} rounds:\n{}", daemon.log());
    assert!(daemon.stop().success());
    let log = daemon.log();

    // The loss happened: at least one echo dropped per `every` rounds.
    let drops = dropped(&ns);
    assert!(
        drops >= (ROUNDS as u64 + 1) / u64::from(every),
        "only {drops} echo request(s) dropped in {} rounds",
        ROUNDS + 1
    );
    let silent_rounds: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("DEBUG: round done") && !l.contains(": 0/1 sentinel"))
        .collect();
    let silent_lines: Vec<&str> = log.lines().filter(|l| l.contains("is silent")).collect();
    assert!(
        silent_rounds.is_empty() && silent_lines.is_empty(),
        "1 echo request in {every} dropped ({drops} in all): {} silent round(s), {} \
         \"is silent\" line(s):\n{}",
        silent_rounds.len(),
        silent_lines.len(),
        silent_rounds
            .iter()
            .chain(&silent_lines)
            .copied()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(daemon.log_count("Power lost"), 0, "{log}");
    let statuses: Vec<String> = file.changes().into_iter().map(|c| c.1).collect();
    assert_eq!(statuses, ["OL"], "the data file changed: {statuses:?}");
    println!("1 echo request in {every} dropped ({drops} in all): no silent round, OL throughout");
}

#[test]
fn every_second_echo_dropped_no_round_is_silent() {
    no_round_goes_silent_when_every_nth_echo_is_dropped(
        2,
        "every_second_echo_dropped_no_round_is_silent",
    );
}

#[test]
fn every_third_echo_dropped_no_round_is_silent() {
    no_round_goes_silent_when_every_nth_echo_is_dropped(
        3,
        "every_third_echo_dropped_no_round_is_silent",
    );
}
