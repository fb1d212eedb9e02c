//! The configured sentinels, the address each is pinged at this round, and
//! what each did lately (for `fakeupsctl status` and the decision).

use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Local};

use super::gateway;
use super::resolve::Lookup;
use super::sentinel::SentinelSpec;
use super::{Outcome, Target};
use crate::control::report::SentinelReport;
use crate::paths::ROUTE_TABLE;

/// The configured sentinels and their recent history.
pub struct Sentinels {
    specs: Vec<SentinelSpec>,
    reports: Vec<SentinelReport>,
}

/// The address of each sentinel and the name lookups under way: what a
/// round takes with it while the main loop goes on.
pub struct Addresses {
    specs: Vec<SentinelSpec>,
    lookups: Vec<Lookup>,
}

impl Sentinels {
    pub fn new(specs: &[SentinelSpec]) -> Sentinels {
        Sentinels {
            specs: specs.to_vec(),
            reports: specs
                .iter()
                .map(|s| SentinelReport {
                    name: s.to_string(),
                    address: None,
                    answered: false,
                    last_rtt_ms: None,
                    last_answer: None,
                    silent_rounds: 0,
                    problem: None,
                })
                .collect(),
        }
    }

    pub fn specs(&self) -> &[SentinelSpec] {
        &self.specs
    }

    pub fn len(&self) -> usize {
        self.specs.len()
    }

    /// Their addresses, none looked up yet.
    pub fn addresses(&self) -> Addresses {
        Addresses {
            specs: self.specs.clone(),
            lookups: self.specs.iter().map(|_| Lookup::default()).collect(),
        }
    }

    /// Records the outcomes of a round that ended at wall time `now`.
    pub fn record(&mut self, targets: &[Target], outcomes: &[Outcome], now: DateTime<Local>) {
        for ((report, target), outcome) in self.reports.iter_mut().zip(targets).zip(outcomes) {
            report.address = target.as_ref().ok().map(|(a, _)| *a);
            match outcome {
                Outcome::Answered(rtt) => {
                    report.answered = true;
                    report.last_rtt_ms = Some(rtt.as_secs_f64() * 1000.0);
                    report.last_answer = Some(now);
                    report.silent_rounds = 0;
                    report.problem = None;
                }
                Outcome::Silent(why) => {
                    report.answered = false;
                    report.silent_rounds += 1;
                    report.problem = Some(why.clone());
                }
            }
        }
    }

    pub fn reports(&self) -> &[SentinelReport] {
        &self.reports
    }

    /// How many sentinels were silent in the last round.
    pub fn silent_count(&self) -> usize {
        self.reports.iter().filter(|r| !r.answered).count()
    }
}

impl Addresses {
    /// The addresses to ping this round. The gateway is read from the route
    /// table; a host name uses the result of the last finished lookup (or
    /// the last good address when it failed) and a new lookup starts for the
    /// next round. A name never resolved yet is waited for, at most `wait`.
    pub async fn targets(
        &mut self,
        wait: Duration,
        usable: impl Fn(IpAddr) -> bool + Copy,
    ) -> Vec<Target> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut out = Vec::with_capacity(self.specs.len());
        for (spec, lookup) in self.specs.iter().zip(self.lookups.iter_mut()) {
            out.push(match spec {
                // The interface index of a zone can change (a USB NIC plugged
                // again): looked up at every round.
                SentinelSpec::Address {
                    addr,
                    zone: Some(zone),
                    ..
                } => nix::net::if_::if_nametoindex(zone.as_str())
                    .map(|index| (*addr, index))
                    .map_err(|e| format!("no interface {zone}: {e}")),
                SentinelSpec::Address { addr, zone: None } => Ok((*addr, 0)),
                SentinelSpec::Gateway => match gateway::read_default_gateway_v4() {
                    Ok(Some(gw)) => Ok((IpAddr::V4(gw), 0)),
                    Ok(None) => Err("no IPv4 default route".to_string()),
                    Err(e) => Err(format!("cannot read {ROUTE_TABLE}: {e}")),
                },
                SentinelSpec::Host(name) => {
                    lookup.settle(name, deadline, usable).await;
                    match (lookup.last_good, &lookup.last_error) {
                        (Some(addr), _) => Ok((addr, 0)),
                        (None, Some(e)) => Err(e.clone()),
                        (None, None) => Err(format!("{name}: not resolved yet")),
                    }
                }
            });
        }
        out
    }
}
