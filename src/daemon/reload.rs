//! SIGHUP: the configuration read again and applied part by part (the
//! sentinels, the model's timings, the data file, the state directory, the
//! NUT view, the control socket, the log file); a bad one is refused and the
//! running one kept.

use std::path::Path;

use tokio::sync::{mpsc, watch};

use super::{Daemon, non_empty, power_settings};
use crate::config::Config;
use crate::control::server::BindError;
use crate::control::{Command, ControlServer};
use crate::nut::Snapshot;
use crate::probe::{Probe, Sentinels};
use crate::state::StateStore;
use crate::sys::logging;

/// What the loop must rebuild after a reload.
pub(super) struct Reloaded {
    /// The round interval changed.
    pub(super) retime: bool,
    /// The NUT view restarted: its new receiver.
    pub(super) nut_view: Option<watch::Receiver<Option<Snapshot>>>,
}

impl<P: Probe> Daemon<P> {
    /// Reads the configuration again; a bad one is refused and the running
    /// one kept. Reopens the log file in any case.
    pub(super) fn reload(&mut self, commands: &mpsc::Sender<Command>) -> Reloaded {
        self.out.notifier.reloading();
        let mut reloaded = Reloaded {
            retime: false,
            nut_view: None,
        };
        match Config::load(&self.config_path) {
            Err(e) => {
                logging::error(&format!(
                    "reload refused, keeping the running configuration: {e}"
                ));
                self.reopen_log();
            }
            Ok(new) => {
                reloaded.retime = new.detection.interval != self.config.detection.interval;
                if new.sentinels != self.config.sentinels {
                    self.sentinels = Sentinels::new(&new.sentinels);
                    self.addresses = Some(self.sentinels.addresses());
                    // A round under way is about the old sentinels.
                    self.rounds.generation += 1;
                }
                self.model.set_settings(power_settings(&new));
                if new.nut.data_file != self.config.nut.data_file {
                    self.out.data.move_to(new.nut.data_file.clone());
                    // The new place gets its own check that user nut can read it.
                    self.out.data_checked = false;
                }
                if new.state_directory != self.config.state_directory {
                    self.out.store = StateStore::new(&new.state_directory);
                    self.out.saved_key = None;
                }
                let nut_changed =
                    new.nut.upsd != self.config.nut.upsd || new.nut.ups != self.config.nut.ups;
                let socket_changed = new.control.socket != self.config.control.socket;
                let old_socket = self.config.control.socket.clone();
                self.events.apply(&new, Some(&self.config));
                self.wake
                    .wake
                    .set_settings(super::wake::wake_settings(&new));
                self.config = new;
                if nut_changed {
                    reloaded.nut_view = Some(self.start_nut_view());
                }
                if socket_changed {
                    self.rebind(commands, &old_socket);
                }
                self.reopen_log();
                self.warn_missing_families();
                logging::info(&format!(
                    "configuration reloaded from {}: {} sentinel(s) ({}), quorum {}",
                    self.config_path.display(),
                    self.sentinels.len(),
                    self.sentinel_names(),
                    self.config.detection.quorum
                ));
            }
        }
        self.publish();
        let status = self.status_line();
        self.out.notifier.ready(&status);
        reloaded
    }

    /// A control socket at `path` that sends commands to `commands` and
    /// answers status from this daemon's reports.
    pub(super) fn bind_control(
        &self,
        path: &Path,
        commands: &mpsc::Sender<Command>,
    ) -> Result<ControlServer, BindError> {
        ControlServer::bind(path, commands.clone(), self.control.reports.subscribe())
    }

    /// Moves the control socket to the configured path; on failure the old
    /// one stays and the configuration keeps naming it.
    fn rebind(&mut self, commands: &mpsc::Sender<Command>, old: &Path) {
        self.control.server = None;
        match self.bind_control(&self.config.control.socket, commands) {
            Ok(server) => self.control.server = Some(server),
            Err(e) => {
                logging::error(&format!("control socket: {e}; keeping {}", old.display()));
                self.config.control.socket = old.to_path_buf();
                match self.bind_control(old, commands) {
                    Ok(server) => self.control.server = Some(server),
                    Err(e) => logging::error(&format!("control socket: {e}")),
                }
            }
        }
    }

    /// Reopens the log file of the running configuration (on a reload, and
    /// alone on SIGUSR1); false, with the reason logged, when it cannot be.
    pub(super) fn reopen_log(&self) -> bool {
        match logging::reopen(non_empty(&self.config.log.file), self.config.log.level) {
            Ok(()) => true,
            Err(e) => {
                logging::error(&e.to_string());
                false
            }
        }
    }
}
