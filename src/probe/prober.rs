//! The ICMP prober: one socket per address family (surge-ping), every
//! address of a round pinged at once.

use std::io;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use surge_ping::{Client, Config as PingConfig, ICMP, IcmpPacket, PingIdentifier, PingSequence};
use tokio::task::JoinSet;

use super::{Outcome, Probe, Target};

/// The data of an echo request: attempt n of a round sends the first
/// `PAYLOAD_LEN + n` bytes. The reply carries them back, so its size says
/// which attempt it answers (all of a round's share one sequence number).
const PAYLOADS: &[u8] = b"fakeups sentinel....";
const PAYLOAD_LEN: usize = 16;
const _: () = assert!(PAYLOADS.len() == PAYLOAD_LEN + MAX_ATTEMPTS as usize - 1);
/// The ICMP echo header (type, code, checksum, identifier, sequence).
const ECHO_HEADER: usize = 8;
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
    ///
    /// A target that has not answered is asked again within the same
    /// deadline, on the schedule of [`Schedule::for_timeout`]: a lost echo
    /// or reply no longer makes the round silent. Every attempt stays
    /// awaited until the round ends, so a late reply to any of them counts
    /// (with the round-trip time of that attempt). An ICMP error reply
    /// (unreachable) or a failed send ends a target at once, silent, with
    /// its text.
    async fn ping_all(&mut self, targets: &[Target], timeout: Duration) -> Vec<Outcome> {
        let schedule = Schedule::for_timeout(timeout);
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
        // Each distinct address still waiting for its outcome; None once it
        // has one (or has no socket).
        let mut open: Vec<Option<Open>> = Vec::with_capacity(distinct.len());
        for (n, ((addr, scope), users)) in distinct.iter().enumerate() {
            match (addr, &self.v4, &self.v6) {
                (IpAddr::V4(_), Ok(c), _) | (IpAddr::V6(_), _, Ok(c)) => open.push(Some(Open {
                    client: c.clone(),
                    addr: *addr,
                    scope: *scope,
                    ident: PingIdentifier(self.ident_base.wrapping_add(n as u16)),
                    sent: [None; MAX_ATTEMPTS as usize],
                })),
                (IpAddr::V4(_), Err(e), _) | (IpAddr::V6(_), _, Err(e)) => {
                    for &i in users {
                        outcomes[i] = Outcome::Silent(format!("no ICMP socket: {e}"));
                    }
                    open.push(None);
                }
            }
        }
        let mut left = open.iter().filter(|o| o.is_some()).count();
        let mut set = JoinSet::new();
        // One deadline for the whole round bounds everything, the sends
        // included (a full send buffer must not hold the round, and with it
        // the watchdog). Each ping's own timer is set later than that, so
        // that arming it never has to wake the timer driver: one timer and
        // no wake-up a round instead of one per ping (measured: two eventfd
        // writes per ping otherwise). That one timer is the round's `tick`,
        // due at the next attempt, then at the deadline: a round where every
        // address answers its first echo arms it once and drops it.
        let batches = distinct.len().div_ceil(SEND_BATCH) as u32;
        // The last batch goes out after the pauses (a little later on a busy
        // machine: the slack), and waits `timeout` like the others.
        let start = tokio::time::Instant::now();
        let deadline = start + (SEND_BATCH_GAP + SEND_SLACK) * batches.saturating_sub(1) + timeout;
        // The first echo: one task per address, which waits for a reply to
        // any of the round's echoes (they share the sequence number), so a
        // repeated echo costs a send and nothing else.
        let mut sent = 0;
        for (n, target) in open.iter().enumerate() {
            let Some(t) = target else { continue };
            pause_before(sent).await;
            sent += 1;
            let (client, addr, scope, ident) = (t.client.clone(), t.addr, t.scope, t.ident);
            set.spawn(async move {
                let mut pinger = client.pinger(addr, ident).await;
                pinger.timeout(timeout * 2).scope_id(scope);
                let before = Instant::now();
                let reply = match pinger.ping(seq, payload(0)).await {
                    Ok((packet, rtt)) if is_echo_reply(&packet) => Reply::Echo {
                        attempt: attempt_of(icmp_size(&packet)),
                        rtt,
                        at: before + rtt,
                    },
                    Ok((packet, _)) => Reply::Final(Outcome::Silent(icmp_error_text(&packet))),
                    Err(surge_ping::SurgeError::Timeout { .. }) => Reply::None,
                    Err(e) => Reply::Final(Outcome::Silent(e.to_string())),
                };
                (n, reply)
            });
        }
        let mut attempt: u32 = 1;
        let tick = tokio::time::sleep_until(schedule.due(start, attempt, deadline));
        tokio::pin!(tick);
        while left > 0 {
            let (n, outcome) = tokio::select! {
                biased;
                Some(joined) = set.join_next(), if !set.is_empty() => {
                    // A join error is a cancelled or failed task: its address
                    // stays open until the deadline.
                    let Ok((n, reply)) = joined else { continue };
                    let outcome = match reply {
                        Reply::Echo { attempt, rtt, at } => {
                            // Timed from the echo it answers, when that was
                            // a repeated one.
                            let sent = attempt
                                .filter(|&a| a > 0)
                                .and_then(|a| open.get(n)?.as_ref()?.sent[a as usize]);
                            Outcome::Answered(sent.map_or(rtt, |t| at.saturating_duration_since(t)))
                        }
                        Reply::Final(outcome) => outcome,
                        Reply::None => continue,
                    };
                    (n, outcome)
                }
                () = &mut tick => {
                    let now = tokio::time::Instant::now();
                    if attempt >= schedule.attempts || now >= deadline {
                        break;
                    }
                    // The echo again to every address still silent; a send
                    // that fails ends its address as a failed first send does.
                    let mut sent = 0;
                    for (n, target) in open.iter_mut().enumerate() {
                        let Some(t) = target else { continue };
                        if pause_before(sent).await && tokio::time::Instant::now() >= deadline {
                            break;
                        }
                        sent += 1;
                        let mut pinger = t.client.pinger(t.addr, t.ident).await;
                        pinger.scope_id(t.scope);
                        let at = Instant::now();
                        match pinger.send_ping(seq, payload(attempt)).await {
                            Ok(()) => t.sent[attempt as usize] = Some(at),
                            Err(e) => {
                                *target = None;
                                left -= 1;
                                if let Some((_, users)) = distinct.get(n) {
                                    for &i in users {
                                        outcomes[i] = Outcome::Silent(e.to_string());
                                    }
                                }
                            }
                        }
                    }
                    // After a stall, the attempts whose time has passed are
                    // skipped rather than sent back to back.
                    attempt = schedule.next_after(start, attempt, now);
                    tick.as_mut().reset(schedule.due(start, attempt, deadline));
                    continue;
                }
            };
            if open.get_mut(n).and_then(Option::take).is_none() {
                continue; // ended already (a failed send)
            }
            left -= 1;
            if let Some((_, users)) = distinct.get(n) {
                for &i in users {
                    outcomes[i] = outcome.clone();
                }
            }
        }
        // Pings still out at the deadline stay "no answer"; dropping the set
        // cancels them.
        outcomes
    }
}

/// Echo requests a target gets at most in one round.
const MAX_ATTEMPTS: u32 = 5;
/// The shortest time between two attempts to one target.
const MIN_SPACING: Duration = Duration::from_millis(100);

/// When a target that has not answered is asked again within a round: the
/// first echo at once, then one every `spacing`, `attempts` in all, the
/// last one `spacing` before the timeout so that its reply has time to come
/// back. The spacing is the timeout divided by [`MAX_ATTEMPTS`], and never
/// shorter than [`MIN_SPACING`]: far above a LAN's round-trip time, so that
/// an attempt goes out again only when the echo or its reply was lost, not
/// merely slow; and spread over the whole timeout, so that a short burst of
/// loss does not take every attempt. A 500 ms timeout gives 5 attempts
/// 100 ms apart, 1 s (the default) 5 attempts 200 ms apart, 250 ms 2
/// attempts, under 200 ms only the first. Every attempt after the first
/// costs a wake-up of the round's timer, so only rounds with a silent
/// target pay for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Schedule {
    attempts: u32,
    spacing: Duration,
}

impl Schedule {
    fn for_timeout(timeout: Duration) -> Schedule {
        let spacing = (timeout / MAX_ATTEMPTS).max(MIN_SPACING);
        let fit = timeout.as_nanos() / spacing.as_nanos();
        Schedule {
            attempts: fit.clamp(1, u128::from(MAX_ATTEMPTS)) as u32,
            spacing,
        }
    }

    /// When attempt `n` (0 is the first echo) is due, or the deadline once
    /// none is left.
    fn due(
        &self,
        start: tokio::time::Instant,
        n: u32,
        deadline: tokio::time::Instant,
    ) -> tokio::time::Instant {
        if n < self.attempts {
            (start + self.spacing * n).min(deadline)
        } else {
            deadline
        }
    }

    /// The attempt after `n` that is not yet due at `now`.
    fn next_after(&self, start: tokio::time::Instant, n: u32, now: tokio::time::Instant) -> u32 {
        let passed = now.saturating_duration_since(start).as_nanos() / self.spacing.as_nanos();
        let passed = u32::try_from(passed).unwrap_or(u32::MAX);
        (n + 1).max(passed.saturating_add(1))
    }
}

/// An address of the round still waiting for its outcome: what its echoes
/// go out with, and when each repeated one went out.
struct Open {
    client: Client,
    addr: IpAddr,
    scope: u32,
    ident: PingIdentifier,
    sent: [Option<Instant>; MAX_ATTEMPTS as usize],
}

/// What the task of an address got for the round's echoes.
enum Reply {
    /// An echo reply: to which attempt (None when its size matches none),
    /// the time since the first echo went out, and when it came.
    Echo {
        attempt: Option<u32>,
        rtt: Duration,
        at: Instant,
    },
    /// An ICMP error, or the first echo could not be sent: the outcome.
    Final(Outcome),
    /// Nothing within the ping's own timeout (later than the deadline).
    None,
}

/// Before the `sent`-th echo of a wave: a pause of `SEND_BATCH_GAP` after
/// every `SEND_BATCH`, so that the replies to the first are read before the
/// socket's receive buffer overflows (with hundreds of sentinels on a fast
/// link it would). The pause is taken here, between batches, so a late
/// wake-up never lets several batches go at once. Says whether it paused.
async fn pause_before(sent: usize) -> bool {
    if sent > 0 && sent.is_multiple_of(SEND_BATCH) {
        tokio::time::sleep(SEND_BATCH_GAP).await;
        return true;
    }
    false
}

/// The data attempt `n` sends.
fn payload(n: u32) -> &'static [u8] {
    let len = (PAYLOAD_LEN + n as usize).min(PAYLOADS.len());
    &PAYLOADS[..len]
}

/// Which attempt an echo reply of `size` bytes (ICMP header and data)
/// answers, from the length of its data; None for a size no attempt sends.
fn attempt_of(size: usize) -> Option<u32> {
    let extra = size.checked_sub(ECHO_HEADER + PAYLOAD_LEN)?;
    u32::try_from(extra).ok().filter(|&n| n < MAX_ATTEMPTS)
}

fn icmp_size(packet: &IcmpPacket) -> usize {
    match packet {
        IcmpPacket::V4(p) => p.get_size(),
        IcmpPacket::V6(p) => p.get_size(),
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

    const MS: Duration = Duration::from_millis(1);

    fn schedule(timeout_ms: u64) -> (u32, u64) {
        let s = Schedule::for_timeout(MS * timeout_ms as u32);
        (s.attempts, s.spacing.as_millis() as u64)
    }

    #[test]
    fn attempts_are_spread_over_the_timeout_at_least_100_ms_apart_at_most_5() {
        assert_eq!(schedule(500), (5, 100)); // the benchmark's timings
        assert_eq!(schedule(1000), (5, 200)); // the default
        assert_eq!(schedule(5000), (5, 1000));
        assert_eq!(schedule(450), (4, 100));
        assert_eq!(schedule(250), (2, 100));
        assert_eq!(schedule(199), (1, 100));
        assert_eq!(schedule(100), (1, 100));
        assert_eq!(schedule(1), (1, 100));
    }

    #[test]
    fn the_last_attempt_leaves_a_spacing_for_its_reply() {
        for ms in (1..=3000).step_by(7) {
            let timeout = MS * ms;
            let s = Schedule::for_timeout(timeout);
            assert!((1..=MAX_ATTEMPTS).contains(&s.attempts), "{ms} ms: {s:?}");
            assert!(s.spacing >= MIN_SPACING, "{ms} ms: {s:?}");
            if s.attempts > 1 {
                assert!(s.spacing * s.attempts <= timeout, "{ms} ms: {s:?}");
            }
        }
    }

    #[test]
    fn attempts_are_due_on_time_then_the_deadline() {
        let s = Schedule::for_timeout(MS * 500);
        let start = tokio::time::Instant::now();
        let deadline = start + MS * 500;
        assert_eq!(s.due(start, 1, deadline), start + MS * 100);
        assert_eq!(s.due(start, 4, deadline), start + MS * 400);
        assert_eq!(s.due(start, 5, deadline), deadline);
        // Never past the deadline, whatever the attempt.
        let short = start + MS * 150;
        assert_eq!(s.due(start, 2, short), short);
    }

    #[test]
    fn a_late_tick_skips_the_attempts_whose_time_has_passed() {
        let s = Schedule::for_timeout(MS * 500);
        let start = tokio::time::Instant::now();
        // On time: the next one.
        assert_eq!(s.next_after(start, 1, start + MS * 100), 2);
        assert_eq!(s.next_after(start, 1, start + MS * 130), 2);
        // Attempt 1 went out 250 ms late: 2 and 3 are past, 4 is due at 400 ms.
        assert_eq!(s.next_after(start, 1, start + MS * 350), 4);
        assert_eq!(s.next_after(start, 1, start + MS * 250), 3);
    }

    #[test]
    fn each_attempt_sends_its_own_length_and_a_reply_says_which_it_answers() {
        for n in 0..MAX_ATTEMPTS {
            let data = payload(n);
            assert!(data.starts_with(b"fakeups sentinel"));
            assert_eq!(attempt_of(ECHO_HEADER + data.len()), Some(n));
        }
        // A reply of another size (another program's, a truncated one)
        // answers no attempt: it is timed from the first echo.
        assert_eq!(attempt_of(ECHO_HEADER + PAYLOAD_LEN - 1), None);
        assert_eq!(attempt_of(ECHO_HEADER + PAYLOAD_LEN + 5), None);
        assert_eq!(attempt_of(0), None);
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
