//! The power decision and the simulated battery: a pure state machine fed
//! with rounds of sentinel answers and the time they were taken. Nothing here
//! reads a clock, so every rule is tested without sleeping.

use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How many silent sentinels mean that mains is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quorum {
    /// Every sentinel is silent.
    All,
    /// More than half of the sentinels are silent.
    Majority,
    /// At least one sentinel is silent.
    Any,
    /// At least this many sentinels are silent.
    AtLeast(usize),
}

impl Quorum {
    /// Whether `silent` of `total` sentinels meet the quorum.
    pub fn is_met(self, silent: usize, total: usize) -> bool {
        match self {
            Quorum::All => total > 0 && silent >= total,
            Quorum::Majority => silent * 2 > total,
            Quorum::Any => silent >= 1,
            Quorum::AtLeast(n) => silent >= n.max(1),
        }
    }
}

impl fmt::Display for Quorum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Quorum::All => f.write_str("all"),
            Quorum::Majority => f.write_str("majority"),
            Quorum::Any => f.write_str("any"),
            Quorum::AtLeast(n) => write!(f, "{n}"),
        }
    }
}

impl Serialize for Quorum {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Quorum::AtLeast(n) => s.serialize_u64(*n as u64),
            other => s.serialize_str(&other.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for Quorum {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Quorum;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"all\", \"majority\", \"any\" or a number of sentinels")
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Quorum, E> {
                usize::try_from(n)
                    .map(Quorum::AtLeast)
                    .map_err(|_| E::custom(format!("quorum {n} is negative")))
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Quorum, E> {
                usize::try_from(n)
                    .map(Quorum::AtLeast)
                    .map_err(|_| E::custom(format!("quorum {n} is too large")))
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Quorum, E> {
                match text.trim() {
                    "all" => Ok(Quorum::All),
                    "majority" => Ok(Quorum::Majority),
                    "any" => Ok(Quorum::Any),
                    other => other.parse().map(Quorum::AtLeast).map_err(|_| {
                        E::custom(format!(
                            "unknown quorum {text:?}: expected \"all\", \"majority\", \"any\" or a number"
                        ))
                    }),
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// What `ups.status` says, in the seed format every NUT client reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    #[serde(rename = "OL")]
    Online,
    #[serde(rename = "OB")]
    OnBattery,
    #[serde(rename = "OB LB")]
    LowBattery,
}

impl Status {
    pub fn as_nut(self) -> &'static str {
        match self {
            Status::Online => "OL",
            Status::OnBattery => "OB",
            Status::LowBattery => "OB LB",
        }
    }

    pub fn on_battery(self) -> bool {
        self != Status::Online
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_nut())
    }
}

/// The timings of the decision and of the battery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PowerSettings {
    pub quorum: Quorum,
    pub on_battery_after: Duration,
    pub online_after: Duration,
    pub runtime: Duration,
    pub low_runtime: Duration,
    pub recharge_time: Duration,
}

impl PowerSettings {
    pub fn from_config(config: &crate::config::Config) -> PowerSettings {
        PowerSettings {
            quorum: config.detection.quorum,
            on_battery_after: config.detection.on_battery_after,
            online_after: config.detection.online_after,
            runtime: config.battery.runtime,
            low_runtime: config.battery.low_runtime,
            recharge_time: config.battery.recharge_time,
        }
    }
}

/// A change of the published status, and what caused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub from: Status,
    pub to: Status,
    pub cause: Cause,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The quorum of silent sentinels held for `on-battery-after`.
    PowerLost,
    /// The runtime left reached `low-runtime`.
    BatteryLow,
    /// The quorum stayed unmet for `online-after`.
    PowerRestored,
    /// A pause forced `OL`.
    Paused,
}

/// The values written for NUT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    pub status: Status,
    /// battery.charge, percent.
    pub charge: u8,
    /// battery.runtime, seconds left.
    pub runtime: u64,
    /// battery.charge.low, percent.
    pub charge_low: u8,
    /// battery.runtime.low, seconds.
    pub runtime_low: u64,
}

/// The state machine. `left` is the simulated runtime left, which is the
/// battery charge in the unit that makes both the drain and the LB moment
/// exact: charge = left / runtime.
#[derive(Debug, Clone)]
pub struct PowerModel {
    settings: PowerSettings,
    status: Status,
    left: Duration,
    last: Option<Instant>,
    /// Start of the current run of rounds that met the quorum (while OL).
    lost_since: Option<Instant>,
    /// Start of the current run of rounds that did not (while on battery).
    back_since: Option<Instant>,
    paused: bool,
}

impl PowerModel {
    /// A model on mains with a full battery.
    pub fn new(settings: PowerSettings) -> PowerModel {
        PowerModel {
            settings,
            status: Status::Online,
            left: settings.runtime,
            last: None,
            lost_since: None,
            back_since: None,
            paused: false,
        }
    }

    /// A model that goes on from a saved status and charge (0.0 to 1.0).
    pub fn restore(settings: PowerSettings, status: Status, charge: f64) -> PowerModel {
        let mut model = PowerModel::new(settings);
        model.status = status;
        model.left = settings.runtime.mul_f64(charge.clamp(0.0, 1.0));
        model
    }

    pub fn status(&self) -> Status {
        self.status
    }

    /// The charge from 0.0 (empty) to 1.0 (full).
    pub fn charge(&self) -> f64 {
        self.left.as_secs_f64() / self.settings.runtime.as_secs_f64()
    }

    /// Takes new timings (a reloaded config) and keeps the charge as a
    /// fraction. OB LB stays until OL: clients may already be shutting down.
    pub fn set_settings(&mut self, settings: PowerSettings) {
        let charge = self.charge();
        self.settings = settings;
        self.left = settings.runtime.mul_f64(charge.clamp(0.0, 1.0));
    }

    /// Feeds one round taken at `now`: `silent` of `total` sentinels did not
    /// answer. Returns the status change it causes, if any.
    pub fn observe(&mut self, now: Instant, silent: usize, total: usize) -> Option<Transition> {
        self.advance(now);
        if self.paused {
            return None;
        }
        let lost = self.settings.quorum.is_met(silent, total);
        let from = self.status;
        if from == Status::Online {
            self.back_since = None;
            if !lost {
                self.lost_since = None;
                return None;
            }
            let since = *self.lost_since.get_or_insert(now);
            if now.saturating_duration_since(since) >= self.settings.on_battery_after {
                self.lost_since = None;
                self.status = Status::OnBattery;
                // A battery already below the line is low from the first moment.
                self.update_low();
                return Some(Transition {
                    from,
                    to: self.status,
                    cause: Cause::PowerLost,
                });
            }
            return None;
        }
        if lost {
            self.back_since = None;
        } else {
            let since = *self.back_since.get_or_insert(now);
            if now.saturating_duration_since(since) >= self.settings.online_after {
                self.back_since = None;
                self.status = Status::Online;
                return Some(Transition {
                    from,
                    to: Status::Online,
                    cause: Cause::PowerRestored,
                });
            }
        }
        self.tick_low(from)
    }

    /// Moves the battery to `now` without a round (e.g. for a status request).
    pub fn advance(&mut self, now: Instant) {
        let dt = self
            .last
            .map_or(Duration::ZERO, |last| now.saturating_duration_since(last));
        self.last = Some(self.last.map_or(now, |last| last.max(now)));
        if self.paused {
            self.left = self.settings.runtime;
        } else if self.status.on_battery() {
            self.left = self.left.saturating_sub(dt);
        } else {
            let gain = mul_div(dt, self.settings.runtime, self.settings.recharge_time);
            self.left = (self.left + gain).min(self.settings.runtime);
        }
    }

    /// Starts or ends a pause at `now`. A pause holds `OL` with a full battery;
    /// its end starts the watch afresh, so the sentinels get the whole
    /// `on-battery-after` before `OB`.
    pub fn set_paused(&mut self, now: Instant, paused: bool) -> Option<Transition> {
        self.advance(now);
        self.paused = paused;
        self.lost_since = None;
        self.back_since = None;
        if paused {
            self.left = self.settings.runtime;
            let from = self.status;
            self.status = Status::Online;
            if from != Status::Online {
                return Some(Transition {
                    from,
                    to: Status::Online,
                    cause: Cause::Paused,
                });
            }
        }
        None
    }

    /// What is written for NUT now.
    pub fn published(&self) -> Published {
        let s = &self.settings;
        Published {
            status: self.status,
            charge: percent(self.left, s.runtime),
            runtime: self.left.as_secs(),
            charge_low: percent(s.low_runtime, s.runtime),
            runtime_low: s.low_runtime.as_secs(),
        }
    }

    /// How long the quorum has been met without yet giving OB (for status).
    pub fn lost_for(&self, now: Instant) -> Option<Duration> {
        self.lost_since.map(|t| now.saturating_duration_since(t))
    }

    /// How long the sentinels have been back without yet giving OL.
    pub fn back_for(&self, now: Instant) -> Option<Duration> {
        self.back_since.map(|t| now.saturating_duration_since(t))
    }

    fn update_low(&mut self) {
        if self.status == Status::OnBattery && self.left <= self.settings.low_runtime {
            self.status = Status::LowBattery;
        }
    }

    fn tick_low(&mut self, from: Status) -> Option<Transition> {
        self.update_low();
        (self.status != from).then_some(Transition {
            from,
            to: self.status,
            cause: Cause::BatteryLow,
        })
    }
}

/// `a * b / c` without overflow or rounding drift, in nanoseconds.
fn mul_div(a: Duration, b: Duration, c: Duration) -> Duration {
    let c = c.as_nanos().max(1);
    let nanos = a.as_nanos().saturating_mul(b.as_nanos()) / c;
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// `part / whole` in whole percent, rounded to nearest, 0 to 100.
fn percent(part: Duration, whole: Duration) -> u8 {
    let whole = whole.as_nanos().max(1);
    let p = (part.as_nanos().saturating_mul(100) + whole / 2) / whole;
    u8::try_from(p.min(100)).unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn quorum_rules() {
        assert!(Quorum::All.is_met(3, 3));
        assert!(!Quorum::All.is_met(2, 3));
        assert!(!Quorum::All.is_met(0, 0));
        assert!(Quorum::Majority.is_met(2, 3));
        assert!(!Quorum::Majority.is_met(1, 2));
        assert!(Quorum::Majority.is_met(2, 2));
        assert!(Quorum::Any.is_met(1, 5));
        assert!(!Quorum::Any.is_met(0, 5));
        assert!(Quorum::AtLeast(2).is_met(2, 4));
        assert!(!Quorum::AtLeast(2).is_met(1, 4));
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
}
