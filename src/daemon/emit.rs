//! Events leave the daemon here: each is logged by its caller, then handed
//! to the outlets (the hook, Sentry) with the status and battery of now.

use super::Daemon;
use crate::events::{Event, EventKind};
use crate::probe::Probe;
use crate::sys::logging::{self, Level};

impl<P: Probe> Daemon<P> {
    /// Hands `kind` to the outlets; `previous` is the status before it.
    pub(super) fn emit(&mut self, kind: EventKind, message: &str, previous: &'static str) {
        let status = self.model.published().status.as_nut();
        self.emit_with(kind, message, previous, status);
    }

    fn emit_with(
        &mut self,
        kind: EventKind,
        message: &str,
        previous: &'static str,
        status: &'static str,
    ) {
        let p = self.model.published();
        let drill = self.is_drill(kind);
        self.events.emit(Event {
            kind,
            status,
            previous,
            charge: p.charge,
            runtime: p.runtime,
            message: message.to_string(),
            time: self.clock.wall(),
            drill,
        });
    }

    /// Whether `kind`, now, belongs to a drill: the drill's own events,
    /// the transitions while one runs, the wake after one.
    fn is_drill(&self, kind: EventKind) -> bool {
        match kind {
            EventKind::DrillStarted | EventKind::DrillEnded => true,
            EventKind::WakeSent | EventKind::Woken | EventKind::WakeGaveUp => {
                self.wake.wake.drill()
            }
            _ => self.drill.is_some(),
        }
    }

    /// Logs a transition's line (with FAKEUPS_EVENT, so that Sentry takes it
    /// as this event, not as a second one) and emits it.
    pub(super) fn log_event(
        &mut self,
        kind: EventKind,
        level: Level,
        message: &str,
        previous: &'static str,
        status: &'static str,
    ) {
        // A drill's transitions say so in every line and event.
        let transition = matches!(
            kind,
            EventKind::OnBattery | EventKind::LowBattery | EventKind::Online
        );
        let message = if transition && self.drill.is_some() {
            format!("Drill: {message}")
        } else {
            message.to_string()
        };
        let drill = self.is_drill(kind);
        logging::event(
            level,
            &message,
            &[
                ("FAKEUPS_STATUS", status),
                ("FAKEUPS_PREVIOUS_STATUS", previous),
                ("FAKEUPS_EVENT", kind.name()),
                ("FAKEUPS_DRILL", if drill { "1" } else { "0" }),
            ],
        );
        self.emit_with(kind, &message, previous, status);
    }
}
