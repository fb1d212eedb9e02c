//! The main loop: each tick starts a round, which runs beside the loop
//! while it serves the watchdog, the commands of the control socket, what
//! the writers did, upsd's read-back, and the signals (SIGHUP reloads,
//! SIGUSR1 reopens the log file, SIGTERM and SIGINT stop). Nothing here
//! waits for a round or a disk.

use std::process::ExitCode;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use super::round::Running;
use super::wake::{step_done, step_due};
use super::{Daemon, round_period};
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
                signal(SignalKind::user_defined1())?,
            ))
        })();
        let (mut hup, mut term, mut int, mut usr1) = match handlers {
            Ok(h) => h,
            Err(e) => {
                logging::error(&format!(
                    "cannot install the handlers of SIGHUP, SIGTERM, SIGINT and SIGUSR1: {e}"
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
        let mut disk = match self.out.disk.events.take() {
            Some(rx) => rx,
            None => {
                logging::error("the writers' events are already taken");
                return ExitCode::FAILURE;
            }
        };
        let mut running: Option<Running<P>> = None;
        let outlets = self.events.changed();
        let mut rounds = RoundTimer::new(self.config.detection.interval);
        let watchdog_period = Notifier::watchdog_period();
        let mut watchdog =
            tokio::time::interval(watchdog_period.unwrap_or(Duration::from_secs(3600)));
        watchdog.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                due = rounds.tick(), if running.is_none() => running = self.start_round(due),
                done = finish(&mut running) => {
                    running = None;
                    self.finish_round(done);
                }
                Some(event) = disk.recv() => self.on_disk(event),
                () = step_due(self.wake_due()) => self.start_wake_step(),
                results = step_done(self.wake_step_mut()) => self.finish_wake_step(results),
                // A hook ran or failed, Sentry answered or not: for status.
                () = outlets.notified() => self.send_report(),
                _ = watchdog.tick(), if watchdog_period.is_some() => self.watchdog(),
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
                // logrotate's postrotate: the log file only, no reload.
                _ = usr1.recv() => {
                    if self.reopen_log() {
                        logging::info("log file reopened on SIGUSR1");
                    }
                }
                () = log_retry(logging::file_retry_at()) => logging::retry_file(),
                _ = term.recv() => break,
                _ = int.recv() => break,
            }
        }
        self.stop();
        ExitCode::SUCCESS
    }

    /// WATCHDOG=1, unless no round has finished for three round periods:
    /// then the rounds are stuck, and systemd restarts fakeups. A long round
    /// (a silent sentinel, a long timeout) is not a stuck loop.
    pub(super) fn watchdog(&mut self) {
        let since = self
            .clock
            .now()
            .saturating_duration_since(self.rounds.last_done);
        let limit = round_period(&self.config) * 3;
        if since <= limit {
            if self.rounds.withheld {
                self.rounds.withheld = false;
                logging::info("rounds finish again: watchdog resumed");
            }
            self.out.notifier.watchdog();
        } else if !self.rounds.withheld {
            self.rounds.withheld = true;
            logging::error(&format!(
                "no round has finished for {} (limit {}): withholding the watchdog",
                fmt_duration(since),
                fmt_duration(limit)
            ));
        }
    }

    /// A clean stop: STOPPING=1, the socket removed, the state saved.
    fn stop(&mut self) {
        self.out.notifier.stopping();
        self.nut.stop();
        self.wake.stop();
        self.control.server = None;
        self.save_and_wait();
        logging::info("fakeups stopping");
        self.events.stop();
    }
}

/// When the log file, failing (a full disk), is due to be tried again;
/// never while it is written.
async fn log_retry(at: Option<std::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// The end of the round under way; never, when there is none.
async fn finish<P>(running: &mut Option<Running<P>>) -> super::round::RoundDone<P> {
    match running {
        Some(round) => round.await,
        None => std::future::pending().await,
    }
}
