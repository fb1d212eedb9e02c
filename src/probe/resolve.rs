//! Host-name sentinels: a lookup in the background (the system resolver
//! blocks, so tokio runs it on its blocking pool), the last good address
//! kept when a lookup fails, and which address of several to ping.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::sys::logging;

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

/// A host name's last good address and the lookup under way.
#[derive(Default)]
pub struct Lookup {
    pub last_good: Option<IpAddr>,
    pending: Option<tokio::task::JoinHandle<io::Result<Vec<SocketAddr>>>>,
    pub last_error: Option<String>,
}

impl Lookup {
    /// Takes the result of a finished lookup, starts the next one, and when
    /// no address was ever known, waits for it until `deadline`.
    pub async fn settle(
        &mut self,
        name: &str,
        deadline: tokio::time::Instant,
        usable: impl Fn(IpAddr) -> bool,
    ) {
        if self.last_good.is_none() {
            if self.pending.is_none() {
                self.start(name);
            }
            if let Some(handle) = self.pending.as_mut()
                && let Ok(joined) = tokio::time::timeout_at(deadline, handle).await
            {
                self.pending = None;
                self.take(name, joined, &usable);
            }
        }
        if let Some(handle) = &self.pending
            && handle.is_finished()
            && let Some(handle) = self.pending.take()
        {
            let joined = handle.await;
            self.take(name, joined, &usable);
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
}
