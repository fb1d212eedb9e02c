//! The daemon: rounds of pings feed the power model, whose output goes to the
//! NUT data file, the state file, the logs and systemd; signals reload or
//! stop it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Local, TimeDelta};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::cli::DaemonArgs;
use crate::config::{Config, fmt_duration, fmt_secs};
use crate::control::{
    self, BatteryReport, DaemonInfo, DetectionReport, ErrorKind, NutReport, PauseReport, Response,
    StatusReport, UpsReport,
};
use crate::control_server::{Command, ControlServer};
use crate::logging::{self, Console, Level, TIME_FORMAT};
use crate::nut_data::{self, DataFile, Identity};
use crate::nut_view::{self, Health, HealthEvent, Snapshot};
use crate::power::{Cause, PowerModel, PowerSettings, Status, Transition};
use crate::privileges;
use crate::probe::{Outcome, Prober, Sentinels};
use crate::round_timer::RoundTimer;
use crate::sentinel::SentinelSpec;
use crate::state::{self, PauseRecord, SavedState, StateStore};
use crate::sysexits::{EX_CANTCREAT, EX_CONFIG, EX_NOPERM};
use crate::systemd::Notifier;

/// The messages of the three transitions, as the original project logged them.
pub const MSG_POWER_LOST: &str = "Power lost - switching to OB";
pub const MSG_BATTERY_LOW: &str = "Battery critically low - switching to OB LB";
pub const MSG_POWER_RESTORED: &str = "Power restored";

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
    let log_file = non_empty(&config.log.file);
    if let Err(e) = logging::init(Console::detect(), log_file, config.log.level) {
        logging::error(&e);
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

fn non_empty(path: &Path) -> Option<&Path> {
    (!path.as_os_str().is_empty()).then_some(path)
}

async fn run(config_path: PathBuf, config: Config) -> ExitCode {
    let prober = match Prober::open() {
        Ok(p) => p,
        Err(e) => {
            logging::error(&privileges::no_icmp_socket_message(&e));
            return ExitCode::from(EX_NOPERM);
        }
    };
    let mut daemon = Daemon::new(config_path, config, prober);
    let (commands_tx, commands) = mpsc::channel(16);
    match daemon.bind_control(&daemon.config.control.socket, &commands_tx) {
        Ok(server) => daemon.control = Some(server),
        Err(e) => {
            logging::error(&format!("control socket: {e}"));
            return ExitCode::from(EX_CANTCREAT);
        }
    }
    daemon.run(commands, commands_tx).await
}

/// Everything the main loop owns.
pub struct Daemon {
    config_path: PathBuf,
    config: Config,
    prober: Prober,
    sentinels: Sentinels,
    model: PowerModel,
    data: DataFile,
    store: StateStore,
    notifier: Notifier,
    status_since: DateTime<Local>,
    pause: Option<PauseRecord>,
    last_saved: Option<(Status, u64, Option<PauseRecord>)>,
    ready: bool,
    data_error: Option<String>,
    /// Whether user nut's access to the data file was checked.
    data_checked: bool,
    state_error: Option<String>,
    started: DateTime<Local>,
    pid: u32,
    /// The latest status for the control socket; readers never wait for us.
    reports: watch::Sender<Arc<StatusReport>>,
    control: Option<ControlServer>,
    nut_task: Option<JoinHandle<()>>,
    nut_last: Option<Snapshot>,
    nut_health: Health,
}

impl Daemon {
    fn new(config_path: PathBuf, config: Config, prober: Prober) -> Daemon {
        let settings = PowerSettings::from_config(&config);
        let store = StateStore::new(&config.state_directory);
        let moment = state::Moment::now();
        let now = moment.wall;
        let (model, status_since, pause) = match store.load() {
            Ok(Some(saved)) => {
                let r = state::restore(&saved, &moment, config.battery.runtime);
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
        let mut daemon = Daemon {
            data: DataFile::new(config.nut.data_file.clone(), Identity::of_this_machine()),
            sentinels: Sentinels::new(&config.sentinels),
            store,
            config_path,
            config,
            prober,
            model,
            notifier: Notifier::new(),
            status_since,
            pause: None,
            last_saved: None,
            ready: false,
            data_error: None,
            data_checked: false,
            state_error: None,
            started: now,
            pid: std::process::id(),
            reports: watch::channel(Arc::new(StatusReport::default())).0,
            control: None,
            nut_task: None,
            nut_last: None,
            nut_health: Health::new(Instant::now()),
        };
        if let Some(p) = pause {
            daemon.model.set_paused(Instant::now(), true);
            logging::notice(&format!("pause restored: paused {}", describe_pause(&p)));
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

    async fn run(
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
        let mut rounds = self.round_timer();
        let watchdog_period = Notifier::watchdog_period();
        let mut watchdog =
            tokio::time::interval(watchdog_period.unwrap_or(Duration::from_secs(3600)));
        watchdog.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                due = rounds.tick() => self.round(due).await,
                _ = watchdog.tick(), if watchdog_period.is_some() => self.notifier.watchdog(),
                Some(command) = commands.recv() => self.command(command),
                Ok(()) = nut.changed() => {
                    let snapshot = nut.borrow_and_update().clone();
                    if let Some(snapshot) = snapshot {
                        self.on_nut(snapshot);
                    }
                }
                _ = hup.recv() => {
                    let (retime, new_nut) = self.reload(&commands_tx);
                    if retime {
                        rounds = self.round_timer();
                    }
                    if let Some(rx) = new_nut {
                        nut = rx;
                    }
                }
                _ = term.recv() => break,
                _ = int.recv() => break,
            }
        }
        self.notifier.stopping();
        self.save_state(true);
        if let Some(task) = self.nut_task.take() {
            task.abort();
        }
        self.control = None;
        logging::info("fakeups stopping");
        ExitCode::SUCCESS
    }

    /// Starts reading back from upsd (unless `nut.upsd` is ""); the receiver
    /// gets each look.
    fn start_nut_view(&mut self) -> watch::Receiver<Option<Snapshot>> {
        if let Some(task) = self.nut_task.take() {
            task.abort();
        }
        self.nut_last = None;
        self.nut_health = Health::new(Instant::now());
        let (tx, rx) = watch::channel(None);
        if !self.config.nut.upsd.is_empty() && !self.config.nut.ups.is_empty() {
            self.nut_task = Some(nut_view::spawn(
                self.config.nut.upsd.clone(),
                self.config.nut.ups.clone(),
                tx,
            ));
        }
        rx
    }

    fn on_nut(&mut self, snapshot: Snapshot) {
        let written = self.model.published().status.as_nut();
        let events =
            self.nut_health
                .assess(&snapshot, &self.config.nut.ups, written, Instant::now());
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
        self.nut_last = Some(snapshot);
        self.announce();
    }

    /// Carries out a pause or resume from the control socket, unless the
    /// client stopped waiting for it (it was told it failed).
    fn command(&mut self, command: Command) {
        let closed = match &command {
            Command::Pause { reply, .. } | Command::Resume { reply, .. } => reply.is_closed(),
        };
        if closed {
            logging::warning(
                "a pause or resume came too late: its client had given up; not carried out",
            );
            return;
        }
        let (reply, response) = match command {
            Command::Pause {
                seconds,
                until_resumed,
                reason,
                by,
                reply,
            } => (reply, self.pause(seconds, until_resumed, reason, by)),
            Command::Resume { by, reply } => (reply, self.resume(&by)),
        };
        let _ = reply.send(response);
    }

    fn pause(
        &mut self,
        seconds: Option<u64>,
        until_resumed: bool,
        reason: Option<String>,
        by: String,
    ) -> Response {
        let length = match (seconds, until_resumed) {
            (Some(_), true) => {
                return Response::error(
                    ErrorKind::BadRequest,
                    "a pause has either a length or lasts until resumed, not both",
                );
            }
            (Some(0), false) => {
                return Response::error(ErrorKind::BadRequest, "a pause must last longer than 0s");
            }
            (Some(s), false) => Some(Duration::from_secs(s)),
            (None, false) => Some(self.config.pause.default_duration),
            (None, true) => None,
        };
        if length.is_some_and(|l| l > control::MAX_PAUSE) {
            return Response::error(
                ErrorKind::BadRequest,
                format!(
                    "a pause may last {} at most; use --until-resumed for longer",
                    fmt_duration(control::MAX_PAUSE)
                ),
            );
        }
        let now = Local::now();
        let until = length.and_then(|l| {
            TimeDelta::from_std(l)
                .ok()
                .and_then(|d| now.checked_add_signed(d))
        });
        let record = PauseRecord {
            until,
            by,
            reason: clean_reason(reason),
            since: now,
        };
        if let Some(t) = self.model.set_paused(Instant::now(), true) {
            self.on_transition(t);
        }
        let text = format!("Paused {}", describe_pause(&record));
        let until_text = record.until.map(|u| u.to_rfc3339()).unwrap_or_default();
        logging::event(
            Level::Notice,
            &text,
            &[
                ("FAKEUPS_PAUSE", "paused"),
                ("FAKEUPS_PAUSE_BY", &record.by),
                ("FAKEUPS_PAUSE_UNTIL", &until_text),
            ],
        );
        self.pause = Some(record);
        self.publish();
        Response::Ok {
            message: Some(text),
            status: Box::new(self.report()),
        }
    }

    fn resume(&mut self, by: &str) -> Response {
        if self.pause.is_none() {
            return Response::Ok {
                message: Some("not paused: nothing to resume".into()),
                status: Box::new(self.report()),
            };
        }
        self.pause = None;
        self.model.set_paused(Instant::now(), false);
        let text = format!("Resumed by {by} - watching sentinels again");
        logging::event(
            Level::Info,
            &text,
            &[("FAKEUPS_PAUSE", "resumed"), ("FAKEUPS_PAUSE_BY", by)],
        );
        self.publish();
        Response::Ok {
            message: Some(text),
            status: Box::new(self.report()),
        }
    }

    fn round_timer(&self) -> RoundTimer {
        RoundTimer::new(self.config.detection.interval)
    }

    fn sentinel_names(&self) -> String {
        self.sentinels
            .specs()
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// One round: ping, decide, publish. `started` is the time the round was
    /// due, so rounds are exactly an interval apart for the decision, and the
    /// scheduling delay of a busy machine cannot add a round to a window.
    async fn round(&mut self, started: Instant) {
        let timeout = self.config.detection.timeout;
        let prober = &self.prober;
        let targets = self
            .sentinels
            .targets(timeout, |addr| prober.can_ping(addr))
            .await;
        let first = !self.ready;
        let outcomes = self.prober.ping_all(&targets, timeout).await;
        self.log_sentinel_changes(&outcomes, first);
        self.sentinels.record(&targets, &outcomes, Local::now());
        self.expire_pause(started);
        let silent = self.sentinels.silent_count();
        let total = self.sentinels.len();
        if let Some(t) = self.model.observe(started, silent, total) {
            self.on_transition(t);
        }
        self.publish();
        self.ready_after_round();
        logging::debug(&format!(
            "round done in {:.1} ms: {silent}/{total} sentinel(s) silent",
            started.elapsed().as_secs_f64() * 1000.0
        ));
    }

    /// Logs the sentinels whose answer changed with `outcomes`; called
    /// before they are recorded, so the reports still hold the last round.
    fn log_sentinel_changes(&self, outcomes: &[Outcome], first: bool) {
        for (report, outcome) in self.sentinels.reports().iter().zip(outcomes) {
            let was = report.answered;
            match outcome {
                Outcome::Answered(_) if !was => logging::event(
                    Level::Info,
                    &format!("sentinel {} answers", report.name),
                    &[("FAKEUPS_SENTINEL", &report.name)],
                ),
                Outcome::Silent(why) if was || first => logging::event(
                    Level::Notice,
                    &format!("sentinel {} is silent: {why}", report.name),
                    &[("FAKEUPS_SENTINEL", &report.name)],
                ),
                _ => {}
            }
        }
    }

    fn on_transition(&mut self, t: Transition) {
        self.status_since = Local::now();
        let fields = [
            ("FAKEUPS_STATUS", t.to.as_nut()),
            ("FAKEUPS_PREVIOUS_STATUS", t.from.as_nut()),
        ];
        match t.cause {
            Cause::PowerLost => {
                logging::event(Level::Warning, MSG_POWER_LOST, &fields);
                if t.to == Status::LowBattery {
                    logging::event(Level::Critical, MSG_BATTERY_LOW, &fields);
                }
            }
            Cause::BatteryLow => logging::event(Level::Critical, MSG_BATTERY_LOW, &fields),
            Cause::PowerRestored => logging::event(Level::Info, MSG_POWER_RESTORED, &fields),
            Cause::Paused => logging::event(
                Level::Notice,
                "Paused while on battery - publishing OL with a full battery",
                &fields,
            ),
        }
    }

    fn expire_pause(&mut self, now: Instant) {
        if self.pause.as_ref().is_some_and(|p| p.expired(Local::now())) {
            self.pause = None;
            self.model.set_paused(now, false);
            logging::event(
                Level::Info,
                "Pause expired - watching sentinels again",
                &[("FAKEUPS_PAUSE", "expired")],
            );
        }
    }

    /// Writes the data file (when it changed), saves the state, tells systemd.
    fn publish(&mut self) {
        let published = self.model.published();
        match self.data.publish(&published) {
            Ok(wrote) => {
                if self.data_error.take().is_some() {
                    logging::info(&format!(
                        "NUT data file {} written again",
                        self.data.path().display()
                    ));
                }
                if wrote && !self.data_checked {
                    self.data_checked = true;
                    if let Some(problem) = nut_data::unreadable_by_nut(self.data.path()) {
                        logging::warning(&format!("dummy-ups will not see the status: {problem}"));
                    }
                }
            }
            Err(e) => {
                let text = e.to_string();
                if self.data_error.as_deref() != Some(text.as_str()) {
                    logging::error(&text);
                }
                self.data_error = Some(text);
                self.data.invalidate();
            }
        }
        self.save_state(false);
        self.announce();
    }

    /// READY=1, once: after the first round, when the data file is written.
    fn ready_after_round(&mut self) {
        if self.ready || self.data_error.is_some() {
            return;
        }
        self.ready = true;
        let status = self.status_line();
        self.notifier.ready(&status);
        logging::info(&format!("ready: {status}"));
        self.send_report();
    }

    fn send_report(&self) {
        self.reports.send_replace(Arc::new(self.report()));
    }

    /// The status line to systemd (STATUS=) and the report to status
    /// clients, from one rendering of the line.
    fn announce(&mut self) {
        let status = self.status_line();
        self.notifier.status(&status);
        self.reports
            .send_replace(Arc::new(self.report_with(status)));
    }

    /// Everything `fakeupsctl status` shows.
    pub fn report(&self) -> StatusReport {
        self.report_with(self.status_line())
    }

    /// The same, with the status line already rendered.
    fn report_with(&self, summary: String) -> StatusReport {
        let p = self.model.published();
        let now = Instant::now();
        let d = &self.config.detection;
        let ms = |x: Duration| u64::try_from(x.as_millis()).unwrap_or(u64::MAX);
        let nut = match (&self.config.nut.upsd, &self.nut_last) {
            (upsd, _) if upsd.is_empty() => NutReport::default(),
            (upsd, snap) => NutReport {
                upsd: Some(upsd.clone()),
                checked: snap.as_ref().map(|s| s.checked),
                error: snap.as_ref().and_then(|s| s.error.clone()),
                ups: self
                    .config
                    .nut
                    .ups
                    .iter()
                    .map(|name| {
                        let state = snap
                            .as_ref()
                            .and_then(|s| s.ups.iter().find(|u| &u.name == name));
                        UpsReport {
                            name: name.clone(),
                            status: state.and_then(|u| u.status.clone().ok()),
                            clients: state.map(|u| u.clients.clone()).unwrap_or_default(),
                            problem: self.nut_health.problem(name).map(String::from),
                        }
                    })
                    .collect(),
            },
        };
        StatusReport {
            format: 1,
            daemon: DaemonInfo {
                version: env!("CARGO_PKG_VERSION").to_string(),
                pid: self.pid,
                started: self.started,
                config: self.config_path.clone(),
                data_file: self.config.nut.data_file.clone(),
            },
            status: p.status.as_nut().to_string(),
            status_since: self.status_since,
            summary,
            battery: BatteryReport {
                charge: p.charge,
                runtime: p.runtime,
                charge_low: p.charge_low,
                runtime_low: p.runtime_low,
            },
            detection: DetectionReport {
                quorum: d.quorum.to_string(),
                silent: self.sentinels.silent_count(),
                total: self.sentinels.len(),
                interval_ms: ms(d.interval),
                on_battery_after_ms: ms(d.on_battery_after),
                online_after_ms: ms(d.online_after),
                lost_for_ms: self.model.lost_for(now).map(ms),
                back_for_ms: self.model.back_for(now).map(ms),
            },
            sentinels: self.sentinels.reports().to_vec(),
            pause: self.pause.as_ref().map(|p| PauseReport {
                since: p.since,
                until: p.until,
                by: p.by.clone(),
                reason: p.reason.clone(),
            }),
            nut,
        }
    }

    /// Saves the state when what it holds changed, at every round on battery
    /// (so that a restart measures its down time from the last round), or
    /// always with `force`.
    fn save_state(&mut self, force: bool) {
        let p = self.model.published();
        let unchanged = self
            .last_saved
            .as_ref()
            .is_some_and(|(status, runtime, pause)| {
                *status == p.status && *runtime == p.runtime && *pause == self.pause
            });
        if !force && !p.status.on_battery() && unchanged {
            return;
        }
        let saved = SavedState::new(
            self.model.status(),
            self.model.charge(),
            self.status_since,
            self.pause.clone(),
            &state::Moment::now(),
        );
        match self.store.save(&saved) {
            Ok(()) => {
                self.last_saved = Some((p.status, p.runtime, saved.pause));
                if self.state_error.take().is_some() {
                    logging::info(&format!(
                        "state saved again to {}",
                        self.store.path().display()
                    ));
                }
            }
            Err(e) => {
                let text = format!("cannot save the state: {e}");
                if self.state_error.as_deref() != Some(text.as_str()) {
                    logging::error(&text);
                }
                self.state_error = Some(text);
                self.last_saved = None;
            }
        }
    }

    /// The one-line STATUS= summary.
    pub fn status_line(&self) -> String {
        let p = self.model.published();
        let total = self.sentinels.len();
        let answering = total - self.sentinels.silent_count();
        let battery = format!("battery {}% ({} left)", p.charge, fmt_secs(p.runtime));
        let mut line = if !self.ready && self.data_error.is_none() {
            format!("starting: first round under way; {total} sentinel(s)")
        } else if let Some(pause) = &self.pause {
            format!(
                "PAUSED {}; holding OL; {answering}/{total} sentinels answering",
                describe_pause(pause)
            )
        } else {
            let now = Instant::now();
            let mut s = format!("{}: {answering}/{total} sentinels answering", p.status);
            if let Some(d) = self.model.lost_for(now) {
                s.push_str(&format!(
                    ", quorum {} silent for {}, OB after {}",
                    self.config.detection.quorum,
                    fmt_secs(d.as_secs()),
                    fmt_duration(self.config.detection.on_battery_after)
                ));
            } else if let Some(d) = self.model.back_for(now) {
                s.push_str(&format!(
                    " for {}, OL after {}",
                    fmt_secs(d.as_secs()),
                    fmt_duration(self.config.detection.online_after)
                ));
            }
            format!("{s}; {battery}")
        };
        if let Some(e) = &self.data_error {
            line.push_str(&format!("; {e}"));
        }
        if let Some(e) = &self.state_error {
            line.push_str(&format!("; {e}"));
        }
        if let Some(nut) = self.nut_health.summary() {
            line.push_str(&format!("; {nut}"));
        }
        line
    }

    /// SIGHUP: reads the configuration again; a bad one is refused and the
    /// running one kept. Reopens the log file in any case. Returns whether
    /// the round timer must be rebuilt, and the new NUT view if it restarted.
    fn reload(
        &mut self,
        commands: &mpsc::Sender<Command>,
    ) -> (bool, Option<watch::Receiver<Option<Snapshot>>>) {
        self.notifier.reloading();
        let result = Config::load(&self.config_path);
        let mut retime = false;
        let mut new_nut = None;
        match result {
            Err(e) => {
                logging::error(&format!(
                    "reload refused, keeping the running configuration: {e}"
                ));
                self.reopen_log();
            }
            Ok(new) => {
                retime = new.detection.interval != self.config.detection.interval;
                if new.sentinels != self.config.sentinels {
                    self.sentinels = Sentinels::new(&new.sentinels);
                }
                self.model.set_settings(PowerSettings::from_config(&new));
                if new.nut.data_file != self.config.nut.data_file {
                    self.data.move_to(new.nut.data_file.clone());
                    // The new place gets its own check that user nut can read it.
                    self.data_checked = false;
                }
                if new.state_directory != self.config.state_directory {
                    self.store = StateStore::new(&new.state_directory);
                    self.last_saved = None;
                }
                let nut_changed =
                    new.nut.upsd != self.config.nut.upsd || new.nut.ups != self.config.nut.ups;
                let socket_changed = new.control.socket != self.config.control.socket;
                let old_socket = self.config.control.socket.clone();
                self.config = new;
                if nut_changed {
                    new_nut = Some(self.start_nut_view());
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
        self.notifier.ready(&status);
        (retime, new_nut)
    }

    /// A control socket at `path` that sends commands to `commands` and
    /// answers status from this daemon's reports.
    fn bind_control(
        &self,
        path: &Path,
        commands: &mpsc::Sender<Command>,
    ) -> Result<ControlServer, String> {
        ControlServer::bind(path, commands.clone(), self.reports.subscribe())
    }

    /// Moves the control socket to the configured path; on failure the old
    /// one stays and the configuration keeps naming it.
    fn rebind(&mut self, commands: &mpsc::Sender<Command>, old: &Path) {
        self.control = None;
        match self.bind_control(&self.config.control.socket, commands) {
            Ok(server) => self.control = Some(server),
            Err(e) => {
                logging::error(&format!("control socket: {e}; keeping {}", old.display()));
                self.config.control.socket = old.to_path_buf();
                match self.bind_control(old, commands) {
                    Ok(server) => self.control = Some(server),
                    Err(e) => logging::error(&format!("control socket: {e}")),
                }
            }
        }
    }

    fn reopen_log(&self) {
        if let Err(e) = logging::reopen(non_empty(&self.config.log.file), self.config.log.level) {
            logging::error(&e);
        }
    }
}

/// `by root until 2026-11-21T16:00:00: router firmware update`
pub fn describe_pause(p: &PauseRecord) -> String {
    let until = match p.until {
        Some(t) => format!("until {}", t.format(TIME_FORMAT)),
        None => "until resumed".to_string(),
    };
    match &p.reason {
        Some(r) => format!("by {} {until}: {r}", p.by),
        None => format!("by {} {until}", p.by),
    }
}

/// A reason as it is kept: one line, no control characters, at most
/// `MAX_REASON` characters; empty means none.
fn clean_reason(reason: Option<String>) -> Option<String> {
    let text: String = reason?
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(control::MAX_REASON)
        .collect();
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}
