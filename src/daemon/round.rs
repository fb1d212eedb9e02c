//! One round: ping the sentinels, let the core decide, publish. And what
//! a round logs: sentinels that change, transitions, a pause that expires.

use std::time::Instant;

use super::Daemon;
use crate::core::{Cause, Status, Transition};
use crate::probe::{Outcome, Probe};
use crate::sys::logging::{self, Level};

/// The messages of the three transitions, as the original project logged them.
const MSG_POWER_LOST: &str = "Power lost - switching to OB";
const MSG_BATTERY_LOW: &str = "Battery critically low - switching to OB LB";
const MSG_POWER_RESTORED: &str = "Power restored";

impl<P: Probe> Daemon<P> {
    /// One round: ping, decide, publish. `started` is the time the round was
    /// due, so rounds are exactly an interval apart for the decision, and the
    /// scheduling delay of a busy machine cannot add a round to a window.
    pub(super) async fn round(&mut self, started: Instant) {
        let timeout = self.config.detection.timeout;
        let prober = &self.prober;
        let targets = self
            .sentinels
            .targets(timeout, |addr| prober.can_ping(addr))
            .await;
        let first = !self.out.ready;
        let outcomes = self.prober.ping_all(&targets, timeout).await;
        self.log_sentinel_changes(&outcomes, first);
        self.sentinels
            .record(&targets, &outcomes, self.clock.wall());
        self.expire_pause(started);
        let silent = self.sentinels.silent_count();
        let total = self.sentinels.len();
        if let Some(t) = self.model.observe(started, silent, total) {
            self.on_transition(t);
        }
        self.publish();
        self.ready_after_round();
        logging::debug(&format!(
            "round done in {:.1} ms: {silent}/{total} sentinel(s) silent",
            self.clock
                .now()
                .saturating_duration_since(started)
                .as_secs_f64()
                * 1000.0
        ));
    }

    /// Logs the sentinels whose answer changed with `outcomes`; called
    /// before they are recorded, so the reports still hold the last round.
    fn log_sentinel_changes(&self, outcomes: &[Outcome], first: bool) {
        for (report, outcome) in self.sentinels.reports().iter().zip(outcomes) {
            let was = report.answered;
            match outcome {
                Outcome::Answered(_) if !was => logging::event(
                    Level::Info,
                    &format!("sentinel {} answers", report.name),
                    &[("FAKEUPS_SENTINEL", &report.name)],
                ),
                Outcome::Silent(why) if was || first => logging::event(
                    Level::Notice,
                    &format!("sentinel {} is silent: {why}", report.name),
                    &[("FAKEUPS_SENTINEL", &report.name)],
                ),
                _ => {}
            }
        }
    }

    pub(super) fn on_transition(&mut self, t: Transition) {
        self.status_since = self.clock.wall();
        let fields = [
            ("FAKEUPS_STATUS", t.to.as_nut()),
            ("FAKEUPS_PREVIOUS_STATUS", t.from.as_nut()),
        ];
        match t.cause {
            Cause::PowerLost => {
                logging::event(Level::Warning, MSG_POWER_LOST, &fields);
                if t.to == Status::LowBattery {
                    logging::event(Level::Critical, MSG_BATTERY_LOW, &fields);
                }
            }
            Cause::BatteryLow => logging::event(Level::Critical, MSG_BATTERY_LOW, &fields),
            Cause::PowerRestored => logging::event(Level::Info, MSG_POWER_RESTORED, &fields),
            Cause::Paused => logging::event(
                Level::Notice,
                "Paused while on battery - publishing OL with a full battery",
                &fields,
            ),
        }
    }

    fn expire_pause(&mut self, now: Instant) {
        if self
            .pause
            .as_ref()
            .is_some_and(|p| p.expired(self.clock.wall()))
        {
            self.pause = None;
            self.model.set_paused(now, false);
            logging::event(
                Level::Info,
                "Pause expired - watching sentinels again",
                &[("FAKEUPS_PAUSE", "expired")],
            );
        }
    }
}
