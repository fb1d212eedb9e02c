//! Probing: what a sentinel is, how each becomes an address to ping (host
//! names, the gateway), the ICMP prober, and what each sentinel did lately.

pub mod gateway;
pub mod prober;
pub mod resolve;
pub mod roster;
pub mod sentinel;

use std::net::IpAddr;
use std::time::Duration;

pub use prober::Prober;
pub use roster::{Addresses, Sentinels};
pub use sentinel::SentinelSpec;

/// The address of a sentinel this round and its IPv6 scope (0 for none),
/// or why it has none.
pub type Target = Result<(IpAddr, u32), String>;

/// How a sentinel did in one round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Answered(Duration),
    Silent(String),
}

/// What the daemon needs of a prober: the ICMP one here, a scripted one in
/// the daemon's unit tests.
pub trait Probe: Send + 'static {
    /// Why the socket of a family is missing, if it is.
    fn family_error(&self, v6: bool) -> Option<&str>;

    /// Whether a socket of the family of `addr` is open.
    fn can_ping(&self, addr: IpAddr) -> bool;

    /// Pings every target at once and waits at most `timeout` for each;
    /// the outcomes come back in the order of `targets`.
    fn ping_all(
        &mut self,
        targets: &[Target],
        timeout: Duration,
    ) -> impl Future<Output = Vec<Outcome>> + Send;
}
