//! Wake-on-LAN's side of the operating system: the neighbour table
//! (/proc/net/arp) for the MACs of NUT clients, the route table
//! (/proc/net/route) for the subnet whose broadcast reaches a target, and
//! the magic packet sent as UDP to port 9. The unit has no AF_NETLINK, so
//! both tables are read from /proc. What to wake and when is the core's
//! decision (core::wake); a step's jobs run here, off the loop's thread.

pub mod neighbours;
pub mod route;

use std::net::{IpAddr, Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::Duration;

use crate::core::Mac;
use crate::core::wake::{Job, JobResult, magic_packet};
use crate::probe::{Outcome, Probe, Prober, Target};

/// The port of the magic packet (discard).
pub const PORT: u16 = 9;

/// Runs a step's jobs: the hosts with an address are pinged (within
/// `timeout`) and those that answer are up; every other job gets a magic
/// packet. The sending runs on the blocking pool.
pub async fn run(jobs: Vec<Job>, timeout: Duration) -> Vec<(String, JobResult)> {
    let (pinged, at_once): (Vec<Job>, Vec<Job>) =
        jobs.into_iter().partition(|j| j.ping_first.is_some());
    // The packets that need no ping first go at once, not after the pings.
    let mut results = send_all(at_once).await;
    if pinged.is_empty() {
        return results;
    }
    let mut answered = vec![false; pinged.len()];
    if let Ok(mut prober) = Prober::open() {
        let targets: Vec<Target> = pinged
            .iter()
            .map(|j| match j.ping_first {
                Some(a) => Ok((a, 0)),
                None => Err("not pinged".into()),
            })
            .collect();
        let outcomes = prober.ping_all(&targets, timeout).await;
        for (up, outcome) in answered.iter_mut().zip(&outcomes) {
            *up = matches!(outcome, Outcome::Answered(_));
        }
    }
    let mut to_send = vec![];
    for (job, up) in pinged.into_iter().zip(answered) {
        if up {
            results.push((job.name, JobResult::Answered));
        } else {
            to_send.push(job);
        }
    }
    results.extend(send_all(to_send).await);
    results
}

/// A magic packet for each job, from the blocking pool.
async fn send_all(to_send: Vec<Job>) -> Vec<(String, JobResult)> {
    if to_send.is_empty() {
        return vec![];
    }
    let mut results = vec![];
    let sent = tokio::task::spawn_blocking(move || {
        to_send
            .into_iter()
            .map(|job| {
                let result = match wake(job.mac, job.address, job.interface.as_deref()) {
                    Ok(to) => JobResult::Sent(to.to_string()),
                    Err(e) => JobResult::Failed(e),
                };
                (job.name, result)
            })
            .collect::<Vec<_>>()
    })
    .await;
    match sent {
        Ok(sent) => results.extend(sent),
        Err(e) => results.push(("?".into(), JobResult::Failed(e.to_string()))),
    }
    results
}

/// Sends one magic packet for `mac` to the directed broadcast of the
/// subnet that reaches it: the one holding `address`, or `interface`'s, or
/// (with neither) the one of the address the neighbour table has for the
/// MAC. Blocking: /proc is read.
pub fn wake(
    mac: Mac,
    address: Option<IpAddr>,
    interface: Option<&str>,
) -> Result<SocketAddrV4, String> {
    let routes = route::read().map_err(|e| format!("cannot read {}: {e}", route::PATH))?;
    let v4 = match address {
        Some(IpAddr::V4(a)) => Some(a),
        Some(IpAddr::V6(a)) => a.to_ipv4_mapped(),
        None => None,
    };
    let table;
    let (v4, interface) = match (v4, interface) {
        (None, None) => {
            table =
                neighbours::read().map_err(|e| format!("cannot read {}: {e}", neighbours::PATH))?;
            match table.iter().find(|n| n.mac == mac) {
                Some(n) => (Some(n.address), Some(n.device.as_str())),
                None => {
                    return Err(format!(
                        "{mac} is not in the neighbour table: name a host of [[wake.host]] \
                         (with its address or interface)"
                    ));
                }
            }
        }
        other => other,
    };
    let broadcast = route::broadcast(&routes, v4, interface)?;
    send(mac, broadcast)?;
    Ok(SocketAddrV4::new(broadcast, PORT))
}

/// The magic packet for `mac`, as UDP from an ephemeral port to
/// `broadcast`:9. Refuses the limited broadcast 255.255.255.255: only a
/// subnet's own broadcast, found in the route table, is used.
fn send(mac: Mac, broadcast: Ipv4Addr) -> Result<(), String> {
    if broadcast.is_broadcast() || broadcast.is_unspecified() {
        return Err(format!("refusing to send to {broadcast}"));
    }
    let to = SocketAddrV4::new(broadcast, PORT);
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
        .map_err(|e| format!("cannot open a UDP socket: {e}"))?;
    socket
        .set_broadcast(true)
        .map_err(|e| format!("cannot allow broadcast on the UDP socket: {e}"))?;
    socket
        .send_to(&magic_packet(mac), to)
        .map_err(|e| format!("cannot send to {to}: {e}"))?;
    Ok(())
}

/// Whether `address` is one of this machine's own: loopback, or one a
/// socket can be bound to. Blocking only in name: no I/O but the bind.
pub fn is_own(address: IpAddr) -> bool {
    address.is_loopback() || address.is_unspecified() || UdpSocket::bind((address, 0)).is_ok()
}
