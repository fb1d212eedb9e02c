//! The rules of the power model, round by round, without sleeping.

use super::*;
use crate::core::quorum::Quorum;
use crate::core::status::{Cause, Status, Transition};

const S: Duration = Duration::from_secs(1);

fn settings(quorum: Quorum) -> PowerSettings {
    PowerSettings {
        quorum,
        on_battery_after: 30 * S,
        online_after: 15 * S,
        runtime: 300 * S,
        low_runtime: 180 * S,
        recharge_time: 3600 * S,
    }
}

/// Feeds rounds every `step` from `from` to `to` (exclusive) with `silent`
/// of `total` silent and returns the transitions with their times.
fn run(
    m: &mut PowerModel,
    t0: Instant,
    from: Duration,
    to: Duration,
    step: Duration,
    silent: usize,
    total: usize,
) -> Vec<(Duration, Transition)> {
    let mut out = vec![];
    let mut t = from;
    while t < to {
        if let Some(tr) = m.observe(t0 + t, silent, total) {
            out.push((t, tr));
        }
        t += step;
    }
    out
}

#[test]
fn each_quorum_decides_the_same_round_differently() {
    // One silent sentinel out of three, for a long time.
    for (quorum, expect_ob) in [
        (Quorum::All, false),
        (Quorum::Majority, false),
        (Quorum::Any, true),
        (Quorum::AtLeast(1), true),
        (Quorum::AtLeast(2), false),
    ] {
        let t0 = Instant::now();
        let mut m = PowerModel::new(settings(quorum));
        let tr = run(&mut m, t0, Duration::ZERO, 60 * S, S, 1, 3);
        assert_eq!(!tr.is_empty(), expect_ob, "{quorum}");
    }
    // Two of three: majority and 2 go OB, all does not.
    for (quorum, expect_ob) in [
        (Quorum::All, false),
        (Quorum::Majority, true),
        (Quorum::AtLeast(2), true),
    ] {
        let t0 = Instant::now();
        let mut m = PowerModel::new(settings(quorum));
        let tr = run(&mut m, t0, Duration::ZERO, 60 * S, S, 2, 3);
        assert_eq!(!tr.is_empty(), expect_ob, "{quorum}");
    }
}

#[test]
fn ob_after_exactly_on_battery_after() {
    let t0 = Instant::now();
    let mut m = PowerModel::new(settings(Quorum::All));
    let tr = run(&mut m, t0, Duration::ZERO, 40 * S, S, 2, 2);
    assert_eq!(tr.len(), 1);
    assert_eq!(tr[0].0, 30 * S);
    assert_eq!(tr[0].1.to, Status::OnBattery);
    assert_eq!(tr[0].1.cause, Cause::PowerLost);
    // The drain starts at OB, not at the first silent round.
    // OB at 30 s, last round at 39 s: 9 s of drain.
    assert_eq!(m.published().runtime, 300 - 9);
}

#[test]
fn a_flap_shorter_than_on_battery_after_never_gives_ob() {
    let t0 = Instant::now();
    let mut m = PowerModel::new(settings(Quorum::All));
    // 29 s silent, one answering round, 29 s silent, again and again.
    let mut t = Duration::ZERO;
    for _ in 0..10 {
        assert!(run(&mut m, t0, t, t + 29 * S, S, 1, 1).is_empty());
        t += 29 * S;
        assert!(m.observe(t0 + t, 0, 1).is_none());
        t += S;
    }
    assert_eq!(m.status(), Status::Online);
    assert_eq!(m.published().charge, 100);
}

#[test]
fn restore_needs_online_after_of_answers_without_a_break() {
    let t0 = Instant::now();
    let mut m = PowerModel::new(settings(Quorum::All));
    run(&mut m, t0, Duration::ZERO, 31 * S, S, 1, 1);
    assert_eq!(m.status(), Status::OnBattery);
    // Answers for 14 s, then silent once: still OB.
    assert!(run(&mut m, t0, 31 * S, 45 * S, S, 0, 1).is_empty());
    assert!(m.observe(t0 + 45 * S, 1, 1).is_none());
    // Answers again: OL exactly 15 s after the first of the new run.
    let tr = run(&mut m, t0, 46 * S, 70 * S, S, 0, 1);
    assert_eq!(tr.len(), 1);
    assert_eq!(tr[0].0, 61 * S);
    assert_eq!(tr[0].1.cause, Cause::PowerRestored);
    assert_eq!(m.status(), Status::Online);
}

#[test]
fn lb_exactly_when_runtime_left_reaches_low_runtime() {
    let t0 = Instant::now();
    let mut m = PowerModel::new(settings(Quorum::All));
    let ms = Duration::from_millis(1);
    assert!(m.observe(t0, 1, 1).is_none());
    let ob = m.observe(t0 + 30 * S, 1, 1).unwrap();
    assert_eq!(ob.to, Status::OnBattery);
    // 300 s of runtime, LB at 180 s left: 120 s after OB.
    assert!(m.observe(t0 + 150 * S - ms, 1, 1).is_none());
    assert_eq!(m.status(), Status::OnBattery);
    let lb = m.observe(t0 + 150 * S, 1, 1).unwrap();
    assert_eq!(lb.to, Status::LowBattery);
    assert_eq!(lb.cause, Cause::BatteryLow);
    let p = m.published();
    assert_eq!((p.charge, p.runtime), (60, 180));
    assert_eq!((p.charge_low, p.runtime_low), (60, 180));
    // It drains on to empty and stays LB.
    assert!(run(&mut m, t0, 151 * S, 400 * S, 10 * S, 1, 1).is_empty());
    assert_eq!(m.published().charge, 0);
    assert_eq!(m.status(), Status::LowBattery);
}

#[test]
fn lb_back_to_ol_directly() {
    let t0 = Instant::now();
    let mut m = PowerModel::restore(settings(Quorum::All), Status::LowBattery, 0.2);
    m.observe(t0, 0, 1);
    let tr = m.observe(t0 + 15 * S, 0, 1).unwrap();
    assert_eq!((tr.from, tr.to), (Status::LowBattery, Status::Online));
}

#[test]
fn a_second_outage_after_a_partial_recharge_reaches_lb_sooner() {
    let t0 = Instant::now();
    let mut m = PowerModel::new(settings(Quorum::All));
    let time_to_lb = |m: &mut PowerModel, start: Duration| -> Duration {
        let mut t = start;
        let mut ob_at = None;
        loop {
            if let Some(tr) = m.observe(t0 + t, 1, 1) {
                match tr.to {
                    Status::OnBattery => ob_at = Some(t),
                    Status::LowBattery => return t - ob_at.unwrap_or(t),
                    Status::Online => unreachable!(),
                }
            }
            t += S;
        }
    };
    let first = time_to_lb(&mut m, Duration::ZERO);
    assert_eq!(first, 120 * S);
    // Drain on to 150 s left (30 s past LB), then 10 min of mains.
    let t = 180 * S;
    assert!(m.observe(t0 + t, 1, 1).is_none());
    assert_eq!(m.published().runtime, 150);
    let back = run(&mut m, t0, t + S, t + 17 * S, S, 0, 1);
    assert_eq!(back.len(), 1);
    // OL 15 s after the first answer, having drained 16 s more: 134 s left.
    assert_eq!(m.published().runtime, 134);
    // 1 h refills 300 s of runtime, so 30 min refill 150 s.
    let recharge_end = back[0].0 + 1800 * S;
    assert!(run(&mut m, t0, back[0].0 + S, recharge_end + S, S, 0, 1).is_empty());
    let p = m.published();
    // 150 s, less a nanosecond of rounding per round.
    assert!((283..=284).contains(&p.runtime), "{p:?}");
    assert_eq!(p.charge, 95);
    // 30 s more of mains before OB (+2.5 s), then 106.5 s down to 180 s.
    let second = time_to_lb(&mut m, recharge_end + S);
    assert!(second < first, "second outage took {second:?}");
    assert_eq!(second, 107 * S);
}

#[test]
fn recharge_stops_at_full() {
    let t0 = Instant::now();
    let mut m = PowerModel::restore(settings(Quorum::All), Status::Online, 0.5);
    m.observe(t0, 0, 1);
    m.observe(t0 + 7200 * S, 0, 1);
    assert_eq!(m.published().charge, 100);
    assert_eq!(m.published().runtime, 300);
}

#[test]
fn restored_ob_goes_on_draining_and_does_not_flip_to_ol() {
    let t0 = Instant::now();
    let mut m = PowerModel::restore(settings(Quorum::All), Status::OnBattery, 0.74);
    assert_eq!(m.published().charge, 74);
    assert!(m.observe(t0, 1, 1).is_none());
    assert!(m.observe(t0 + S, 1, 1).is_none());
    assert_eq!(m.status(), Status::OnBattery);
    assert_eq!(m.published().runtime, 221);
    // One answering round is not enough to go back.
    assert!(m.observe(t0 + 2 * S, 0, 1).is_none());
    assert_eq!(m.status(), Status::OnBattery);
}

#[test]
fn restored_charge_below_the_line_is_low_at_once() {
    let t0 = Instant::now();
    let mut m = PowerModel::restore(settings(Quorum::All), Status::OnBattery, 0.5);
    let tr = m.observe(t0, 1, 1).unwrap();
    assert_eq!(tr.to, Status::LowBattery);
}

#[test]
fn pause_forces_ol_with_a_full_battery_and_resume_starts_afresh() {
    let t0 = Instant::now();
    let mut m = PowerModel::new(settings(Quorum::All));
    run(&mut m, t0, Duration::ZERO, 100 * S, S, 1, 1);
    assert_eq!(m.status(), Status::OnBattery);
    let tr = m.set_paused(t0 + 100 * S, true).unwrap();
    assert_eq!((tr.to, tr.cause), (Status::Online, Cause::Paused));
    assert_eq!(m.published().charge, 100);
    // Silent for ten minutes while paused: nothing changes.
    assert!(run(&mut m, t0, 100 * S, 700 * S, S, 1, 1).is_empty());
    assert_eq!(m.published().status, Status::Online);
    assert_eq!(m.published().charge, 100);
    // Resumed while still silent: OB after a full on-battery-after.
    assert!(m.set_paused(t0 + 700 * S, false).is_none());
    let tr = run(&mut m, t0, 700 * S, 800 * S, S, 1, 1);
    assert_eq!(tr[0].0, 730 * S);
}

#[test]
fn new_settings_keep_the_charge_fraction() {
    let mut m = PowerModel::restore(settings(Quorum::All), Status::OnBattery, 0.5);
    let mut s = settings(Quorum::All);
    s.runtime = 600 * S;
    s.low_runtime = 60 * S;
    m.set_settings(s);
    assert_eq!(m.published().runtime, 300);
    assert_eq!(m.published().charge, 50);
}

#[test]
fn low_battery_stays_low_across_new_settings() {
    let mut m = PowerModel::restore(settings(Quorum::All), Status::LowBattery, 0.5);
    let mut s = settings(Quorum::All);
    s.low_runtime = 10 * S;
    m.set_settings(s);
    assert_eq!(m.status(), Status::LowBattery);
}

#[test]
fn time_going_backwards_is_ignored() {
    let t0 = Instant::now() + 100 * S;
    let mut m = PowerModel::restore(settings(Quorum::All), Status::OnBattery, 1.0);
    m.observe(t0, 1, 1);
    m.observe(t0 - 50 * S, 1, 1);
    assert_eq!(m.published().runtime, 300);
}

#[test]
fn a_drill_goes_on_battery_at_once_ignores_the_sentinels_and_ends_on_mains() {
    let t0 = Instant::now();
    let mut m = PowerModel::new(settings(Quorum::All));
    let t = m.start_drill(t0).expect("OB at once");
    assert_eq!(
        (t.from, t.to, t.cause),
        (Status::Online, Status::OnBattery, Cause::DrillStarted)
    );
    // Every sentinel answers: still on battery, and LB comes on time.
    let s = settings(Quorum::All);
    let to_low = s.runtime - s.low_runtime;
    assert_eq!(m.observe(t0 + to_low - Duration::from_secs(1), 0, 3), None);
    let t = m.observe(t0 + to_low, 0, 3).expect("LB");
    assert_eq!((t.to, t.cause), (Status::LowBattery, Cause::BatteryLow));
    let t = m
        .end_drill(t0 + to_low + Duration::from_secs(5))
        .expect("OL");
    assert_eq!(
        (t.from, t.to, t.cause),
        (Status::LowBattery, Status::Online, Cause::DrillEnded)
    );
    assert!(!m.drill());
    assert_eq!(m.end_drill(t0 + to_low + Duration::from_secs(6)), None);
}

#[test]
fn a_real_outage_during_a_drill_gives_ob_as_soon_as_the_drill_ends_when_it_is_old_enough() {
    let t0 = Instant::now();
    let mut m = PowerModel::new(settings(Quorum::All));
    m.start_drill(t0);
    // The sentinels go silent 10 s into a 60 s drill.
    assert_eq!(m.observe(t0 + 10 * S, 2, 2), None);
    assert_eq!(m.observe(t0 + 59 * S, 2, 2), None);
    let t = m.end_drill(t0 + 60 * S).expect("OL at the drill's end");
    assert_eq!(t.to, Status::Online);
    // Silent for 50 s already, more than on-battery-after (30 s): OB at
    // the next round, not 30 s later.
    let t = m.observe(t0 + 61 * S, 2, 2).expect("OB");
    assert_eq!((t.to, t.cause), (Status::OnBattery, Cause::PowerLost));
}
