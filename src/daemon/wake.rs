//! Wake-on-LAN and the drill, as the loop drives them: the targets of an
//! outage gathered from upsd's clients, the wait for power to be back, the
//! steps (pings and packets run beside the loop: crate::wake), what each
//! step changed logged and handed to the outlets; `fakeupsctl wake` and
//! `fakeupsctl drill`.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use chrono::{DateTime, Local};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::Daemon;
use crate::config::Config;
use crate::control::report::{DrillReport, OutageReport, WakeReport, WakeTargetReport};
use crate::control::{ErrorKind, Response};
use crate::core::wake::{Change, HostSpec, JobResult, MacFrom, TargetState};
use crate::core::{Mac, Wake, WakeSettings};
use crate::events::EventKind;
use crate::format::{TIME_FORMAT, fmt_duration, fmt_secs};
use crate::probe::Probe;
use crate::sys::logging::{self, Level};

/// How long the pings of a step wait for an answer.
const STEP_PING_TIMEOUT: Duration = Duration::from_secs(1);
/// The longest drill.
const MAX_DRILL: Duration = Duration::from_secs(24 * 3600);

/// What the wake's timings are, from the configuration.
pub(super) fn wake_settings(config: &Config) -> WakeSettings {
    let w = &config.wake;
    WakeSettings {
        nut_clients: w.nut_clients,
        after: w.after,
        retry_every: w.retry_every,
        give_up_after: w.give_up_after,
    }
}

fn hosts(config: &Config) -> Vec<HostSpec> {
    config
        .wake
        .host
        .iter()
        .map(|h| HostSpec {
            name: h.name.clone(),
            mac: h.mac,
            address: h.address,
            interface: h.interface.clone(),
        })
        .collect()
}

/// A drill under way.
pub(super) struct DrillRun {
    pub(super) since: DateTime<Local>,
    pub(super) until: DateTime<Local>,
    pub(super) ends: Instant,
    pub(super) by: String,
}

/// The wake and what the loop keeps for it.
pub(super) struct WakeSide {
    pub(super) wake: Wake,
    /// The MAC of each NUT client seen, from the neighbour table while it
    /// was connected.
    macs: HashMap<IpAddr, Mac>,
    /// The step under way: its pings and packets.
    step: Option<JoinHandle<Vec<(String, JobResult)>>>,
    /// Bumped when the state file must be saved for the wake (a step that
    /// sent packets, the end of the wake): on mains, at most once a step.
    pub(super) serial: u64,
    /// The runtime copy must be written for the wake.
    pub(super) dirty: bool,
}

impl WakeSide {
    pub(super) fn new(wake: Wake) -> WakeSide {
        WakeSide {
            wake,
            macs: HashMap::new(),
            step: None,
            serial: 0,
            dirty: false,
        }
    }

    pub(super) fn stop(&mut self) {
        if let Some(step) = self.step.take() {
            step.abort();
        }
    }
}

/// The step under way's end; never, when there is none.
pub(super) async fn step_done(
    step: &mut Option<JoinHandle<Vec<(String, JobResult)>>>,
) -> Vec<(String, JobResult)> {
    match step {
        Some(handle) => {
            let result = handle.await;
            *step = None;
            result.unwrap_or_default()
        }
        None => std::future::pending().await,
    }
}

/// The moment a step is due; never, when none is.
pub(super) async fn step_due(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

impl<P: Probe> Daemon<P> {
    /// When the next step is due, unless one runs.
    pub(super) fn wake_due(&self) -> Option<Instant> {
        if self.wake.step.is_some() {
            return None;
        }
        self.wake.wake.due()
    }

    pub(super) fn wake_step_mut(&mut self) -> &mut Option<JoinHandle<Vec<(String, JobResult)>>> {
        &mut self.wake.step
    }

    /// The status went on battery: an outage starts, with the clients
    /// logged in now.
    pub(super) fn begin_outage(&mut self, drill: bool) {
        // A step of the last wake still under way is not this outage's.
        self.wake.stop();
        let hosts = hosts(&self.config);
        self.wake
            .wake
            .begin_outage(self.clock.wall(), drill, &hosts);
        let clients = self.foreign_clients();
        let changes = self.wake.wake.clients_seen(self.clock.now(), &clients);
        self.wake_changes(changes);
        self.wake.dirty = true;
    }

    /// The clients of the last look at upsd, with the MACs seen for them.
    fn foreign_clients(&self) -> Vec<(IpAddr, Option<Mac>)> {
        let Some(snap) = &self.nut.last else {
            return vec![];
        };
        snap.foreign
            .iter()
            .map(|(a, mac)| (*a, mac.or_else(|| self.wake.macs.get(a).copied())))
            .collect()
    }

    /// A new look at upsd: MACs remembered, clients added to the outage,
    /// targets logged in again are up.
    pub(super) fn wake_on_nut(&mut self) {
        if let Some(snap) = &self.nut.last {
            for (a, mac) in &snap.foreign {
                if let Some(mac) = mac {
                    self.wake.macs.insert(*a, *mac);
                }
            }
            if snap.error.is_some() {
                return;
            }
        }
        let clients = self.foreign_clients();
        let changes = self.wake.wake.clients_seen(self.clock.now(), &clients);
        self.wake_changes(changes);
    }

    /// After each round: power back or not, for the wait before the
    /// first packet.
    pub(super) fn wake_power(&mut self) {
        let now = self.clock.now();
        let on_battery = self.model.status().on_battery();
        let mains = !on_battery
            && self.pause.is_none()
            && self.drill.is_none()
            && !self.model.drill()
            && self.model.lost_for(now).is_none();
        let before = (self.wake.wake.due(), self.wake.wake.outage().is_some());
        self.wake.wake.power(now, on_battery, mains);
        if (self.wake.wake.due(), self.wake.wake.outage().is_some()) != before {
            self.wake.dirty = true;
        }
    }

    /// The step that is due: its decisions logged, its pings and packets
    /// started beside the loop.
    pub(super) fn start_wake_step(&mut self) {
        let now = self.clock.now();
        // The clients the view parsed (this machine's own are never targets).
        let logged_in: HashSet<IpAddr> = match &self.nut.last {
            Some(snap) if snap.error.is_none() => snap.foreign.iter().map(|(a, _)| *a).collect(),
            _ => HashSet::new(),
        };
        let (jobs, changes) = self.wake.wake.step(now, &logged_in);
        self.wake_changes(changes);
        if !jobs.is_empty() {
            self.wake.step = Some(tokio::spawn(crate::wake::run(jobs, STEP_PING_TIMEOUT)));
        }
        self.wake.dirty = true;
        self.publish();
    }

    /// The step's pings and packets are done.
    pub(super) fn finish_wake_step(&mut self, results: Vec<(String, JobResult)>) {
        let changes = self.wake.wake.step_done(self.clock.now(), &results);
        if changes.iter().any(|c| matches!(c, Change::Sent { .. })) {
            // One save a step, with what it sent.
            self.wake.serial += 1;
        }
        self.wake_changes(changes);
        self.wake.dirty = true;
        self.publish();
    }

    /// Logs each change and hands it to the outlets.
    fn wake_changes(&mut self, changes: Vec<Change>) {
        let status = self.model.published().status.as_nut();
        for change in changes {
            self.wake.dirty = true;
            let (kind, level, message) = match change {
                Change::Added { name, mac } => {
                    let mac = match mac {
                        Some(m) => format!("MAC {m} from the neighbour table"),
                        None => "no MAC known (not in the IPv4 neighbour table)".into(),
                    };
                    logging::info(&format!(
                        "wake: NUT client {name} is logged in during the outage ({mac}): it is \
                         woken after the outage if it goes down"
                    ));
                    continue;
                }
                Change::Up {
                    name,
                    after: Some(after),
                } => (
                    EventKind::Woken,
                    Level::Info,
                    format!(
                        "wake: {name} is up again, {} after the first packet",
                        fmt_secs(after.as_secs())
                    ),
                ),
                Change::Up { name, after: None } => {
                    logging::info(&format!("wake: {name} stayed up: no packet for it"));
                    continue;
                }
                Change::GaveUp { name, sent } => (
                    EventKind::WakeGaveUp,
                    Level::Warning,
                    format!(
                        "wake: giving up on {name}: not up {} after the first packet \
                         ({sent} packet(s) sent)",
                        fmt_duration(self.config.wake.give_up_after)
                    ),
                ),
                Change::NoMac { name } => (
                    EventKind::WakeGaveUp,
                    Level::Warning,
                    format!(
                        "wake: cannot wake {name}: it went down and no MAC is known for it \
                         (add it as a [[wake.host]] with its MAC)"
                    ),
                ),
                Change::Sent {
                    name,
                    mac,
                    to,
                    count,
                } => (
                    EventKind::WakeSent,
                    Level::Notice,
                    format!("wake: magic packet {count} for {name} ({mac}) sent to {to}"),
                ),
                Change::SendFailed { name, error } => {
                    logging::warning(&format!(
                        "wake: cannot send the magic packet for {name}: {error}"
                    ));
                    continue;
                }
                Change::Finished { up, gave_up } => {
                    logging::info(&format!(
                        "wake: done: {up} machine(s) up, {gave_up} not woken"
                    ));
                    self.wake.serial += 1;
                    continue;
                }
            };
            self.log_event(kind, level, &message, status, status);
        }
    }

    /// `fakeupsctl wake TARGET`: a magic packet now, for a target of the
    /// wake, a `[[wake.host]]` (by name or MAC), or any MAC in the
    /// neighbour table. Answered once it is sent.
    pub(super) fn wake_now(
        &mut self,
        target: String,
        by: String,
        reply: oneshot::Sender<Response>,
    ) {
        let as_mac = target.parse::<Mac>().ok();
        if let Some(t) = self
            .wake
            .wake
            .targets()
            .iter()
            .find(|t| t.name == target && t.mac.is_none())
        {
            let _ = reply.send(Response::error(
                ErrorKind::Failed,
                format!(
                    "no MAC is known for {} (not in the IPv4 neighbour table while it was \
                     connected): add it as a [[wake.host]] with its MAC",
                    t.name
                ),
            ));
            return;
        }
        let found = self
            .wake
            .wake
            .targets()
            .iter()
            .find(|t| t.name == target || (as_mac.is_some() && t.mac == as_mac))
            .and_then(|t| {
                t.mac
                    .map(|m| (t.name.clone(), m, t.address, t.interface.clone()))
            })
            .or_else(|| {
                self.config
                    .wake
                    .host
                    .iter()
                    .find(|h| h.name == target || Some(h.mac) == as_mac)
                    .map(|h| (h.name.clone(), h.mac, h.address, h.interface.clone()))
            })
            .or_else(|| as_mac.map(|m| (m.to_string(), m, None, None)));
        let Some((name, mac, address, interface)) = found else {
            let _ = reply.send(Response::error(
                ErrorKind::BadRequest,
                format!(
                    "{target:?} is neither a machine fakeups knows (a [[wake.host]] name, a NUT \
                     client of the last outage) nor a MAC address"
                ),
            ));
            return;
        };
        let status = self.report();
        tokio::spawn(async move {
            let sent = tokio::task::spawn_blocking(move || {
                crate::wake::wake(mac, address, interface.as_deref())
            })
            .await;
            let response = match sent {
                Ok(Ok(to)) => {
                    let message = format!("wake: magic packet for {name} ({mac}) sent to {to}");
                    logging::event(
                        Level::Notice,
                        &format!("{message}, as {by} asked"),
                        &[("FAKEUPS_WAKE_BY", &by)],
                    );
                    Response::Ok {
                        message: Some(message),
                        status: Box::new(status),
                    }
                }
                Ok(Err(e)) => Response::error(
                    ErrorKind::Failed,
                    format!("cannot wake {name} ({mac}): {e}"),
                ),
                Err(e) => Response::error(ErrorKind::Failed, e.to_string()),
            };
            let _ = reply.send(response);
        });
    }

    /// `fakeupsctl drill`: a simulated outage through the whole chain, or
    /// its end.
    pub(super) fn drill_command(
        &mut self,
        seconds: Option<u64>,
        stop: bool,
        by: String,
    ) -> Result<String, Response> {
        if stop {
            if self.drill.is_none() {
                return Err(Response::error(
                    ErrorKind::BadRequest,
                    "no drill is under way",
                ));
            }
            self.end_drill(&format!("stopped by {by}"));
            return Ok("drill stopped: OL".into());
        }
        let refuse = |m: String| Err(Response::error(ErrorKind::Failed, m));
        if let Some(d) = &self.drill {
            return refuse(format!(
                "a drill by {} is under way until {}; `fakeupsctl drill --stop` ends it",
                d.by,
                d.until.format(TIME_FORMAT)
            ));
        }
        if self.pause.is_some() {
            return refuse(
                "fakeups is paused: no drill while paused (fakeupsctl resume first)".into(),
            );
        }
        if self.model.status().on_battery() {
            return refuse(format!(
                "the status is {}: a real outage is under way",
                self.model.status()
            ));
        }
        let length = match seconds.map(Duration::from_secs) {
            Some(d) if !d.is_zero() && d <= MAX_DRILL => d,
            Some(_) => {
                return Err(Response::error(
                    ErrorKind::BadRequest,
                    format!("a drill lasts from 1s to {}", fmt_duration(MAX_DRILL)),
                ));
            }
            None => {
                return Err(Response::error(
                    ErrorKind::BadRequest,
                    "a drill needs its length (--for DURATION)",
                ));
            }
        };
        let now = self.clock.now();
        let wall = self.clock.wall();
        let until = wall + chrono::TimeDelta::from_std(length).unwrap_or_default();
        self.drill = Some(DrillRun {
            since: wall,
            until,
            ends: now + length,
            by: by.clone(),
        });
        let message = format!(
            "Drill started by {by}: a simulated outage until {} (OB now, OB LB when the battery \
             model says, then OL)",
            until.format(TIME_FORMAT)
        );
        let before = self.model.published().status.as_nut();
        self.log_event(
            EventKind::DrillStarted,
            Level::Notice,
            &message,
            before,
            before,
        );
        if let Some(t) = self.model.start_drill(now) {
            self.on_transition(t);
        }
        Ok(message)
    }

    /// Ends the drill when its time is up (at each round).
    pub(super) fn expire_drill(&mut self, now: Instant) {
        if self.drill.as_ref().is_some_and(|d| now >= d.ends) {
            self.end_drill("its time is up");
        }
    }

    /// The drill ends: OL, logged as the drill's, then the wake as after a
    /// real outage.
    pub(super) fn end_drill(&mut self, why: &str) {
        if let Some(t) = self.model.end_drill(self.clock.now()) {
            self.on_transition(t);
        }
        let status = self.model.published().status.as_nut();
        self.log_event(
            EventKind::DrillEnded,
            Level::Notice,
            &format!("Drill ended: {why}"),
            status,
            status,
        );
        self.drill = None;
    }

    pub(super) fn drill_report(&self) -> Option<DrillReport> {
        self.drill.as_ref().map(|d| DrillReport {
            since: d.since,
            until: d.until,
            by: d.by.clone(),
        })
    }

    pub(super) fn wake_report(&self) -> WakeReport {
        let w = &self.wake.wake;
        let now = self.clock.now();
        let wall = self.clock.wall();
        WakeReport {
            outage: w.outage().map(|o| OutageReport {
                since: o.since,
                drill: o.drill,
                on_battery: o.on_battery,
            }),
            first_packet_at: w.first_packet_at().map(|at| {
                wall + chrono::TimeDelta::from_std(at.saturating_duration_since(now))
                    .unwrap_or_default()
            }),
            waking: w.waking().is_some(),
            targets: w
                .targets()
                .iter()
                .map(|t| WakeTargetReport {
                    name: t.name.clone(),
                    nut_client: t.nut_client,
                    address: t.address,
                    mac: t.mac.map(|m| m.to_string()),
                    mac_from: t.mac_from.map(|f| {
                        match f {
                            MacFrom::Config => "config",
                            MacFrom::Neighbours => "neighbours",
                        }
                        .to_string()
                    }),
                    state: match t.state {
                        TargetState::Down => "down",
                        TargetState::Up { .. } => "up",
                        TargetState::GaveUp => "gave-up",
                        TargetState::NoMac => "no-mac",
                    }
                    .to_string(),
                    sent: t.sent,
                    up_after_ms: match t.state {
                        TargetState::Up { after_ms } => after_ms,
                        _ => None,
                    },
                    description: Wake::describe(t),
                })
                .collect(),
        }
    }
}
