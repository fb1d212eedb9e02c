//! `[sentry] dsn` against a receiver on 127.0.0.1 that stands in for
//! sentry.io: the power transitions (one event each, at their levels), an
//! ERROR line, a panic of the real binary before it dies, and rounds that
//! keep their schedule while Sentry does not answer.

use std::fs;
use std::time::{Duration, Instant};

use crate::support::ctl::status_json;
use crate::support::daemon::{Daemon, TestConfig};
use crate::support::netns::NetNs;
use crate::support::receiver::Receiver;
use crate::support::{self, require, wait_for, workdir};
use nix::sys::signal::Signal;

const SEC: Duration = Duration::from_secs(1);

fn with_sentry(config: String, dsn: &str) -> String {
    format!("{config}[sentry]\ndsn = \"{dsn}\"\nenvironment = \"it-test\"\n")
}

#[test]
fn power_transitions_and_errors_reach_sentry_once_each() {
    require!(
        support::root_and_netns(),
        "power_transitions_and_errors_reach_sentry_once_each"
    );
    let receiver = Receiver::start();
    let ns = NetNs::new();
    let dir = workdir();
    let cfg = TestConfig::new(&[ns.peer_ip()]);
    let config = with_sentry(cfg.render(dir.path()), &receiver.dsn());
    let daemon = Daemon::start_with(dir.path(), &config, &[]);
    daemon.wait_ready();

    ns.cut();
    let (_, ob) = receiver
        .wait_event("Power lost - switching to OB", 6 * SEC)
        .unwrap_or_else(|| panic!("no OB event; got {:?}", receiver.received()));
    assert_eq!(ob["level"], "warning", "{ob:#}");
    assert_eq!(
        ob["release"],
        format!("fakeups@{}", env!("CARGO_PKG_VERSION")),
        "{ob:#}"
    );
    assert_eq!(ob["environment"], "it-test", "{ob:#}");
    assert_eq!(ob["tags"]["event"], "on-battery", "{ob:#}");
    assert_eq!(ob["extra"]["FAKEUPS_STATUS"], "OB", "{ob:#}");
    assert_eq!(ob["extra"]["FAKEUPS_PREVIOUS"], "OL", "{ob:#}");
    assert_eq!(ob["extra"]["FAKEUPS_DRILL"], "0", "{ob:#}");
    // The recent log lines ride along: the silent sentinel among them.
    let crumbs = ob["breadcrumbs"]["values"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        crumbs.iter().any(|c| c["message"]
            .as_str()
            .is_some_and(|m| m.contains("is silent"))),
        "{ob:#}"
    );
    let first = &receiver.received()[0];
    assert_eq!(first.path, "/api/42/envelope/");
    assert!(
        first.auth.contains("sentry_key=0123456789abcdef"),
        "{}",
        first.auth
    );

    let (_, lb) = receiver
        .wait_event("Battery critically low - switching to OB LB", 6 * SEC)
        .expect("an OB LB event");
    // Sentry's default level, error, is left out of the JSON.
    assert_eq!(lb["level"].as_str().unwrap_or("error"), "error", "{lb:#}");
    assert_eq!(lb["extra"]["FAKEUPS_STATUS"], "OB LB", "{lb:#}");

    ns.restore();
    let (_, ol) = receiver
        .wait_event("Power restored", 5 * SEC)
        .expect("an OL event");
    assert_eq!(ol["level"], "info", "{ol:#}");

    // An ERROR line is an event of its own: a reload refused.
    fs::write(&daemon.config, format!("{config}[detection]\n")).unwrap();
    daemon.signal(Signal::SIGHUP);
    let refused = wait_for(5 * SEC, Duration::from_millis(20), || {
        receiver.events().into_iter().find(|(_, e)| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("reload refused"))
        })
    })
    .expect("the refused reload's ERROR line as an event");
    assert_eq!(
        refused.1["level"].as_str().unwrap_or("error"),
        "error",
        "{:#}",
        refused.1
    );

    // Each transition once: the CRITICAL line of OB LB is that event.
    thread_sleep(SEC);
    for message in [
        "Power lost - switching to OB",
        "Battery critically low - switching to OB LB",
        "Power restored",
    ] {
        assert_eq!(
            receiver.count(message),
            1,
            "{message}: {:?}",
            receiver.events()
        );
    }
    let status = status_json(&daemon.socket());
    assert_eq!(status["outlets"]["sentry"]["on"], true, "{status:#}");
    assert_eq!(
        status["outlets"]["sentry"]["target"], "127.0.0.1",
        "{status:#}"
    );
    assert!(
        status["outlets"]["sentry"]["last_failure"].is_null(),
        "{status:#}"
    );
    assert_eq!(status["outlets"]["hooks"]["on"], false, "{status:#}");
    // What the closing note shows: the OB envelope as received.
    println!("OB event as received:\n{ob:#}");
}

fn thread_sleep(d: Duration) {
    std::thread::sleep(d);
}

/// The test-only trigger FAKEUPS_TEST_PANIC makes the first round panic.
/// The event reaches the receiver before the process is gone; the release
/// binary (panic = "abort") dies of SIGABRT.
#[test]
fn a_panic_reaches_sentry_before_the_process_dies() {
    require!(
        support::root(),
        "a_panic_reaches_sentry_before_the_process_dies"
    );
    let receiver = Receiver::start();
    let dir = workdir();
    let cfg = TestConfig::new(&["127.0.0.1".to_string()]);
    let config = with_sentry(cfg.render(dir.path()), &receiver.dsn());
    let mut daemon = Daemon::start_env(dir.path(), &config, &[], &[("FAKEUPS_TEST_PANIC", "1")]);
    let mut child = daemon.child.take().expect("started");
    let status = wait_for(30 * SEC, Duration::from_millis(5), || {
        child.try_wait().ok().flatten()
    })
    .expect("the daemon ends after its panic");
    let died = Instant::now();
    let events = receiver.events();
    let panic = events
        .iter()
        .find(|(_, e)| e["exception"]["values"][0]["type"] == "panic")
        .unwrap_or_else(|| panic!("no panic event; got {events:?}; stderr {}", daemon.stderr()));
    assert!(panic.0 <= died);
    assert_eq!(panic.1["level"], "fatal", "{:#}", panic.1);
    let value = panic.1["exception"]["values"][0]["value"]
        .as_str()
        .unwrap_or_default();
    assert!(value.contains("FAKEUPS_TEST_PANIC"), "{:#}", panic.1);
    use std::os::unix::process::ExitStatusExt as _;
    if std::env::var_os("FAKEUPS_TEST_BIN_DIR").is_some() {
        // The packaged release binaries: panic = "abort".
        assert_eq!(status.signal(), Some(6), "{status:?}");
    } else {
        assert!(!status.success(), "{status:?}");
    }
    println!(
        "panic event received, process ended {:?} ({} ms later)",
        status,
        died.saturating_duration_since(panic.0).as_millis()
    );
}

/// A DSN in a namespace that drops everything: each send waits for its
/// connect timeout on the outbox's thread, while the rounds keep their
/// schedule; one line says Sentry is unreachable, and status shows it.
#[test]
fn rounds_keep_their_schedule_while_sentry_does_not_answer() {
    require!(
        support::root_and_netns(),
        "rounds_keep_their_schedule_while_sentry_does_not_answer"
    );
    let ns = NetNs::new();
    ns.must_in(&["iptables", "-A", "INPUT", "-j", "DROP"]);
    let dir = workdir();
    let mut cfg = TestConfig::new(&["127.0.0.1".to_string()]);
    cfg.interval = "100ms";
    cfg.timeout = "50ms";
    let dsn = format!("http://0123456789abcdef@{}:9/42", ns.peer_ip());
    let config = with_sentry(cfg.render(dir.path()), &dsn);
    let daemon = Daemon::start_with(dir.path(), &config, &[]);
    daemon.wait_ready();
    let bad = format!("{config}[detection]\n");
    // 40 ERROR lines (refused reloads), more than the outbox queues.
    for _ in 0..40 {
        fs::write(&daemon.config, &bad).unwrap();
        daemon.signal(Signal::SIGHUP);
        std::thread::sleep(Duration::from_millis(150));
    }
    fs::write(&daemon.config, &config).unwrap();
    let seen = daemon.log_count("round done in");
    std::thread::sleep(4 * SEC);
    assert!(
        daemon
            .wait_log("cannot send to Sentry at 10.231.", 10 * SEC)
            .is_some(),
        "{}",
        daemon.log()
    );
    let log = daemon.log();
    assert_eq!(
        daemon.log_count("cannot send to Sentry at"),
        1,
        "said once, not per event:\n{log}"
    );
    // Every round finished within 100 ms of when it was due.
    let rounds: Vec<f64> = log
        .lines()
        .filter_map(|l| l.split("round done in ").nth(1))
        .filter_map(|r| r.split(" ms").next())
        .filter_map(|ms| ms.parse().ok())
        .collect();
    assert!(rounds.len() > seen + 30, "{} rounds", rounds.len());
    let worst = rounds.iter().cloned().fold(0.0, f64::max);
    let mut sorted = rounds.clone();
    sorted.sort_by(f64::total_cmp);
    let p99 = sorted[sorted.len() * 99 / 100];
    println!(
        "{} rounds while Sentry was unreachable: p99 {p99:.1} ms, worst {worst:.1} ms after due",
        rounds.len()
    );
    assert!(worst < 100.0, "a round {worst:.1} ms late");
    let status = status_json(&daemon.socket());
    let sentry = &status["outlets"]["sentry"];
    assert!(
        sentry["last_failure"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot send to Sentry at 10.231.")),
        "{status:#}"
    );
    assert!(sentry["dropped"].as_u64().unwrap_or(0) >= 1, "{status:#}");
}
