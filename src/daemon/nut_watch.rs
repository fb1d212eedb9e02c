//! upsd's read-back: the task that asks upsd what it serves, and what the
//! daemon makes of each look (warnings, recoveries, the status line).

use std::time::Instant;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Daemon;
use crate::nut::{Health, HealthEvent, Snapshot, view};
use crate::probe::Probe;
use crate::sys::logging::{self, Level};

/// The read-back task and what it last saw.
pub(super) struct NutWatch {
    task: Option<JoinHandle<()>>,
    pub(super) last: Option<Snapshot>,
    pub(super) health: Health,
}

impl NutWatch {
    pub(super) fn new(now: Instant) -> NutWatch {
        NutWatch {
            task: None,
            last: None,
            health: Health::new(now),
        }
    }

    pub(super) fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl<P: Probe> Daemon<P> {
    /// Starts reading back from upsd (unless `nut.upsd` is ""); the receiver
    /// gets each look.
    pub(super) fn start_nut_view(&mut self) -> watch::Receiver<Option<Snapshot>> {
        self.nut.stop();
        self.nut = NutWatch::new(self.clock.now());
        let (tx, rx) = watch::channel(None);
        if !self.config.nut.upsd.is_empty() && !self.config.nut.ups.is_empty() {
            self.nut.task = Some(view::spawn(
                self.config.nut.upsd.clone(),
                self.config.nut.ups.clone(),
                tx,
            ));
        }
        rx
    }

    /// Weighs one look at upsd: logs problems that start and names that
    /// recover, and shows them in the status.
    pub(super) fn on_nut(&mut self, snapshot: Snapshot) {
        let written = self.model.published().status.as_nut();
        let events =
            self.nut
                .health
                .assess(&snapshot, &self.config.nut.ups, written, self.clock.now());
        for event in events {
            match event {
                HealthEvent::Problem { names, problem } => logging::event(
                    Level::Warning,
                    &format!("NUT not serving {}: {problem}", names.join(", ")),
                    &[("FAKEUPS_NUT_PROBLEM", &problem)],
                ),
                HealthEvent::Recovered { names } => logging::info(&format!(
                    "NUT serves {} again as written ({written})",
                    names.join(", ")
                )),
            }
        }
        self.nut.last = Some(snapshot);
        self.announce();
    }
}
