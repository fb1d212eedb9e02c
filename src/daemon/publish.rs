//! Where a decision goes: the NUT data file (written when it changed), the
//! state file, systemd (READY=1, STATUS=) and the report that status
//! clients read. Each output's fault is logged once and shown in the status
//! until it clears.

use std::sync::Arc;

use super::Daemon;
use crate::core::{PauseRecord, Saved, Status};
use crate::nut::DataFile;
use crate::nut::access::unreadable_by_nut;
use crate::probe::Probe;
use crate::state::{SavedState, StateStore};
use crate::sys::logging;
use crate::sys::notify::Notifier;

/// The outputs and their faults.
pub(super) struct Outputs {
    pub(super) data: DataFile,
    pub(super) store: StateStore,
    pub(super) notifier: Notifier,
    /// READY=1 was sent.
    pub(super) ready: bool,
    /// Why the data file could not be written, while it cannot.
    pub(super) data_error: Option<String>,
    /// Whether user nut's access to the data file was checked.
    pub(super) data_checked: bool,
    /// Why the state could not be saved, while it cannot.
    pub(super) state_error: Option<String>,
    /// What the state file holds: status, runtime left, pause.
    pub(super) last_saved: Option<(Status, u64, Option<PauseRecord>)>,
}

impl Outputs {
    pub(super) fn new(data: DataFile, store: StateStore) -> Outputs {
        Outputs {
            data,
            store,
            notifier: Notifier::new(),
            ready: false,
            data_error: None,
            data_checked: false,
            state_error: None,
            last_saved: None,
        }
    }
}

impl<P: Probe> Daemon<P> {
    /// Writes the data file (when it changed), saves the state, tells systemd.
    pub(super) fn publish(&mut self) {
        let published = self.model.published();
        let out = &mut self.out;
        match out.data.publish(&published) {
            Ok(wrote) => {
                if out.data_error.take().is_some() {
                    logging::info(&format!(
                        "NUT data file {} written again",
                        out.data.path().display()
                    ));
                }
                if wrote && !out.data_checked {
                    out.data_checked = true;
                    if let Some(problem) = unreadable_by_nut(out.data.path()) {
                        logging::warning(&format!("dummy-ups will not see the status: {problem}"));
                    }
                }
            }
            Err(e) => {
                let text = e.to_string();
                if out.data_error.as_deref() != Some(text.as_str()) {
                    logging::error(&text);
                }
                out.data_error = Some(text);
                out.data.invalidate();
            }
        }
        self.save_state(false);
        self.announce();
    }

    /// Saves the state when what it holds changed, at every round on battery
    /// (so that a restart measures its down time from the last round), or
    /// always with `force`.
    pub(super) fn save_state(&mut self, force: bool) {
        let p = self.model.published();
        let unchanged = self
            .out
            .last_saved
            .as_ref()
            .is_some_and(|(status, runtime, pause)| {
                *status == p.status && *runtime == p.runtime && *pause == self.pause
            });
        if !force && !p.status.on_battery() && unchanged {
            return;
        }
        let saved = SavedState::new(Saved {
            status: self.model.status(),
            charge: self.model.charge(),
            status_since: self.status_since,
            pause: self.pause.clone(),
            at: self.clock.moment(),
        });
        let out = &mut self.out;
        match out.store.save(&saved) {
            Ok(()) => {
                out.last_saved = Some((p.status, p.runtime, saved.pause));
                if out.state_error.take().is_some() {
                    logging::info(&format!(
                        "state saved again to {}",
                        out.store.path().display()
                    ));
                }
            }
            Err(e) => {
                let text = format!("cannot save the state: {e}");
                if out.state_error.as_deref() != Some(text.as_str()) {
                    logging::error(&text);
                }
                out.state_error = Some(text);
                out.last_saved = None;
            }
        }
    }

    /// READY=1, once: after the first round, when the data file is written.
    pub(super) fn ready_after_round(&mut self) {
        if self.out.ready || self.out.data_error.is_some() {
            return;
        }
        self.out.ready = true;
        let status = self.status_line();
        self.out.notifier.ready(&status);
        logging::info(&format!("ready: {status}"));
        self.send_report();
    }

    pub(super) fn send_report(&self) {
        self.control.reports.send_replace(Arc::new(self.report()));
    }

    /// The status line to systemd (STATUS=) and the report to status
    /// clients, from one rendering of the line.
    pub(super) fn announce(&mut self) {
        let status = self.status_line();
        self.out.notifier.status(&status);
        self.control
            .reports
            .send_replace(Arc::new(self.report_with(status)));
    }
}
