//! The daemon: rounds of pings feed the power model, whose decisions go to
//! the NUT data file, the state file, the logs and systemd; the control
//! socket, signals and upsd's read-back run beside it.
//!
//! The loop (event_loop.rs) reads top to bottom: tick -> round (round.rs)
//! -> decide (the core) -> publish (publish.rs) -> report (report.rs), with
//! commands (commands.rs), reload (reload.rs) and the NUT view
//! (nut_watch.rs) beside it. Every part works on `Daemon`, which takes its
//! prober and its clocks as arguments so that unit tests (tests.rs) drive it
//! without sockets or sleeping.

mod clock;
mod commands;
mod event_loop;
mod nut_watch;
mod publish;
mod reload;
mod report;
mod round;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use chrono::{DateTime, Local};
use tokio::sync::{mpsc, watch};

use crate::cli::DaemonArgs;
use crate::config::Config;
use crate::control::{ControlServer, StatusReport};
use crate::core::{PauseRecord, PowerModel, PowerSettings, restore};
use crate::nut::{DataFile, Identity};
use crate::probe::{Probe, Prober, SentinelSpec, Sentinels};
use crate::state::StateStore;
use crate::sys::logging::{self, Console};
use crate::sys::privileges;
use crate::sys::sysexits::{EX_CANTCREAT, EX_CONFIG, EX_NOPERM};

use clock::{Clock, SystemClock};
use nut_watch::NutWatch;
use publish::Outputs;

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
    let mut daemon = Daemon::new(config_path, config, prober, Arc::new(SystemClock));
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

/// Everything the main loop owns.
pub(crate) struct Daemon<P> {
    config_path: PathBuf,
    config: Config,
    clock: Arc<dyn Clock>,
    prober: P,
    sentinels: Sentinels,
    /// The decision: the model, since when its status holds, the pause.
    model: PowerModel,
    status_since: DateTime<Local>,
    pause: Option<PauseRecord>,
    /// Where decisions go: the data file, the state file, systemd.
    out: Outputs,
    nut: NutWatch,
    control: ControlSide,
}

impl<P: Probe> Daemon<P> {
    /// A daemon that goes on from the saved state, if there is one.
    fn new(config_path: PathBuf, config: Config, prober: P, clock: Arc<dyn Clock>) -> Daemon<P> {
        let settings = power_settings(&config);
        let store = StateStore::new(&config.state_directory);
        let moment = clock.moment();
        let now = moment.wall;
        let (model, status_since, pause) = match store.load() {
            Ok(Some(saved)) => {
                let r = restore(&saved.saved(), &moment, config.battery.runtime);
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
        let data = DataFile::new(config.nut.data_file.clone(), Identity::of_this_machine());
        let mut daemon = Daemon {
            sentinels: Sentinels::new(&config.sentinels),
            out: Outputs::new(data, store),
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
            prober,
            model,
            status_since,
            pause: None,
        };
        if let Some(p) = pause {
            daemon.model.set_paused(daemon.clock.now(), true);
            logging::notice(&format!("pause restored: paused {}", p.describe()));
            daemon.pause = Some(p);
        }
        daemon.warn_missing_families();
        daemon.send_report();
        daemon
    }

    fn warn_missing_families(&self) {
        for spec in self.sentinels.specs() {
            let v6 = match spec {
                SentinelSpec::Address { addr, .. } => addr.is_ipv6(),
                _ => continue,
            };
            if let Some(e) = self.prober.family_error(v6) {
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
