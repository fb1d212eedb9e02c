//! upsd's read-back: the task that asks upsd what it serves, and what the
//! daemon makes of each look (warnings, recoveries, the status line). When
//! upsd says a driver is not connected, the cause is looked for: whether
//! user nut (the driver's user) can still read the data file.

use std::path::Path;
use std::time::Instant;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Daemon;
use super::disk::FastBatch;
use crate::events::EventKind;
use crate::nut::client::DRIVER_NOT_CONNECTED;
use crate::nut::{Health, HealthEvent, Snapshot, view};
use crate::probe::Probe;
use crate::sys::logging::{self, Level};

/// The read-back task and what it last saw.
pub(super) struct NutWatch {
    task: Option<JoinHandle<()>>,
    pub(super) last: Option<Snapshot>,
    pub(super) health: Health,
    /// Why the drivers are not connected, as far as fakeups can tell.
    pub(super) cause: Option<String>,
}

impl NutWatch {
    pub(super) fn new(now: Instant) -> NutWatch {
        NutWatch {
            task: None,
            last: None,
            health: Health::new(now),
            cause: None,
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
                HealthEvent::Problem { names, problem } => {
                    let message = format!("NUT not serving {}: {problem}", names.join(", "));
                    logging::event(
                        Level::Warning,
                        &message,
                        &[
                            ("FAKEUPS_NUT_PROBLEM", &problem),
                            ("FAKEUPS_EVENT", "nut-not-serving"),
                        ],
                    );
                    self.emit(EventKind::NutNotServing, &message, written);
                    if problem == DRIVER_NOT_CONNECTED {
                        // Checked again at every such episode: the access may
                        // have changed since the first write.
                        self.out.disk.write_fast(FastBatch {
                            runtime_copy: None,
                            data: None,
                            check_access: false,
                            diagnose: Some(self.config.nut.data_file.clone()),
                        });
                    }
                }
                HealthEvent::Recovered { names } => {
                    self.nut.cause = None;
                    let message = format!(
                        "NUT serves {} again as written ({written})",
                        names.join(", ")
                    );
                    logging::event(Level::Info, &message, &[("FAKEUPS_EVENT", "nut-serving")]);
                    self.emit(EventKind::NutServing, &message, written);
                }
            }
        }
        self.nut.last = Some(snapshot);
        self.wake_on_nut();
        self.publish();
    }

    /// What the check of user nut's access found, after NUT said a driver
    /// is not connected: the cause, or what else to look at.
    pub(super) fn on_access_check(&mut self, path: &Path, problem: Option<String>) {
        match problem {
            Some(problem) => {
                logging::warning(&format!(
                    "the cause of \"{DRIVER_NOT_CONNECTED}\": {problem}; dummy-ups runs as \
                     user nut and exits when it cannot read {}",
                    path.display()
                ));
                self.nut.cause = Some(problem);
            }
            None => {
                logging::notice(&format!(
                    "NUT says {DRIVER_NOT_CONNECTED}, though user nut can read {}: check that \
                     each section of /etc/nut/ups.conf has port = {} and driver = dummy-ups, \
                     and the driver's log (journalctl -u 'nut-driver@*')",
                    path.display(),
                    path.display()
                ));
                self.nut.cause = None;
            }
        }
    }
}
