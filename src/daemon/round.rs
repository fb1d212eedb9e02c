//! One round: ping the sentinels (beside the main loop, which goes on
//! answering and writing meanwhile), let the core decide, publish. And what
//! a round logs: sentinels that change, transitions, a pause that expires.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::pin::Pin;
use std::time::Instant;

use super::Daemon;
use crate::core::{Cause, Status, Transition};
use crate::events::EventKind;
use crate::probe::{Addresses, Outcome, Probe, Target};
use crate::sys::logging::{self, Level};

/// The messages of the three transitions, as the original project logged them.
const MSG_POWER_LOST: &str = "Power lost - switching to OB";
const MSG_BATTERY_LOW: &str = "Battery critically low - switching to OB LB";
const MSG_POWER_RESTORED: &str = "Power restored";

/// A round under way: it owns the prober and the addresses until it ends.
pub(super) type Running<P> = Pin<Box<dyn Future<Output = RoundDone<P>> + Send>>;

/// What a round brings back.
pub(super) struct RoundDone<P> {
    prober: P,
    addresses: Addresses,
    generation: u64,
    due: Instant,
    targets: Vec<Target>,
    outcomes: Vec<Outcome>,
}

impl<P: Probe> Daemon<P> {
    /// Starts the round that was due at `due`: name lookups, then the pings.
    /// It takes the prober and the addresses with it; None when they are
    /// away (a round is already running).
    pub(super) fn start_round(&mut self, due: Instant) -> Option<Running<P>> {
        let (mut prober, mut addresses) = match (self.prober.take(), self.addresses.take()) {
            (Some(p), Some(a)) => (p, a),
            (p, a) => {
                self.prober = p;
                self.addresses = a;
                return None;
            }
        };
        let timeout = self.config.detection.timeout;
        let generation = self.rounds.generation;
        let v4 = prober.can_ping(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let v6 = prober.can_ping(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        Some(Box::pin(async move {
            let usable = move |a: IpAddr| if a.is_ipv4() { v4 } else { v6 };
            let targets = addresses.targets(timeout, usable).await;
            let outcomes = prober.ping_all(&targets, timeout).await;
            RoundDone {
                prober,
                addresses,
                generation,
                due,
                targets,
                outcomes,
            }
        }))
    }

    /// Takes in a finished round: decide, publish. `due` is the time the
    /// round was due, so rounds are exactly an interval apart for the
    /// decision, and the scheduling delay of a busy machine cannot add a
    /// round to a window.
    pub(super) fn finish_round(&mut self, done: RoundDone<P>) {
        self.prober = Some(done.prober);
        let now = self.clock.now();
        self.rounds.last_done = now;
        if done.generation != self.rounds.generation {
            // The sentinels were reloaded while it ran: its answers are
            // about the old ones, and the new ones have their addresses.
            return;
        }
        self.addresses = Some(done.addresses);
        let started = done.due;
        let first = !self.out.first_round;
        if first && self.panic_for_test {
            panic!("FAKEUPS_TEST_PANIC is set: the first round panics, as a test asked");
        }
        self.log_sentinel_changes(&done.outcomes, first);
        self.sentinels
            .record(&done.targets, &done.outcomes, self.clock.wall());
        self.expire_pause(started);
        self.expire_drill(started);
        let silent = self.sentinels.silent_count();
        let total = self.sentinels.len();
        if let Some(t) = self.model.observe(started, silent, total) {
            self.on_transition(t);
        }
        self.wake_power();
        if first {
            self.out.first_round = true;
            // Written after the first round in any case: READY=1 waits for it.
            self.out.data.invalidate();
        }
        self.publish();
        logging::debug(&format!(
            "round done in {:.1} ms: {silent}/{total} sentinel(s) silent",
            now.saturating_duration_since(started).as_secs_f64() * 1000.0
        ));
    }

    /// One whole round, its writes waited for: how the unit tests drive
    /// the daemon.
    #[cfg(test)]
    pub(super) async fn round(&mut self, due: Instant) {
        if let Some(running) = self.start_round(due) {
            let done = running.await;
            self.finish_round(done);
        }
        self.settle();
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

    /// Logs a transition and hands its events to the hook and Sentry.
    pub(super) fn on_transition(&mut self, t: Transition) {
        self.status_since = self.clock.wall();
        let (from, to) = (t.from.as_nut(), t.to.as_nut());
        match t.cause {
            Cause::PowerLost | Cause::DrillStarted => {
                self.begin_outage(t.cause == Cause::DrillStarted);
                let ob = Status::OnBattery.as_nut();
                self.log_event(
                    EventKind::OnBattery,
                    Level::Warning,
                    MSG_POWER_LOST,
                    from,
                    ob,
                );
                if t.to == Status::LowBattery {
                    self.log_event(
                        EventKind::LowBattery,
                        Level::Critical,
                        MSG_BATTERY_LOW,
                        ob,
                        to,
                    );
                }
            }
            Cause::BatteryLow => self.log_event(
                EventKind::LowBattery,
                Level::Critical,
                MSG_BATTERY_LOW,
                from,
                to,
            ),
            Cause::PowerRestored | Cause::DrillEnded => {
                self.log_event(EventKind::Online, Level::Info, MSG_POWER_RESTORED, from, to)
            }
            // The pause that caused it is the event.
            Cause::Paused => logging::event(
                Level::Notice,
                "Paused while on battery - publishing OL with a full battery",
                &[("FAKEUPS_STATUS", to), ("FAKEUPS_PREVIOUS_STATUS", from)],
            ),
        }
    }

    /// Ends the pause at its end (on the boot clock within the boot it was
    /// set in); until then, moves its wall end after a wall-clock step.
    fn expire_pause(&mut self, now: Instant) {
        let moment = self.clock.moment();
        let Some(pause) = self.pause.as_mut() else {
            return;
        };
        if !pause.expired(&moment) {
            if let Some(moved) = pause.follow_wall_clock(&moment) {
                let until = pause.until.map(|u| u.to_rfc3339()).unwrap_or_default();
                logging::event(
                    Level::Notice,
                    &pause.describe_step(moved, &moment),
                    &[("FAKEUPS_PAUSE", "moved"), ("FAKEUPS_PAUSE_UNTIL", &until)],
                );
            }
            return;
        }
        self.pause = None;
        let before = self.model.published().status.as_nut();
        self.model.set_paused(now, false);
        let message = "Pause expired - watching sentinels again";
        logging::event(
            Level::Info,
            message,
            &[
                ("FAKEUPS_PAUSE", "expired"),
                ("FAKEUPS_EVENT", "pause-expired"),
            ],
        );
        self.emit(EventKind::PauseExpired, message, before);
    }
}
