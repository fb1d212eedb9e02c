//! The ICMP prober: one socket per address family (surge-ping), every
//! address of a round pinged at once.

use std::io;
use std::net::IpAddr;
use std::time::Duration;

use surge_ping::{Client, Config as PingConfig, ICMP, IcmpPacket, PingIdentifier, PingSequence};
use tokio::task::JoinSet;

use super::{Outcome, Probe, Target};

const PAYLOAD: &[u8] = b"fakeups sentinel";
/// Pings sent at once, before a pause of `SEND_BATCH_GAP`.
const SEND_BATCH: usize = 64;
const SEND_BATCH_GAP: Duration = Duration::from_millis(1);
/// How late a pause between batches may end, for the round's deadline.
const SEND_SLACK: Duration = Duration::from_millis(1);

/// Neither an ICMPv4 nor an ICMPv6 socket could be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NoIcmpSocket(pub String);

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
    pub fn open() -> Result<Prober, NoIcmpSocket> {
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
            return Err(NoIcmpSocket(if e4 == e6 {
                e4.clone()
            } else {
                format!("IPv4: {e4}; IPv6: {e6}")
            }));
        }
        Ok(Prober {
            v4,
            v6,
            ident_base: (std::process::id() as u16).wrapping_mul(64),
            seq: 0,
        })
    }
}

impl Probe for Prober {
    /// Why the socket of a family is missing, if it is.
    fn family_error(&self, v6: bool) -> Option<&str> {
        let r = if v6 { &self.v6 } else { &self.v4 };
        r.as_ref().err().map(String::as_str)
    }

    /// Whether a socket of the family of `addr` is open.
    fn can_ping(&self, addr: IpAddr) -> bool {
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
    async fn ping_all(&mut self, targets: &[Target], timeout: Duration) -> Vec<Outcome> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
