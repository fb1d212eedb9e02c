//! What a sentinel is (an address, a host name or the IPv4 default gateway)
//! and how each kind turns into an address to ping.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The word that names the router of the IPv4 default route.
pub const GATEWAY: &str = "gateway";

/// One entry of `sentinels` in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
pub enum SentinelSpec {
    /// The router of the IPv4 default route, read from /proc/net/route at each round.
    Gateway,
    /// A literal address; `zone` is the interface of a link-local IPv6
    /// address written as `fe80::1%eth0`, whose index is looked up at each
    /// round (it changes when a USB network card is plugged in again).
    Address { addr: IpAddr, zone: Option<String> },
    /// A host name, resolved with the system resolver.
    Host(String),
}

/// Why a string is not a sentinel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SentinelError {
    #[error("empty sentinel: expected an IP address, a host name or \"gateway\"")]
    Empty,
    #[error("{0:?} is neither an IP address, a valid host name nor \"gateway\"")]
    Invalid(String),
    #[error("{0:?}: unknown network interface {1:?} in the IPv6 zone")]
    UnknownZone(String, String),
    #[error("{0:?}: a zone (%interface) is only allowed on an IPv6 address")]
    ZoneOnIpv4(String),
}

impl FromStr for SentinelSpec {
    type Err = SentinelError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.is_empty() {
            return Err(SentinelError::Empty);
        }
        if text.eq_ignore_ascii_case(GATEWAY) {
            return Ok(SentinelSpec::Gateway);
        }
        if let Some((addr, zone)) = text.split_once('%') {
            let addr: IpAddr = addr
                .parse()
                .map_err(|_| SentinelError::Invalid(text.to_string()))?;
            if addr.is_ipv4() {
                return Err(SentinelError::ZoneOnIpv4(text.to_string()));
            }
            // Checked here so that an unknown interface is a config error.
            nix::net::if_::if_nametoindex(zone)
                .map_err(|_| SentinelError::UnknownZone(text.to_string(), zone.to_string()))?;
            return Ok(SentinelSpec::Address {
                addr,
                zone: Some(zone.to_string()),
            });
        }
        if let Ok(addr) = text.parse::<IpAddr>() {
            return Ok(SentinelSpec::Address { addr, zone: None });
        }
        if is_host_name(text) {
            return Ok(SentinelSpec::Host(text.to_ascii_lowercase()));
        }
        Err(SentinelError::Invalid(text.to_string()))
    }
}

/// Parsed inside the deserializer (not as a String first) so that a bad entry
/// is reported at its own place in the file, not at the start of the list.
impl<'de> Deserialize<'de> for SentinelSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = SentinelSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an IP address, a host name or \"gateway\"")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<SentinelSpec, E> {
                text.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(Visitor)
    }
}

impl From<SentinelSpec> for String {
    fn from(spec: SentinelSpec) -> String {
        spec.to_string()
    }
}

impl fmt::Display for SentinelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SentinelSpec::Gateway => f.write_str(GATEWAY),
            SentinelSpec::Address {
                addr,
                zone: Some(zone),
                ..
            } => write!(f, "{addr}%{zone}"),
            SentinelSpec::Address { addr, .. } => write!(f, "{addr}"),
            SentinelSpec::Host(name) => f.write_str(name),
        }
    }
}

/// RFC 1123 host name: dot-separated labels of letters, digits and inner
/// hyphens, 1 to 63 characters each, 253 in all; a trailing dot is allowed.
/// The last label may not be all digits, so that a mistyped address such as
/// `10.0.0.300` is not taken for a name.
pub fn is_host_name(text: &str) -> bool {
    let name = text.strip_suffix('.').unwrap_or(text);
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    let labels: Vec<&str> = name.split('.').collect();
    let label_ok = |label: &&str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if !labels.iter().all(label_ok) {
        return false;
    }
    labels
        .last()
        .is_some_and(|last| !last.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_kind() {
        assert_eq!("gateway".parse(), Ok(SentinelSpec::Gateway));
        assert_eq!("Gateway".parse(), Ok(SentinelSpec::Gateway));
        assert_eq!(
            "192.168.1.1".parse(),
            Ok(SentinelSpec::Address {
                addr: "192.168.1.1".parse().unwrap(),
                zone: None
            })
        );
        assert_eq!(
            "2001:db8::1".parse::<SentinelSpec>().unwrap().to_string(),
            "2001:db8::1"
        );
        assert_eq!(
            "Router.LAN".parse(),
            Ok(SentinelSpec::Host("router.lan".into()))
        );
        assert_eq!(
            "fe80::1%lo".parse::<SentinelSpec>().unwrap().to_string(),
            "fe80::1%lo"
        );
    }

    #[test]
    fn rejects_what_is_neither() {
        for bad in [
            "10.0.0.300",
            "under_score.lan",
            "-leading.lan",
            "a..b",
            "space here",
            "1.2.3",
            "fe80::1%nosuchif0",
            "10.0.0.1%lo",
        ] {
            assert!(bad.parse::<SentinelSpec>().is_err(), "{bad} accepted");
        }
        assert_eq!("  ".parse::<SentinelSpec>(), Err(SentinelError::Empty));
    }
}
