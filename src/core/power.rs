//! The power decision and the simulated battery: a pure state machine fed
//! with rounds of sentinel answers and the time they were taken. Nothing here
//! reads a clock, so every rule is tested without sleeping.

use std::time::{Duration, Instant};

use super::quorum::Quorum;
use super::status::{Cause, Published, Status, Transition};

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
    /// A drill runs: on battery whatever the sentinels say.
    drill: bool,
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
            drill: false,
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
        if self.drill {
            // The sentinels are not heeded, but watched: a real outage
            // during the drill goes on from its start when the drill ends.
            if self.settings.quorum.is_met(silent, total) {
                self.lost_since.get_or_insert(now);
            } else {
                self.lost_since = None;
            }
            let from = self.status;
            return self.tick_low(from);
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

    /// Starts a drill at `now`: OB at once (OB LB if the battery is already
    /// below the line), then the battery drains as in an outage, whatever
    /// the sentinels say, until `end_drill`.
    pub fn start_drill(&mut self, now: Instant) -> Option<Transition> {
        self.advance(now);
        self.drill = true;
        self.lost_since = None;
        self.back_since = None;
        let from = self.status;
        if from != Status::Online {
            return None;
        }
        self.status = Status::OnBattery;
        self.update_low();
        Some(Transition {
            from,
            to: self.status,
            cause: Cause::DrillStarted,
        })
    }

    /// Ends a drill at `now`: OL, and the sentinels decide again from the
    /// next round; silent since some time during the drill, they give OB
    /// once `on-battery-after` has passed since then.
    pub fn end_drill(&mut self, now: Instant) -> Option<Transition> {
        self.advance(now);
        if !self.drill {
            return None;
        }
        self.drill = false;
        self.back_since = None;
        let from = self.status;
        self.status = Status::Online;
        (from != Status::Online).then_some(Transition {
            from,
            to: Status::Online,
            cause: Cause::DrillEnded,
        })
    }

    pub fn drill(&self) -> bool {
        self.drill
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
mod tests;
