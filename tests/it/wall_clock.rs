//! Wall-clock steps: the real daemon under libfaketime, its wall clock
//! stepped a day ahead or back as NTP steps a Raspberry Pi's clock at boot
//! (it has no real-time clock), its monotonic and boot clocks left to run.
//! Within a boot a pause lasts its length on the boot clock.

use std::thread;
use std::time::{Duration, Instant};

use chrono::{DateTime, Local, TimeDelta};

use crate::support::ctl::status_json;
use crate::support::daemon::{Daemon, DataWatch, TestConfig};
use crate::support::faketime::{Faketime, Now, Saved};
use crate::support::netns::NetNs;
use crate::support::{self, require, stderr, workdir};

const SEC: Duration = Duration::from_secs(1);
const EXPIRED: &str = "Pause expired - watching sentinels again";

/// The daemon on `cfg` in `dir`, its wall clock under `ft`; READY=1 seen.
fn start(dir: &std::path::Path, cfg: &TestConfig, ft: &Faketime) -> Daemon {
    let prefix = ft.prefix();
    let prefix: Vec<&str> = prefix.iter().map(String::as_str).collect();
    let daemon = Daemon::start_with(dir, &cfg.render(dir), &prefix);
    daemon.wait_ready();
    daemon
}

/// Checks, at the daemon's latest save of its state once it differs from
/// `before` (so it was made since `from`), that only its wall clock moved,
/// by `step`: a faithful model of an NTP step.
fn only_the_wall_moved(dir: &std::path::Path, step: TimeDelta, from: &Now, before: &str) {
    let saved = support::wait_for(5 * SEC, Duration::from_millis(20), || {
        Saved::read(dir).filter(|s| s.text != before)
    });
    let to = Now::take();
    let saved = saved.unwrap_or_else(|| panic!("the daemon saved no state after the step"));
    if let Err(e) = saved.shows_a_wall_step(step, from, &to) {
        panic!("not a model of an NTP step: {e}");
    }
}

/// A 10-minute pause, the wall clock stepped a day ahead, the sentinel
/// silent: the pause holds OL (before issue 11 it ended at the next round
/// and the outage gave OB), and its end as shown moves a day later.
#[test]
fn a_wall_clock_step_ahead_does_not_end_a_pause() {
    const NAME: &str = "a_wall_clock_step_ahead_does_not_end_a_pause";
    let dir = workdir();
    let Some(ft) = Faketime::for_test(NAME, dir.path()) else {
        return;
    };
    require!(support::root_and_netns(), NAME);
    let ns = NetNs::new();
    let cfg = TestConfig::new(&[ns.peer_ip()]);
    let daemon = start(dir.path(), &cfg, &ft);
    let file = DataWatch::start(daemon.data_file());
    let out = daemon.ctl(&[
        "pause",
        "--for",
        "10m",
        "--reason",
        "router firmware update",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let paused = Instant::now();
    let before = Saved::read(dir.path()).expect("the pause is saved").text;
    thread::sleep(SEC / 2);

    let from = Now::take();
    let stepped = Instant::now();
    ft.step("+1d");
    ns.cut();
    // The round after the step saves the state: the pause's end moved (and
    // before issue 11, the pause ended).
    only_the_wall_moved(dir.path(), TimeDelta::days(1), &from, &before);
    // Three times on-battery-after (2 s) of silence.
    let window = 6 * SEC;
    let expired = daemon
        .wait_log(EXPIRED, window.saturating_sub(stepped.elapsed()))
        .map(|_| stepped.elapsed());
    thread::sleep(window.saturating_sub(stepped.elapsed()));
    let ob = file
        .first("OB")
        .map(|t| t.saturating_duration_since(stepped));
    match (expired, ob) {
        (None, None) => println!(
            "+1d step during a 10m pause: still holding {:.1}s after the step, OL throughout",
            stepped.elapsed().as_secs_f64()
        ),
        _ => println!(
            "+1d step during a 10m pause: ended {:.2}s after the step, OB {:.2}s after it",
            expired.unwrap_or_default().as_secs_f64(),
            ob.unwrap_or_default().as_secs_f64()
        ),
    }
    assert!(
        expired.is_none(),
        "the step ended the pause:\n{}",
        daemon.log()
    );
    let statuses: Vec<String> = file.changes().into_iter().map(|c| c.1).collect();
    assert_eq!(statuses, ["OL"], "{}", daemon.log());

    // The end shown is a day later, as far away as it was.
    let s = status_json(&daemon.socket());
    let until: DateTime<Local> = s["pause"]["until"]
        .as_str()
        .and_then(|u| u.parse().ok())
        .unwrap_or_else(|| panic!("no end in {s}"));
    let left = TimeDelta::from_std(10 * 60 * SEC - paused.elapsed()).unwrap();
    let expected = Local::now() + TimeDelta::days(1) + left;
    assert!(
        (until - expected).abs() < TimeDelta::seconds(3),
        "until {until}, expected about {expected}"
    );
    let log = daemon.log();
    assert!(
        log.contains(
            "NOTICE: the wall clock was stepped by +1day; the pause by root still ends in"
        ),
        "{log}"
    );

    // Resumed, the outage goes on to OB after on-battery-after.
    let out = daemon.ctl(&["resume"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ob = support::wait_for(4 * SEC, Duration::from_millis(20), || file.first("OB"));
    assert!(ob.is_some(), "no OB after resume:\n{}", daemon.log());
}

/// A 3 s pause, the wall clock stepped a day back: it ends after its 3 s
/// on the boot clock (before issue 11 it would have held for a day more).
#[test]
fn a_wall_clock_step_back_does_not_stretch_a_pause() {
    const NAME: &str = "a_wall_clock_step_back_does_not_stretch_a_pause";
    let dir = workdir();
    let Some(ft) = Faketime::for_test(NAME, dir.path()) else {
        return;
    };
    require!(support::root_and_netns(), NAME);
    let ns = NetNs::new();
    let cfg = TestConfig::new(&[ns.peer_ip()]);
    let daemon = start(dir.path(), &cfg, &ft);
    // Lower bounds count from the request, upper bounds from the reply.
    let sent = Instant::now();
    let out = daemon.ctl(&["pause", "--for", "3s"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let replied = Instant::now();
    let before = Saved::read(dir.path()).expect("the pause is saved").text;
    thread::sleep(SEC / 2);

    let from = Now::take();
    ft.step("-1d");
    // Generous: its 3 s and 4 more; the end comes within a round (200 ms).
    let line = daemon.wait_log(EXPIRED, (7 * SEC).saturating_sub(sent.elapsed()));
    let expired = Instant::now();
    match line {
        Some(_) => println!(
            "-1d step during a 3s pause: ended {:.2}s after the request",
            (expired - sent).as_secs_f64()
        ),
        None => println!(
            "-1d step during a 3s pause: still holding {:.1}s after the request",
            (expired - sent).as_secs_f64()
        ),
    }
    assert!(line.is_some(), "the pause did not end:\n{}", daemon.log());
    assert!(
        expired - sent >= 3 * SEC && expired - replied < 3 * SEC + 2 * SEC,
        "ended {:?} after the request, {:?} after the reply",
        expired - sent,
        expired - replied
    );
    assert!(status_json(&daemon.socket())["pause"].is_null());
    assert_eq!(daemon.data()["ups.status"], "OL");
    // Saved since the step (the end moved, then the pause ended), by a
    // daemon whose wall clock only was a day back.
    only_the_wall_moved(dir.path(), -TimeDelta::days(1), &from, &before);
}
