//! Telling people: each event the daemon meets (a power transition, a
//! pause, NUT that stops serving) goes to the event hook (`[events]
//! command`, hook.rs) and, for the power transitions, to Sentry (`[sentry]
//! dsn`, sentry.rs, whose transport is outbox.rs). Both work on threads of
//! their own: the loop only hands an event over, and never waits.

mod hook;
mod outbox;
pub mod sentry;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Local};
use tokio::sync::Notify;

use crate::config::Config;
use crate::control::report::{FailureReport, OutletReport, OutletsReport};
use crate::sys::logging::Level;

pub use hook::Hooks;
pub use sentry::Reporter;

/// What happened, by the name a hook sees in FAKEUPS_EVENT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    OnBattery,
    LowBattery,
    Online,
    Paused,
    Resumed,
    PauseExpired,
    NutNotServing,
    NutServing,
    DrillStarted,
    DrillEnded,
    WakeSent,
    Woken,
    WakeGaveUp,
}

impl EventKind {
    /// Every kind, in the order the documentation lists them.
    #[cfg(test)]
    pub const ALL: [EventKind; 13] = [
        EventKind::OnBattery,
        EventKind::LowBattery,
        EventKind::Online,
        EventKind::Paused,
        EventKind::Resumed,
        EventKind::PauseExpired,
        EventKind::NutNotServing,
        EventKind::NutServing,
        EventKind::DrillStarted,
        EventKind::DrillEnded,
        EventKind::WakeSent,
        EventKind::Woken,
        EventKind::WakeGaveUp,
    ];

    /// The value of FAKEUPS_EVENT.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::OnBattery => "on-battery",
            EventKind::LowBattery => "low-battery",
            EventKind::Online => "online",
            EventKind::Paused => "paused",
            EventKind::Resumed => "resumed",
            EventKind::PauseExpired => "pause-expired",
            EventKind::NutNotServing => "nut-not-serving",
            EventKind::NutServing => "nut-serving",
            EventKind::DrillStarted => "drill-started",
            EventKind::DrillEnded => "drill-ended",
            EventKind::WakeSent => "wake-sent",
            EventKind::Woken => "woken",
            EventKind::WakeGaveUp => "wake-gave-up",
        }
    }

    /// The level Sentry gets it at, for the events that go to Sentry: the
    /// power transitions, a machine woken and one given up (not each
    /// packet: one every `retry-every` would flood it).
    pub fn sentry_level(self) -> Option<Level> {
        match self {
            EventKind::OnBattery => Some(Level::Warning),
            EventKind::LowBattery => Some(Level::Error),
            EventKind::Online => Some(Level::Info),
            EventKind::Woken => Some(Level::Info),
            EventKind::WakeGaveUp => Some(Level::Warning),
            _ => None,
        }
    }
}

/// One event, with what a hook gets in its environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: EventKind,
    /// The status published after it (`OL`, `OB`, `OB LB`).
    pub status: &'static str,
    /// The status published before it.
    pub previous: &'static str,
    /// Percent.
    pub charge: u8,
    /// Seconds of battery left.
    pub runtime: u64,
    /// The line it was logged with.
    pub message: String,
    pub time: DateTime<Local>,
    /// Part of a drill, not a real outage.
    pub drill: bool,
}

impl Event {
    /// The environment of the hook: every FAKEUPS_ variable.
    pub fn environment(&self) -> [(&'static str, String); 8] {
        [
            ("FAKEUPS_EVENT", self.kind.name().to_string()),
            ("FAKEUPS_STATUS", self.status.to_string()),
            ("FAKEUPS_PREVIOUS", self.previous.to_string()),
            ("FAKEUPS_CHARGE", self.charge.to_string()),
            ("FAKEUPS_RUNTIME", self.runtime.to_string()),
            ("FAKEUPS_MESSAGE", self.message.clone()),
            (
                "FAKEUPS_TIME",
                self.time
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
            ),
            ("FAKEUPS_DRILL", u8::from(self.drill).to_string()),
        ]
    }
}

/// How an outlet (the hook, Sentry) fares, shared with its thread: shown
/// by `fakeupsctl status`.
#[derive(Debug, Default)]
pub struct Health {
    /// Rung at each change, so that the loop renews the status report.
    changed: Arc<Notify>,
    /// Events (hook runs, Sentry envelopes) that went through.
    pub delivered: u64,
    /// Events dropped: the queue was full, or Sentry did not answer.
    pub dropped: u64,
    pub last_failure: Option<(DateTime<Local>, String)>,
}

pub type SharedHealth = Arc<Mutex<Health>>;

fn read(health: &SharedHealth) -> std::sync::MutexGuard<'_, Health> {
    health.lock().unwrap_or_else(|p| p.into_inner())
}

/// Changes `health` with `change`, and rings its bell.
fn update(health: &SharedHealth, change: impl FnOnce(&mut Health)) {
    let mut h = read(health);
    change(&mut h);
    h.changed.notify_one();
}

/// A new health that rings `changed`.
fn new_health(changed: &Arc<Notify>) -> SharedHealth {
    Arc::new(Mutex::new(Health {
        changed: changed.clone(),
        ..Default::default()
    }))
}

fn outlet_report(target: Option<String>, health: Option<&SharedHealth>) -> OutletReport {
    let Some(health) = health else {
        return OutletReport::default();
    };
    let h = read(health);
    OutletReport {
        on: true,
        target,
        delivered: h.delivered,
        dropped: h.dropped,
        last_failure: h.last_failure.as_ref().map(|(at, error)| FailureReport {
            at: *at,
            error: error.clone(),
        }),
    }
}

/// Where events go: the hook and Sentry, each when configured.
#[derive(Default)]
pub struct Outlets {
    hooks: Option<Hooks>,
    sentry: Option<Arc<Reporter>>,
    /// Rung when how they fare changes (a hook failed, Sentry answered).
    changed: Arc<Notify>,
}

impl Outlets {
    /// The outlets `config` asks for. One that cannot start is logged and
    /// left off; the daemon goes on without it.
    pub fn start(config: &Config) -> Outlets {
        let mut outlets = Outlets::default();
        outlets.apply(config, None);
        outlets
    }

    /// Applies `new` after a reload: an outlet whose settings changed is
    /// started again (the old hook thread finishes what it queued).
    pub fn apply(&mut self, new: &Config, old: Option<&Config>) {
        if old.is_none_or(|old| old.events != new.events) {
            self.hooks = Hooks::start(&new.events, new_health(&self.changed));
        }
        if old.is_none_or(|old| old.sentry != new.sentry) {
            self.sentry = sentry::start(&new.sentry, new_health(&self.changed));
        }
    }

    /// Hands `event` to the hook and, for a power transition, to Sentry.
    /// Never waits.
    pub fn emit(&mut self, event: Event) {
        if let (Some(reporter), Some(level)) = (&self.sentry, event.kind.sentry_level()) {
            reporter.transition(&event, level);
        }
        if let Some(hooks) = &mut self.hooks {
            hooks.submit(event);
        }
    }

    /// Rung when the report of the outlets changed.
    pub fn changed(&self) -> Arc<Notify> {
        self.changed.clone()
    }

    /// What `fakeupsctl status` shows of them.
    pub fn report(&self) -> OutletsReport {
        OutletsReport {
            hooks: outlet_report(
                self.hooks.as_ref().map(Hooks::describe),
                self.hooks.as_ref().map(Hooks::health),
            ),
            sentry: outlet_report(
                self.sentry.as_ref().map(|r| r.describe()),
                self.sentry.as_ref().map(|r| r.health()),
            ),
        }
    }

    /// At a clean stop: what Sentry still has to send gets a moment.
    pub fn stop(&mut self) {
        if let Some(reporter) = self.sentry.take() {
            reporter.flush(std::time::Duration::from_secs(2));
        }
        self.hooks = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_environment_names_every_variable() {
        let event = Event {
            kind: EventKind::LowBattery,
            status: "OB LB",
            previous: "OB",
            charge: 59,
            runtime: 178,
            message: "Battery critically low - switching to OB LB".into(),
            time: Local.with_ymd_and_hms(2026, 12, 2, 12, 0, 1).unwrap(),
            drill: false,
        };
        let env: std::collections::HashMap<_, _> = event.environment().into_iter().collect();
        assert_eq!(env["FAKEUPS_EVENT"], "low-battery");
        assert_eq!(env["FAKEUPS_STATUS"], "OB LB");
        assert_eq!(env["FAKEUPS_PREVIOUS"], "OB");
        assert_eq!(env["FAKEUPS_CHARGE"], "59");
        assert_eq!(env["FAKEUPS_RUNTIME"], "178");
        assert_eq!(env["FAKEUPS_DRILL"], "0");
        let time = DateTime::parse_from_rfc3339(&env["FAKEUPS_TIME"]).unwrap();
        assert_eq!(time, event.time);
        assert!(
            env["FAKEUPS_TIME"].ends_with('Z')
                || env["FAKEUPS_TIME"].contains('+')
                || env["FAKEUPS_TIME"][19..].contains('-'),
            "{}",
            env["FAKEUPS_TIME"]
        );
    }

    #[test]
    fn the_power_transitions_and_the_wake_outcomes_go_to_sentry() {
        let levels: Vec<_> = EventKind::ALL.iter().map(|k| k.sentry_level()).collect();
        assert_eq!(
            levels,
            vec![
                Some(Level::Warning),
                Some(Level::Error),
                Some(Level::Info),
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                Some(Level::Info),
                Some(Level::Warning),
            ]
        );
        let names: Vec<_> = EventKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(
            names,
            [
                "on-battery",
                "low-battery",
                "online",
                "paused",
                "resumed",
                "pause-expired",
                "nut-not-serving",
                "nut-serving",
                "drill-started",
                "drill-ended",
                "wake-sent",
                "woken",
                "wake-gave-up"
            ]
        );
    }
}
