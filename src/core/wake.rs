//! Who is woken after an outage, and when: the machines that went down
//! (NUT clients logged in during the outage, hosts of `[[wake.host]]`), a
//! magic packet each every `retry-every` once power has been back for
//! `after`, until each is up again or `give-up-after` has passed. Pure:
//! the daemon tells it what it saw and when, and does what it decides.

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::{Duration, Instant};

use chrono::{DateTime, Local};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::moment::Moment;
use crate::format::fmt_secs;

/// A network card's hardware address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mac(pub [u8; 6]);

impl FromStr for Mac {
    type Err = String;

    /// `00:11:32:aa:bb:cc` or `00-11-32-AA-BB-CC`; a unicast address other
    /// than all zeros (what an incomplete neighbour entry shows).
    fn from_str(text: &str) -> Result<Mac, String> {
        let bad = || format!("{text:?} is not a MAC address (six hex bytes: 00:11:32:aa:bb:cc)");
        let sep = if text.contains('-') { '-' } else { ':' };
        let parts: Vec<&str> = text.split(sep).collect();
        if parts.len() != 6 {
            return Err(bad());
        }
        let mut mac = [0u8; 6];
        for (byte, part) in mac.iter_mut().zip(&parts) {
            if part.len() != 2 {
                return Err(bad());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        if mac == [0; 6] {
            return Err(format!(
                "{text:?} is all zeros: not a network card's address"
            ));
        }
        if mac[0] & 1 == 1 {
            return Err(format!(
                "{text:?} is a multicast or broadcast address, not a network card's"
            ));
        }
        Ok(Mac(mac))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl Serialize for Mac {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Mac {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Mac, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The wake-on-LAN magic packet for `mac`: six 0xFF bytes, then the
/// address sixteen times.
pub fn magic_packet(mac: Mac) -> [u8; 102] {
    let mut packet = [0xFF; 102];
    for chunk in packet[6..].chunks_exact_mut(6) {
        chunk.copy_from_slice(&mac.0);
    }
    packet
}

/// Where a target's MAC came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MacFrom {
    /// `[[wake.host]] mac`.
    Config,
    /// The neighbour table, while the client was connected.
    Neighbours,
}

/// Where a target stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum TargetState {
    /// Not known to be up: woken at each step.
    Down,
    /// Up again, `after` the first packet; None: it never went down.
    Up { after_ms: Option<u64> },
    /// Not up within `give-up-after`.
    GaveUp,
    /// Down, with no MAC to wake it by.
    NoMac,
}

/// A machine to wake after the outage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Target {
    /// The `[[wake.host]]` name, or a NUT client's address.
    pub name: String,
    /// Logged in to upsd during the outage (else a configured host).
    pub nut_client: bool,
    pub address: Option<IpAddr>,
    pub interface: Option<String>,
    pub mac: Option<Mac>,
    pub mac_from: Option<MacFrom>,
    pub state: TargetState,
    /// Magic packets sent since the outage.
    pub sent: u32,
    /// Packets that could not be sent (no subnet reaches it): they count
    /// for giving up as sent ones do.
    #[serde(default)]
    pub failed: u32,
}

/// A `[[wake.host]]`, as the wake needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct HostSpec {
    pub name: String,
    pub mac: Mac,
    pub address: Option<IpAddr>,
    pub interface: Option<String>,
}

impl HostSpec {
    fn target(&self) -> Target {
        Target {
            nut_client: false,
            interface: self.interface.clone(),
            mac_from: Some(MacFrom::Config),
            ..Target::down(self.name.clone(), self.address, Some(self.mac))
        }
    }
}

impl Target {
    /// A target not yet woken; a NUT client unless said otherwise.
    fn down(name: String, address: Option<IpAddr>, mac: Option<Mac>) -> Target {
        Target {
            name,
            nut_client: true,
            address,
            interface: None,
            mac,
            mac_from: mac.map(|_| MacFrom::Neighbours),
            state: TargetState::Down,
            sent: 0,
            failed: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WakeSettings {
    pub nut_clients: bool,
    pub after: Duration,
    pub retry_every: Duration,
    pub give_up_after: Duration,
}

/// The outage the targets went down in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Outage {
    pub since: DateTime<Local>,
    /// A drill (`fakeupsctl drill`), not a real outage.
    pub drill: bool,
    /// Still on battery: targets are collected, none woken.
    pub on_battery: bool,
}

/// What a step asks of the daemon for one target.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub name: String,
    pub mac: Mac,
    pub address: Option<IpAddr>,
    pub interface: Option<String>,
    /// Ping this first: an answer means the target is up, and it gets no
    /// packet.
    pub ping_first: Option<IpAddr>,
}

/// How a job went.
#[derive(Debug, Clone, PartialEq)]
pub enum JobResult {
    /// It answered the ping: up.
    Answered,
    /// A packet went to this address.
    Sent(String),
    /// No packet could be sent.
    Failed(String),
}

/// A change the daemon logs and hands to the outlets.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A NUT client was seen logged in during the outage.
    Added {
        name: String,
        mac: Option<Mac>,
    },
    /// Up again (after the first packet; None: it never went down).
    Up {
        name: String,
        after: Option<Duration>,
    },
    GaveUp {
        name: String,
        sent: u32,
    },
    NoMac {
        name: String,
    },
    /// A packet went out.
    Sent {
        name: String,
        mac: Mac,
        to: String,
        count: u32,
    },
    SendFailed {
        name: String,
        error: String,
    },
    /// Every target is up or given up: the wake is over.
    Finished {
        up: usize,
        gave_up: usize,
    },
}

/// A point on the boot clock, for the timings that outlive the process
/// within one boot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BootTime {
    pub boot_id: String,
    pub since_boot_ms: u64,
}

/// The wake as the state file keeps it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct WakeRecord {
    pub outage: Option<Outage>,
    pub targets: Vec<Target>,
    /// Since when power has been back without a break.
    #[serde(default)]
    pub mains_since: Option<BootTime>,
    #[serde(default)]
    pub first_step: Option<BootTime>,
    #[serde(default)]
    pub next_step: Option<BootTime>,
}

/// The wake: the targets of the last outage and their progress.
#[derive(Debug, Clone)]
pub struct Wake {
    settings: WakeSettings,
    outage: Option<Outage>,
    targets: Vec<Target>,
    mains_since: Option<Instant>,
    first_step: Option<Instant>,
    next_step: Option<Instant>,
    /// The last outage was a drill (kept after the wake ends, for its
    /// last events).
    drill: bool,
}

impl Wake {
    pub fn new(settings: WakeSettings) -> Wake {
        Wake {
            settings,
            outage: None,
            targets: vec![],
            mains_since: None,
            first_step: None,
            next_step: None,
            drill: false,
        }
    }

    /// The last outage was a drill.
    pub fn drill(&self) -> bool {
        self.drill
    }

    pub fn set_settings(&mut self, settings: WakeSettings) {
        self.settings = settings;
    }

    pub fn outage(&self) -> Option<&Outage> {
        self.outage.as_ref()
    }

    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// Magic packets are going out (power is back and the first step was
    /// taken), and how many targets are still down.
    pub fn waking(&self) -> Option<usize> {
        let outage = self.outage.as_ref()?;
        if outage.on_battery || self.first_step.is_none() {
            return None;
        }
        Some(self.down().count())
    }

    /// When the first packet goes out, while power is back but not yet for
    /// `after`.
    pub fn first_packet_at(&self) -> Option<Instant> {
        match (&self.outage, self.first_step) {
            (Some(o), None) if !o.on_battery => self.next_step,
            _ => None,
        }
    }

    /// When the next step is due, if one is.
    pub fn due(&self) -> Option<Instant> {
        self.outage.as_ref()?;
        self.down().next()?;
        self.next_step
    }

    fn down(&self) -> impl Iterator<Item = &Target> {
        self.targets.iter().filter(|t| t.state == TargetState::Down)
    }

    /// The status went on battery: an outage starts (or, while the wake of
    /// the last one is still under way, goes on with its targets, all
    /// down again). `hosts`: `[[wake.host]]`.
    pub fn begin_outage(&mut self, since: DateTime<Local>, drill: bool, hosts: &[HostSpec]) {
        let mut targets: Vec<Target> = hosts.iter().map(HostSpec::target).collect();
        if self.outage.is_some() {
            // Clients of the last outage still down still need waking.
            for t in &self.targets {
                let still_down = !matches!(t.state, TargetState::Up { .. });
                if t.nut_client && still_down && !targets.iter().any(|h| h.address == t.address) {
                    let mut t = t.clone();
                    t.state = TargetState::Down;
                    t.sent = 0;
                    t.failed = 0;
                    targets.push(t);
                }
            }
        }
        self.targets = targets;
        self.drill = drill;
        self.outage = Some(Outage {
            since,
            drill,
            on_battery: true,
        });
        self.mains_since = None;
        self.first_step = None;
        self.next_step = None;
    }

    /// What upsd says is logged in now (this machine's own addresses left
    /// out), with each one's MAC when the neighbour table has it. On
    /// battery, new clients become targets; once packets go out, a target
    /// logged in again is up.
    pub fn clients_seen(&mut self, now: Instant, clients: &[(IpAddr, Option<Mac>)]) -> Vec<Change> {
        let mut changes = vec![];
        let Some(outage) = &self.outage else {
            return changes;
        };
        if outage.on_battery {
            if !self.settings.nut_clients {
                return changes;
            }
            for &(address, mac) in clients {
                match self.targets.iter_mut().find(|t| t.address == Some(address)) {
                    Some(t) => {
                        if t.mac.is_none() && mac.is_some() {
                            t.mac = mac;
                            t.mac_from = Some(MacFrom::Neighbours);
                        }
                    }
                    None => {
                        self.targets
                            .push(Target::down(address.to_string(), Some(address), mac));
                        changes.push(Change::Added {
                            name: address.to_string(),
                            mac,
                        });
                    }
                }
            }
            return changes;
        }
        // Before the first step a client still logged in may be shutting
        // down: only the step decides that it stayed up.
        let Some(first) = self.first_step else {
            return changes;
        };
        let logged_in: HashSet<IpAddr> = clients.iter().map(|(a, _)| *a).collect();
        for t in &mut self.targets {
            if t.nut_client
                && t.state == TargetState::Down
                && t.address.is_some_and(|a| logged_in.contains(&a))
            {
                let after = now.saturating_duration_since(first);
                t.state = TargetState::Up {
                    after_ms: Some(millis(after)),
                };
                changes.push(Change::Up {
                    name: t.name.clone(),
                    after: Some(after),
                });
            }
        }
        self.finish(&mut changes);
        changes
    }

    /// After each round: whether the status is on battery, and whether
    /// mains is back (OL from the sentinels or the end of a drill, not a
    /// pause, and no silent quorum now). A break restarts the wait.
    pub fn power(&mut self, now: Instant, on_battery: bool, mains: bool) {
        let Some(outage) = &mut self.outage else {
            return;
        };
        if on_battery {
            outage.on_battery = true;
        } else if mains {
            outage.on_battery = false;
        }
        if !mains {
            self.mains_since = None;
            self.next_step = None;
            return;
        }
        if self.down().next().is_none() {
            // Nobody to wake (no client but this machine, no host): the
            // outage is over as power comes back.
            self.outage = None;
            self.mains_since = None;
            self.first_step = None;
            self.next_step = None;
            return;
        }
        let since = *self.mains_since.get_or_insert(now);
        if self.next_step.is_none() {
            self.next_step = Some(match self.first_step {
                None => since + self.settings.after,
                // Power came back again during the wake: wait out `after`.
                Some(_) => now + self.settings.after,
            });
        }
    }

    /// The step due at `now`: targets given up or without a MAC are
    /// settled; NUT clients logged in (`logged_in`) are up, or never went
    /// down; the rest get a packet (a host with an address is pinged first).
    pub fn step(&mut self, now: Instant, logged_in: &HashSet<IpAddr>) -> (Vec<Job>, Vec<Change>) {
        let mut changes = vec![];
        let mut jobs = vec![];
        if self.due().is_none_or(|due| due > now) {
            return (jobs, changes);
        }
        let first = *self.first_step.get_or_insert(now);
        let give_up = now.saturating_duration_since(first) >= self.settings.give_up_after;
        for t in &mut self.targets {
            if t.state != TargetState::Down {
                continue;
            }
            if t.nut_client && t.address.is_some_and(|a| logged_in.contains(&a)) {
                let after = (t.sent > 0).then(|| now.saturating_duration_since(first));
                t.state = TargetState::Up {
                    after_ms: after.map(millis),
                };
                changes.push(Change::Up {
                    name: t.name.clone(),
                    after,
                });
                continue;
            }
            let Some(mac) = t.mac else {
                t.state = TargetState::NoMac;
                changes.push(Change::NoMac {
                    name: t.name.clone(),
                });
                continue;
            };
            if give_up && t.sent + t.failed > 0 {
                t.state = TargetState::GaveUp;
                changes.push(Change::GaveUp {
                    name: t.name.clone(),
                    sent: t.sent,
                });
                continue;
            }
            jobs.push(Job {
                name: t.name.clone(),
                mac,
                address: t.address,
                interface: t.interface.clone(),
                ping_first: t.address.filter(|_| !t.nut_client),
            });
        }
        self.next_step = Some(now + self.settings.retry_every);
        self.finish(&mut changes);
        (jobs, changes)
    }

    /// Takes in how the jobs of a step went.
    pub fn step_done(&mut self, now: Instant, results: &[(String, JobResult)]) -> Vec<Change> {
        let mut changes = vec![];
        let first = self.first_step.unwrap_or(now);
        for (name, result) in results {
            let Some(t) = self
                .targets
                .iter_mut()
                .find(|t| &t.name == name && t.state == TargetState::Down)
            else {
                continue;
            };
            match result {
                JobResult::Answered => {
                    let after = (t.sent > 0).then(|| now.saturating_duration_since(first));
                    t.state = TargetState::Up {
                        after_ms: after.map(millis),
                    };
                    changes.push(Change::Up {
                        name: t.name.clone(),
                        after,
                    });
                }
                JobResult::Sent(to) => {
                    t.sent += 1;
                    if let Some(mac) = t.mac {
                        changes.push(Change::Sent {
                            name: t.name.clone(),
                            mac,
                            to: to.clone(),
                            count: t.sent,
                        });
                    }
                }
                JobResult::Failed(error) => {
                    t.failed += 1;
                    changes.push(Change::SendFailed {
                        name: t.name.clone(),
                        error: error.clone(),
                    });
                }
            }
        }
        self.finish(&mut changes);
        changes
    }

    /// Ends the wake when no target is down any more.
    fn finish(&mut self, changes: &mut Vec<Change>) {
        let Some(outage) = &self.outage else { return };
        if outage.on_battery || self.first_step.is_none() || self.down().next().is_some() {
            return;
        }
        let up = self
            .targets
            .iter()
            .filter(|t| matches!(t.state, TargetState::Up { .. }))
            .count();
        let gave_up = self.targets.len() - up;
        self.outage = None;
        self.mains_since = None;
        self.first_step = None;
        self.next_step = None;
        changes.push(Change::Finished { up, gave_up });
    }

    /// The wake as the state file keeps it; times within this boot go on
    /// its boot clock (`now` is `at` on the monotonic clock).
    pub fn record(&self, now: Instant, at: &Moment) -> WakeRecord {
        let boot = |i: Option<Instant>| -> Option<BootTime> {
            let i = i?;
            let boot_id = at.boot_id.clone()?;
            let since = at.since_boot?;
            let since = if i <= now {
                since.checked_sub(now - i)?
            } else {
                since.checked_add(i - now)?
            };
            Some(BootTime {
                boot_id,
                since_boot_ms: millis(since),
            })
        };
        WakeRecord {
            outage: self.outage.clone(),
            targets: self.targets.clone(),
            mains_since: boot(self.mains_since),
            first_step: boot(self.first_step),
            next_step: boot(self.next_step),
        }
    }

    /// The wake of a saved record. Within the boot it was saved in, its
    /// times go on; after a reboot the wait starts again, from the moment
    /// power is seen back, with the progress kept.
    pub fn restore(settings: WakeSettings, record: WakeRecord, now: Instant, at: &Moment) -> Wake {
        let instant = |b: &Option<BootTime>| -> Option<Instant> {
            let b = b.as_ref()?;
            let since = at.since_boot_in(Some(&b.boot_id))?;
            let saved = Duration::from_millis(b.since_boot_ms);
            if saved <= since {
                now.checked_sub(since - saved)
            } else {
                now.checked_add(saved - since)
            }
        };
        let same_boot = [&record.mains_since, &record.first_step, &record.next_step]
            .into_iter()
            .flatten()
            .any(|b| at.since_boot_in(Some(&b.boot_id)).is_some());
        let mut wake = Wake::new(settings);
        wake.targets = record.targets;
        wake.drill = record.outage.as_ref().is_some_and(|o| o.drill);
        wake.outage = record.outage;
        if same_boot {
            wake.mains_since = instant(&record.mains_since);
            wake.first_step = instant(&record.first_step);
            wake.next_step = instant(&record.next_step);
        } else if record.first_step.is_some() {
            // After a reboot: `give-up-after` counts again from the next
            // first step.
            wake.first_step = None;
        }
        wake
    }

    /// How a target stands, for people: "waiting until 12:03:10" is
    /// rendered by the caller from `first_packet_at`.
    pub fn describe(t: &Target) -> String {
        match t.state {
            TargetState::Down if t.sent > 0 => format!("sent {} time(s)", t.sent),
            // Its first packet is going out (after a host's ping).
            TargetState::Down => "down, first packet going out".into(),
            TargetState::Up { after_ms: None } => "stayed up".into(),
            TargetState::Up { after_ms: Some(ms) } => {
                format!("up after {}", fmt_secs(ms.div_ceil(1000)))
            }
            TargetState::GaveUp if t.failed > 0 => format!(
                "gave up after {} packet(s), {} that could not be sent",
                t.sent + t.failed,
                t.failed
            ),
            TargetState::GaveUp => format!("gave up after {} packet(s)", t.sent),
            TargetState::NoMac => "no MAC known".into(),
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
