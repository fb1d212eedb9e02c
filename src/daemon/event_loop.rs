//! The main loop: each tick runs a round; beside it the watchdog, the
//! commands of the control socket, upsd's read-back, and the signals (SIGHUP
//! reloads, SIGTERM and SIGINT stop).

use std::process::ExitCode;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use super::Daemon;
use crate::control::Command;
use crate::format::fmt_duration;
use crate::probe::Probe;
use crate::sys::logging;
use crate::sys::notify::Notifier;
use crate::sys::round_timer::RoundTimer;

impl<P: Probe> Daemon<P> {
    pub(super) async fn run(
        &mut self,
        mut commands: mpsc::Receiver<Command>,
        commands_tx: mpsc::Sender<Command>,
    ) -> ExitCode {
        let handlers = (|| {
            Ok::<_, std::io::Error>((
                signal(SignalKind::hangup())?,
                signal(SignalKind::terminate())?,
                signal(SignalKind::interrupt())?,
            ))
        })();
        let (mut hup, mut term, mut int) = match handlers {
            Ok(h) => h,
            Err(e) => {
                logging::error(&format!(
                    "cannot install the handlers of SIGHUP, SIGTERM and SIGINT: {e}"
                ));
                return ExitCode::FAILURE;
            }
        };
        logging::info(&format!(
            "fakeups {} started: {} sentinel(s) ({}), quorum {}, every {}",
            env!("CARGO_PKG_VERSION"),
            self.sentinels.len(),
            self.sentinel_names(),
            self.config.detection.quorum,
            fmt_duration(self.config.detection.interval)
        ));
        self.send_report();
        let mut nut = self.start_nut_view();
        let mut rounds = RoundTimer::new(self.config.detection.interval);
        let watchdog_period = Notifier::watchdog_period();
        let mut watchdog =
            tokio::time::interval(watchdog_period.unwrap_or(Duration::from_secs(3600)));
        watchdog.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                due = rounds.tick() => self.round(due).await,
                _ = watchdog.tick(), if watchdog_period.is_some() => self.out.notifier.watchdog(),
                Some(command) = commands.recv() => self.command(command),
                Ok(()) = nut.changed() => {
                    let snapshot = nut.borrow_and_update().clone();
                    if let Some(snapshot) = snapshot {
                        self.on_nut(snapshot);
                    }
                }
                _ = hup.recv() => {
                    let reloaded = self.reload(&commands_tx);
                    if reloaded.retime {
                        rounds = RoundTimer::new(self.config.detection.interval);
                    }
                    if let Some(rx) = reloaded.nut_view {
                        nut = rx;
                    }
                }
                _ = term.recv() => break,
                _ = int.recv() => break,
            }
        }
        self.stop();
        ExitCode::SUCCESS
    }

    /// A clean stop: STOPPING=1, the state saved, the socket removed.
    fn stop(&mut self) {
        self.out.notifier.stopping();
        self.save_state(true);
        self.nut.stop();
        self.control.server = None;
        logging::info("fakeups stopping");
    }
}
