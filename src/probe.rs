//! Probing: one ICMP socket per address family (surge-ping), every sentinel
//! of a round pinged at once, host names and the gateway turned into
//! addresses, and what each sentinel did lately.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use chrono::{DateTime, Local};
use serde::{Deserialize, Serialize};
use surge_ping::{Client, Config as PingConfig, ICMP, IcmpPacket, PingIdentifier, PingSequence};
use tokio::task::JoinSet;

use crate::logging;
use crate::sentinel::{self, SentinelSpec};

const PAYLOAD: &[u8] = b"fakeups sentinel";
/// Pings sent at once, before a pause of `SEND_BATCH_GAP`.
const SEND_BATCH: usize = 64;
const SEND_BATCH_GAP: Duration = Duration::from_millis(1);
/// How late a pause between batches may end, for the round's deadline.
const SEND_SLACK: Duration = Duration::from_millis(1);

/// How a sentinel did in one round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Answered(Duration),
    Silent(String),
}

/// The ICMP sockets.
pub struct Prober {
    v4: Result<Client, String>,
    v6: Result<Client, String>,
    ident_base: u16,
    seq: u16,
}

impl Prober {
    /// Opens an ICMP socket per family: a datagram ICMP socket where
    /// net.ipv4.ping_group_range allows it (systemd's default allows every
    /// group), which the kernel hands only the replies to its own pings; else
    /// a raw one (CAP_NET_RAW), which sees every ICMP packet of the machine.
    /// Fails only when neither family can be opened. Must run inside the
    /// tokio runtime.
    pub fn open() -> Result<Prober, String> {
        let open = |kind: ICMP| {
            let config = PingConfig::builder()
                .kind(kind)
                .sock_type_hint(socket2::Type::DGRAM)
                .build();
            Client::new(&config).map_err(|e| first_line(&e))
        };
        let v4 = open(ICMP::V4);
        let v6 = open(ICMP::V6);
        if let (Err(e4), Err(e6)) = (&v4, &v6) {
            return Err(if e4 == e6 {
                e4.clone()
            } else {
                format!("IPv4: {e4}; IPv6: {e6}")
            });
        }
        Ok(Prober {
            v4,
            v6,
            ident_base: (std::process::id() as u16).wrapping_mul(64),
            seq: 0,
        })
    }

    /// Why the socket of a family is missing, if it is.
    pub fn family_error(&self, v6: bool) -> Option<&str> {
        let r = if v6 { &self.v6 } else { &self.v4 };
        r.as_ref().err().map(String::as_str)
    }

    /// Whether a socket of the family of `addr` is open.
    pub fn can_ping(&self, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(_) => self.v4.is_ok(),
            IpAddr::V6(_) => self.v6.is_ok(),
        }
    }

    /// Pings every target at once and waits at most `timeout` for each.
    /// `targets[i]` is the address of sentinel i and its IPv6 scope, or why
    /// there is none. An address listed more than once (a name and the
    /// gateway) is pinged once and its outcome shared: datagram ICMP sockets
    /// cannot tell two pings to one address apart. The outcomes come back in
    /// the order of `targets`.
    pub async fn ping_all(
        &mut self,
        targets: &[Result<(IpAddr, u32), String>],
        timeout: Duration,
    ) -> Vec<Outcome> {
        self.seq = self.seq.wrapping_add(1);
        let seq = PingSequence(self.seq);
        let mut outcomes: Vec<Outcome> = targets
            .iter()
            .map(|t| match t {
                Ok(_) => Outcome::Silent("no answer".into()),
                Err(why) => Outcome::Silent(why.clone()),
            })
            .collect();
        // Each distinct address once, with the sentinels that share it.
        let mut distinct: Vec<((IpAddr, u32), Vec<usize>)> = Vec::new();
        for (i, target) in targets.iter().enumerate() {
            let Ok(key) = target else { continue };
            match distinct.iter_mut().find(|(k, _)| k == key) {
                Some((_, users)) => users.push(i),
                None => distinct.push((*key, vec![i])),
            }
        }
        let mut set = JoinSet::new();
        // One deadline for the whole round bounds everything, the sends
        // included (a full send buffer must not hold the round, and with it
        // the watchdog). Each ping's own timer is set later than that, so
        // that arming it never has to wake the timer driver: one timer and
        // no wake-up a round instead of one per ping (measured: two eventfd
        // writes per ping otherwise).
        let batches = distinct.len().div_ceil(SEND_BATCH) as u32;
        // The last batch goes out after the pauses (a little later on a busy
        // machine: the slack), and waits `timeout` like the others.
        let deadline = tokio::time::Instant::now()
            + (SEND_BATCH_GAP + SEND_SLACK) * batches.saturating_sub(1)
            + timeout;
        for (n, ((addr, scope), users)) in distinct.iter().enumerate() {
            let client = match (addr, &self.v4, &self.v6) {
                (IpAddr::V4(_), Ok(c), _) | (IpAddr::V6(_), _, Ok(c)) => c.clone(),
                (IpAddr::V4(_), Err(e), _) | (IpAddr::V6(_), _, Err(e)) => {
                    for &i in users {
                        outcomes[i] = Outcome::Silent(format!("no ICMP socket: {e}"));
                    }
                    continue;
                }
            };
            let ident = PingIdentifier(self.ident_base.wrapping_add(n as u16));
            let (addr, scope) = (*addr, *scope);
            // Sent in batches a millisecond apart, so that the replies to the
            // first are read before the socket's receive buffer overflows
            // (with hundreds of sentinels on a fast link it would). The pause
            // is taken here, between batches, so a late wake-up never lets
            // several batches go at once.
            if n > 0 && n % SEND_BATCH == 0 {
                tokio::time::sleep(SEND_BATCH_GAP).await;
            }
            set.spawn(async move {
                let mut pinger = client.pinger(addr, ident).await;
                pinger.timeout(timeout * 2).scope_id(scope);
                let outcome = match pinger.ping(seq, PAYLOAD).await {
                    Ok((packet, rtt)) if is_echo_reply(&packet) => Outcome::Answered(rtt),
                    Ok((packet, _)) => Outcome::Silent(icmp_error_text(&packet)),
                    Err(surge_ping::SurgeError::Timeout { .. }) => {
                        Outcome::Silent("no answer".into())
                    }
                    Err(e) => Outcome::Silent(e.to_string()),
                };
                (n, outcome)
            });
        }
        let collect = async {
            while let Some(joined) = set.join_next().await {
                if let Ok((n, outcome)) = joined {
                    if let Some((_, users)) = distinct.get(n) {
                        for &i in users {
                            outcomes[i] = outcome.clone();
                        }
                    }
                }
            }
        };
        // Pings still out at the deadline stay "no answer"; dropping the set
        // cancels them.
        let _ = tokio::time::timeout_at(deadline, collect).await;
        outcomes
    }
}

fn first_line(e: &io::Error) -> String {
    let text = e.to_string();
    // surge-ping's own hint spans lines; keep the OS error, we give the remedies.
    match text.rsplit_once("Original error: ") {
        Some((_, os)) => os.trim().to_string(),
        None => text.lines().next().unwrap_or_default().to_string(),
    }
}

fn is_echo_reply(packet: &IcmpPacket) -> bool {
    match packet {
        IcmpPacket::V4(p) => p.get_icmp_type().0 == 0,
        IcmpPacket::V6(p) => p.get_icmpv6_type().0 == 129,
    }
}

fn icmp_error_text(packet: &IcmpPacket) -> String {
    match packet {
        IcmpPacket::V4(p) => format!(
            "ICMP type {} code {} from {}",
            p.get_icmp_type().0,
            p.get_icmp_code().0,
            p.get_source()
        ),
        IcmpPacket::V6(p) => format!(
            "ICMPv6 type {} code {} from {}",
            p.get_icmpv6_type().0,
            p.get_icmpv6_code().0,
            p.get_source()
        ),
    }
}

/// What a sentinel did lately, as shown by `fakeupsctl status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentinelReport {
    /// As written in the configuration.
    pub name: String,
    /// The address pinged in the last round, if there was one.
    pub address: Option<IpAddr>,
    /// Whether it answered in the last round.
    pub answered: bool,
    /// Round-trip time of the last answer, milliseconds.
    pub last_rtt_ms: Option<f64>,
    /// Wall time of the last answer.
    pub last_answer: Option<DateTime<Local>>,
    /// Rounds without an answer since the last one.
    pub silent_rounds: u64,
    /// Why it was silent in the last round, if it was.
    pub problem: Option<String>,
}

/// A host name's last good address and the lookup under way.
#[derive(Default)]
struct Lookup {
    last_good: Option<IpAddr>,
    pending: Option<tokio::task::JoinHandle<io::Result<Vec<SocketAddr>>>>,
    last_error: Option<String>,
}

/// The configured sentinels, their addresses and their recent history.
pub struct Sentinels {
    specs: Vec<SentinelSpec>,
    lookups: Vec<Lookup>,
    reports: Vec<SentinelReport>,
}

/// The address to ping among what the resolver gave: the last one used while
/// it is still among them (round-robin answers do not move the sentinel),
/// else the first of a family that has a socket, else the first.
pub fn pick_address(
    addrs: &[IpAddr],
    last: Option<IpAddr>,
    usable: impl Fn(IpAddr) -> bool,
) -> Option<IpAddr> {
    if let Some(last) = last.filter(|l| addrs.contains(l)) {
        return Some(last);
    }
    addrs
        .iter()
        .copied()
        .find(|a| usable(*a))
        .or_else(|| addrs.first().copied())
}

/// How long a background name lookup may take before it is abandoned.
const LOOKUP_LIMIT: Duration = Duration::from_secs(10);

impl Sentinels {
    pub fn new(specs: &[SentinelSpec]) -> Sentinels {
        Sentinels {
            specs: specs.to_vec(),
            lookups: specs.iter().map(|_| Lookup::default()).collect(),
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

    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// The addresses to ping this round. The gateway is read from the route
    /// table; a host name uses the result of the last finished lookup (or
    /// the last good address when it failed) and a new lookup starts for the
    /// next round. A name never resolved yet is waited for, at most `wait`.
    pub async fn targets(
        &mut self,
        wait: Duration,
        usable: impl Fn(IpAddr) -> bool + Copy,
    ) -> Vec<Result<(IpAddr, u32), String>> {
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
                SentinelSpec::Gateway => match sentinel::read_default_gateway_v4() {
                    Ok(Some(gw)) => Ok((IpAddr::V4(gw), 0)),
                    Ok(None) => Err("no IPv4 default route".to_string()),
                    Err(e) => Err(format!("cannot read {}: {e}", sentinel::ROUTE_TABLE)),
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

    /// Records the outcomes of a round that ended at wall time `now`.
    pub fn record(
        &mut self,
        targets: &[Result<(IpAddr, u32), String>],
        outcomes: &[Outcome],
        now: DateTime<Local>,
    ) {
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

impl Lookup {
    /// Takes the result of a finished lookup, starts the next one, and when
    /// no address was ever known, waits for it until `deadline`.
    async fn settle(
        &mut self,
        name: &str,
        deadline: tokio::time::Instant,
        usable: impl Fn(IpAddr) -> bool,
    ) {
        if self.last_good.is_none() {
            if self.pending.is_none() {
                self.start(name);
            }
            if let Some(handle) = self.pending.as_mut() {
                if let Ok(joined) = tokio::time::timeout_at(deadline, handle).await {
                    self.pending = None;
                    self.take(name, joined, &usable);
                }
            }
        }
        if let Some(handle) = &self.pending {
            if handle.is_finished() {
                if let Some(handle) = self.pending.take() {
                    let joined = handle.await;
                    self.take(name, joined, &usable);
                }
            }
        }
        if self.pending.is_none() {
            self.start(name);
        }
    }

    fn start(&mut self, name: &str) {
        let host = name.to_string();
        self.pending = Some(tokio::spawn(async move {
            match tokio::time::timeout(LOOKUP_LIMIT, tokio::net::lookup_host((host.as_str(), 0)))
                .await
            {
                Ok(result) => result.map(|addrs| addrs.collect()),
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the resolver did not answer",
                )),
            }
        }));
    }

    fn take(
        &mut self,
        name: &str,
        joined: Result<io::Result<Vec<SocketAddr>>, tokio::task::JoinError>,
        usable: impl Fn(IpAddr) -> bool,
    ) {
        let result = match joined {
            Ok(Ok(addrs)) => {
                let addrs: Vec<IpAddr> = addrs.iter().map(|a| a.ip()).collect();
                pick_address(&addrs, self.last_good, usable)
                    .ok_or_else(|| format!("{name}: the resolver gave no address"))
            }
            Ok(Err(e)) => Err(format!("cannot resolve {name}: {e}")),
            Err(e) => Err(format!("cannot resolve {name}: {e}")),
        };
        match result {
            Ok(addr) => {
                if self.last_error.take().is_some() {
                    logging::info(&format!("{name} resolves again, to {addr}"));
                } else if self.last_good.is_some_and(|old| old != addr) {
                    logging::info(&format!("{name} now resolves to {addr}"));
                }
                self.last_good = Some(addr);
            }
            Err(e) => {
                if self.last_error.is_none() {
                    match self.last_good {
                        Some(addr) => {
                            logging::notice(&format!("{e}; keeping its last good address {addr}"))
                        }
                        None => logging::notice(&e),
                    }
                }
                self.last_error = Some(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_a_usable_address_and_keeps_it() {
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let v4_only = |ip: IpAddr| ip.is_ipv4();
        assert_eq!(pick_address(&[v6, a], None, v4_only), Some(a));
        assert_eq!(pick_address(&[v6, a], None, |_| true), Some(v6));
        assert_eq!(pick_address(&[a, b], Some(b), v4_only), Some(b));
        assert_eq!(pick_address(&[a], Some(b), v4_only), Some(a));
        assert_eq!(pick_address(&[v6], None, v4_only), Some(v6));
        assert_eq!(pick_address(&[], Some(a), v4_only), None);
    }

    /// One ping for an address listed twice, against the loopback; a raw
    /// socket needs root, so this runs where the integration tests run.
    #[tokio::test]
    async fn an_address_listed_twice_is_pinged_once_for_both() {
        let Ok(mut prober) = Prober::open() else {
            let why = "no ICMP socket here (needs CAP_NET_RAW or ping_group_range)";
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
            eprintln!("SKIPPED an_address_listed_twice_is_pinged_once_for_both: {why}");
            return;
        };
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let targets = vec![Ok((lo, 0)), Err("none".to_string()), Ok((lo, 0))];
        let out = prober.ping_all(&targets, Duration::from_secs(1)).await;
        assert!(matches!(out[0], Outcome::Answered(_)), "{out:?}");
        assert_eq!(out[1], Outcome::Silent("none".into()));
        assert_eq!(out[0], out[2]);
    }
}
