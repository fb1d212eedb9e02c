//! The daemon's writes, on two threads of their own (sys::lane), so that the
//! main loop never waits for a disk:
//!
//! - the fast lane writes the runtime copy of the state (next to the control
//!   socket, /run/fakeups), then the NUT data file, both without fsync: in
//!   that order, so that a status reaches dummy-ups only once the state that
//!   restores it after a crash is in place;
//! - the slow lane saves the state in the state directory with fsync, only
//!   when what must outlive a reboot changed (a transition, a pause, a full
//!   battery, the stop), and tells the pause or resume waiting for it.
//!
//! What each write did comes back to the loop as a `DiskEvent`.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::nut::access::unreadable_by_nut;
use crate::nut::data_file::DataWrite;
use crate::state::StateStore;
use crate::sys::atomic_file::Sync;
use crate::sys::lane::{Batch, Lane};

/// Whether a save waited for reached the disk, or why not.
pub(super) type SaveAck = oneshot::Sender<Result<(), String>>;

/// For the fast lane: the runtime copy of the state, then the data file.
pub(super) struct FastBatch {
    pub(super) runtime_copy: Option<(StateStore, String)>,
    pub(super) data: Option<DataWrite>,
    /// Check, after writing, that user nut can read the data file.
    pub(super) check_access: bool,
    /// Check that user nut can read this data file (NUT said its driver is
    /// not connected): a user lookup, so here rather than on the loop.
    pub(super) diagnose: Option<PathBuf>,
}

impl Batch for FastBatch {
    fn merge(&mut self, newer: FastBatch) {
        if newer.runtime_copy.is_some() {
            self.runtime_copy = newer.runtime_copy;
        }
        if newer.data.is_some() {
            self.data = newer.data;
        }
        self.check_access |= newer.check_access;
        if newer.diagnose.is_some() {
            self.diagnose = newer.diagnose;
        }
    }
}

/// For the slow lane: the state, and who waits for it.
pub(super) struct SlowBatch {
    pub(super) store: StateStore,
    pub(super) text: String,
    pub(super) acks: Vec<SaveAck>,
}

impl Batch for SlowBatch {
    fn merge(&mut self, newer: SlowBatch) {
        self.store = newer.store;
        self.text = newer.text;
        // The newer state holds what the older one was saved for.
        self.acks.extend(newer.acks);
    }
}

/// What a write did.
#[derive(Debug)]
pub(super) enum DiskEvent {
    /// The data file was written (and what user nut's access check found,
    /// when one was asked for), or why not.
    Data {
        result: Result<(), String>,
        access_problem: Option<String>,
    },
    /// The runtime copy of the state was written, or why not.
    RuntimeCopy(Result<(), String>),
    /// The state was saved with fsync, or why not.
    Saved(Result<(), String>),
    /// Why user nut cannot read the data file at `path`, if it cannot.
    Access {
        path: PathBuf,
        problem: Option<String>,
    },
}

/// The two lanes and the events they send back.
pub(super) struct Disk {
    fast: Lane<FastBatch>,
    slow: Lane<SlowBatch>,
    /// Taken by the main loop; the unit tests read it through `settle`.
    pub(super) events: Option<mpsc::UnboundedReceiver<DiskEvent>>,
}

impl Disk {
    pub(super) fn start() -> io::Result<Disk> {
        let (tx, rx) = mpsc::unbounded_channel();
        let fast_tx = tx.clone();
        let fast = Lane::spawn("fakeups-fast-io", move |b: FastBatch| {
            if let Some((store, text)) = b.runtime_copy {
                let result = store.write(&text, Sync::Volatile);
                let _ = fast_tx.send(DiskEvent::RuntimeCopy(result.map_err(|e| e.to_string())));
            }
            if let Some(data) = b.data {
                let result = data.write().map_err(|e| e.to_string());
                // A user lookup (NSS may be LDAP): here, off the main loop.
                let access_problem = match (&result, b.check_access) {
                    (Ok(()), true) => unreadable_by_nut(&data.path),
                    _ => None,
                };
                let _ = fast_tx.send(DiskEvent::Data {
                    result,
                    access_problem,
                });
            }
            if let Some(path) = b.diagnose {
                let problem = unreadable_by_nut(&path);
                let _ = fast_tx.send(DiskEvent::Access { path, problem });
            }
        })?;
        let slow = Lane::spawn("fakeups-slow-io", move |b: SlowBatch| {
            let result = b
                .store
                .write(&b.text, Sync::Durable)
                .map_err(|e| e.to_string());
            for ack in b.acks {
                let _ = ack.send(result.clone());
            }
            let _ = tx.send(DiskEvent::Saved(result));
        })?;
        Ok(Disk {
            fast,
            slow,
            events: Some(rx),
        })
    }

    pub(super) fn write_fast(&self, batch: FastBatch) {
        self.fast.submit(batch);
    }

    pub(super) fn save(&self, batch: SlowBatch) {
        self.slow.submit(batch);
    }

    /// Waits (blocking) for both lanes, at most `limit` each; whether they
    /// are done. For the stop, and for the unit tests.
    pub(super) fn wait_idle(&self, limit: Duration) -> bool {
        self.fast.wait_idle(limit) & self.slow.wait_idle(limit)
    }
}
