//! Where a decision goes: the NUT data file and the runtime copy of the
//! state (written when they change), the state file (saved when what must
//! outlive a reboot changes), systemd (READY=1, STATUS=) and the report that
//! status clients read. The writes run off the loop (disk.rs); each output's
//! fault is logged once and shown in the status until it clears.

use std::sync::Arc;
use std::time::Duration;

use super::disk::{Disk, DiskEvent, FastBatch, SaveAck, SlowBatch};
use super::{Daemon, runtime_store};
use crate::core::{PauseRecord, Saved, Status};
use crate::nut::DataFile;
use crate::nut::lifetime::outlives_the_service;
use crate::probe::Probe;
use crate::state::{SavedState, StateStore};
use crate::sys::logging;
use crate::sys::notify::Notifier;

/// How long the stop waits for the last writes.
const STOP_WRITE_LIMIT: Duration = Duration::from_secs(10);

/// What the state file must be saved again for: a new status, a pause set
/// or ended, the battery full again on mains (so that a reboot does not
/// bring back the charge of the last outage). Not the charge itself: on
/// battery it follows from the time since the transition, and the runtime
/// copy has it for a restart.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct SaveKey {
    status: Status,
    pause: Option<PauseRecord>,
    full: bool,
    drill: bool,
    /// The wake's steps and its end (`WakeSide::serial`).
    wake: u64,
}

impl SaveKey {
    pub(super) fn of(
        status: Status,
        pause: &Option<PauseRecord>,
        charge: f64,
        drill: bool,
        wake: u64,
    ) -> SaveKey {
        SaveKey {
            status,
            pause: pause.clone(),
            full: !status.on_battery() && charge >= 1.0,
            drill,
            wake,
        }
    }
}

/// The outputs and their faults.
pub(super) struct Outputs {
    pub(super) data: DataFile,
    pub(super) store: StateStore,
    pub(super) disk: Disk,
    pub(super) notifier: Notifier,
    /// The first round finished.
    pub(super) first_round: bool,
    /// READY=1 was sent.
    pub(super) ready: bool,
    /// Why the data file could not be written, while it cannot.
    pub(super) data_error: Option<String>,
    /// Whether user nut's access to the data file was checked.
    pub(super) data_checked: bool,
    /// Why the state could not be saved, while it cannot.
    pub(super) state_error: Option<String>,
    /// Why the runtime copy of the state could not be written, while it cannot.
    pub(super) copy_error: Option<String>,
    /// What the state file was last given to save.
    pub(super) saved_key: Option<SaveKey>,
}

impl Outputs {
    /// `on_disk`: what the state directory holds at start.
    pub(super) fn new(
        data: DataFile,
        store: StateStore,
        disk: Disk,
        on_disk: Option<SaveKey>,
    ) -> Outputs {
        Outputs {
            data,
            store,
            disk,
            notifier: Notifier::new(),
            first_round: false,
            ready: false,
            data_error: None,
            data_checked: false,
            state_error: None,
            copy_error: None,
            saved_key: on_disk,
        }
    }
}

impl<P: Probe> Daemon<P> {
    /// Hands the data file and the state to the writers when they changed,
    /// tells systemd and the status readers.
    pub(super) fn publish(&mut self) {
        self.publish_and_save(None);
    }

    /// The same; and the state file is saved in any case when `ack` waits
    /// for it (a pause, a resume: they are answered once it is on disk).
    pub(super) fn publish_and_save(&mut self, ack: Option<SaveAck>) {
        let published = self.model.published();
        let data = self.out.data.next(&published);
        let key = SaveKey::of(
            self.model.status(),
            &self.pause,
            self.model.charge(),
            self.drill.is_some(),
            self.wake.serial,
        );
        let save = ack.is_some() || self.out.saved_key.as_ref() != Some(&key);
        let wake_changed = std::mem::take(&mut self.wake.dirty);
        if data.is_some() || save || wake_changed {
            let at = self.clock.moment();
            let wake = &self.wake.wake;
            let record = (wake.outage().is_some() || !wake.targets().is_empty())
                .then(|| wake.record(self.clock.now(), &at));
            let state = SavedState::new(
                Saved {
                    status: self.model.status(),
                    charge: self.model.charge(),
                    status_since: self.status_since,
                    pause: self.pause.clone(),
                    drill: self.drill.is_some(),
                    at,
                },
                record,
            );
            // The runtime copy goes with every change, before the data file.
            let runtime_copy =
                runtime_store(&self.config).and_then(|store| match store.encode(&state) {
                    Ok(text) => Some((store, text)),
                    Err(e) => {
                        logging::error(&e.to_string());
                        None
                    }
                });
            let check_access = data.is_some() && !self.out.data_checked;
            self.out.data_checked |= check_access;
            if let Some(w) = check_access
                .then(|| outlives_the_service(self.out.data.path()))
                .flatten()
            {
                logging::warning(&w);
            }
            self.out.disk.write_fast(FastBatch {
                runtime_copy,
                data,
                check_access,
                diagnose: None,
            });
            if save {
                match self.out.store.encode(&state) {
                    Ok(text) => {
                        self.out.disk.save(SlowBatch {
                            store: self.out.store.clone(),
                            text,
                            acks: ack.into_iter().collect(),
                        });
                        self.out.saved_key = Some(key);
                    }
                    Err(e) => {
                        let text = e.to_string();
                        if let Some(ack) = ack {
                            let _ = ack.send(Err(text.clone()));
                        }
                        self.on_disk(DiskEvent::Saved(Err(text)));
                    }
                }
            }
        }
        self.announce();
    }

    /// Takes in what a write did: faults logged once, READY=1 after the
    /// first round's data file.
    pub(super) fn on_disk(&mut self, event: DiskEvent) {
        let out = &mut self.out;
        match event {
            DiskEvent::Data {
                result: Ok(()),
                access_problem,
            } => {
                if out.data_error.take().is_some() {
                    logging::info(&format!(
                        "NUT data file {} written again",
                        out.data.path().display()
                    ));
                }
                if let Some(problem) = access_problem {
                    logging::warning(&format!("dummy-ups will not see the status: {problem}"));
                }
                self.ready_after_round();
            }
            DiskEvent::Data {
                result: Err(text), ..
            } => {
                if out.data_error.as_deref() != Some(text.as_str()) {
                    logging::error(&text);
                }
                out.data_error = Some(text);
                // Written again at the next round.
                out.data.invalidate();
            }
            DiskEvent::RuntimeCopy(result) => note(&mut out.copy_error, result, "runtime copy"),
            DiskEvent::Saved(Err(text)) => {
                // Saved again at the next round.
                out.saved_key = None;
                note(&mut out.state_error, Err(text), "state");
            }
            DiskEvent::Saved(Ok(())) => note(&mut out.state_error, Ok(()), "state"),
            DiskEvent::Access { path, problem } => self.on_access_check(&path, problem),
        }
        self.announce();
    }

    /// The stop: the state saved, the writers given time to finish.
    pub(super) fn save_and_wait(&mut self) {
        self.out.saved_key = None;
        self.publish();
        if !self.out.disk.wait_idle(STOP_WRITE_LIMIT) {
            logging::error(&format!(
                "the state was not saved within {} s: the disk does not answer",
                STOP_WRITE_LIMIT.as_secs()
            ));
        }
    }

    /// READY=1, once: after the first round, when the data file is written.
    pub(super) fn ready_after_round(&mut self) {
        if self.out.ready || !self.out.first_round || self.out.data_error.is_some() {
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

    /// Waits for the writers and takes in what they did: the unit tests'
    /// view of a daemon whose writes are done.
    #[cfg(test)]
    pub(super) fn settle(&mut self) {
        assert!(self.out.disk.wait_idle(Duration::from_secs(10)));
        let mut events = vec![];
        if let Some(rx) = self.out.disk.events.as_mut() {
            while let Ok(event) = rx.try_recv() {
                events.push(event);
            }
        }
        for event in events {
            self.on_disk(event);
        }
    }
}

/// Logs a write's fault once, and its end.
fn note(error: &mut Option<String>, result: Result<(), String>, what: &str) {
    match result {
        Ok(()) => {
            if let Some(old) = error.take() {
                logging::info(&format!("the {what} is written again (after: {old})"));
            }
        }
        Err(text) => {
            let text = format!("cannot save the {what}: {text}");
            if error.as_deref() != Some(text.as_str()) {
                logging::error(&text);
            }
            *error = Some(text);
        }
    }
}
