//! The daemon: rounds of pings feed the power model, whose decisions go to
//! the NUT data file, the state file, the logs and systemd; the control
//! socket, signals and upsd's read-back run beside it.
//!
//! The loop (event_loop.rs) reads top to bottom: tick -> round (round.rs,
//! which runs beside the loop) -> decide (the core) -> publish (publish.rs,
//! whose writes run on threads of their own: disk.rs) -> report
//! (report.rs), with commands (commands.rs), reload (reload.rs) and the NUT
//! view (nut_watch.rs) beside it. The loop itself never waits for a round
//! or a disk. Every part works on `Daemon`, which takes its prober and its
//! clocks as arguments so that unit tests (tests.rs) drive it without
//! sockets or sleeping.

mod clock;
mod commands;
mod disk;
mod emit;
mod event_loop;
mod nut_watch;
mod publish;
mod reload;
mod report;
mod round;
#[cfg(test)]
mod tests;
mod wake;

use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Local};
use tokio::sync::{mpsc, watch};

use crate::cli::DaemonArgs;
use crate::config::Config;
use crate::control::{ControlServer, StatusReport};
use crate::core::{
    PauseRecord, PowerModel, PowerSettings, Saved, Wake, WakeRecord, newest, restore,
};
use crate::events::Outlets;
use crate::nut::{DataFile, Identity};
use crate::probe::{Addresses, Probe, Prober, SentinelSpec, Sentinels};
use crate::state::StateStore;
use crate::sys::atomic_file;
use crate::sys::logging::{self, Console};
use crate::sys::privileges;
use crate::sys::sysexits::{EX_CANTCREAT, EX_CONFIG, EX_NOPERM};

use clock::{Clock, SystemClock};
use disk::Disk;
use nut_watch::NutWatch;
use publish::{Outputs, SaveKey};
use wake::{DrillRun, WakeSide, wake_settings};

/// Entry point of the `fakeups` binary.
pub fn main(args: DaemonArgs) -> ExitCode {
    let config = match Config::load(&args.config) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EX_CONFIG);
        }
    };
    if args.check_config {
        println!("{}: valid", args.config.display());
        return ExitCode::SUCCESS;
    }
    if let Err(e) = logging::init(
        Console::detect(),
        non_empty(&config.log.file),
        config.log.level,
    ) {
        logging::error(&e.to_string());
    }
    match privileges::drop_all_but_net_raw() {
        Ok(report) => logging::info(&report.summary()),
        Err(e) => logging::warning(&format!("cannot drop capabilities: {e}")),
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            logging::error(&format!("cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    // The daemon runs as a spawned task, not as block_on's own future: tasks
    // waking a spawned task stay inside the scheduler, while waking the
    // block_on future writes to the runtime's eventfd (seven system calls
    // a round, measured).
    runtime.block_on(async {
        match tokio::spawn(run(args.config, config)).await {
            Ok(code) => code,
            Err(e) => {
                logging::error(&format!("the main loop failed: {e}"));
                ExitCode::FAILURE
            }
        }
    })
}

/// Where the copy of the state that follows every change is kept: the
/// directory of the control socket, /run/fakeups, a tmpfs that systemd keeps
/// across restarts of the service (RuntimeDirectoryPreserve=restart) and
/// empties when it stops.
/// None when that is the state directory itself.
fn runtime_store(config: &Config) -> Option<StateStore> {
    config
        .control
        .socket
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && *d != config.state_directory)
        .map(StateStore::new)
}

/// Removes the temporary files a crash left beside the files fakeups
/// writes (a kill between writing one and renaming it), at start, before
/// the first write.
fn sweep_leftovers(config: &Config) {
    let state = StateStore::new(&config.state_directory);
    let copy = runtime_store(config);
    let paths = [
        Some(config.nut.data_file.as_path()),
        Some(state.path()),
        copy.as_ref().map(StateStore::path),
    ];
    for path in paths.into_iter().flatten() {
        match atomic_file::remove_leftovers(path) {
            Ok(0) => {}
            Ok(n) => logging::info(&format!(
                "removed {n} temporary file(s) of {} left by a crash",
                path.display()
            )),
            Err(e) => logging::warning(&format!(
                "cannot look for temporary files left beside {}: {e}",
                path.display()
            )),
        }
    }
}

/// How long a round may take: a name never resolved is waited for up to
/// `timeout`, then the echoes for `timeout`; and rounds start an interval
/// apart. The watchdog is withheld after three of these without a round.
fn round_period(config: &Config) -> Duration {
    let d = &config.detection;
    d.interval.max(d.timeout * 2 + Duration::from_secs(1))
}

/// A path from the configuration, or None for "" (off).
fn non_empty(path: &Path) -> Option<&Path> {
    (!path.as_os_str().is_empty()).then_some(path)
}

async fn run(config_path: PathBuf, config: Config) -> ExitCode {
    let prober = match Prober::open() {
        Ok(p) => p,
        Err(e) => {
            logging::error(&privileges::no_icmp_socket_message(&e.to_string()));
            return ExitCode::from(EX_NOPERM);
        }
    };
    let mut daemon = match Daemon::new(config_path, config, prober, Arc::new(SystemClock)) {
        Ok(daemon) => daemon,
        Err(e) => {
            logging::error(&format!("cannot start the threads that write files: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let (commands_tx, commands) = mpsc::channel(16);
    match daemon.bind_control(&daemon.config.control.socket, &commands_tx) {
        Ok(server) => daemon.control.server = Some(server),
        Err(e) => {
            logging::error(&format!("control socket: {e}"));
            return ExitCode::from(EX_CANTCREAT);
        }
    }
    daemon.run(commands, commands_tx).await
}

/// What the daemon decides with, translated from the configuration.
fn power_settings(config: &Config) -> PowerSettings {
    PowerSettings {
        quorum: config.detection.quorum,
        on_battery_after: config.detection.on_battery_after,
        online_after: config.detection.online_after,
        runtime: config.battery.runtime,
        low_runtime: config.battery.low_runtime,
        recharge_time: config.battery.recharge_time,
    }
}

/// The control socket's side of the daemon: the server and the latest
/// report, which status readers take without waiting for the loop.
struct ControlSide {
    server: Option<ControlServer>,
    reports: watch::Sender<Arc<StatusReport>>,
    started: DateTime<Local>,
    pid: u32,
}

/// Whether the rounds go on, for the watchdog.
struct Rounds {
    /// When the last round finished (or the daemon started).
    last_done: Instant,
    /// Bumped when the sentinels change: a round of the old ones is dropped.
    generation: u64,
    /// The watchdog is withheld: no round finished for too long.
    withheld: bool,
}

/// Everything the main loop owns.
pub(crate) struct Daemon<P> {
    config_path: PathBuf,
    config: Config,
    clock: Arc<dyn Clock>,
    /// The prober and the addresses, away (None) while a round runs.
    prober: Option<P>,
    addresses: Option<Addresses>,
    rounds: Rounds,
    sentinels: Sentinels,
    /// The decision: the model, since when its status holds, the pause.
    model: PowerModel,
    status_since: DateTime<Local>,
    pause: Option<PauseRecord>,
    /// Where decisions go: the data file, the state file, systemd.
    out: Outputs,
    nut: NutWatch,
    control: ControlSide,
    /// Where events go besides the logs: the hook, Sentry.
    events: Outlets,
    /// The machines to wake after an outage.
    wake: WakeSide,
    /// The drill under way.
    drill: Option<DrillRun>,
    /// FAKEUPS_TEST_PANIC is set: the first round panics, so that a test
    /// can see the panic reach Sentry. Undocumented: only tests pull it.
    panic_for_test: bool,
}

impl<P: Probe> Daemon<P> {
    /// A daemon that goes on from the newest saved state, if there is one:
    /// the state directory's, or the runtime copy beside the control socket.
    fn new(
        config_path: PathBuf,
        config: Config,
        prober: P,
        clock: Arc<dyn Clock>,
    ) -> io::Result<Daemon<P>> {
        let settings = power_settings(&config);
        let store = StateStore::new(&config.state_directory);
        let moment = clock.moment();
        let instant = clock.now();
        let now = moment.wall;
        let mut saves: Vec<Saved> = vec![];
        let mut records: Vec<Option<WakeRecord>> = vec![];
        let mut load_error = None;
        // What the state directory holds: not saved again while unchanged.
        let mut on_disk = None;
        for (n, store) in [Some(store.clone()), runtime_store(&config)]
            .into_iter()
            .enumerate()
        {
            match store.map(|s| s.load()) {
                Some(Ok(Some(saved))) => {
                    records.push(saved.wake.clone());
                    let saved = saved.saved();
                    if n == 0 {
                        on_disk = Some(SaveKey::of(
                            saved.status,
                            &saved.pause,
                            saved.charge,
                            saved.drill,
                            0,
                        ));
                    }
                    saves.push(saved);
                }
                Some(Err(e)) => load_error = Some(e),
                Some(Ok(None)) | None => {}
            }
        }
        let chosen = newest(&saves, &moment);
        let record = chosen
            .and_then(|c| saves.iter().position(|s| std::ptr::eq(s, c)))
            .and_then(|i| records.get(i).cloned().flatten());
        let drill_ended = chosen.is_some_and(|s| s.drill && s.status.on_battery());
        let found = match (chosen, load_error) {
            (Some(saved), Some(e)) => {
                logging::warning(&format!("{e}; going on from the other copy"));
                Ok(Some(saved.clone()))
            }
            (Some(saved), None) => Ok(Some(saved.clone())),
            (None, Some(e)) => Err(e),
            (None, None) => Ok(None),
        };
        let (model, status_since, pause) = match found {
            Ok(Some(saved)) => {
                let r = restore(&saved, &moment, config.battery.runtime);
                for note in &r.notes {
                    logging::info(note);
                }
                (
                    PowerModel::restore(settings, r.status, r.charge),
                    r.status_since,
                    r.pause,
                )
            }
            Ok(None) => (PowerModel::new(settings), now, None),
            Err(e) => {
                logging::warning(&format!("{e}; starting on mains with a full battery"));
                (PowerModel::new(settings), now, None)
            }
        };
        sweep_leftovers(&config);
        let data = DataFile::new(config.nut.data_file.clone(), Identity::of_this_machine());
        let sentinels = Sentinels::new(&config.sentinels);
        let events = Outlets::start(&config);
        let wake = match record {
            Some(record) => Wake::restore(wake_settings(&config), record, instant, &moment),
            None => Wake::new(wake_settings(&config)),
        };
        let mut daemon = Daemon {
            events,
            wake: WakeSide::new(wake),
            drill: None,
            panic_for_test: std::env::var_os("FAKEUPS_TEST_PANIC").is_some(),
            addresses: Some(sentinels.addresses()),
            sentinels,
            rounds: Rounds {
                last_done: clock.now(),
                generation: 0,
                withheld: false,
            },
            out: Outputs::new(data, store, Disk::start()?, on_disk),
            nut: NutWatch::new(clock.now()),
            control: ControlSide {
                server: None,
                reports: watch::channel(Arc::new(StatusReport::default())).0,
                started: now,
                pid: std::process::id(),
            },
            config_path,
            config,
            clock,
            prober: Some(prober),
            model,
            status_since,
            pause: None,
        };
        if let Some(p) = pause {
            daemon.model.set_paused(daemon.clock.now(), true);
            logging::notice(&format!("pause restored: paused {}", p.describe()));
            daemon.pause = Some(p);
        }
        if drill_ended {
            let status = daemon.model.published().status.as_nut();
            daemon.log_event(
                crate::events::EventKind::DrillEnded,
                crate::sys::logging::Level::Notice,
                "Drill ended: fakeups restarted during it",
                status,
                status,
            );
            daemon.wake.serial += 1;
        }
        let n = daemon.wake.wake.targets().len();
        if n > 0 && daemon.wake.wake.outage().is_some() {
            logging::info(&format!(
                "wake restored: {n} machine(s) of the last outage to wake once power is back"
            ));
        }
        daemon.warn_missing_families();
        daemon.send_report();
        Ok(daemon)
    }

    fn warn_missing_families(&self) {
        let Some(prober) = &self.prober else { return };
        for spec in self.sentinels.specs() {
            let v6 = match spec {
                SentinelSpec::Address { addr, .. } => addr.is_ipv6(),
                _ => continue,
            };
            if let Some(e) = prober.family_error(v6) {
                logging::warning(&format!(
                    "sentinel {spec} will always be silent: no ICMP{} socket ({e})",
                    if v6 { "v6" } else { "" }
                ));
            }
        }
    }

    fn sentinel_names(&self) -> String {
        self.sentinels
            .specs()
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}
